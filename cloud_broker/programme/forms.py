"""The programme as forms: what each rule kind and section asks for, in the units people
use, and the translation between a form and the bundle's JSON.

A marketing manager types percentages (``15`` or ``12.5``), amounts in Rials or Toman,
Jalali dates (``1405/01/01``, Persian digits too), times, and picks weekdays, tiers and
groups from lists; the bundle holds basis points, integer Rials and ``YYYY-MM-DD`` Jalali
dates.  No float ever holds an amount: ``12.5`` % is read as the digits it is.  A value
that is not a number is refused here, naming its field; everything else is the engine's
validator's to judge (cloud_broker.programme.validate).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cloud_broker.club.errors import ProgrammeError
from cloud_broker.programme.validate import FIELD_FA, Problem

DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩٫٬،", "01234567890123456789.,,")


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str  # points, int, money, percent, multiplier, bool, codes, choice, days
    en: str
    fa: str
    choices: tuple[tuple[str, str, str], ...] = ()  # (value, en, fa)
    hint_en: str = ""
    hint_fa: str = ""


def _f(name: str, type_: str, en: str, **kw: Any) -> Field:
    return Field(name, type_, en, FIELD_FA.get(name, name), **kw)


OFF = (_f("bp", "percent", "Percent off"), _f("off_rials", "money", "Amount off"),
       _f("max_rials", "money", "At most"))  # fmt: skip
# kind -> (English name, Persian name, scoped to lines, its fields)
KINDS: dict[str, tuple[str, str, bool, tuple[Field, ...]]] = {
    "earn_rate": ("Points on purchases", "امتیاز خرید", True, (
        _f("points", "points", "Points"), _f("per_rials", "money", "For every"))),
    "earn_multiplier": ("Points multiplier", "ضریب امتیاز", True, (
        _f("pct", "multiplier", "Multiplier (%)", hint_en="200 = double points",
           hint_fa="۲۰۰ یعنی دو برابر"),)),
    "earn_visit": ("Visit bonus", "امتیاز مراجعه", False, (_f("points", "points", "Points"),)),
    "welcome_bonus": ("Welcome gift", "هدیه عضویت", False, (_f("points", "points", "Points"),)),
    "pct_off": ("Percentage off", "تخفیف درصدی", True, (OFF[0], OFF[2])),
    "basket_threshold": ("Basket offer", "تخفیف سبد خرید", True, (
        _f("min_spend", "money", "When the basket reaches"), *OFF)),
    "buy_x_get_y": ("Buy X get Y", "چندتا بخر، هدیه بگیر", True, (
        _f("buy", "int", "Buy"), _f("get", "int", "Get"),
        _f("bp", "percent", "Percent off the gift", hint_en="100 = free",
           hint_fa="۱۰۰ یعنی رایگان"))),
    "coupon": ("Coupon", "کد تخفیف", False, (
        _f("codes", "codes", "Codes"), _f("single_use", "bool", "Single use"),
        _f("member_bound", "bool", "Only for members who hold it"), *OFF,
        _f("points", "points", "Points"))),
    "birthday": ("Birthday or anniversary gift", "هدیه تولد یا سالگرد", False, (
        _f("occasion", "choice", "Occasion", choices=(
            ("birthday", "Birthday", "تولد"),
            ("anniversary", "Wedding anniversary", "سالگرد ازدواج"))),
        _f("days_before", "int", "Days before"), _f("days_after", "int", "Days after"),
        _f("once_a_year", "bool", "Once a year"), *OFF, _f("points", "points", "Points"))),
    "cashback": ("Cashback to the wallet", "بازگشت وجه به کیف پول", True, (
        _f("bp", "percent", "Percent back"),)),
    "redeem_points": ("Points as a discount", "تخفیف امتیازی", False, (
        _f("mode", "choice", "How", choices=(
            ("step", "Steps (e.g. 1,000 points = 10% off)", "پله‌ای"),
            ("value", "Value (Rials per point)", "ارزشی"))),
        _f("step_points", "points", "Points per step"),
        _f("step_bp", "percent", "Percent per step"),
        _f("max_steps", "int", "Most steps"), _f("rials_per_point", "money", "Each point is worth"),
        _f("min_points", "points", "Fewest points"),
        _f("max_bp", "percent", "At most (% of basket)"),
        _f("max_rials", "money", "At most"))),
    "wallet": ("Wallet payments", "پرداخت با کیف پول", False, (
        _f("max_bp", "percent", "Wallet pays at most (%)"),)),
}  # fmt: skip
WEEKDAYS = (("sat", "Saturday", "شنبه"), ("sun", "Sunday", "یکشنبه"),
            ("mon", "Monday", "دوشنبه"), ("tue", "Tuesday", "سه‌شنبه"),
            ("wed", "Wednesday", "چهارشنبه"), ("thu", "Thursday", "پنجشنبه"),
            ("fri", "Friday", "جمعه"))  # fmt: skip
POLICY = (
    _f("points_expiry_days", "days", "Points expire after (days, 0: never)"),
    _f("offline_points_limit", "points", "Points a till may let spend offline"),
    _f("offline_wallet_limit", "money", "Wallet a till may let spend offline"),
    _f("refund_clawback", "choice", "Refund of what was already spent", choices=(
        ("deduct", "Withheld from the money refunded", "کسر از مبلغ مرجوعی"),
        ("overdraft", "Taken back: the balance may go below zero", "بدهی عضو"))),
    _f("point_value_rials", "money", "A point is worth"),
    _f("adjust_overdraft", "bool", "Adjustments may take a balance below zero"),
    _f("referral_referrer_points", "points", "Points to the member who referred"),
    _f("referral_referee_points", "points", "Points to the referred member"),
)  # fmt: skip
LIMITS = (
    _f("line_discount_bp", "percent", "Promotions take at most (% of a line)"),
    _f("txn_discount_bp", "percent", "Promotions take at most (% of the basket)"),
    _f("txn_discount_rials", "money", "Promotions take at most per basket"),
    _f("member_daily_discount_rials", "money", "A member gets at most per day"),
    _f("member_daily_points", "points", "A member earns at most per day (points)"),
)
CLAMPED = {"txn_discount_rials", "member_daily_discount_rials", "member_daily_points"}


def _bad(where: str, field: str, en: str, fa: str) -> ProgrammeError:
    label = FIELD_FA.get(field, field)
    return ProgrammeError(Problem(where, field, f"{where}: {field}: {en}", f"«{label}»: {fa}"))


def _clean(text: object) -> str:
    return str(text or "").translate(DIGITS).replace(",", "").replace(" ", "").strip()


def whole(text: object, where: str, field: str) -> int | None:
    t = _clean(text)
    if not t:
        return None
    body = t[1:] if t[:1] == "-" else t
    if not body.isdigit() or len(body) > 16:
        raise _bad(where, field, "a whole number", "یک عدد صحیح وارد کنید")
    return int(t)


def decimal(text: object, where: str, field: str, places: int) -> int | None:
    """``12.5`` with ``places`` 2 -> 1250: a number with at most ``places`` decimals, as
    an integer in hundredths (no float)."""
    t = _clean(text)
    if not t:
        return None
    head, _, tail = t.partition(".")
    if not head.isdigit() or (tail and not tail.isdigit()) or len(tail) > places or len(head) > 15:
        raise _bad(where, field, f"a number with at most {places} decimals",
                   f"عددی با حداکثر {places} رقم اعشار وارد کنید")  # fmt: skip
    scale: int = 10**places
    return int(head) * scale + (int(tail.ljust(places, "0")) if tail else 0)


def money(text: object, unit: str, where: str, field: str) -> int | None:
    """Rials, or Toman (one decimal allowed: the Rial digit) as Rials."""
    if unit == "toman":
        return decimal(text, where, field, 1)
    return whole(text, where, field)


def show_money(rials: object, unit: str) -> str:
    if not isinstance(rials, int):
        return ""
    if unit != "toman":
        return str(rials)
    toman, rest = divmod(rials, 10)
    return f"{toman}.{rest}" if rest else str(toman)


def show_percent(bp: object) -> str:
    if not isinstance(bp, int):
        return ""
    whole_, rest = divmod(bp, 100)
    return f"{whole_}.{rest:02d}".rstrip("0").rstrip(".") if rest else str(whole_)


def value_of(f: Field, form: Mapping[str, Any], unit: str, where: str) -> Any:
    raw = form.get(f.name)
    if f.type == "bool":
        return raw in ("on", "1", "true", True)
    if f.type == "percent":
        return decimal(raw, where, f.name, 2)
    if f.type == "money":
        return money(raw, unit, where, f.name)
    if f.type == "codes":
        codes = [c.strip() for c in str(raw or "").replace("،", ",").replace("\n", ",").split(",")]
        return [c for c in codes if c] or None
    if f.type == "choice":
        return str(raw) if raw else None
    return whole(raw, where, f.name)


def shown(f: Field, value: Any, unit: str) -> str:
    """A field's value as the form shows it."""
    if value is None:
        return ""
    if f.type == "percent":
        return show_percent(value)
    if f.type == "money":
        return show_money(value, unit)
    if f.type == "codes":
        return ", ".join(value)
    if f.type == "bool":
        return "on" if value else ""
    return str(value)


