"""Random but valid rules bundles, baskets and members for property tests."""

from __future__ import annotations

import random
from typing import Any

SKUS = {
    "MILK": "dairy",
    "CHEESE": "dairy",
    "COLA": "drinks",
    "NUTS": "nuts",
    "BREAD": "bakery",
    "KETTLE": "electronics",
    "SOAP": "home",
    "RICE": "grocery",
}
CATS = sorted(set(SKUS.values()))
CODES = ["C1", "C2", "C3", "VIP", "BDAY"]
TIERS = ["regular", "bronze", "silver", "gold"]
PRICES = [0, 1, 999, 10_000, 45_000, 150_000, 380_000, 1_250_000, 4_850_000, 18_500_000, 99_999_999]


def _name(i: int) -> dict[str, str]:
    return {"fa": f"قاعده {i}", "en": f"Rule {i}"}


def _scope(rng: random.Random, r: dict[str, Any]) -> None:
    c = rng.randrange(3)
    if c == 1:
        r["skus"] = rng.sample(sorted(SKUS), rng.randint(1, 3))
    elif c == 2:
        r["categories"] = rng.sample(CATS, rng.randint(1, 2))


def _when(rng: random.Random, tiers: list[str]) -> dict[str, Any]:
    w: dict[str, Any] = {}
    if rng.random() < 0.2:
        w["weekdays"] = rng.sample(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], 3)
    if rng.random() < 0.2:
        a, b = rng.sample(range(24), 2)
        w["hours"] = [f"{a:02d}:00", f"{b:02d}:30"]
    if rng.random() < 0.15:
        w["tiers"] = rng.sample(tiers, 1)
    if rng.random() < 0.15:
        w["min_subtotal"] = rng.choice([100_000, 5_000_000])
    if rng.random() < 0.2:
        w["members_only"] = False
    if rng.random() < 0.15:
        w["dates"] = {"from": "1404-12-25", "until": "1405-01-13", "calendar": "jalali"}
    return w


def _effect(rng: random.Random, r: dict[str, Any], cap: int | None = None) -> None:
    if rng.random() < 0.5:
        r["bp"] = rng.choice([1, 500, 1000, 3333, 10000])
    else:
        r["off_rials"] = rng.choice([1, 50_000, 1_000_000]) if cap is None else rng.randint(1, cap)
    if rng.random() < 0.3:
        r["max_rials"] = rng.choice([1, 100_000, 2_000_000])


