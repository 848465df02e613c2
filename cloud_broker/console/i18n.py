"""Language, digits, dates and money for every page, decided in one place.

The language (Persian by default, English on the switch) decides the direction of the page
(``rtl``/``ltr``), its stylesheet, its digits and its calendar's month names; no template
knows which one it is in.  Texts live in gettext catalogues
(``translations/<lang>/LC_MESSAGES/messages.po``, read with Babel at start): the English
text is the message id, so a page is readable even where a translation is missing, and a
test fails on any text a page uses that the Persian catalogue lacks.
"""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

from edge.core import jalali
from edge.core.text import fa_digits

LANGS = ("fa", "en")
HERE = Path(__file__).resolve().parent
_lang: contextvars.ContextVar[str] = contextvars.ContextVar("lang", default="fa")
_unit: contextvars.ContextVar[str] = contextvars.ContextVar("unit", default="rial")
_catalogs: dict[str, dict[str, str]] = {}

MONTHS_FA = (
    "فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور",
    "مهر", "آبان", "آذر", "دی", "بهمن", "اسفند",
)  # fmt: skip
MONTHS_EN = (
    "Farvardin", "Ordibehesht", "Khordad", "Tir", "Mordad", "Shahrivar",
    "Mehr", "Aban", "Azar", "Dey", "Bahman", "Esfand",
)  # fmt: skip
OFFSET_MIN = 210  # Tehran, for dates and times people read


def catalog(lang: str) -> dict[str, str]:
    """msgid -> translation for ``lang`` (English: empty, the ids are English)."""
    if lang not in _catalogs:
        path = HERE / "translations" / lang / "LC_MESSAGES" / "messages.po"
        table: dict[str, str] = {}
        if path.exists():
            with path.open("rb") as f:
                for m in read_po(f):
                    if m.id and m.string and isinstance(m.id, str) and isinstance(m.string, str):
                        table[m.id] = m.string
        _catalogs[lang] = table
    return _catalogs[lang]


def use(lang: str, unit: str) -> None:
    """The current request's language and money unit."""
    _lang.set(lang if lang in LANGS else "fa")
    _unit.set(unit if unit in ("rial", "toman") else "rial")


def lang() -> str:
    return _lang.get()


def unit() -> str:
    return _unit.get()


def gettext(text: str) -> str:
    return catalog(_lang.get()).get(text, text)


def ngettext(one: str, many: str, n: int) -> str:
    return gettext(one if n == 1 else many)


def direction() -> str:
    return "rtl" if _lang.get() == "fa" else "ltr"


def num(n: object) -> str:
    """1234567 -> ۱٬۲۳۴٬۵۶۷ (Persian) or 1,234,567."""
    if n is None or n == "":
        return ""
    if not isinstance(n, int):
        return str(n)
    text = f"{n:,}"
    return fa_digits(text.replace(",", "٬")) if _lang.get() == "fa" else text


def digits(text: object) -> str:
    """Any text with Persian digits when the page is Persian."""
    s = "" if text is None else str(text)
    return fa_digits(s) if _lang.get() == "fa" else s


def money(rials: object) -> str:
    """Integer Rials in the chosen unit: 12,500 Rials or 1,250 Toman (never a float)."""
    if not isinstance(rials, int):
        return ""
    if _unit.get() == "toman":
        toman, rest = divmod(abs(rials), 10)
        sign = "-" if rials < 0 else ""
        text = f"{sign}{toman:,}" + (f".{rest}" if rest else "")
        word = "تومان" if _lang.get() == "fa" else "Toman"
    else:
        text = f"{rials:,}"
        word = "ریال" if _lang.get() == "fa" else "IRR"
    if _lang.get() == "fa":
        text = fa_digits(text.replace(",", "٬").replace(".", "٫"))
    return f"{text} {word}"


def jday(day: object, with_month: bool = False) -> str:
    """A day number (days since 1970-01-01) as a Jalali date: ۱۴۰۵/۰۹/۱۳."""
    if not isinstance(day, int):
        return ""
    y, m, d = jalali.from_days(day)
    if with_month:
        months = MONTHS_FA if _lang.get() == "fa" else MONTHS_EN
        return digits(f"{d} {months[m - 1]} {y}")
    return digits(f"{y:04d}/{m:02d}/{d:02d}")


def jdate(ms: object, time_too: bool = True) -> str:
    """A moment (ms since the epoch, UTC) as Tehran's Jalali date and time."""
    if not isinstance(ms, int):
        return ""
    secs = ms // 1000 + OFFSET_MIN * 60
    day, rest = divmod(secs, 86400)
    text = jday(day)
    if time_too:
        text += " " + digits(f"{rest // 3600:02d}:{rest // 60 % 60:02d}")
    return text


WEEKDAYS = {
    "sat": ("Saturday", "شنبه"), "sun": ("Sunday", "یکشنبه"), "mon": ("Monday", "دوشنبه"),
    "tue": ("Tuesday", "سه‌شنبه"), "wed": ("Wednesday", "چهارشنبه"),
    "thu": ("Thursday", "پنجشنبه"), "fri": ("Friday", "جمعه"),
}  # fmt: skip


def weekday(name: object) -> str:
    en, fa = WEEKDAYS.get(str(name), (str(name), str(name)))
    return fa if _lang.get() == "fa" else en


def percent(bp: object) -> str:
    """Basis points as a percentage people read: 1500 -> ۱۵٪, 1250 -> ۱۲٫۵٪ (no float)."""
    if not isinstance(bp, int):
        return ""
    whole, rest = divmod(abs(bp), 100)
    text = f"{whole}.{rest:02d}".rstrip("0").rstrip(".") if rest else str(whole)
    text = ("-" if bp < 0 else "") + text
    if _lang.get() == "fa":
        return fa_digits(text.replace(".", "٫")) + "٪"
    return text + "%"


def filters() -> dict[str, Any]:
    return {"num": num, "money": money, "jday": jday, "jdate": jdate, "digits": digits,
            "weekday": weekday, "percent": percent}  # fmt: skip
