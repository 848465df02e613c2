"""The quote, case by case, with figures worked out by hand in the comments."""

from __future__ import annotations

from typing import Any

import pytest

from edge.core.engine import quote
from edge.core.errors import DateError, InputError
from edge.core.inputs import MAX_COUPONS
from edge.core.ruleset import compile_rules
from tests.core.helpers import EARN, bundle, line, member, q, rule


def applied(quote: dict[str, Any]) -> list[str]:
    return [a["rule"] for a in quote["applied"]]


def test_points_per_spend() -> None:
    # 3 x 1,250,000 = 3,750,000 Rials at 100 points per 1,000,000 -> 375 points
    r = q(bundle(EARN), [line("A", 1_250_000, 3)], member())
    assert r["points_earned"] == 375
    assert r["payable"] == 3_750_000
    assert r["lines"][0]["points"] == 375


def test_points_round_down_once_per_basket_not_per_line() -> None:
    # two lines of 5,000 Rials: 0.5 point each; together 1 point
    r = q(
        bundle(rule("e", "earn_rate", points=1, per_rials=10_000)),
        [line("A", 5_000), line("B", 5_000)],
        member(),
    )
    assert r["points_earned"] == 1
    assert sorted(ln["points"] for ln in r["lines"]) == [0, 1]


def test_category_discount() -> None:
    doc = bundle(rule("dairy10", "pct_off", bp=1000, categories=["dairy"]))
    r = q(doc, [line("MILK", 380_000, 2, "dairy"), line("BREAD", 150_000, 1, "bakery")], member())
    assert r["lines"][0]["discount"] == 76_000  # 10% of 760,000
    assert r["lines"][1]["discount"] == 0
    assert r["payable"] == 760_000 + 150_000 - 76_000
    assert r["applied"][0]["en"] == "Rule dairy10: 10% off, 76,000 IRR"
    assert r["applied"][0]["fa"] == "قاعده dairy10: ۱۰٪ تخفیف، ۷۶٬۰۰۰ ریال"


def test_stacking_is_sequential_and_line_cap_holds() -> None:
    # 40% then 30% of what is left (180,000) but the line may lose at most 50%: 100,000
    doc = bundle(
        rule("a", "pct_off", bp=4000, priority=1),
        rule("b", "pct_off", bp=3000, priority=2),
        limits={"line_discount_bp": 5000},
    )
    r = q(doc, [line("X", 1_000_000)], member())
    assert [a["discount"] for a in r["applied"]] == [400_000, 100_000]
    assert r["payable"] == 500_000


def test_transaction_cap_is_shared_pro_rata() -> None:
    doc = bundle(rule("ten", "pct_off", bp=1000), limits={"txn_discount_rials": 150_000})
    r = q(doc, [line("A", 1_000_000), line("B", 2_000_000)], member())
    assert [ln["discount"] for ln in r["lines"]] == [50_000, 100_000]
    assert r["promo_discount"] == 150_000


def test_member_daily_discount_cap_counts_what_was_given_today() -> None:
    doc = bundle(rule("ten", "pct_off", bp=1000), limits={"member_daily_discount_rials": 1_000_000})
    m = member(today={"date": "2026-03-20", "discount": 950_000, "points": 0})
    assert q(doc, [line("A", 2_000_000)], m)["promo_discount"] == 50_000
    m["today"]["date"] = "2026-03-19"  # yesterday's total does not count
    assert q(doc, [line("A", 2_000_000)], m)["promo_discount"] == 200_000


def test_exclusive_group_lowest_priority_wins_when_eligible() -> None:
    doc = bundle(
        rule("big", "pct_off", bp=2000, priority=10, groups=["camp"], when={"weekdays": ["sat"]}),
        rule("small", "pct_off", bp=500, priority=20, groups=["camp"]),
        rule("other", "pct_off", bp=100, priority=30, groups=["free"]),
        groups={"camp": {"exclusive": True}, "free": {"exclusive": False}},
    )
    friday = q(doc, [line("A", 1_000_000)], member())  # 'big' is Saturday only
    assert applied(friday) == ["small", "other"]
    saturday = q(doc, [line("A", 1_000_000)], member(), at="2026-03-21T10:00:00+03:30")
    assert applied(saturday) == ["big", "other"]


