"""SMS text: how long it is, how many parts it costs, and member templates.

Length.  A text made only of GSM 03.38 characters travels as GSM-7: 160 characters in
one SMS, 153 per part when it needs several (the user-data header takes the rest); the
extension characters ``^ { } \\ [ ~ ] | €`` and form feed take two (an escape and the
character).  Anything else (Persian always) travels as UCS-2: 70 UTF-16 units in one
SMS, 67 per part; characters beyond the BMP (emoji) take two units.  A part never
splits an escape pair or a surrogate pair, so :func:`measure` fills parts character by
character, as a phone does.

Templates.  Operators write club messages with placeholders (:data:`PLACEHOLDERS`)::

    t = Template.compile("{name} عزیز، {points} امتیاز در {store} دارید.")
    t.render({"name": "مریم", "points": 12500, "store": "شعبه ونک"})
    # 'مریم عزیز، ۱۲٬۵۰۰ امتیاز در شعبه ونک دارید.\\nلغو۱۱'

Unknown placeholders are refused when the template is saved (:class:`TemplateError`,
English and Persian).  Numbers are rendered with Persian digits and the Arabic thousands
separator ``٬`` (U+066C).  Values typed by people (names, store names) lose control and
bidi-override characters, which could reorder what the member reads, and are capped.

Opt-out.  Iran's regulator (CRA) requires informational SMS from a club's line to end
with «لغو۱۱»: the member answers 11 to stop, 12 to join again; gateways list "لغو ۱۱" as
a reason a number blocked a line.  :func:`with_opt_out` appends :data:`OPT_OUT_KEYWORD`
unless the text already carries it (in any spacing or digits), and the footer counts in
the length.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from edge.core.text import num_fa
from edge.errors import LoyaltyError
from edge.sanitize import clean

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENDED",
    "OPT_OUT_KEYWORD",
    "PLACEHOLDERS",
    "Placeholder",
    "SmsLength",
    "Template",
    "TemplateError",
    "encoding",
    "has_opt_out",
    "measure",
    "persian_digits",
    "with_opt_out",
]

# GSM 03.38 default alphabet (the escape 0x1B itself is not a character) and the
# characters of its extension table, which cost an escape plus themselves.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")

OPT_OUT_KEYWORD = "لغو۱۱"
OPT_OUT_SEPARATOR = "\n"

_FA_DIGITS = str.maketrans("0123456789٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹" * 2)
_ASCII_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "0123456789" * 2)

Encoding = Literal["GSM-7", "UCS-2"]
_LIMITS: dict[str, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


def persian_digits(text: str) -> str:
    """Latin and Arabic-Indic digits as Persian digits: '12٣' -> '۱۲۳'."""
    return text.translate(_FA_DIGITS)


def encoding(text: str) -> Encoding:
    """ "GSM-7" when every character is in the GSM 03.38 alphabet, else "UCS-2"."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text):
        return "GSM-7"
    return "UCS-2"


@dataclass(frozen=True, slots=True)
class SmsLength:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 units (UCS-2)
    parts: int  # 0 for an empty text
    per_part: int  # capacity of a part at this length: 160/153 or 70/67
    remaining: int  # units still free in the last part


def measure(text: str) -> SmsLength:
    """Encoding, length and parts of ``text`` exactly as it will be sent."""
    enc = encoding(text)
    if enc == "GSM-7":
        costs = [2 if c in GSM7_EXTENDED else 1 for c in text]
    else:
        costs = [2 if ord(c) > 0xFFFF else 1 for c in text]
    single, multi = _LIMITS[enc]
    units = sum(costs)
    if units <= single:
        return SmsLength(enc, units, 1 if units else 0, single, single - units)
    parts, room = 1, multi
    for cost in costs:
        if cost > room:
            parts, room = parts + 1, multi
        room -= cost
    return SmsLength(enc, units, parts, multi, room)


def has_opt_out(text: str) -> bool:
    """True when ``text`` carries the opt-out keyword, however spaced or digited."""
    squeezed = "".join(c for c in text.translate(_ASCII_DIGITS) if c not in " \u200c\u00a0\t")
    return "لغو11" in squeezed


def with_opt_out(text: str) -> str:
    """``text`` ending with the opt-out footer (unchanged when it already has one)."""
    if has_opt_out(text):
        return text
    return text.rstrip() + OPT_OUT_SEPARATOR + OPT_OUT_KEYWORD


# --------------------------------------------------------------------------- templates


class TemplateError(LoyaltyError, ValueError):
    """A template or a value refused; ``en``/``fa`` for the operator who wrote it."""

    def __init__(self, en: str, fa: str) -> None:
        super().__init__(en, fa=fa)