def gen_rules(rng: random.Random) -> dict[str, Any]:
    n_tiers = rng.randint(1, 4)
    tiers = TIERS[:n_tiers]
    levels = []
    spend = 0
    for i, t in enumerate(tiers):
        levels.append(
            {
                "id": t,
                "min_spend": spend,
                "earn_pct": 100 + 25 * i,
                "cashback_bp": rng.choice([0, 50, 100, 200]),
                "name": _name(i),
            }
        )
        spend += rng.choice([10_000_000, 100_000_000])
    groups = {"g1": {"exclusive": True}, "g2": {"exclusive": True}, "s": {"exclusive": False}}
    rules: list[dict[str, Any]] = []
    codes = list(CODES)
    rng.shuffle(codes)
    for i in range(rng.randint(0, 14)):
        kind = rng.choice(
            [
                "earn_rate",
                "earn_multiplier",
                "earn_visit",
                "welcome_bonus",
                "pct_off",
                "basket_threshold",
                "buy_x_get_y",
                "coupon",
                "birthday",
                "cashback",
                "redeem_points",
                "wallet",
            ]
        )
        r: dict[str, Any] = {"id": f"r{i}", "kind": kind, "name": _name(i)}
        if rng.random() < 0.5:
            r["priority"] = rng.randrange(5)
        if kind == "earn_rate":
            r["points"] = rng.choice([1, 100, 250])
            r["per_rials"] = r["points"] * rng.choice([100, 10_000, 100_000])
            _scope(rng, r)
        elif kind == "earn_multiplier":
            r["pct"] = rng.choice([100, 150, 200, 1000])
            _scope(rng, r)
        elif kind in ("earn_visit", "welcome_bonus"):
            r["points"] = rng.choice([1, 10, 500])
        elif kind == "pct_off":
            r["bp"] = rng.choice([1, 500, 1500, 5000, 10000])
            if rng.random() < 0.3:
                r["max_rials"] = rng.choice([1, 100_000])
            _scope(rng, r)
        elif kind == "basket_threshold":
            r["min_spend"] = rng.choice([1_000, 1_000_000, 20_000_000])
            _effect(rng, r, cap=r["min_spend"])
            _scope(rng, r)
        elif kind == "buy_x_get_y":
            r["buy"] = rng.randint(1, 3)
            r["get"] = rng.randint(1, 2)
            if rng.random() < 0.3:
                r["bp"] = 5000
            r["skus"] = rng.sample(sorted(SKUS), 2)
        elif kind == "coupon":
            if not codes:
                continue
            r["codes"] = [codes.pop()]
            r["single_use"] = rng.random() < 0.5
            r["member_bound"] = rng.random() < 0.3
            if rng.random() < 0.4:
                r["points"] = rng.choice([10, 1000])
            if "points" not in r or rng.random() < 0.5:
                _effect(rng, r)
            _scope(rng, r)
        elif kind == "birthday":
            r["days_before"] = rng.randint(0, 10)
            r["days_after"] = rng.randint(0, 10)
            r["once_a_year"] = rng.random() < 0.5
            r["points"] = rng.choice([1, 300])
            if rng.random() < 0.5:
                _effect(rng, r)
        elif kind == "cashback":
            r["bp"] = rng.choice([1, 100, 5000])
            _scope(rng, r)
        elif kind == "redeem_points":
            if rng.random() < 0.5:
                r.update(
                    mode="step",
                    step_points=rng.choice([1, 1000]),
                    step_bp=rng.choice([1, 1000, 10000]),
                    max_steps=rng.randint(1, 5),
                )
            else:
                r.update(
                    mode="value",
                    rials_per_point=rng.choice([1, 100, 5000]),
                    min_points=rng.choice([1, 500]),
                )
            if rng.random() < 0.5:
                r["max_rials"] = rng.choice([1, 1_000_000])
            if rng.random() < 0.5:
                r["max_bp"] = rng.choice([1, 5000])
        elif kind == "wallet":
            r["max_bp"] = rng.choice([1, 5000, 10000])
        if kind not in ("redeem_points", "wallet"):
            if rng.random() < 0.4:
                r["groups"] = [rng.choice(["g1", "g2", "s"])]
            w = _when(rng, tiers)
            if w:
                r["when"] = w
        rules.append(r)
    limits: dict[str, int] = {}
    for k, choices in (
        ("line_discount_bp", [1, 5000, 10000]),
        ("txn_discount_bp", [1000, 10000]),
        ("txn_discount_rials", [1, 500_000, 10**9]),
        ("member_daily_discount_rials", [1, 1_000_000]),
        ("member_daily_points", [1, 1000, 10**6]),
    ):
        if rng.random() < 0.3:
            limits[k] = rng.choice(choices)
    return {
        "version": rng.randint(1, 99),
        "tiers": {"window_days": 365, "levels": levels},
        "limits": limits,
        "groups": groups,
        "rules": rules,
    }


def gen_basket(rng: random.Random) -> dict[str, Any]:
    lines = []
    for _ in range(rng.randint(1, 12)):
        sku = rng.choice(sorted(SKUS))
        lines.append(
            {
                "sku": sku,
                "category": SKUS[sku],
                "qty": rng.randint(1, 9),
                "unit_price": rng.choice(PRICES),
            }
        )
    b: dict[str, Any] = {"lines": lines, "store": rng.choice(["s1", "s2"])}
    if rng.random() < 0.5:
        b["coupons"] = rng.sample([*CODES, "BOGUS"], rng.randint(1, 3))
    if rng.random() < 0.5:
        b["redeem_points"] = rng.choice(["max", 0, 1, 999, 5000])
    if rng.random() < 0.5:
        b["use_wallet"] = rng.choice(["max", 0, 1, 250_000])
    return b


def gen_member(rng: random.Random) -> dict[str, Any] | None:
    if rng.random() < 0.15:
        return None
    m: dict[str, Any] = {
        "ref": "+98912" + str(rng.randrange(10**7)).rjust(7, "0"),
        "points": rng.choice([-500, 0, 1, 999, 1000, 3400, 10**6]),
        "wallet": rng.choice([-1, 0, 1, 650_000, 10**8]),
        "visits": rng.choice([0, 1, 40]),
        "spend": [["2026-01-10", rng.choice([0, 60_000_000, 300_000_000])], ["2024-01-10", 10**9]],
        "coupons": rng.sample(CODES, rng.randint(0, 2)),
        "used_coupons": rng.sample(CODES, rng.randint(0, 1)),
    }
    if rng.random() < 0.5:
        m["birthday"] = rng.choice(["1370-01-02", "1366-12-30", "1380-06-31"])
        m["birthday_claimed"] = rng.choice([0, 1404, 1405])
    if rng.random() < 0.4:
        m["today"] = {
            "date": "2026-03-20",
            "discount": rng.choice([0, 900_000]),
            "points": rng.choice([0, 900]),
        }
    return m


def gen_at(rng: random.Random) -> str:
    day = rng.choice(["2026-03-17", "2026-03-20", "2026-03-21", "2026-04-03", "2026-07-01"])
    return f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00+03:30"
