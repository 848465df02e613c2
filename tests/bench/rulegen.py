"""A chain-sized rule set and basket for the engine benchmarks.

The catalogue has 5,000 SKUs in 40 categories.  ``rules(n)`` makes ``n`` rules, all
active at ``AT`` (windows that include it, every weekday), in the mix a chain runs:
mostly item promotions on a few SKUs, some category offers and multipliers, a few
basket-level offers and coupons.  ``basket()`` is a 50-line basket in which about a
third of the lines are promoted items, as at a real till.
"""

from __future__ import annotations

import random
from typing import Any

AT = "2026-03-24T18:30:00+03:30"  # a Tuesday in the Nowruz holidays
N_SKUS = 5000
N_CATS = 40


def sku(i: int) -> str:
    return f"SKU-{i:05d}"


def cat(i: int) -> str:
    return f"cat-{i % N_CATS:02d}"


def _name(i: int) -> dict[str, str]:
    return {"fa": f"پیشنهاد {i}", "en": f"Offer {i}"}


def rules(n: int, seed: int = 300) -> dict[str, Any]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = [
        {
            "id": "base",
            "kind": "earn_rate",
            "points": 100,
            "per_rials": 1_000_000,
            "name": _name(0),
        },
        {
            "id": "redeem",
            "kind": "redeem_points",
            "mode": "step",
            "step_points": 1000,
            "step_bp": 1000,
            "max_steps": 3,
            "name": _name(1),
        },
    ]
    window = {
        "dates": {"from": "1404-12-20", "until": "1405-01-13", "calendar": "jalali"},
        "hours": ["08:00", "23:00"],
    }
    for i in range(n - len(out)):
        r: dict[str, Any] = {"id": f"r{i:05d}", "name": _name(i)}
        x = rng.random()
        if x < 0.55:
            r.update(
                kind="pct_off",
                bp=rng.choice([500, 1000, 1500, 2000]),
                skus=[sku(rng.randrange(N_SKUS)) for _ in range(rng.randint(1, 4))],
            )
        elif x < 0.65:
            r.update(
                kind="pct_off", bp=rng.choice([300, 500]), categories=[cat(rng.randrange(N_CATS))]
            )
        elif x < 0.78:
            r.update(
                kind="earn_multiplier",
                pct=rng.choice([150, 200, 300]),
                skus=[sku(rng.randrange(N_SKUS)) for _ in range(rng.randint(1, 3))],
            )
        elif x < 0.88:
            r.update(kind="buy_x_get_y", buy=2, get=1, skus=[sku(rng.randrange(N_SKUS))])
        elif x < 0.93:
            r.update(kind="cashback", bp=100, categories=[cat(rng.randrange(N_CATS))])
        elif x < 0.97:
            r.update(kind="coupon", codes=[f"CODE{i:05d}"], bp=1000, single_use=True)
        else:
            r.update(
                kind="basket_threshold",
                min_spend=5_000_000,
                bp=200,
                categories=[cat(rng.randrange(N_CATS))],
                groups=["basket"],
            )
        if rng.random() < 0.5:
            r["when"] = dict(window)
        out.append(r)
    return {
        "version": 1,
        "tenant": "bench",
        "groups": {"basket": {"exclusive": True}},
        "limits": {"line_discount_bp": 5000, "txn_discount_bp": 3000},
        "tiers": {
            "levels": [
                {"id": "regular", "min_spend": 0, "name": _name(0)},
                {
                    "id": "gold",
                    "min_spend": 100_000_000,
                    "earn_pct": 150,
                    "cashback_bp": 100,
                    "name": _name(1),
                },
            ]
        },
        "rules": out,
    }


def basket(doc: dict[str, Any], lines: int = 50, seed: int = 50) -> dict[str, Any]:
    rng = random.Random(seed)
    promoted = sorted({s for r in doc["rules"] for s in r.get("skus", [])})
    out = []
    for k in range(lines):
        if promoted and k % 3 == 0:
            s = rng.choice(promoted)
            i = int(s[4:])
        else:
            i = rng.randrange(N_SKUS)
            s = sku(i)
        out.append(
            {
                "sku": s,
                "category": cat(i),
                "qty": rng.randint(1, 4),
                "unit_price": rng.randrange(10_000, 5_000_000, 1000),
            }
        )
    codes = [r["codes"][0] for r in doc["rules"] if r["kind"] == "coupon"][:1]
    return {"lines": out, "coupons": codes, "redeem_points": "max", "store": "s1"}


MEMBER: dict[str, Any] = {
    "ref": "+989121234567",
    "points": 2500,
    "wallet": 100_000,
    "visits": 30,
    "spend": [["2026-02-01", 150_000_000]],
}