def test_buy_two_get_one_takes_the_cheapest_units() -> None:
    doc = bundle(rule("b2g1", "buy_x_get_y", buy=2, get=1, skus=["COLA"]))
    r = q(doc, [line("COLA", 450_000, 7)], member())
    assert r["promo_discount"] == 900_000  # 7 // 3 = 2 free
    r = q(doc, [line("COLA", 500_000, 2), line("COLA", 400_000, 1)], member())
    assert [ln["discount"] for ln in r["lines"]] == [0, 400_000]
    r = q(doc, [line("COLA", 450_000, 2)], member())
    assert r["promo_discount"] == 0 and applied(r) == []


def test_basket_threshold_fixed_amount_spread_pro_rata() -> None:
    doc = bundle(rule("t", "basket_threshold", min_spend=2_000_000, off_rials=300_000))
    r = q(doc, [line("A", 1_000_000), line("B", 2_000_000)], member())
    assert [ln["discount"] for ln in r["lines"]] == [100_000, 200_000]
    assert q(doc, [line("A", 1_999_999)], member())["promo_discount"] == 0


def test_hours_window_across_midnight() -> None:
    doc = bundle(rule("late", "pct_off", bp=1000, when={"hours": ["22:00", "02:00"]}))
    at1 = q(doc, [line("A", 100_000)], member(), at="2026-03-20T01:30:00+03:30")
    at3 = q(doc, [line("A", 100_000)], member(), at="2026-03-20T03:00:00+03:30")
    at23 = q(doc, [line("A", 100_000)], member(), at="2026-03-20T23:00:00+03:30")
    assert (at1["promo_discount"], at3["promo_discount"], at23["promo_discount"]) == (
        10_000,
        0,
        10_000,
    )


def test_jalali_campaign_window() -> None:
    doc = bundle(
        rule(
            "nowruz",
            "pct_off",
            bp=1000,
            when={"dates": {"from": "1405-01-01", "until": "1405-01-13", "calendar": "jalali"}},
        )
    )
    before = q(doc, [line("A", 100_000)], member(), at="2026-03-20T23:59:00+03:30")
    first = q(doc, [line("A", 100_000)], member(), at="2026-03-21T00:00:00+03:30")
    last = q(doc, [line("A", 100_000)], member(), at="2026-04-02T23:59:00+03:30")
    after = q(doc, [line("A", 100_000)], member(), at="2026-04-03T00:00:00+03:30")
    assert [x["promo_discount"] for x in (before, first, last, after)] == [0, 10_000, 10_000, 0]


def test_birthday_window_in_jalali_and_once_a_year() -> None:
    doc = bundle(rule("bd", "birthday", days_before=3, days_after=7, bp=1000, points=300), EARN)
    m = member(birthday="1370-01-02")  # anniversary 1405-01-02 = 2026-03-22
    r = q(doc, [line("A", 1_000_000)], m)  # 2026-03-20: two days before
    assert r["promo_discount"] == 100_000
    assert r["points_earned"] == 90 + 300  # 900,000 paid -> 90, plus the gift
    assert [a.get("birthday_year") for a in r["applied"] if a["rule"] == "bd"] == [1405, 1405]
    early = q(doc, [line("A", 1_000_000)], m, at="2026-03-18T10:00:00+03:30")
    assert early["promo_discount"] == 0
    claimed = q(doc, [line("A", 1_000_000)], member(birthday="1370-01-02", birthday_claimed=1405))
    assert claimed["promo_discount"] == 0


