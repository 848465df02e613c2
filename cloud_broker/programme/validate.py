"""The engine's own validation of a programme, said in Persian and English beside the field.

A draft is checked by ``edge.core.ruleset.compile_rules``, the function every till runs on
the bundle it receives: what head office accepts, a till accepts.  Its refusals are English
sentences (the MicroPython core carries no translations); :func:`explain` turns one into a
:class:`Problem`: where (a rule id or a section: ``bundle``, ``tiers``, ``policy``,
``limits``, ``groups``), the field it names when it names one, and the message in both
languages.  ``tests/programme/test_validate.py`` fails on any refusal in the validator's
source that has no Persian here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from edge.core.errors import CoreError, RuleError
from edge.core.ruleset import RuleSet, compile_rules
from edge.core.text import fa_digits

# the fields of a programme as a marketing team calls them
FIELD_FA = {
    "bp": "درصد تخفیف",
    "off_rials": "مبلغ تخفیف",
    "max_rials": "سقف تخفیف",
    "min_spend": "حداقل خرید",
    "points": "امتیاز",
    "per_rials": "به ازای مبلغ",
    "pct": "ضریب",
    "buy": "تعداد خرید",
    "get": "تعداد هدیه",
    "codes": "کدها",
    "single_use": "یک‌بارمصرف",
    "member_bound": "ویژه دارندگان",
    "days_before": "روز پیش از تولد",
    "days_after": "روز پس از تولد",
    "once_a_year": "سالی یک بار",
    "occasion": "مناسبت",
    "mode": "روش",
    "step_points": "امتیاز هر پله",
    "step_bp": "تخفیف هر پله",
    "max_steps": "حداکثر پله",
    "rials_per_point": "ارزش هر امتیاز",
    "min_points": "حداقل امتیاز",
    "max_bp": "حداکثر سهم",
    "priority": "اولویت",
    "groups": "گروه‌ها",
    "skus": "کالاها",
    "categories": "دسته‌ها",
    "when": "شرایط",
    "dates": "بازه تاریخ",
    "weekdays": "روزهای هفته",
    "hours": "ساعت‌ها",
    "tiers": "سطح‌ها",
    "stores": "فروشگاه‌ها",
    "min_subtotal": "حداقل مبلغ سبد",
    "members_only": "فقط اعضا",
    "name": "نام",
    "name.fa": "نام فارسی",
    "name.en": "نام انگلیسی",
    "id": "شناسه",
    "rule id": "شناسه قانون",
    "kind": "نوع",
    "version": "نسخه",
    "tenant": "شناسه باشگاه",
    "levels": "سطح‌ها",
    "window_days": "بازه محاسبه سطح (روز)",
    "earn_pct": "ضریب امتیاز سطح",
    "cashback_bp": "بازگشت وجه سطح",
    "points_expiry_days": "انقضای امتیاز (روز)",
    "offline_points_limit": "سقف امتیاز آفلاین",
    "offline_wallet_limit": "سقف کیف پول آفلاین",
    "refund_clawback": "روش بازپس‌گیری در مرجوعی",
    "point_value_rials": "ارزش ریالی امتیاز",
    "adjust_overdraft": "اصلاح منفی",
    "referral_referrer_points": "امتیاز معرف",
    "referral_referee_points": "امتیاز معرفی‌شده",
    "line_discount_bp": "سقف تخفیف هر قلم",
    "txn_discount_bp": "سقف تخفیف سبد (درصد)",
    "txn_discount_rials": "سقف تخفیف سبد (ریال)",
    "member_daily_discount_rials": "سقف تخفیف روزانه عضو",
    "member_daily_points": "سقف امتیاز روزانه عضو",
    "coupon code": "کد تخفیف",
    "exclusive": "انحصاری",
}

_Q = r"'?([\w.]+)'?"  # a field as %r or %s prints it
# (pattern on the English reason; the group holding the field, or the field itself, or
# None; Persian with {0} for that field's Persian name and {1}.. for the groups)
PATTERNS: list[tuple[re.Pattern[str], int | str | None, str]] = [
    (re.compile(rf"^unknown field {_Q}$"), 1, "فیلد ناشناخته «{0}»"),
    (re.compile(rf"^missing {_Q}$"), 1, "«{0}» را وارد کنید"),
    (re.compile(rf"^{_Q} must be an integer .*"), 1, "«{0}» باید عدد صحیح باشد"),
    (re.compile(rf"^{_Q} is (-?\d+), below the minimum (-?\d+)$"), 1,
     "«{0}» ({2}) کمتر از حداقل مجاز ({3}) است"),
    (re.compile(rf"^{_Q} is (-?\d+), above the sane maximum (-?\d+)$"), 1,
     "«{0}» ({2}) بیشتر از حداکثر معقول ({3}) است"),
    (re.compile(rf"^{_Q} must be true or false$"), 1, "«{0}» باید بله یا خیر باشد"),
    (re.compile(r"^([\w. ]+) must be non-empty text$"), 1, "«{0}» نباید خالی باشد"),
    (re.compile(r"^([\w. ]+) is longer than (\d+) characters$"), 1,
     "«{0}» بیش از {2} نویسه است"),
    (re.compile(r"^([\w. ]+) '.*' may only use letters, digits and - _ \. : /$"), 1,
     "«{0}» فقط حروف لاتین، رقم و - _ . : / می‌پذیرد"),
    (re.compile(rf"^{_Q} must be a non-empty list$"), 1, "«{0}» باید دست‌کم یک مورد داشته باشد"),
    (re.compile(r"^'name' must be .*"), "name", "نام فارسی و انگلیسی را وارد کنید"),
    (re.compile(r"^must be an object$"), None, "این بخش ساختار نادرستی دارد"),
    (re.compile(r"^dates\.calendar must be .*"), "dates", "تقویم باید شمسی یا میلادی باشد"),
    (re.compile(r"^dates: (.*)$"), "dates", "تاریخ نامعتبر است ({1})"),
    (re.compile(r"^dates needs 'from' and/or 'until'$"), "dates",
     "تاریخ شروع یا پایان را وارد کنید"),
    (re.compile(r"^window ends \((.*)\) before it starts \((.*)\)$"), "dates",
     "تاریخ پایان ({1}) پیش از تاریخ شروع ({2}) است"),
    (re.compile(r"^weekdays must be .*"), "weekdays", "دست‌کم یک روز هفته را انتخاب کنید"),
    (re.compile(r"^unknown weekday .*"), "weekdays", "روز هفته نامعتبر است"),
    (re.compile(r"^hours must be .*"), "hours", "ساعت شروع و پایان را وارد کنید"),
    (re.compile(r"^hours: (.*)$"), "hours", "ساعت نامعتبر است ({1})"),
    (re.compile(r"^hours window is empty .*"), "hours", "ساعت شروع و پایان یکی است"),
    (re.compile(r"^unknown tier '(.*)'$"), "tiers", "سطح «{1}» در برنامه نیست"),
    (re.compile(r"^give either 'bp' or 'off_rials', not both$"), "bp",
     "یا درصد تخفیف یا مبلغ تخفیف، نه هر دو"),
    (re.compile(r"^needs 'bp' \(basis points off\) or 'off_rials'$"), "bp",
     "درصد تخفیف یا مبلغ تخفیف را وارد کنید"),
    (re.compile(r"^earning (\d+) points per (\d+) Rials is absurd.*"), "points",
     "امتیاز {1} به ازای {2} ریال بیش از حد است (حداکثر یک امتیاز به ازای ۱۰۰ ریال)"),
    (re.compile(r"^pct_off takes 'bp'.*"), None,
     "تخفیف درصدی مبلغ ثابت نمی‌پذیرد؛ برای مبلغ ثابت «تخفیف سبد» را به کار ببرید"),
    (re.compile(r"^off_rials (\d+) exceeds the threshold (\d+) it rewards$"), "off_rials",
     "مبلغ تخفیف ({1}) از حداقل خرید ({2}) بیشتر است"),
    (re.compile(r"^'codes' must be a non-empty list of coupon codes$"), "codes",
     "دست‌کم یک کد تخفیف وارد کنید"),
    (re.compile(r"^'(\w+)' is for mode '(\w+)'$"), 1, "«{0}» فقط برای روش «{2}» است"),
    (re.compile(r"^occasion must be 'birthday' or 'anniversary'$"), "occasion",
     "مناسبت باید تولد یا سالگرد ازدواج باشد"),
    (re.compile(r"^mode must be 'step' or 'value'$"), "mode", "روش باید پله‌ای یا ارزشی باشد"),
    (re.compile(r"^'levels' must be a non-empty list$"), None, "دست‌کم یک سطح لازم است"),
    (re.compile(r"^duplicate tier id '(.*)'$"), None, "شناسه سطح «{1}» تکراری است"),
    (re.compile(r"^the first tier must start at min_spend 0$"), "min_spend",
     "نخستین سطح باید از خرید صفر شروع شود"),
    (re.compile(r"^min_spend must increase from tier to tier$"), "min_spend",
     "حداقل خرید هر سطح باید از سطح پیشین بیشتر باشد"),
    (re.compile(r"^must be an object of group id .*"), None, "گروه‌ها ساختار نادرستی دارند"),
    (re.compile(r"^each rule must be an object$"), None, "قانون ساختار نادرستی دارد"),
    (re.compile(r"^unknown kind '(.*)' \(known: .*\)$"), None, "نوع قانون «{1}» شناخته نیست"),
    (re.compile(r"^kind (\w+) applies to the whole basket.*"), None,
     "این نوع قانون بر کل سبد اعمال می‌شود و کالا یا دسته نمی‌پذیرد"),
    (re.compile(r"^(\w+) is a policy, not an offer.*"), None,
     "این قانون سیاست است، نه پیشنهاد؛ در گروه قرار نمی‌گیرد"),
    (re.compile(r"^unknown group '(.*)'$"), "groups", "گروه «{1}» تعریف نشده است"),
    (re.compile(r"^in two exclusive groups \((.*) and (.*)\).*"), None,
     "قانون در دو گروه انحصاری ({1} و {2}) است"),
    (re.compile(r"^a rules bundle must be an object$"), None, "برنامه ساختار نادرستی دارد"),
    (re.compile(r"^unsupported schema .*"), None, "نسخه قالب برنامه پشتیبانی نمی‌شود"),
    (re.compile(r"^currency must be IRR.*"), None, "واحد پول باید ریال باشد"),
    (re.compile(r"^refund_clawback must be deduct or overdraft$"), "refund_clawback",
     "روش بازپس‌گیری باید کسر از مبلغ یا بدهی باشد"),
    (re.compile(r"^'rules' must be a list$"), None, "فهرست قوانین نادرست است"),
    (re.compile(r"^duplicate rule id$"), None, "شناسه قانون تکراری است"),
    (re.compile(r"^coupon code '(.*)' is also in rule (.*)$"), None,
     "کد «{1}» در قانون «{2}» هم هست"),
    (re.compile(r"^version (\d+) is not newer than the rules in force \((\d+)\)$"), None,
     "نسخه {1} از نسخه جاری ({2}) جدیدتر نیست"),
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # a rule id, or a section: bundle, tiers, policy, limits, groups...
    field: str | None  # the field it names, when it names one
    en: str
    fa: str


def explain(e: CoreError) -> Problem:
    """A validator's refusal as a person reads it (see the module docstring)."""
    where = e.rule if isinstance(e, RuleError) else "bundle"
    detail = e.detail if isinstance(e, RuleError) else str(e)
    for pattern, group, fa in PATTERNS:
        m = pattern.match(detail)
        if m is None:
            continue
        field = m.group(group) if isinstance(group, int) else group
        label = FIELD_FA.get(field or "", field or "")
        text = fa_digits(fa.format(label, *m.groups()))
        return Problem(str(where), field, f"{where}: {detail}", text)
    return Problem(str(where), None, f"{where}: {detail}", f"«{where}» نامعتبر است: {detail}")


def check(doc: dict[str, Any]) -> RuleSet | Problem:
    """The compiled programme, or the first problem the validator finds in it."""
    try:
        return compile_rules(doc)
    except CoreError as e:
        return explain(e)
