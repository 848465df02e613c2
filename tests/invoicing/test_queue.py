"""Reconciled sales and refunds handed to the fake tax system, on SQLite and PostgreSQL:
amounts equal to the ledger's to the Rial, returns naming their sale, a product without an
id blocked until mapped, rejections shown with the system's error and resent, a 5xx and a
timeout that delivered anyway, never sent twice."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.invoicing import build, mapping, queue
from cloud_broker.invoicing.cli import Clients
from cloud_broker.tax.invoice import Seller
from edge.core import record as R
from tests.conftest import ROOT
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal
from tests.helpers.wait import until
from tests.tax.conftest import CLIENT_TIMEOUT_S, ECONOMIC_CODE, MEMORY_ID
from tests.tax.fake_moadian import FakeMoadian

FINANCE = Operator(3, "fara", "Fara", "finance")
MARKETING = Operator(2, "mina", "Mina", "marketing")
ALI = "+989121234567"


def _sale(t: Terminal, lines: list[tuple[str, str, int, int, int]], member: str | None = ALI
          ) -> Any:  # fmt: skip
    items = []
    for sku, cat, qty, price, disc in lines:
        paid = qty * price - disc
        items.append({"sku": sku, "category": cat, "qty": qty, "unit_price": price,
                      "discount": disc, "wallet": 0, "paid": paid, "points": paid // 10_000,
                      "redeemed": 0, "cashback": 0})  # fmt: skip
    sub = sum(x["qty"] * x["unit_price"] for x in items)
    disc = sum(x["discount"] for x in items)
    q = {"subtotal": sub, "discount": disc, "wallet_used": 0, "payable": sub - disc,
         "points_earned": sum(x["points"] for x in items), "points_redeemed": 0,
         "wallet_earned": 0, "rules_version": 1, "lines": items, "applied": []}  # fmt: skip
    who = R.member_field("phone", member) if member else None
    return t.outbox.commit("sale", R.sale_body(q), member=who, charged=True)


def _refund_one(t: Terminal, sale: Any, line: int) -> Any:
    ln = sale.payload[R.K_LINES][line]
    r = {"gross": ln[R.L_QTY] * ln[R.L_UNIT_PRICE], "discount": ln[R.L_DISCOUNT],
         "wallet_returned": 0, "refund_amount": ln[R.L_PAID],
         "points_reversed": ln[R.L_POINTS], "points_returned": 0, "wallet_reversed": 0,
         "rules_version": 1,
         "lines": [{"line": line, "sku": ln[R.L_SKU], "category": ln[R.L_CATEGORY],
                    "qty": ln[R.L_QTY], "discount": ln[R.L_DISCOUNT], "wallet": 0,
                    "paid": ln[R.L_PAID], "points": ln[R.L_POINTS], "redeemed": 0,
                    "cashback": 0}]}  # fmt: skip
    return t.outbox.commit("refund", R.refund_body(r, sale.device, sale.seq, sale.hash),
                           member=sale.payload.get(R.K_MEMBER), charged=True)  # fmt: skip


def _drain(ho: HO, clients: Clients, rounds: int = 20) -> None:
    """Send and ask until nothing is left in flight (the fake finalises on the 2nd ask)."""
    base = int(time.time() * 1000) + 10**9  # a clock moved past every back-off
    for i in range(rounds):
        now = base + i * 10**8
        queue.send_due(ho.db, clients, now=now)
        queue.inquire(ho.db, clients, now=now)
        left = ho.one("SELECT COUNT(*) FROM tax_invoices WHERE state IN ('queued', 'sending', "
                      "'sent')")  # fmt: skip
        if not left:
            return


def test_sales_and_a_return_reach_the_tax_system_to_the_rial(
    ho: HO, tmp_path: Path, fake: FakeMoadian, key_files: tuple[str, str]
) -> None:
    t = Terminal(tmp_path, "pos-1", "s1")
    ho.register(t)
    ho.feed(t, [t.enroll(ALI), _sale(t, [("OLD", "dairy", 1, 10_000, 0)])])  # before set-up
    with pytest.raises(ClubError):  # marketing may not
        mapping.set_store(ho.db, MARKETING, "s1", MEMORY_ID, ECONOMIC_CODE, *key_files)
    mapping.set_store(ho.db, FINANCE, "s1", MEMORY_ID, ECONOMIC_CODE, *key_files)
    mapping.set_product(ho.db, FINANCE, "category", "dairy", "2720000166053", "لبنیات")
    mapping.set_product(ho.db, FINANCE, "sku", "AJIL", "۲۷۲۰۰۰۰۱۶۶۰۶۰", "آجیل", 900)
    rng = random.Random(4)
    sales = []
    for _ in range(12):
        lines = [("MILK", "dairy", rng.randint(1, 4), rng.randint(100_000, 900_000),
                  rng.choice([0, 0, 7_777])),
                 ("AJIL", "nuts", 1, rng.randint(1_000_000, 9_000_000), 0)]  # fmt: skip
        sales.append(_sale(t, lines))
    ho.feed(t, sales)
    ho.feed(t, [_refund_one(t, sales[0], 1)])
    assert queue.scan(ho.db) == 13  # the sale from before the set-up is not the tax's
    clients = Clients(ho.db, fake.base_url, 2.0)
    try:
        _drain(ho, clients)
    finally:
        clients.close()
    states = Counter(str(r[0]) for r in ho.q("SELECT state FROM tax_invoices"))
    assert states == {"accepted": 13}, ho.q("SELECT state, errors FROM tax_invoices")
    packets = fake.packets
    assert Counter(p.tax_id for p in packets).most_common(1)[0][1] == 1  # none twice
    total = {p.tax_id: int(p.invoice["header"]["tbill"]) for p in packets}
    ledger = {str(r[0]): int(r[1]) for r in ho.q("SELECT tax_id, amount FROM tax_invoices")}
    short = {str(r[0]) for r in ho.q("SELECT tax_id FROM tax_invoices WHERE errors LIKE "
                                     "'%short%'")}  # fmt: skip
    for tax_id, amount in ledger.items():
        assert total[tax_id] == amount - (1 if tax_id in short else 0)
    revenue = ho.one("SELECT SUM(revenue) FROM sales_daily WHERE store = 's1'")
    invoiced = ho.one("SELECT SUM(amount) FROM tax_invoices WHERE kind = 'sale'")
    assert invoiced == revenue - 10_000  # every sale but the one from before the set-up
    ret = next(p for p in packets if p.invoice["header"]["ins"] == 4)
    sale_tax_id = ho.one("SELECT tax_id FROM tax_invoices WHERE seq = ?", (sales[0].seq,))
    assert ret.invoice["header"]["irtaxid"] == sale_tax_id
    assert ho.one("SELECT next_serial FROM tax_stores") == 14
    serials = sorted(int(r[0]) for r in ho.q("SELECT serial FROM tax_invoices"))
    assert serials == list(range(1, 14))


def test_unmapped_rejected_and_resent(ho: HO, tmp_path: Path, fake: FakeMoadian,
                                      key_files: tuple[str, str]) -> None:  # fmt: skip
    t = Terminal(tmp_path, "pos-1", "s1")
    ho.register(t)
    mapping.set_store(ho.db, FINANCE, "s1", MEMORY_ID, ECONOMIC_CODE, *key_files)
    mapping.set_product(ho.db, FINANCE, "category", "dairy", "2720000166053")
    s1 = _sale(t, [("MILK", "dairy", 1, 450_000, 0)], None)
    s2 = _sale(t, [("SOAP", "home", 2, 300_000, 0)], None)  # no product id yet
    ho.feed(t, [s1, s2])
    queue.scan(ho.db)
    first = ho.one("SELECT tax_id FROM tax_invoices WHERE seq = ?", (s1.seq,))
    fake.reject(first, "4122", "شناسه کالا در سامانه ثبت نشده است")
    clients = Clients(ho.db, fake.base_url, 2.0)
    try:
        _drain(ho, clients)
        problems = {p["seq"]: p for p in queue.problems(ho.db)}
        assert problems[s1.seq]["state"] == "failed"
        assert problems[s1.seq]["errors"][0]["code"] == "4122"
        assert problems[s2.seq]["state"] == "blocked"
        assert "SOAP" in problems[s2.seq]["errors"][0]["en"]
        assert "شناسه کالای مالیاتی" in problems[s2.seq]["errors"][0]["fa"]
        assert mapping.unmapped(ho.db, 0) == [{"sku": "SOAP", "category": "home"}]
        mapping.set_product(ho.db, FINANCE, "sku", "SOAP", "2720000166077", "صابون")
        del fake.rejections[first.upper()]  # the product id was registered meanwhile
        for p in problems.values():
            queue.resend(ho.db, FINANCE, int(p["id"]))
        with pytest.raises(ClubError):
            queue.resend(ho.db, FINANCE, int(problems[s1.seq]["id"]))  # queued already
        _drain(ho, clients)
    finally:
        clients.close()
    assert {str(r[0]) for r in ho.q("SELECT state FROM tax_invoices")} == {"accepted"}
    assert ho.one("SELECT tax_id FROM tax_invoices WHERE seq = ?", (s1.seq,)) == first
    assert sum(1 for p in fake.packets if p.tax_id == first) == 2  # sent again, same tax id
    assert ho.one("SELECT COUNT(*) FROM audit_log WHERE action = 'tax.resend'") == 2


def _three_sales_queued(ho: HO, tmp_path: Path, key_files: tuple[str, str]) -> Terminal:
    """Store s1 set up for the tax system, three sales of one mapped product queued."""
    t = Terminal(tmp_path, "pos-1", "s1")
    ho.register(t)
    mapping.set_store(ho.db, FINANCE, "s1", MEMORY_ID, ECONOMIC_CODE, *key_files)
    mapping.set_product(ho.db, FINANCE, "category", "dairy", "2720000166053")
    ho.feed(t, [_sale(t, [("MILK", "dairy", 1, 450_000 + i, 0)], None) for i in range(3)])
    queue.scan(ho.db)
    return t


def _states(ho: HO) -> set[str]:
    return {str(r[0]) for r in ho.q("SELECT state FROM tax_invoices")}


def test_a_5xx_and_a_timeout_that_delivered_are_never_sent_twice(
    ho: HO, tmp_path: Path, fake: FakeMoadian, key_files: tuple[str, str]
) -> None:
    # The queue's clock is the ``now`` the test passes; the fake holds the timed-out request
    # until the client has given up and the test releases it: no step waits for a number of
    # seconds, so a loaded machine cannot reorder them.
    _three_sales_queued(ho, tmp_path, key_files)
    clients = Clients(ho.db, fake.base_url, CLIENT_TIMEOUT_S)
    try:
        fake.fail_next("5xx", path="invoice")
        now = int(time.time() * 1000)
        queue.send_due(ho.db, clients, now=now)
        assert _states(ho) == {"sending"}
        stamp = int(ho.one("SELECT MAX(sent_at) FROM tax_invoices"))
        queue.inquire(ho.db, clients, now=stamp + queue.LOST_AFTER_MS)  # not there, too early
        assert _states(ho) == {"sending"}
        queue.inquire(ho.db, clients, now=stamp + queue.LOST_AFTER_MS + 1)  # lost: send again
        assert _states(ho) == {"queued"}

        held = fake.fail_next("timeout", path="invoice", hold=True)  # it arrives, but late
        again = now + 10**7
        queue.send_due(ho.db, clients, now=again)  # returns once the client gave up
        assert _states(ho) == {"sending"}
        # Not known yet, one ms past the grace if it counted from before the request left:
        # the system may take a packet any time after the client stopped waiting (the
        # timeout fires late on a loaded machine), so it is not lost yet.
        queue.inquire(ho.db, clients, now=again + queue.LOST_AFTER_MS + 1)
        assert _states(ho) == {"sending"}
        held.release()
        assert held.wait_done(), "the fake never processed the timed-out request"
        assert len(fake.packets) == 3  # the system has them after all
        _drain(ho, clients)
    finally:
        clients.close()
    assert _states(ho) == {"accepted"}
    assert len(fake.packets) == 3  # the timed-out request arrived; nothing was resent
    assert fake.count("invoice") == 2  # the 5xx and the timeout, no third send
    assert json.dumps(ho.q("SELECT * FROM tax_stores"), default=str).count("BEGIN") == 0


def test_a_sender_killed_while_it_waits_does_not_send_again_before_the_grace(
    ho: HO, ledger_url: str, tmp_path: Path, fake: FakeMoadian, key_files: tuple[str, str]
) -> None:
    """``tax run`` SIGKILLed with its request in the tax system's hands: the rows stay
    ``sending`` until the system's grace has passed from when the sender would have stopped
    waiting, so the packet that arrives late is found, not sent a second time."""
    _three_sales_queued(ho, tmp_path, key_files)
    held = fake.fail_next("timeout", path="invoice", hold=True, delay_s=60)
    sender = subprocess.Popen(
        [sys.executable, "-m", "cloud_broker", "--ledger", ledger_url, "tax", "run",
         "--base-url", fake.base_url, "--timeout", str(CLIENT_TIMEOUT_S), "--every", "60"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert until(lambda: fake.count("invoice") == 1), "the sender never sent its request"
    finally:
        sender.kill()  # the request is in the system's hands; the sender dies waiting
        sender.wait(30)
    killed = int(time.time() * 1000)
    assert _states(ho) == {"sending"}
    clients = Clients(ho.db, fake.base_url, CLIENT_TIMEOUT_S)
    try:
        # Past the grace counted from before the request left, the system still does not
        # know the packet (it holds it): not lost yet.
        queue.inquire(ho.db, clients, now=killed + queue.LOST_AFTER_MS + 1)
        assert _states(ho) == {"sending"}
        held.release()
        assert held.wait_done(), "the fake never processed the request"
        _drain(ho, clients)
    finally:
        clients.close()
    assert _states(ho) == {"accepted"}
    assert len(fake.packets) == 3 and fake.count("invoice") == 1  # nothing was sent twice


def test_a_sale_committed_after_the_mark_went_past_its_id_is_still_invoiced(
    ho: HO, tmp_path: Path, key_files: tuple[str, str]
) -> None:
    """Several reconcilers (``--share-group``) commit journal ids out of order: the scan
    has seen a later id from one when another commits a lower one.  Simulated by moving
    the scan's mark ahead of the next sale's id; the sale is still queued, once."""
    t = Terminal(tmp_path, "pos-1", "s1")
    ho.register(t)
    mapping.set_store(ho.db, FINANCE, "s1", MEMORY_ID, ECONOMIC_CODE, *key_files)
    ho.feed(t, [_sale(t, [("MILK", "dairy", 1, 450_000, 0)], None)])
    assert queue.scan(ho.db) == 1
    ahead = int(ho.one("SELECT MAX(id) FROM journals")) + 1000  # another reconciler's id
    ho.db.run(lambda tx: tx.execute("UPDATE tax_marks SET value = ?", (ahead,)))
    ho.feed(t, [_sale(t, [("MILK", "dairy", 2, 450_000, 0)], None)])
    assert int(ho.one("SELECT MAX(id) FROM journals")) < ahead  # committed "late"
    assert queue.scan(ho.db) == 1
    assert queue.scan(ho.db) == 0  # once
    assert ho.q("SELECT seq, serial FROM tax_invoices ORDER BY seq") == [(1, 1), (2, 2)]
    assert ho.one("SELECT value FROM tax_marks") == ahead  # the mark never goes back


def test_vat_split_gives_the_ledgers_amount() -> None:
    rng = random.Random(9)
    table = {("category", "c"): ("2720000166053", "x", None),
             ("category", "d"): ("2720000166060", "y", 900)}  # fmt: skip
    seller, short = Seller(MEMORY_ID, ECONOMIC_CODE), 0
    for n in range(2000):
        lines = []
        for j in range(rng.randint(1, 4)):
            qty, price = rng.randint(1, 5), rng.randint(1, 5_000_000)
            disc = rng.randint(0, qty * price // 3) if rng.random() < 0.3 else 0
            wal = rng.randint(0, (qty * price - disc) // 5) if rng.random() < 0.2 else 0
            lines.append({R.L_SKU: f"S{j}", R.L_CATEGORY: rng.choice("cd"), R.L_QTY: qty,
                          R.L_UNIT_PRICE: price, R.L_DISCOUNT: disc, R.L_WALLET: wal,
                          R.L_PAID: qty * price - disc - wal, R.L_POINTS: 0, R.L_REDEEMED: 0,
                          R.L_CASHBACK: 0})  # fmt: skip
        paid = sum(x[R.L_PAID] for x in lines)
        p = {R.K_TYPE: "sale", R.K_LINES: lines, R.K_TIME: {R.T_WALL: 1_764_874_000_000,
             R.T_OFFSET: 210}, R.K_AMOUNTS: {R.A_PAID: paid}}  # fmt: skip
        _, missing = build.lines(p, table)
        inv = build.invoice(seller, n + 1, p, table)
        assert inv.totals.total == paid - missing and missing in (0, 1)
        assert all(x.discount >= 0 for x in inv.lines)
        short += missing
    assert short < 2000 * 0.01  # only single-unit lines at unreachable amounts