def test_coupons_single_use_member_bound_and_unknown() -> None:
    doc = bundle(
        rule("w", "coupon", codes=["WELCOME10"], single_use=True, bp=1000),
        rule("vip", "coupon", codes=["VIP-1"], member_bound=True, points=50),
    )
    r = q(
        doc,
        [line("A", 1_000_000)],
        member(coupons=["VIP-1"]),
        coupons=["welcome10", "VIP-1", "NOPE"],
    )
    assert r["coupons_used"] == ["VIP-1", "WELCOME10"]
    assert r["promo_discount"] == 100_000 and r["points_earned"] == 50
    assert [(x["code"], x["reason"]) for x in r["coupons_rejected"]] == [("NOPE", "unknown")]
    r = q(
        doc,
        [line("A", 1_000_000)],
        member(used_coupons=["WELCOME10"]),
        coupons=["WELCOME10", "VIP-1"],
    )
    assert [(x["code"], x["reason"]) for x in r["coupons_rejected"]] == [
        ("VIP-1", "not_yours"),
        ("WELCOME10", "used"),
    ]
    assert r["coupons_rejected"][0]["fa"] == "این کد تخفیف متعلق به مشتری دیگری است."


def test_points_redemption_step_mode_takes_no_points_for_nothing() -> None:
    red = rule("red", "redeem_points", mode="step", step_points=1000, step_bp=1000, max_steps=3)
    r = q(bundle(red), [line("A", 5_000_000)], member(points=3400), redeem_points="max")
    assert (r["points_discount"], r["points_redeemed"]) == (1_500_000, 3000)
    red["max_rials"] = 1_000_000  # the cap is reached with two steps: take only 2,000
    r = q(bundle(red), [line("A", 5_000_000)], member(points=3400), redeem_points="max")
    assert (r["points_discount"], r["points_redeemed"]) == (1_000_000, 2000)
    assert r["member"]["points_after"] == 1400


def test_points_redemption_value_mode_and_minimum() -> None:
    red = rule("red", "redeem_points", mode="value", rials_per_point=100, min_points=500)
    r = q(bundle(red), [line("A", 200_000)], member(points=3400), redeem_points="max")
    assert (r["points_discount"], r["points_redeemed"], r["payable"]) == (200_000, 2000, 0)
    r = q(bundle(red), [line("A", 200_000)], member(points=400), redeem_points="max")
    assert r["points_redeemed"] == 0
    assert [n["notice"] for n in r["notices"]] == ["few_points"]


def test_wallet_is_partial_and_bounded_by_policy() -> None:
    doc = bundle(rule("w", "wallet", max_bp=5000))
    r = q(doc, [line("A", 1_000_000)], member(wallet=800_000), use_wallet="max")
    assert (r["wallet_used"], r["payable"]) == (500_000, 500_000)
    r = q(doc, [line("A", 1_000_000)], member(wallet=800_000), use_wallet=120_000)
    assert r["wallet_used"] == 120_000


def test_money_from_the_wallet_earns_no_points_or_cashback() -> None:
    doc = bundle(
        EARN,
        tiers={
            "levels": [
                {"id": "t", "min_spend": 0, "cashback_bp": 1000, "name": {"fa": "ت", "en": "T"}}
            ]
        },
    )
    r = q(doc, [line("A", 1_000_000)], member(wallet=400_000), use_wallet="max")
    assert r["payable"] == 600_000
    assert r["points_earned"] == 60
    assert r["wallet_earned"] == 60_000


def test_tier_from_rolling_spend_window() -> None:
    tiers = {
        "window_days": 365,
        "levels": [
            {"id": "regular", "min_spend": 0, "name": {"fa": "عادی", "en": "Regular"}},
            {
                "id": "bronze",
                "min_spend": 50_000_000,
                "earn_pct": 110,
                "cashback_bp": 50,
                "name": {"fa": "برنزی", "en": "Bronze"},
            },
            {
                "id": "gold",
                "min_spend": 500_000_000,
                "earn_pct": 150,
                "cashback_bp": 200,
                "name": {"fa": "طلایی", "en": "Gold"},
            },
        ],
    }
    m = member(spend=[["2026-03-10", 60_000_000], ["2025-02-01", 500_000_000]])
    r = q(bundle(EARN, tiers=tiers), [line("A", 10_000_000)], m)
    assert r["member"]["tier"] == "bronze"  # the 500M is older than 365 days
    assert r["points_earned"] == 1100  # 1,000 x 110%
    assert r["wallet_earned"] == 50_000  # 0.5%
    m["spend"].append(["2025-06-01", 450_000_000])
    assert q(bundle(EARN, tiers=tiers), [line("A", 10_000_000)], m)["member"]["tier"] == "gold"
    # a day whose refunds exceed its purchases is a negative entry; the total never goes below 0
    m["spend"].append(["2026-03-12", -460_000_000])
    assert q(bundle(EARN, tiers=tiers), [line("A", 10_000_000)], m)["member"]["tier"] == "bronze"
    m["spend"] = [["2026-03-12", -5_000_000]]
    r = q(bundle(EARN, tiers=tiers), [line("A", 10_000_000)], m)
    assert r["member"]["tier"] == "regular" and r["member"]["rolling_spend"] == 0


