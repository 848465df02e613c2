"""./dev demo: quotes for a few realistic baskets against the embedded rules.

Prints, for each customer, what the till would show: the lines, every rule that
applied (in Persian and English), the totals, the points earned and the new
balances.  Exits non-zero if any quote breaks an invariant the engine promises.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from typing import Any

from edge.core import jalali, phone
from edge.core.dates import parse_timestamp
from edge.core.engine import quote
from edge.core.refund import refund
from edge.core.ruleset import RuleSet, compile_rules
from edge.core.text import group, num_fa, rials_en, rials_fa


def load_rules() -> dict[str, Any]:
    text = resources.files("edge.data").joinpath("rules.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def _line(sku: str, cat: str, qty: int, price: int) -> dict[str, Any]:
    return {"sku": sku, "category": cat, "qty": qty, "unit_price": price}


SCENARIOS: list[dict[str, Any]] = [
    {
        "title": "Maryam, silver member, shopping for Nowruz on a Friday evening",
        "title_fa": "مریم، عضو نقره‌ای، خرید نوروزی جمعه شب",
        "typed_phone": "۰۹۱۲ ۱۲۳ ۴۵۶۷",
        "at": "2026-03-20T21:00:00+03:30",
        "member": {
            "points": 3400,
            "wallet": 650_000,
            "visits": 12,
            "birthday": "1370-01-02",
            "spend": [["2025-06-01", 150_000_000], ["2026-01-10", 90_000_000]],
        },
        "basket": {
            "store": "tehran-01",
            "coupons": ["WELCOME10"],
            "redeem_points": "max",
            "use_wallet": 200_000,
            "lines": [
                _line("NUT-PISTACHIO-500", "nuts", 2, 4_850_000),
                _line("DRK-COLA-1.5", "drinks", 3, 450_000),
                _line("DAIRY-MILK-1L", "dairy", 4, 380_000),
                _line("BKR-BARBARI", "bakery", 2, 150_000),
                _line("ELC-KETTLE", "electronics", 1, 18_500_000),
            ],
        },
        "refund": {"lines": [{"line": 4, "qty": 1}]},
    },
    {
        "title": "Reza, gold member, dairy Tuesday, pays partly from his wallet",
        "title_fa": "رضا، عضو طلایی، سه‌شنبه لبنی، بخشی از مبلغ از کیف پول",
        "typed_phone": "+98 935 111 2233",
        "at": "2026-05-12T11:15:00+03:30",
        "member": {
            "points": 48_000,
            "wallet": 9_000_000,
            "visits": 210,
            "spend": [["2025-11-01", 320_000_000], ["2026-04-20", 210_000_000]],
        },
        "basket": {
            "store": "tehran-01",
            "use_wallet": "max",
            "lines": [
                _line("DAIRY-CHEESE-400", "dairy", 2, 2_150_000),
                _line("DAIRY-MILK-1L", "dairy", 6, 380_000),
                _line("ELC-BLENDER", "electronics", 1, 42_000_000),
            ],
        },
    },
    {
        "title": "A new member's first purchase, with the welcome coupon",
        "title_fa": "اولین خرید یک عضو تازه، با کد خوش‌آمد",
        "typed_phone": "٠٩٠١١٢٣٤٥٦٧",
        "at": "2026-06-01T18:05:00+03:30",
        "member": {"points": 0, "wallet": 0, "visits": 0},
        "basket": {
            "store": "isfahan-02",
            "coupons": ["welcome10"],
            "lines": [
                _line("GRC-RICE-5KG", "grocery", 1, 6_900_000),
                _line("GRC-OIL-1.8", "grocery", 2, 1_450_000),
            ],
        },
    },
    {
        "title": "A walk-in customer (no membership) buying evening bread",
        "title_fa": "مشتری بدون عضویت، خرید نان شبانه",
        "typed_phone": None,
        "at": "2026-05-12T21:40:00+03:30",
        "member": None,
        "basket": {"store": "shiraz-03", "lines": [_line("BKR-SANGAK", "bakery", 3, 120_000)]},
    },
]


def _check(q: dict[str, Any]) -> list[str]:
    problems = []
    if q["payable"] < 0:
        problems.append("payable below zero")
    if q["payable"] != q["subtotal"] - q["discount"] - q["wallet_used"]:
        problems.append("totals do not add up")
    if sum(ln["points"] for ln in q["lines"]) != q["points_earned"]:
        problems.append("line points do not add up")
    return problems


def _print_quote(s: dict[str, Any], rs: RuleSet, out: list[str]) -> list[str]:
    t = parse_timestamp(s["at"])
    jdate = jalali.format_date(t["day"], digits_fa=True)
    out.append("=" * 78)
    out.append(s["title"])
    out.append(s["title_fa"])
    out.append(f"{s['at']}  ({jdate})")
    member = None
    if s["typed_phone"] is not None:
        ref = phone.normalise(s["typed_phone"])
        out.append(f"typed: {s['typed_phone']!r} -> {ref}  ({phone.display(ref, fa=True)})")
        member = {"ref": ref, **s["member"]}
    q = quote(rs, s["basket"], member, t)
    out.append("-" * 78)
    out.extend(
        f"  {ln['qty']:>2} x {ln['sku']:<20} {group(ln['gross']):>14}"
        f"  -{group(ln['discount']):>11}  = {group(ln['net']):>12}"
        for ln in q["lines"]
    )
    out.append("-" * 78)
    for a in q["applied"]:
        out.append(f"  * {a['en']}")
        out.append(f"    {a['fa']}")
    out.extend(f"  ! {c['code']}: {c['en']} / {c['fa']}" for c in q["coupons_rejected"])
    out.extend(f"  ! {n['en']} / {n['fa']}" for n in q["notices"])
    out.append("-" * 78)
    out.append(f"  subtotal {rials_en(q['subtotal']):>22}   جمع کل {rials_fa(q['subtotal'])}")
    out.append(f"  discount {rials_en(q['discount']):>22}   تخفیف {rials_fa(q['discount'])}")
    if q["wallet_used"]:
        out.append(
            f"  wallet   {rials_en(q['wallet_used']):>22}   کیف پول {rials_fa(q['wallet_used'])}"
        )
    out.append(f"  PAYABLE  {rials_en(q['payable']):>22}   قابل پرداخت {rials_fa(q['payable'])}")
    m = q["member"]
    if m is not None:
        out.append(
            f"  points +{group(q['points_earned'])} (balance {group(m['points_after'])})"
            f"   امتیاز +{num_fa(q['points_earned'])}"
            f" (مانده {num_fa(m['points_after'])})"
        )
        out.append(
            f"  cashback {rials_en(q['wallet_earned'])}, wallet {rials_en(m['wallet_after'])}"
            f"   tier {m['tier_en']} / سطح {m['tier_fa']}"
        )
    if s.get("refund"):
        r = refund(q, s["refund"])
        out.append("  later, a refund:")
        out.append(f"    {r['en']}")
        out.append(f"    {r['fa']}")
    return _check(q)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="./dev demo", description=__doc__)
    ap.parse_args(argv)
    rs = compile_rules(load_rules())
    out = [
        f"Rules bundle v{rs.version} ({rs.tenant}): {len(rs.rules)} rules, tiers "
        + ", ".join(f"{t.en}/{t.fa}" for t in rs.tiers)
    ]
    problems: list[str] = []
    for s in SCENARIOS:
        problems += _print_quote(s, rs, out)
    out.append("=" * 78)
    out.append("all quotes consistent" if not problems else "PROBLEMS: " + "; ".join(problems))
    sys.stdout.write("\n".join(out) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