def _list(text: object) -> list[str] | None:
    items = [x.strip() for x in str(text or "").replace("،", ",").replace("\n", ",").split(",")]
    return [x for x in items if x] or None


def jalali_date(text: object, where: str, field: str) -> str | None:
    t = str(text or "").translate(DIGITS).strip().replace("/", "-")
    if not t:
        return None
    parts = t.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise _bad(where, field, "a Jalali date like 1405/01/01",
                   "تاریخی مانند ۱۴۰۵/۰۱/۰۱ وارد کنید")  # fmt: skip
    return f"{int(parts[0]):04d}-{int(parts[1]):02d}-{int(parts[2]):02d}"


def rule_from_form(form: Any, kind: str, unit: str) -> dict[str, Any]:
    """A rule of ``kind`` from the submitted form (``form.getlist`` for the check boxes)."""
    if kind not in KINDS:
        raise _bad("rule", "kind", "unknown kind", "نوع قانون نامعتبر است")
    where = str(form.get("id") or "").strip() or "rule"
    _en, _fa, scoped, fields = KINDS[kind]
    rule: dict[str, Any] = {
        "id": where,
        "kind": kind,
        "name": {"fa": str(form.get("name_fa") or "").strip(),
                 "en": str(form.get("name_en") or "").strip()},
    }  # fmt: skip
    priority = whole(form.get("priority"), where, "priority")
    if priority is not None:
        rule["priority"] = priority
    for f in fields:
        v = value_of(f, form, unit, where)
        if v is not None and v is not False:
            rule[f.name] = v
        elif f.type == "bool" and f.name == "once_a_year" and kind == "birthday":
            rule[f.name] = False  # the default is true: unticked must say so
    if rule.get("occasion") == "birthday":
        del rule["occasion"]  # the default
    groups = [g for g in form.getlist("groups") if g]
    if groups:
        rule["groups"] = groups
    if scoped:
        for name in ("skus", "categories"):
            items = _list(form.get(name))
            if items:
                rule[name] = items
    when = when_from_form(form, unit, where)
    if when:
        rule["when"] = when
    return rule


