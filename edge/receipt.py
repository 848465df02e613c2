"""Receipt lines for the customer, in Persian and English: what they paid, what they got,
where they stand.  Plain text lines (42 columns at most) that a POS printer, the bank
terminal's printer or a customer display can show."""

from __future__ import annotations

from typing import Any

from edge.core import jalali, phone
from edge.core.dates import parse_timestamp
from edge.core.text import fa_digits, group, num_fa, rials_en, rials_fa

WIDTH = 42


def sale(
    q: dict[str, Any], store: str, seq: int, enrolled: bool = False, referral: str | None = None
) -> dict[str, list[str]]:
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
        fa.append(f"عضو: {who(m['ref'], fa=True)}")
        en.append(f"Member: {who(m['ref'])}")
    if enrolled:
        fa.append("به باشگاه مشتریان خوش آمدید!")
        en.append("Welcome to the customer club!")
    fa.append(f"جمع خرید: {rials_fa(q['subtotal'])}")
    en.append(f"Subtotal: {rials_en(q['subtotal'])}")
    for a in q["applied"]:
        if a.get("discount") or a.get("points") or a.get("wallet"):
            fa += wrap(a["fa"])
            en += wrap(a["en"])
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
        if referral:  # head office's code for this member: friends give it when they join
            fa.append(f"کد معرفی شما: {referral}")
            en.append(f"Your referral code: {referral}")
    return {"fa": fa, "en": en}


def who(ref: str, fa: bool = False) -> str:
    """A member as a receipt shows them: a phone masked (0912***4567), a card by its last
    four characters (كارت ***7731), never the whole id."""
    if ref.startswith("+98"):
        return phone.mask(ref)
    card = ref[5:] if ref.startswith("card:") else ref
    tail = card[-4:]
    return f"کارت ***{tail}" if fa else f"card ***{tail}"


def wrap(text: str, width: int = WIDTH) -> list[str]:
    """A long explanation over as many receipt lines as it needs (at spaces), nothing cut."""
    lines: list[str] = []
    cur = ""
    for word in text.split(" "):
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    if cur:
        lines.append(cur)
    return lines


def refund(r: dict[str, Any], store: str, seq: int, orig_seq: int) -> dict[str, list[str]]:
    word_fa = "ابطال" if r["type"] == "void" else "مرجوعی"
    word_en = "Void" if r["type"] == "void" else "Refund"
    fa = [
        f"باشگاه مشتریان — فروشگاه {store}",
        f"{word_fa} سند {num_fa(orig_seq)} (سند {num_fa(seq)})",
    ]
    en = [f"Customer club - store {store}", f"{word_en} of record {orig_seq} (record {seq})"]
    fa += wrap(r["fa"])
    en += wrap(r["en"])
    if "points_after" in r:  # the member's balance afterwards, as head office will hold it
        fa.append(f"مانده امتیاز: {num_fa(r['points_after'])}")
        en.append(f"Points balance: {group(r['points_after'])}")
        if r.get("wallet_after"):
            fa.append(f"کیف پول: {rials_fa(r['wallet_after'])}")
            en.append(f"Wallet: {rials_en(r['wallet_after'])}")
    return {"fa": fa, "en": en}
