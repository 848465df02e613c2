"""Payments whose result a failure left open: never a paid sale lost, never a basket charged
twice, never an unpaid one recorded.  The Checkout runs in this process against a scripted
bank terminal, so each failure lands exactly where the test wants it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.checkout import Checkout, CheckoutError
from edge.drivers.base import PaymentResult
from edge.errors import DeviceError, DiskFullError
from tests.helpers.checkout import FakeBank, make_checkout

BASKET = {
    "lines": [{"sku": "GRC-RICE-5KG", "category": "grocery", "qty": 1, "unit_price": 6_900_000}]
}
CUT = DeviceError("the cable to the bank terminal was cut", fa="کابل پایانه قطع شد")


def _states(co: Checkout) -> list[str]:
    return [r[0] for r in co.outbox.conn.execute("SELECT state FROM payments ORDER BY id")]


def _sales(co: Checkout) -> int:
    return int(co.outbox.conn.execute("SELECT COUNT(*) FROM sales").fetchone()[0])


def test_an_unknown_payment_cannot_be_paid_again_from_its_session(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    s = co.open(BASKET)
    bank.script = [CUT]  # the charge is lost in the cable; the terminal has no record either
    with pytest.raises(CheckoutError) as e:
        co.pay(s.id)
    assert e.value.code == "bank_unknown"
    assert s.state == "unknown" and _states(co) == ["unknown"]
    with pytest.raises(CheckoutError) as again:
        co.pay(s.id)  # a second charge of the same basket is refused
    assert again.value.code == "not_open" and bank.charged == []


def test_a_swapped_terminal_restarting_its_trace_numbers_is_not_taken_for_an_old_sale(
    tmp_path: Path,
) -> None:
    old = FakeBank("29001006")
    co = make_checkout(tmp_path, old)
    s = co.open(BASKET)
    assert co.pay(s.id)["status"] == "approved"  # old terminal, trace 1, committed
    new = FakeBank("29009999")  # the replacement also starts at trace 1
    co.settlement.bank = new
    s = co.open(BASKET)
    approval = new.approve(6_900_000)
    new.last = approval  # it charged, then the link dropped before the answer
    new.script = [CUT]
    r = co.pay(s.id)
    assert r["status"] == "approved" and r["bank"]["terminal_id"] == "29009999"
    assert _sales(co) == 2 and _states(co) == ["committed", "committed"]


def test_a_later_payment_does_not_settle_an_earlier_unknown_one(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    first = co.open(BASKET)
    bank.last = bank.approve(6_900_000)  # charged ...
    bank.last = PaymentResult(True, 1, 0, "", "", bank.terminal_id, 99)  # ... reports a mismatch
    bank.script = [CUT]
    with pytest.raises(CheckoutError):
        co.pay(first.id)
    assert _states(co) == ["unknown"]
    second = co.open(BASKET)
    assert co.pay(second.id)["status"] == "approved"  # now the terminal's "last" is this one
    assert co.settlement.recover() == []  # asking again settles nothing and reports nothing new
    assert co.settlement.recover() == []
    assert _states(co) == ["unknown", "committed"]  # left for a person, not closed as unpaid


def test_an_approval_whose_commit_failed_is_recorded_by_recover(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    s = co.open(BASKET)
    real = co.outbox.commit

    def disk_error(*a: object, **kw: object) -> object:
        raise DiskFullError("the terminal's disk is full")

    co.outbox.commit = disk_error  # type: ignore[method-assign]
    r = co.pay(s.id)  # the customer paid: the POS is told so, and that it is not recorded yet
    assert r["status"] == "approved" and r["recorded"] is False and r["record"] is None
    assert co.settlement.pending() == 1
    co.outbox.commit = real  # type: ignore[method-assign]
    assert bank.charged == [6_900_000] and _states(co) == ["approved"] and _sales(co) == 0
    with pytest.raises(CheckoutError):
        co.pay(s.id)  # the customer is not charged a second time
    lines = co.settlement.recover()
    assert len(lines) == 1 and "approved" in lines[0]
    assert _states(co) == ["committed"] and _sales(co) == 1 and bank.charged == [6_900_000]


def test_a_refused_option_leaves_the_session_usable(tmp_path: Path) -> None:
    co = make_checkout(tmp_path, FakeBank())
    s = co.open(BASKET)
    with pytest.raises(CheckoutError):
        co.set_options(s.id, {"coupons": "not a list"})
    assert s.options == {}
    assert co.pay(s.id)["status"] == "approved"


def test_a_basket_id_must_be_short_printable_text(tmp_path: Path) -> None:
    co = make_checkout(tmp_path, FakeBank())
    for bad in ({"x": 1}, ["a"], "", "a\u202eb", "x" * 65):
        with pytest.raises(CheckoutError) as e:
            co.open({**BASKET, "id": bad})
        assert e.value.code == "bad_basket"
    s = co.open({**BASKET, "id": "POS-7781"})
    assert co.pay(s.id)["status"] == "approved"
    row = co.outbox.conn.execute("SELECT basket FROM sales").fetchone()
    assert row[0] == "POS-7781"