def when_from_form(form: Any, unit: str, where: str) -> dict[str, Any]:
    when: dict[str, Any] = {}
    frm = jalali_date(form.get("date_from"), where, "dates")
    until = jalali_date(form.get("date_until"), where, "dates")
    if frm or until:
        when["dates"] = {"calendar": "jalali", **({"from": frm} if frm else {}),
                         **({"until": until} if until else {})}  # fmt: skip
    days = [d for d in form.getlist("weekdays") if d]
    if days:
        when["weekdays"] = days
    h1 = str(form.get("hour_from") or "").translate(DIGITS).strip()
    h2 = str(form.get("hour_until") or "").translate(DIGITS).strip()
    if h1 or h2:
        when["hours"] = [h1, h2]
    tiers = [t for t in form.getlist("tiers") if t]
    if tiers:
        when["tiers"] = tiers
    stores = _list(form.get("stores"))
    if stores:
        when["stores"] = stores
    minimum = money(form.get("min_subtotal"), unit, where, "min_subtotal")
    if minimum is not None:
        when["min_subtotal"] = minimum
    if form.get("members_only_shown") and not form.get("members_only"):
        when["members_only"] = False
    return when


def rule_view(rule: dict[str, Any], unit: str) -> dict[str, Any]:
    """What the rule form shows for ``rule``."""
    kind = rule.get("kind", "")
    _en, _fa, _scoped, fields = KINDS.get(kind, ("", "", False, ()))
    when = rule.get("when") or {}
    dates = when.get("dates") or {}
    out: dict[str, Any] = {
        "id": rule.get("id", ""),
        "kind": kind,
        "name_fa": (rule.get("name") or {}).get("fa", ""),
        "name_en": (rule.get("name") or {}).get("en", ""),
        "priority": "" if rule.get("priority") is None else str(rule["priority"]),
        "groups": list(rule.get("groups") or []),
        "skus": ", ".join(rule.get("skus") or []),
        "categories": ", ".join(rule.get("categories") or []),
        "date_from": _jalali_shown(dates.get("from"), dates.get("calendar")),
        "date_until": _jalali_shown(dates.get("until"), dates.get("calendar")),
        "weekdays": list(when.get("weekdays") or []),
        "hour_from": (when.get("hours") or ["", ""])[0],
        "hour_until": (when.get("hours") or ["", ""])[1],
        "tiers": list(when.get("tiers") or []),
        "stores": ", ".join(when.get("stores") or []),
        "min_subtotal": show_money(when.get("min_subtotal"), unit),
        "members_only": when.get("members_only", True),
    }
    for f in fields:
        default: Any = True if (f.name == "once_a_year") else None
        out[f.name] = shown(f, rule.get(f.name, default), unit)
    if kind == "birthday" and not out.get("occasion"):
        out["occasion"] = "birthday"
    return out


