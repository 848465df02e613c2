"""Checkouts through the agent with a simulated ZVT terminal: approve, decline, timeout,
abort, refunds and voids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hw_sim.zvt import ZVTSim
from tests.helpers.store import Store

BASKET = {
    "id": "POS-1",
    "lines": [
        {"sku": "NUT-PISTACHIO-500", "category": "nuts", "qty": 2, "unit_price": 4_850_000},
        {"sku": "DRK-COLA-1.5", "category": "drinks", "qty": 3, "unit_price": 450_000},
    ],
}
ALI = "09121234567"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path, bank_timeout=3)
    s.bank = s.add_sim("bank", "bank", "zvt", ZVTSim())  # type: ignore[attr-defined]
    s.start()
    yield s
    s.stop()


def _checkout(store: Store, phone: str | None = ALI) -> tuple[str, dict]:  # type: ignore[type-arg]
    code, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    assert code == 201, s
    if phone:
        code, s = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"phone": phone})
        assert code == 200, s
    return s["session"], s


def test_approved_payment_records_the_sale_and_prints_what_was_earned(store: Store) -> None:
    sid, s = _checkout(store)
    payable = s["quote"]["payable"]
    code, r = store.api("POST", f"/v1/sessions/{sid}/pay")
    assert code == 200 and r["status"] == "approved", r
    assert r["bank"]["amount"] == payable and r["bank"]["trace"] >= 1
    assert r["record"]["seq"] == 2  # 1 is the enrol record of this new member
    fa, en = r["receipt"]["fa"], r["receipt"]["en"]
    assert any("Points earned" in x for x in en) and any("امتیاز این خرید" in x for x in fa)
    assert any("Tier" in x for x in en) and any("Welcome" in x for x in en)
    assert not any(ch.isascii() and ch.isdigit() for ch in fa[1]), fa[1]  # Jalali date, time
    assert r["quote"]["payable"] == payable and r["quote"]["points_earned"] > 0
    assert r["bank_receipt"]  # the terminal's own receipt lines
    assert store.status()["outbox"]["depth"] == 2
    # paid once: the POS retrying (same session, same basket id) gets the first answer back
    code, again = store.api("POST", f"/v1/sessions/{sid}/pay")
    assert code == 200 and again["repeated"] is True and again["record"] == r["record"]
    assert store.status()["outbox"]["depth"] == 2 and len(store.bank.history) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("outcome", ["decline", "abort", "timeout"])
def test_unsuccessful_payments_record_nothing(store: Store, outcome: str) -> None:
    sid, _ = _checkout(store, None)
    store.bank.event("next", outcome=outcome)  # type: ignore[attr-defined]
    code, r = store.api("POST", f"/v1/sessions/{sid}/pay", timeout=30)
    assert code == 200 and r["status"] == "declined", r
    assert r["en"] and r["fa"] and r["fa"] != r["en"]
    assert store.status()["outbox"]["depth"] == 0


def test_refund_and_void_of_an_earlier_sale(store: Store) -> None:
    sid, _ = _checkout(store)
    _, paid = store.api("POST", f"/v1/sessions/{sid}/pay")
    seq = paid["record"]["seq"]
    code, r = store.api("POST", f"/v1/sales/{seq}/refund", {"lines": [{"line": 1, "qty": 1}]})
    assert code == 200, r
    assert r["refund"]["refund_amount"] > 0 and r["record"]["seq"] == seq + 1
    assert any("Refund of record" in x for x in r["receipt"]["en"])
    code, v = store.api("POST", f"/v1/sales/{seq}/void")
    assert code == 200 and v["status"] == "void"
    total = r["refund"]["refund_amount"] + v["refund"]["refund_amount"]
    assert total == paid["bank"]["amount"]  # everything back, never more
    code, err = store.api("POST", f"/v1/sales/{seq}/void")
    assert code == 400 and err["error"] == "bad_refund"
    assert store.api("POST", "/v1/sales/999/refund", {"all": True})[0] == 404
