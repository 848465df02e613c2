"""Every path by which money moves at the till, tried as a POS that retries, a terminal that
was reset, a cashier who refunds and a disk that fills would try it.  The Checkout runs in
this process on a real SQLite file with a scripted bank terminal, so each failure lands
exactly where the test wants it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.checkout import Checkout, CheckoutError
from edge.core import record as R
from edge.drivers.base import PaymentResult
from edge.errors import DeviceError, DiskFullError
from edge.protocol.record import parse
from tests.helpers.checkout import FakeBank, make_checkout, tehran_now

BASKET = {
    "id": "POS-1001",
    "lines": [{"sku": "GRC-RICE-5KG", "category": "grocery", "qty": 1, "unit_price": 6_900_000}],
}
CUT = DeviceError("the cable to the bank terminal was cut", fa="کابل پایانه قطع شد")
PHONE = "09121234567"


def _rows(co: Checkout, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in co.outbox.conn.execute(sql)]


def _states(co: Checkout) -> list[str]:
    return [str(r[0]) for r in _rows(co, "SELECT state FROM payments ORDER BY id")]


def _records(co: Checkout) -> list[str]:
    return [str(r[0]) for r in _rows(co, "SELECT type FROM outbox ORDER BY seq")]


# -- the POS retries -------------------------------------------------------------------------


def test_a_pos_that_retries_with_the_same_basket_is_never_charged_twice(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    first = co.pay(co.open(BASKET).id)
    assert first["status"] == "approved" and bank.charged == [6_900_000]
    # the POS lost the answer and sends the basket again, as a new session
    again = co.pay(co.open(BASKET).id)
    assert again["repeated"] is True and again["record"] == first["record"]
    assert bank.charged == [6_900_000] and _records(co) == ["sale"]
    # an explicit idempotency key works the same, and another key is another sale
    other = {**BASKET, "id": "POS-1002"}
    a = co.pay(co.open(other).id, key="k-1")
    b = co.pay(co.open(other).id, key="k-1")
    c = co.pay(co.open(other).id, key="k-2")
    assert b["record"] == a["record"] and c["record"] != a["record"]
    assert bank.charged == [6_900_000] * 3


def test_a_repeat_survives_a_restart(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    first = co.pay(co.open(BASKET).id)
    co.outbox.close()  # the agent stops; a new process opens the same database
    co2 = make_checkout_on(tmp_path, bank)
    again = co2.pay(co2.open(BASKET).id)
    assert again["repeated"] is True and again["record"] == first["record"]
    assert bank.charged == [6_900_000]


def make_checkout_on(tmp: Path, bank: FakeBank) -> Checkout:
    """A checkout on the database ``make_checkout`` made in ``tmp`` (a restarted agent)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edge.clock import Clock
    from edge.core.ruleset import RuleBook
    from edge.ledger_cache.outbox import Identity, Outbox
    from edge.ledger_cache.payments import Payments
    from edge.members import Members
    from edge.protocol.record import Sealer
    from edge.settlement import Settlement
    from tests.helpers.store import rules_doc

    key = Ed25519PrivateKey.generate()  # the records' signatures are not what is tested here
    outbox = Outbox(
        tmp / "edge.db", Identity("hypershahr", "s1", "pos-1"), Sealer(key, "pos-1"), Clock(210)
    )
    settlement = Settlement(Payments(outbox.conn), bank, utc_offset_min=210)
    return Checkout(
        outbox,
        Members(outbox.conn, "pos-1"),
        RuleBook(rules_doc()),
        Clock(210),
        settlement,
        online=lambda: True,
        notify=lambda: None,
    )