def test_multipliers_take_the_highest_not_the_product() -> None:
    doc = bundle(
        EARN,
        rule("x2", "earn_multiplier", pct=200, categories=["dairy"]),
        rule("x3", "earn_multiplier", pct=300, skus=["MILK"]),
    )
    r = q(doc, [line("MILK", 1_000_000, 1, "dairy"), line("BREAD", 1_000_000)], member())
    assert [ln["points"] for ln in r["lines"]] == [300, 100]


def test_daily_points_cap() -> None:
    doc = bundle(EARN, limits={"member_daily_points": 100})
    m = member(today={"date": "2026-03-20", "discount": 0, "points": 80})
    r = q(doc, [line("A", 5_000_000)], m)
    assert r["points_earned"] == 20
    assert r["applied"][-1]["points"] == -480


def test_welcome_bonus_only_on_first_purchase_and_visit_bonus_threshold() -> None:
    doc = bundle(
        rule("hi", "welcome_bonus", points=500),
        rule("v", "earn_visit", points=10, when={"min_subtotal": 500_000}),
    )
    assert q(doc, [line("A", 600_000)], member(visits=0))["points_earned"] == 510
    assert q(doc, [line("A", 600_000)], member(visits=3))["points_earned"] == 10
    assert q(doc, [line("A", 400_000)], member(visits=3))["points_earned"] == 0


def test_anonymous_customer_gets_only_public_offers_and_no_points() -> None:
    doc = bundle(
        EARN,
        rule("pub", "pct_off", bp=1000, when={"members_only": False}),
        rule("club", "pct_off", bp=500),
    )
    r = q(doc, [line("A", 1_000_000)], None, redeem_points=100)
    assert applied(r) == ["pub"]
    assert r["points_earned"] == 0 and r["member"] is None
    assert [n["notice"] for n in r["notices"]] == ["member"]


def test_payable_never_below_zero() -> None:
    doc = bundle(
        rule("all", "pct_off", bp=10000, priority=1),
        rule("c", "coupon", codes=["X"], off_rials=500_000),
    )
    r = q(doc, [line("A", 300_000)], member(wallet=10**6), coupons=["X"], use_wallet="max")
    assert (r["payable"], r["discount"], r["wallet_used"]) == (0, 300_000, 0)


