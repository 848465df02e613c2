"""Properties of the quote and the refund over random rules, baskets and members."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.core.engine import quote
from edge.core.errors import RefundError
from edge.core.refund import refund
from edge.core.ruleset import compile_rules
from tests.conftest import run_py
from tests.core import gen

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _case(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any], Any, str]:
    return gen.gen_rules(rng), gen.gen_basket(rng), gen.gen_member(rng), gen.gen_at(rng)


def _check_invariants(
    doc: dict[str, Any], basket: dict[str, Any], m: Any, r: dict[str, Any]
) -> None:
    lim = compile_rules(doc).limits
    lines = r["lines"]
    assert r["payable"] >= 0
    assert r["payable"] == r["subtotal"] - r["discount"] - r["wallet_used"]
    assert r["discount"] == r["promo_discount"] + r["points_discount"]
    for ln in lines:
        assert 0 <= ln["discount"] <= ln["gross"]
        assert ln["net"] == ln["gross"] - ln["discount"]
        assert 0 <= ln["wallet"] <= ln["net"]
        assert ln["paid"] == ln["net"] - ln["wallet"] >= 0
        assert ln["points"] >= 0 and ln["cashback"] >= 0 and ln["redeemed"] >= 0
    for col, total in (
        ("paid", "payable"),
        ("points", "points_earned"),
        ("redeemed", "points_redeemed"),
        ("cashback", "wallet_earned"),
        ("wallet", "wallet_used"),
    ):
        assert sum(ln[col] for ln in lines) == r[total], col
    # caps
    assert all(a.get("discount", 0) >= 0 for a in r["applied"])
    assert r["promo_discount"] == sum(
        a.get("discount", 0) for a in r["applied"] if a["kind"] != "redeem_points"
    )
    assert r["promo_discount"] <= r["subtotal"] * lim["txn_discount_bp"] // 10000
    assert r["promo_discount"] <= lim["txn_discount_rials"]
    if r["points_discount"] == 0:
        for ln in lines:
            assert ln["discount"] <= ln["gross"] * lim["line_discount_bp"] // 10000
    if m is None:
        assert r["points_earned"] == 0 and r["wallet_earned"] == 0 and r["wallet_used"] == 0
    else:
        today = m.get("today") or {}
        same_day = today.get("date") == r["at"][:10]
        used_disc = today.get("discount", 0) if same_day else 0
        used_pts = today.get("points", 0) if same_day else 0
        assert r["promo_discount"] <= max(0, lim["member_daily_discount_rials"] - used_disc)
        assert r["points_earned"] <= max(0, lim["member_daily_points"] - used_pts)
        assert r["points_redeemed"] <= max(0, m["points"])
        assert r["wallet_used"] <= max(0, m["wallet"])


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_quote_invariants(rng: random.Random) -> None:
    doc, basket, m, at = _case(rng)
    r = quote(compile_rules(doc), basket, m, at)
    _check_invariants(doc, basket, m, r)


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_same_inputs_same_quote_whatever_the_rule_order(rng: random.Random) -> None:
    doc, basket, m, at = _case(rng)
    first = quote(compile_rules(doc), basket, m, at)
    shuffled = copy.deepcopy(doc)
    rng.shuffle(shuffled["rules"])
    assert quote(compile_rules(shuffled), copy.deepcopy(basket), copy.deepcopy(m), at) == first


@SETTINGS
@given(st.randoms(use_true_random=False))
def test_refunds_return_exactly_what_was_earned_never_more(rng: random.Random) -> None:
    doc, basket, m, at = _case(rng)
    sale = quote(compile_rules(doc), basket, m, at)
    whole = refund(sale, {"all": True})
    assert (
        whole["refund_amount"],
        whole["points_reversed"],
        whole["points_returned"],
        whole["wallet_returned"],
        whole["wallet_reversed"],
    ) == (
        sale["payable"],
        sale["points_earned"],
        sale["points_redeemed"],
        sale["wallet_used"],
        sale["wallet_earned"],
    )
    # random partial refunds until nothing is left: running totals never exceed the sale
    prior: list[dict[str, int]] = []
    got = {"refund_amount": 0, "points_reversed": 0, "wallet_reversed": 0}
    left = {i: ln["qty"] for i, ln in enumerate(sale["lines"])}
    while any(left.values()):
        i = rng.choice([k for k, v in left.items() if v])
        n = rng.randint(1, left[i])
        part = refund(sale, {"lines": [{"line": i, "qty": n}]}, prior)
        # a refund record satisfies the same identity as a sale (head office checks it)
        assert part["refund_amount"] == part["gross"] - part["discount"] - part["wallet_returned"]
        prior.append({"line": i, "qty": n})
        left[i] -= n
        for k in got:
            got[k] += part[k]
        assert got["refund_amount"] <= sale["payable"]
        assert got["points_reversed"] <= sale["points_earned"]
        assert got["wallet_reversed"] <= sale["wallet_earned"]
    assert got == {
        "refund_amount": sale["payable"],
        "points_reversed": sale["points_earned"],
        "wallet_reversed": sale["wallet_earned"],
    }
    try:
        refund(whole, {"all": True})
    except RefundError:
        pass
    else:
        raise AssertionError("a refund was refunded")


def test_micropython_gives_byte_identical_quotes_for_500_random_cases() -> None:
    rng = random.Random(2026)
    reqs = []
    for _ in range(500):
        doc, basket, m, at = _case(rng)
        reqs.append(
            json.dumps(
                {"fn": "quote", "rules": doc, "basket": basket, "member": m, "at": at},
                ensure_ascii=False,
            )
        )
    data = ("\n".join(reqs) + "\n").encode()
    cp = run_py("cpython", ["tests/core/mp_harness.py"], data)
    mp = run_py("micropython", ["tests/core/mp_harness.py"], data)
    assert cp.returncode == 0, cp.stderr.decode()[-2000:]
    assert mp.returncode == 0, mp.stderr.decode()[-2000:]
    cp_lines = cp.stdout.decode().splitlines()
    mp_lines = mp.stdout.decode().splitlines()
    assert len(cp_lines) == 500
    diffs = [i for i, (a, b) in enumerate(zip(cp_lines, mp_lines, strict=True)) if a != b]
    assert diffs == []
    # and the cases exercised the engine: discounts and points happened
    outs = [json.loads(x) for x in cp_lines]
    assert sum(1 for o in outs if o.get("promo_discount")) > 50
    assert sum(1 for o in outs if o.get("points_earned")) > 50