def _jalali_shown(text: object, calendar: object) -> str:
    if not isinstance(text, str):
        return ""
    if calendar == "jalali":
        return text.replace("-", "/")
    from edge.core import jalali  # noqa: PLC0415
    from edge.core.dates import days_from_civil, parse_date  # noqa: PLC0415

    y, m, d = jalali.from_days(days_from_civil(*parse_date(text)))
    return f"{y:04d}/{m:02d}/{d:02d}"


def section_from_form(section: str, form: Any, unit: str) -> dict[str, Any]:
    """``policy``, ``limits``, ``tiers`` or ``groups`` from its form."""
    if section in ("policy", "limits"):
        out: dict[str, Any] = {}
        for f in POLICY if section == "policy" else LIMITS:
            v = value_of(f, form, unit, section)
            if f.type == "bool":
                out[f.name] = 1 if v else 0
            elif v is not None:
                out[f.name] = v
        return out
    if section == "groups":
        groups: dict[str, Any] = {}
        for gid, exclusive in zip(form.getlist("group_id"), form.getlist("group_exclusive"),
                                  strict=False):  # fmt: skip
            if str(gid).strip():
                groups[str(gid).strip()] = {"exclusive": exclusive == "1"}
        return groups
    levels = []
    cols = ("tier_id", "tier_fa", "tier_en", "tier_min", "tier_earn", "tier_cashback")
    for raw_id, fa, en, lo, earn, cb in zip(*(form.getlist(c) for c in cols), strict=False):
        tid = str(raw_id).strip()
        if not tid:
            continue  # an empty row: a tier removed, or the spare row left blank
        where = f"tiers.{tid}"
        levels.append({
            "id": tid, "name": {"fa": str(fa).strip(), "en": str(en).strip()},
            "min_spend": money(lo, unit, where, "min_spend") or 0,
            "earn_pct": whole(earn, where, "earn_pct") or 100,
            "cashback_bp": decimal(cb, where, "cashback_bp", 2) or 0,
        })  # fmt: skip
    return {"window_days": whole(form.get("window_days"), "tiers", "window_days") or 365,
            "levels": levels}  # fmt: skip


def section_view(section: str, doc: dict[str, Any], unit: str) -> dict[str, str]:
    """Field values of ``policy`` or ``limits`` as the form shows them."""
    fields = POLICY if section == "policy" else LIMITS
    src = doc.get(section) or {}
    return {f.name: shown(f, src.get(f.name), unit) for f in fields}