@pytest.mark.parametrize(
    ("basket", "field"),
    [
        ({"lines": []}, "basket.lines"),
        ({"lines": [{"sku": "A", "qty": 0, "unit_price": 1}]}, "basket.lines[0].qty"),
        ({"lines": [{"sku": "A", "qty": 1, "unit_price": 1.5}]}, "basket.lines[0].unit_price"),
        ({"lines": [{"sku": "A", "qty": True, "unit_price": 1}]}, "basket.lines[0].qty"),
        ({"lines": [{"sku": "", "qty": 1, "unit_price": 1}]}, "basket.lines[0].sku"),
        ({"lines": [{"sku": "A\x1b[2J", "qty": 1, "unit_price": 1}]}, "basket.lines[0].sku"),
        # a lone surrogate (json.loads accepts "\udc80") cannot go into the sale record
        ({"lines": [{"sku": "MILK\udc80", "qty": 1, "unit_price": 1}]}, "basket.lines[0].sku"),
        (
            {"lines": [{"sku": "MILK", "category": "\ud800x", "qty": 1, "unit_price": 1}]},
            "basket.lines[0].category",
        ),
        ({"lines": [line("A", 1)], "store": "tehran-\udfff"}, "basket.store"),
        ({"lines": [line("A", 1)], "coupons": ["WELCOME\udc80"]}, "basket.coupons"),
        ({"lines": [line("A", 1)], "coupons": ["WEL\nCOME"]}, "basket.coupons"),
        ({"lines": [line("A", 1)], "coupons": [""]}, "basket.coupons"),
        ({"lines": [line("A", 1)], "coupons": [f"C{i}" for i in range(21)]}, "basket.coupons"),
        ({"lines": [{"sku": "A", "qty": 1, "unit_price": 10}], "total": 11}, "basket.total"),
        (
            {"lines": [{"sku": "A", "qty": 1, "unit_price": 10}], "use_wallet": -1},
            "basket.use_wallet",
        ),
    ],
)
def test_bad_baskets_are_refused_naming_the_field(basket: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        quote(compile_rules(bundle(EARN)), basket, member(), "2026-03-20T10:00:00+03:30")
    assert info.value.field == field


def test_unusual_but_valid_text_takes_the_slow_path_and_passes() -> None:
    # characters above the surrogate range (an emoji, U+FFFD) are valid text
    lines = [line("شیر-\U0001f95b", 100, 1, "لبنیات"), line("A\ufffd", 100, 1, "x\ue000")]
    r = q(bundle(EARN), lines, member(ref="+98912\U0001f600"))
    assert [ln["sku"] for ln in r["lines"]] == ["شیر-\U0001f95b", "A\ufffd"]
    assert r["lines"][1]["category"] == "x\ue000"


def test_coupon_codes_are_bounded_and_deduplicated() -> None:
    doc = bundle(rule("w", "coupon", codes=["WELCOME10"], bp=1000))
    codes = ["welcome10", " WELCOME10\r\n", "Welcome10"] + [f"X{i}" for i in range(17)]
    assert len(codes) == MAX_COUPONS
    r = q(doc, [line("A", 1_000_000)], member(), coupons=codes)
    assert r["coupons_used"] == ["WELCOME10"]
    assert len(r["coupons_rejected"]) == 17
    with pytest.raises(InputError, match="more than 20 codes") as info:
        q(doc, [line("A", 1_000_000)], member(), coupons=[*codes, "ONE-MORE"])
    assert info.value.field == "basket.coupons"


def test_a_discount_capped_to_nothing_spends_no_coupon_or_birthday_gift() -> None:
    doc = bundle(
        rule("ten", "pct_off", bp=1000, priority=1),
        rule("w", "coupon", codes=["WELCOME10"], single_use=True, bp=1000),
        rule("bd", "birthday", days_before=3, days_after=7, bp=1000),
        limits={"member_daily_discount_rials": 1_000_000},
    )
    # the member already had today's whole discount allowance
    m = member(
        birthday="1370-01-02", today={"date": "2026-03-20", "discount": 1_000_000, "points": 0}
    )
    r = q(doc, [line("A", 1_000_000)], m, coupons=["ZZZ", "WELCOME10"])
    assert r["promo_discount"] == 0
    assert r["applied"] == []  # no "..., 0 IRR" lines, no birthday_year: nothing claimed
    assert r["coupons_used"] == []  # the single-use code stays unused
    assert [(x["code"], x["reason"]) for x in r["coupons_rejected"]] == [
        ("WELCOME10", "limit"),
        ("ZZZ", "unknown"),
    ]
    assert r["coupons_rejected"][0]["en"].startswith("The discount limit is reached")
    # a part of the allowance left: the coupon and the gift apply (and are spent)
    m["today"]["discount"] = 950_000
    r = q(doc, [line("A", 1_000_000)], m, coupons=["WELCOME10"])
    assert [(a["rule"], a["discount"]) for a in r["applied"]] == [("ten", 50_000)]
    m["today"]["discount"] = 850_000
    r = q(doc, [line("A", 1_000_000)], m, coupons=["WELCOME10"])
    assert [(a["rule"], a["discount"]) for a in r["applied"]] == [
        ("ten", 100_000),
        ("bd", 50_000),
    ]
    assert r["applied"][1]["birthday_year"] == 1405
    assert r["coupons_used"] == [] and r["coupons_rejected"][0]["reason"] == "limit"


def test_a_coupon_with_points_is_spent_even_when_its_discount_is_capped() -> None:
    doc = bundle(
        rule("v", "coupon", codes=["VIP"], bp=1000, points=50),
        limits={"member_daily_discount_rials": 1_000_000},
    )
    m = member(today={"date": "2026-03-20", "discount": 1_000_000, "points": 0})
    r = q(doc, [line("A", 1_000_000)], m, coupons=["VIP"])
    assert r["coupons_used"] == ["VIP"] and r["points_earned"] == 50
    assert [(a["rule"], a.get("coupon")) for a in r["applied"]] == [("v", "VIP")]
    # without a member the points cannot be given: the code is not spent either
    doc = bundle(
        rule("all", "pct_off", bp=10000, priority=1, when={"members_only": False}),
        rule("v", "coupon", codes=["VIP"], bp=1000, points=50, when={"members_only": False}),
    )
    r = q(doc, [line("A", 1_000_000)], None, coupons=["VIP"])
    assert r["coupons_used"] == [] and r["coupons_rejected"][0]["reason"] == "limit"
    assert q(doc, [line("A", 1_000_000)], member(), coupons=["VIP"])["coupons_used"] == ["VIP"]


def test_a_points_only_coupon_needs_a_member() -> None:
    doc = bundle(rule("p", "coupon", codes=["PTS"], points=50, when={"members_only": False}))
    r = q(doc, [line("A", 1_000_000)], None, coupons=["PTS"])
    assert r["coupons_used"] == [] and r["coupons_rejected"][0]["reason"] == "member"
    assert q(doc, [line("A", 1_000_000)], member(), coupons=["PTS"])["points_earned"] == 50


def test_bad_member_and_time_refused() -> None:
    with pytest.raises(InputError, match=r"member\.birthday"):
        q(bundle(EARN), [line("A", 1)], member(birthday="1404-12-30"))
    with pytest.raises(InputError, match=r"member\.points"):
        q(bundle(EARN), [line("A", 1)], member(points="12"))
    with pytest.raises(DateError, match="UTC offset"):
        q(bundle(EARN), [line("A", 1)], member(), at="2026-03-20T10:00:00")


def test_demo_rules_family_shop(rules_doc: dict[str, Any]) -> None:
    """The embedded rule set on a Friday evening before Nowruz, checked figure by figure."""
    basket = {
        "store": "tehran-01",
        "lines": [
            line("NUT-PISTACHIO-500", 4_850_000, 2, "nuts"),
            line("DRK-COLA-1.5", 450_000, 3, "drinks"),
            line("BKR-BARBARI", 150_000, 2, "bakery"),
        ],
    }
    m = member(points=0, spend=[["2026-01-10", 60_000_000]])
    r = quote(compile_rules(rules_doc), basket, m, "2026-03-20T21:00:00+03:30")
    # nuts: 15% Nowruz (1,455,000); cola 3-for-2 (450,000); bakery 20% evening (60,000);
    # weekend basket 5% of what is left, 11,350,000 - 1,965,000 = 9,385,000 -> 469,250
    # (the 10,000,000 threshold is on the gross, 11,350,000).
    assert [(a["rule"], a.get("discount")) for a in r["applied"][:4]] == [
        ("nowruz-nuts", 1_455_000),
        ("bakery-evening", 60_000),
        ("cola-3for2", 450_000),
        ("weekend-basket", 469_250),
    ]
    assert r["payable"] == 11_350_000 - 1_455_000 - 60_000 - 450_000 - 469_250
    # bronze (60M in the window): 100 per 1M x 110% on 8,915,750 paid -> 980; +10 visit
    assert r["member"]["tier"] == "bronze"
    assert r["points_earned"] == 980 + 10
    assert r["wallet_earned"] == 8_915_750 * 50 // 10_000  # bronze 0.5% cashback