def test_a_declined_basket_may_be_paid_again_with_the_same_key(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    bank.script = [PaymentResult(False, 0, 5, "declined", "رد شد", bank.terminal_id)]
    assert co.pay(co.open(BASKET).id)["status"] == "declined"
    r = co.pay(co.open(BASKET).id)  # another card, the same basket
    assert r["status"] == "approved" and "repeated" not in r and bank.charged == [6_900_000]


def test_a_payment_still_unknown_blocks_its_key(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    bank.script = [CUT]
    with pytest.raises(CheckoutError) as e:
        co.pay(co.open(BASKET).id)
    assert e.value.code == "bank_unknown"
    with pytest.raises(CheckoutError) as again:
        co.pay(co.open(BASKET).id)
    assert again.value.code == "payment_pending" and bank.charged == []


# -- a bank terminal that was reset or swapped ---------------------------------------------------


def test_a_reset_terminal_repeating_a_trace_number_is_not_taken_for_an_old_sale(
    tmp_path: Path,
) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    assert co.pay(co.open(BASKET).id)["status"] == "approved"  # trace 1, receipt 1
    bank.trace = 0  # the terminal is reset: trace and receipt numbers start again at 1
    bank.clock = tehran_now(60)
    bank.last = bank.approve(6_900_000)  # trace 1 again, the same amount, a later time
    bank.script = [CUT]  # charged, then the answer was lost
    r = co.pay(co.open({**BASKET, "id": "POS-1002"}).id)
    assert r["status"] == "approved" and r["recorded"] is True
    assert _records(co) == ["sale", "sale"] and _states(co) == ["committed", "committed"]


def test_the_same_reference_without_date_and_time_is_unknown_not_unpaid(tmp_path: Path) -> None:
    bank = FakeBank()
    bank.clock = ("", "")  # a terminal that reports no date and time
    co = make_checkout(tmp_path, bank)
    assert co.pay(co.open(BASKET).id)["status"] == "approved"
    bank.trace = 0
    bank.last = bank.approve(6_900_000)  # cannot be told apart from the recorded one
    bank.script = [CUT]
    with pytest.raises(CheckoutError) as e:
        co.pay(co.open({**BASKET, "id": "POS-1002"}).id)
    assert e.value.code == "bank_unknown" and _states(co) == ["committed", "unknown"]
    assert co.settlement.recover() == []  # asking again changes nothing: left for a person
    assert _states(co) == ["committed", "unknown"]


def test_an_older_approval_is_not_taken_for_this_payment(tmp_path: Path) -> None:
    bank = FakeBank()
    bank.clock = tehran_now(-2 * 3600)  # two hours before the payment being resolved
    co = make_checkout(tmp_path, bank)
    bank.last = bank.approve(6_900_000)
    bank.script = [CUT]
    with pytest.raises(CheckoutError):
        co.pay(co.open(BASKET).id)
    assert _states(co) == ["unknown"]


# -- the store, the club and the disk -----------------------------------------------------------


def test_a_basket_for_another_store_is_refused(tmp_path: Path) -> None:
    co = make_checkout(tmp_path, FakeBank())
    with pytest.raises(CheckoutError) as e:
        co.open({**BASKET, "store": "s2"})
    assert e.value.code == "wrong_store" and "s1" in e.value.en and e.value.fa
    assert co.open({**BASKET, "store": "s1"}).basket["store"] == "s1"


def test_a_full_disk_before_the_charge_charges_nothing(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    s = co.open(BASKET)
    real = co.payments.intent

    def full(*a: object, **kw: object) -> int:
        raise DiskFullError("the terminal's disk is full", fa="دیسک پایانه پر است")

    co.payments.intent = full  # type: ignore[method-assign]
    with pytest.raises(CheckoutError) as e:
        co.pay(s.id)
    assert e.value.code == "disk_full" and "Nothing was charged" in e.value.en
    assert bank.charged == [] and s.state == "open"  # nothing asked of the bank: payable
    co.payments.intent = real  # type: ignore[method-assign]
    assert co.pay(s.id)["status"] == "approved"


def test_without_the_club_the_card_is_charged_and_nothing_recorded(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    s = co.open(BASKET)
    co.identify(s.id, phone=PHONE)
    r = co.pay(s.id, loyalty=False)
    assert r["status"] == "approved" and r["loyalty"] is False and r["record"] is None
    assert bank.charged == [6_900_000] and _records(co) == [] and _states(co) == ["committed"]


# -- money back ----------------------------------------------------------------------------------


def _sale(co: Checkout, phone: str | None = PHONE, basket: dict | None = None) -> dict:  # type: ignore[type-arg]
    s = co.open(basket or BASKET)
    if phone:
        co.identify(s.id, phone=phone)
    return co.pay(s.id)


def test_a_void_on_the_day_is_a_reversal_and_a_refund_is_a_credit(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    refunds = co.refunds  # type: ignore[attr-defined]
    sale = _sale(co)
    v = refunds.refund(sale["record"]["seq"], {"all": True}, "void")
    assert v["status"] == "void" and v["money"]["method"] == "reversal"
    assert bank.calls[-1] == f"reverse {sale['bank']['receipt']} 6900000"
    assert bank.charged == [6_900_000, -6_900_000]
    two = {
        "id": "POS-2",
        "lines": [{"sku": "A", "category": "grocery", "qty": 2, "unit_price": 1_000_000}],
    }
    sale2 = _sale(co, basket=two)
    r = refunds.refund(sale2["record"]["seq"], {"lines": [{"line": 0, "qty": 1}]})
    assert r["money"]["method"] == "refund" and bank.calls[-1] == "refund 1000000"
    assert bank.charged[-1] == -r["refund"]["refund_amount"] == -1_000_000
    assert _records(co)[-1] == "refund"
    raw = co.outbox.conn.execute("SELECT record FROM outbox ORDER BY seq DESC LIMIT 1").fetchone()
    payload = parse(bytes(raw[0])).payload
    assert payload[R.K_BANK][1] == r["money"]["bank"]["trace"]  # the record names the credit


def test_a_refund_the_bank_declines_records_nothing(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    sale = _sale(co)
    before = _records(co)
    bank.script = [PaymentResult(False, 0, 0xB5, "reversal not possible", "ممکن نیست", "29001006")]
    r = co.refunds.refund(sale["record"]["seq"], {"all": True}, "void")  # type: ignore[attr-defined]
    assert r["status"] == "declined" and "cash" in r["en"]
    assert _records(co) == before and bank.charged == [6_900_000]
    cash = co.refunds.refund(sale["record"]["seq"], {"all": True, "to": "cash"}, "void")  # type: ignore[attr-defined]
    assert cash["money"]["method"] == "cash" and bank.charged == [6_900_000]
    assert _records(co)[-1] == "void"


def test_a_refund_repeated_by_the_pos_pays_back_once(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    sale = _sale(co)
    seq = sale["record"]["seq"]
    req = {"lines": [{"line": 0, "qty": 1}], "id": "RET-77"}
    a = co.refunds.refund(seq, dict(req))  # type: ignore[attr-defined]
    b = co.refunds.refund(seq, dict(req))  # type: ignore[attr-defined]
    assert b["repeated"] is True and b["record"] == a["record"]
    assert bank.charged == [6_900_000, -6_900_000]


def test_a_refund_whose_answer_was_lost_is_settled_from_the_terminal(tmp_path: Path) -> None:
    bank = FakeBank()
    co = make_checkout(tmp_path, bank)
    sale = _sale(co)
    credit = bank.approve(6_900_000)
    bank.last = credit  # the terminal credited the card, then the cable was cut
    bank.script = [CUT]
    r = co.refunds.refund(sale["record"]["seq"], {"all": True})  # type: ignore[attr-defined]
    assert r["status"] == "refund" and r["money"]["bank"]["trace"] == credit.trace
    assert _records(co)[-1] == "refund"


def test_points_spent_before_a_refund_are_withheld_from_the_money(tmp_path: Path) -> None:
    """The issue's case: a 60M sale, most of its points spent on the next sale, then the
    first refunded in full: what the member no longer holds is withheld at the bundle's
    point value, so the member ends at zero at the till and at head office alike."""
    bank = FakeBank()
    co = make_checkout(tmp_path, bank, enroll=True)
    big = {
        "id": "B-1",
        "lines": [{"sku": "TV", "category": "electronics", "qty": 1, "unit_price": 60_000_000}],
    }
    first = _sale(co, basket=big)
    earned = first["quote"]["points_earned"]
    s = co.open(
        {
            "id": "B-2",
            "lines": [{"sku": "X", "category": "grocery", "qty": 1, "unit_price": 6_000_000}],
        }
    )
    co.identify(s.id, phone=PHONE)
    co.set_options(s.id, {"redeem_points": 3000})
    second = co.pay(s.id)
    spent = second["quote"]["points_redeemed"]
    assert spent == 3000
    held = earned - spent + second["quote"]["points_earned"]
    r = co.refunds.refund(first["record"]["seq"], {"all": True})["refund"]  # type: ignore[attr-defined]
    short = earned - held if earned > held else 0
    assert r["points_forgiven"] == short and r["points_reversed"] == earned - short
    assert r["withheld"] == short * 700  # policy.point_value_rials of the embedded rules
    assert r["refund_amount"] == first["quote"]["payable"] - r["withheld"]
    assert short > 0 and r["points_after"] == 0
    est = co.members.estimate("+989121234567", 0, True, {}).points
    assert est == 0  # the terminal's balance after the refund: what head office will hold


@pytest.mark.parametrize("policy", ["deduct", "overdraft"])
def test_head_office_and_the_till_agree_to_the_point_after_such_a_refund(
    tmp_path: Path, policy: str
) -> None:
    """The same scenario, then every record the till wrote is reconciled: head office's
    balance is the till's, point for point and Rial for Rial, under either policy."""
    from cloud_broker.ledger import rulebooks
    from cloud_broker.registry import devices as registry
    from edge.core.ruleset import RuleBook
    from edge.protocol.keys import public_raw
    from tests.helpers.headoffice import HO
    from tests.helpers.store import rules_doc

    doc = rules_doc(2)
    doc["policy"]["refund_clawback"] = policy
    bank = FakeBank()
    co = make_checkout(tmp_path, bank, enroll=True)
    co.rules = RuleBook(doc)  # the bundle the till runs; head office holds it too
    ho = HO(f"sqlite:///{tmp_path}/ledger.db")
    rulebooks.store(ho.db, doc)
    registry.register(ho.db, "pos-1", "hypershahr", "s1", public_raw(co.outbox._sealer._key))
    tv = {
        "id": "T-1",
        "lines": [{"sku": "TV", "category": "electronics", "qty": 1, "unit_price": 60_000_000}],
    }
    first = _sale(co, basket=tv)
    s = co.open(
        {
            "id": "T-2",
            "lines": [{"sku": "X", "category": "grocery", "qty": 1, "unit_price": 6_000_000}],
        }
    )
    co.identify(s.id, phone=PHONE)
    co.set_options(s.id, {"redeem_points": 3000, "use_wallet": 200_000})
    co.pay(s.id)
    r = co.refunds.refund(first["record"]["seq"], {"all": True})["refund"]  # type: ignore[attr-defined]
    assert (r["withheld"] > 0) is (policy == "deduct")
    raws = [bytes(x[0]) for x in _rows(co, "SELECT record FROM outbox ORDER BY seq")]
    out = ho.raw("loyalty/v1/hypershahr/records/s1/pos-1", *raws)
    assert out.applied == len(raws) and out.quarantined == 0
    est = co.members.estimate("+989121234567", 0, True, {})
    points, wallet, _tier, _visits = ho.member("+989121234567")
    assert (points, wallet) == (est.points, est.wallet)
    assert r["points_after"] == points and r["wallet_after"] == wallet
    if policy == "deduct":
        assert points == 0 and wallet >= 0  # the second sale's cashback stays
    else:
        assert points < 0  # an overdraft, recovered from later earnings
    assert ho.check() == []
    ho.close()
