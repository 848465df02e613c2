"""Refunds and voids reverse pro rata and never return more than was earned."""

from __future__ import annotations

from typing import Any

import pytest

from edge.core.errors import RefundError
from edge.core.refund import refund
from tests.core.helpers import EARN, bundle, line, member, q, rule

SUMS = {
    "refund_amount": "paid",
    "points_reversed": "points",
    "points_returned": "redeemed",
    "wallet_returned": "wallet",
    "wallet_reversed": "cashback",
}


def sale() -> dict[str, Any]:
    doc = bundle(
        EARN,
        rule("red", "redeem_points", mode="value", rials_per_point=10),
        rule("cb", "cashback", bp=300),
        rule("t", "basket_threshold", min_spend=100_000, off_rials=99_999),
    )
    return q(
        doc,
        [line("A", 333_333, 3), line("B", 1_000_001, 7)],
        member(points=5_000, wallet=123_457),
        redeem_points=3_333,
        use_wallet=77_777,
    )


def test_whole_refund_returns_exactly_what_the_sale_did() -> None:
    s = sale()
    r = refund(s, {"all": True})
    assert r["refund_amount"] == s["payable"]
    assert r["points_reversed"] == s["points_earned"]
    assert r["points_returned"] == s["points_redeemed"]
    assert r["wallet_returned"] == s["wallet_used"]
    assert r["wallet_reversed"] == s["wallet_earned"]
    assert r["en"].startswith("Refund: ")
    assert r["fa"].startswith("مرجوعی: ")


def test_a_void_is_explained_as_a_void() -> None:
    s = sale()
    r = refund(s, {}, [{"line": 0, "qty": 1}], "void")
    assert r["type"] == "void"
    assert r["en"].startswith("Void: ") and r["fa"].startswith("ابطال: ")


def test_unit_by_unit_refunds_add_up_exactly() -> None:
    s = sale()
    prior: list[dict[str, int]] = []
    totals = dict.fromkeys(SUMS, 0)
    for i, ln in enumerate(s["lines"]):
        for _ in range(ln["qty"]):
            r = refund(s, {"lines": [{"line": i, "qty": 1}]}, prior)
            for k in SUMS:
                totals[k] += r[k]
            prior.append({"line": i, "qty": 1})
    for k, col in SUMS.items():
        assert totals[k] == sum(ln[col] for ln in s["lines"]), k
    with pytest.raises(RefundError, match="nothing left"):
        refund(s, {"all": True}, prior)


def test_partial_refund_is_pro_rata_per_unit() -> None:
    s = sale()
    ln = s["lines"][1]
    r = refund(s, {"lines": [{"line": 1, "qty": 2}]})
    assert r["refund_amount"] == ln["paid"] * 2 // 7
    assert r["points_reversed"] == ln["points"] * 2 // 7


def test_cannot_refund_more_than_sold_or_a_refund() -> None:
    s = sale()
    with pytest.raises(RefundError, match="only 3 of 3"):
        refund(s, {"lines": [{"line": 0, "qty": 4}]})
    with pytest.raises(RefundError, match="only 1 of 3"):
        refund(s, {"lines": [{"line": 0, "qty": 2}]}, [{"line": 0, "qty": 2}])
    with pytest.raises(RefundError, match="not in the sale"):
        refund(s, {"lines": [{"line": 9, "qty": 1}]})
    r = refund(s, {"all": True})
    with pytest.raises(RefundError, match="cannot be refunded") as info:
        refund(r, {"all": True})
    assert "مرجوع" in info.value.fa


def test_void_takes_back_what_remains() -> None:
    s = sale()
    part = refund(s, {"lines": [{"line": 0, "qty": 1}]})
    v = refund(s, {}, [{"line": 0, "qty": 1}], kind="void")
    assert v["type"] == "void"
    assert part["refund_amount"] + v["refund_amount"] == s["payable"]