@dataclass(frozen=True, slots=True)
class Placeholder:
    kind: Literal["number", "text"]
    max_len: int  # characters of a text value kept; for numbers, the widest expected
    en: str
    fa: str


PLACEHOLDERS: Mapping[str, Placeholder] = {
    "name": Placeholder("text", 40, "member's name", "نام عضو"),
    "points": Placeholder("number", 15, "points balance", "امتیاز"),
    "balance": Placeholder("number", 19, "wallet balance in Rials", "موجودی کیف پول (ریال)"),
    "balance_toman": Placeholder(
        "number", 18, "wallet balance in Toman (from balance)", "موجودی کیف پول (تومان)"
    ),
    "tier": Placeholder("text", 20, "membership tier", "سطح عضویت"),
    "coupon": Placeholder("text", 24, "coupon code", "کد تخفیف"),
    "store": Placeholder("text", 40, "store name", "نام فروشگاه"),
    "earned": Placeholder("number", 12, "points earned by this purchase", "امتیاز این خرید"),
    "expiring": Placeholder("number", 12, "points about to expire", "امتیاز رو به انقضا"),
    "expires": Placeholder("text", 16, "the Jalali date they expire", "تاریخ انقضا"),
}


def _allowed_list() -> str:
    return ", ".join("{" + k + "}" for k in PLACEHOLDERS)


@dataclass(frozen=True, slots=True)
class Template:
    """A checked template; build it with :meth:`compile`."""

    source: str
    fields: tuple[str, ...]
    footer: bool  # append the opt-out footer (the operator's own text lacks it)

    @classmethod
    def compile(cls, source: str, *, opt_out: bool = True) -> Template:
        """Check ``source`` when the operator saves it; TemplateError names the problem.

        ``opt_out``: append the opt-out footer (club and marketing messages); turn it off
        only for transactional texts such as one-time login codes."""
        if not source.strip():
            raise TemplateError("the message is empty", "متن پیام خالی است")
        try:
            parsed = list(string.Formatter().parse(source))
        except ValueError:
            raise TemplateError(
                "unbalanced braces: write a placeholder as {name}, a brace itself as {{ or }}",
                "آکولاد نامتوازن است: متغیر را به شکل {name} بنویسید",
            ) from None
        fields: list[str] = []
        for _literal, field, spec, conversion in parsed:
            if field is None:
                continue
            if field not in PLACEHOLDERS or spec or conversion:
                shown = "{" + field + (("!" + conversion) if conversion else "")
                shown += (":" + spec if spec else "") + "}"
                raise TemplateError(
                    f"unknown placeholder {shown}; use {_allowed_list()}",
                    f"متغیر {shown} شناخته نشد؛ متغیرهای مجاز: {_allowed_list()}",
                )
            if field not in fields:
                fields.append(field)
        # Decided on the operator's text alone: a member named "لغو ۱۱" must not drop it.
        own_text = "".join(literal for literal, _f, _s, _c in parsed)
        return cls(source, tuple(fields), opt_out and not has_opt_out(own_text))

    def render(self, values: Mapping[str, object]) -> str:
        """The text for one member; every placeholder the template uses needs a value."""
        given = dict(values)
        balance = given.get("balance")
        if "balance_toman" not in given and type(balance) is int:
            given["balance_toman"] = balance // 10  # floor: never overstate a balance
        out: list[str] = []
        for literal, field, _spec, _conv in string.Formatter().parse(self.source):
            out.append(literal)
            if field is not None:
                out.append(self._value(field, given))
        return self._finish("".join(out))

    def worst_case(self) -> SmsLength:
        """The length with every placeholder at its widest (Persian) value."""
        filler = {k: "ش" * PLACEHOLDERS[k].max_len for k in self.fields}
        out = [
            literal + (filler[field] if field is not None else "")
            for literal, field, _s, _c in string.Formatter().parse(self.source)
        ]
        return measure(self._finish("".join(out)))

    def _finish(self, text: str) -> str:
        return text.rstrip() + OPT_OUT_SEPARATOR + OPT_OUT_KEYWORD if self.footer else text

    def _value(self, field: str, values: Mapping[str, object]) -> str:
        spec = PLACEHOLDERS[field]
        if field not in values:
            raise TemplateError(
                f"no value for {{{field}}} ({spec.en})", f"مقداری برای {{{field}}} ({spec.fa}) نیست"
            )
        value = values[field]
        if spec.kind == "number":
            if not isinstance(value, int) or isinstance(value, bool):
                raise TemplateError(
                    f"{{{field}}} needs a whole number, not {type(value).__name__}",
                    f"مقدار {{{field}}} باید عدد صحیح باشد",
                )
            return num_fa(value)
        text = value if isinstance(value, str) else str(value)
        # line breaks and runs of spaces become one space; controls and bidi go
        return clean(" ".join(text.split()), spec.max_len)
