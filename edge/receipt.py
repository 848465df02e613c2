"""Receipt lines for the customer, in Persian and English: what they paid, what they got,
where they stand.  Plain text lines (42 columns at most) that a POS printer, the bank
terminal's printer or a customer display can show."""

from __future__ import annotations

from typing import Any

from edge.core import jalali, phone
from edge.core.dates import parse_timestamp
from edge.core.text import fa_digits, group, num_fa, rials_en, rials_fa

WIDTH = 42


def sale(q: dict[str, Any], store: str, seq: int, enrolled: bool = False) -> dict[str, list[str]]:
    t = parse_timestamp(q["at"])
    jdate = jalali.format_date(t["day"])
    hhmm = q["at"][11:16]
    fa = [
        f"باشگاه مشتریان — فروشگاه {store}",
        f"{jalali.format_date(t['day'], True)} {fa_digits(hhmm)}",
        f"شماره سند {num_fa(seq)}",
    ]
    en = [f"Customer club - store {store}", f"{jdate} {hhmm}", f"Record {seq}"]
    m = q.get("member")
    if m:
        ref = m["ref"]
        shown = phone.mask(ref) if ref.startswith("+98") else ref[:20]
        fa.append(f"عضو: {shown}")
        en.append(f"Member: {shown}")
    if enrolled:
        fa.append("به باشگاه مشتریان خوش آمدید!")
        en.append("Welcome to the customer club!")
    fa.append(f"جمع خرید: {rials_fa(q['subtotal'])}")
    en.append(f"Subtotal: {rials_en(q['subtotal'])}")
    for a in q["applied"]:
        if a.get("discount") or a.get("points") or a.get("wallet"):
            fa.append(a["fa"][: WIDTH * 2])
            en.append(a["en"][: WIDTH * 2])
    if q["wallet_used"]:
        fa.append(f"پرداخت از کیف پول: {rials_fa(q['wallet_used'])}")
        en.append(f"Paid from wallet: {rials_en(q['wallet_used'])}")
    fa.append(f"مبلغ پرداختی: {rials_fa(q['payable'])}")
    en.append(f"Paid: {rials_en(q['payable'])}")
    if m:
        fa.append(
            f"امتیاز این خرید: {num_fa(q['points_earned'])}  مانده: {num_fa(m['points_after'])}"
        )
        en.append(
            f"Points earned: {group(q['points_earned'])}  balance: {group(m['points_after'])}"
        )
        if q["wallet_earned"] or m["wallet_after"]:
            fa.append(f"کیف پول: {rials_fa(m['wallet_after'])}")
            en.append(f"Wallet: {rials_en(m['wallet_after'])}")
        fa.append(f"سطح عضویت: {m['tier_fa']}")
        en.append(f"Tier: {m['tier_en']}")
    return {"fa": fa, "en": en}


def refund(r: dict[str, Any], store: str, seq: int, orig_seq: int) -> dict[str, list[str]]:
    word_fa = "ابطال" if r["type"] == "void" else "مرجوعی"
    word_en = "Void" if r["type"] == "void" else "Refund"
    return {
        "fa": [
            f"باشگاه مشتریان — فروشگاه {store}",
            f"{word_fa} سند {num_fa(orig_seq)} (سند {num_fa(seq)})",
            r["fa"],
        ],
        "en": [
            f"Customer club - store {store}",
            f"{word_en} of record {orig_seq} (record {seq})",
            r["en"],
        ],
    }
