"""Retention on the terminal: settled sales and payments older than the refund window leave
once head office has acknowledged them; nothing that can still move money does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge.checkout import Checkout, CheckoutError
from edge.core import record as R
from edge.ledger_cache import retention
from edge.ledger_cache.outbox import OutboxView
from edge.ledger_cache.payments import Payments
from tests.helpers.checkout import FakeBank, make_checkout
from tests.helpers.device import BANK, make_device, sample_quote

DAY = 86_400.0
PHONE = "09121234567"


class Wall:
    """The terminal's wall clock, moved by the test."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _ack(db: Path, conn: object, through: int) -> None:
    h = conn.execute("SELECT hash FROM outbox WHERE seq = ?", (through,)).fetchone()[0]  # type: ignore[attr-defined]
    view = OutboxView(db)
    try:
        view.ack(through, bytes(h), int(time.time() * 1000))
    finally:
        view.close()


def _basket(i: int) -> dict[str, object]:
    return {
        "id": f"POS-{i}",
        "lines": [{"sku": f"A{i}", "category": "grocery", "qty": 1, "unit_price": 1_000_000}],
    }


def _sale(co: Checkout, i: int) -> dict[str, object]:
    s = co.open(_basket(i))
    co.identify(s.id, phone=PHONE)
    return co.pay(s.id, key=f"k-{i}")


def test_sixty_days_at_a_till_keep_thirty(tmp_path: Path) -> None:
    start = time.time() - 60 * DAY
    wall = Wall(start)
    co = make_checkout(tmp_path, FakeBank(), wall=wall)
    seqs = []
    for day in range(60):
        wall.t = start + day * DAY
        seqs.append(_sale(co, day)["record"]["seq"])  # type: ignore[index]
    conn = co.outbox.conn
    _ack(tmp_path / "edge.db", conn, seqs[49])  # head office has the first fifty days
    wall.t = start + 60 * DAY
    pruned = retention.prune_all(conn, int(wall.t * 1000), keep_days=30)
    # days 0..29 are older than the window and acknowledged; the newest payment stays
    assert pruned == retention.Pruned(sales=30, payments=30)
    kept = [r[0] for r in conn.execute("SELECT seq FROM sales ORDER BY seq")]
    assert kept == seqs[30:]
    assert conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0] == 30
    # a second run finds nothing more; unacknowledged days 50..59 are kept whatever their age
    assert retention.prune_all(conn, int((start + 200 * DAY) * 1000), 30).sales == 20
    assert [r[0] for r in conn.execute("SELECT seq FROM sales")] == seqs[50:]

    refunds = co.refunds  # type: ignore[attr-defined]
    with pytest.raises(CheckoutError) as e:
        refunds.refund(seqs[3], {"all": True})
    assert e.value.code == "unknown_sale"
    assert "30 days" in e.value.en and "۳۰ روز" in e.value.fa
    r = refunds.refund(seqs[55], {"all": True})
    assert r["status"] == "refund"
    # the POS repeating a recent sale's key still gets the first answer, not a new charge
    again = _sale(co, 59)
    assert again["repeated"] is True and again["record"]["seq"] == seqs[59]  # type: ignore[index]


def test_what_can_still_move_money_is_never_pruned(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    now = [0]
    pays = Payments(dev.outbox.conn, lambda: now[0])
    conn = dev.outbox.conn
    day_ms = int(DAY * 1000)
    q = sample_quote(1)

    def sale(day: int) -> int:
        now[0] = day * day_ms
        pid = pays.intent("sale", f"s{day}", q["payable"], "{}")
        seq = 0

        def book(c: object, rec: object) -> None:
            nonlocal seq
            seq = rec.seq  # type: ignore[attr-defined]
            pays.committed(c, pid, seq, BANK, {})  # type: ignore[arg-type]
            pays.add_sale(c, seq, rec.hash, None, None, "{}", BANK, now[0])  # type: ignore[arg-type,attr-defined]

        dev.outbox.commit("sale", R.sale_body(q), charged=True, also=book)
        return seq

    seqs = [sale(d) for d in range(10)]
    now[0] = 3 * day_ms
    pays.set_state(pays.intent("sale", "declined", 5, "{}"), "declined")  # at day 3
    now[0] = 4 * day_ms
    refund = pays.intent("refund", "r", -5, "{}", orig_seq=seqs[1])  # its money is moving
    pays.set_state(refund, "charging")
    now[0] = 6 * day_ms
    stuck = pays.intent("sale", "stuck", 7, "{}")
    pays.set_state(stuck, "unknown")  # a failure left it open: recovery still asks the bank
    _ack(dev.db, conn, seqs[-1])
    p = retention.prune_all(conn, 100 * day_ms, keep_days=1)
    sales = [r[0] for r in conn.execute("SELECT seq FROM sales ORDER BY seq")]
    assert sales == [seqs[1]]  # the sale being refunded stays
    ids = [r[0] for r in conn.execute("SELECT id FROM payments ORDER BY id")]
    # the payments from the refund in flight on are kept (open ones, and the bank's
    # "last transaction" is read against everything after the oldest open one)
    assert ids == [refund, *range(refund + 1, stuck + 1)]
    assert p.payments == refund - 1
