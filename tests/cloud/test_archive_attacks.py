"""Archiving tried as an adversary would (a review's findings, each failing before its fix):
a second archiver, a record sent again or admitted again after its month left, a
reinstalled terminal's new sales at archived seqs, a clock stepped back into an archived
month, an unbalanced journal, a damaged or changed off-site copy, a tax invoice not
accepted; both databases."""

from __future__ import annotations

import gzip
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.club.operators import Operator
from cloud_broker.invoicing import queue
from cloud_broker.ledger import archive, partitions
from cloud_broker.ledger.archive import ArchiveError
from cloud_broker.ledger.db import Database
from cloud_broker.ledger.partitions import Month
from cloud_broker.reconcile import admission
from cloud_broker.registry import devices as registry
from edge.clock import Clock
from edge.ledger_cache.outbox import Outbox
from edge.protocol.record import Sealer
from tests.helpers.headoffice import HO
from tests.helpers.terminal import DAY0, Terminal

ALI = "+989121234567"
A, C = Month(1404, 1), Month(1405, 3)
NOW = C.lo + 5 * 86_400_000  # head office's clock when it archives
HOUR = 3_600_000
FINANCE = Operator(3, "fara", "Fara", "finance")


@pytest.fixture
def pos(tmp_path: Path, ho: HO) -> Terminal:
    t = Terminal(tmp_path)
    ho.register(t)
    return t


def _two_months(ho: HO, pos: Terminal, n: int = 3) -> None:
    ho.feed(pos, [pos.sale(ALI, earned=i + 1) for i in range(n)], now_ms=A.lo + HOUR)
    ho.feed(pos, [pos.sale(ALI, earned=1)], now_ms=C.lo + HOUR)


def _admit_at(ho: HO, qid: int, ms: int, monkeypatch: pytest.MonkeyPatch) -> admission.Admitted:
    with monkeypatch.context() as m:  # head office's clock at that moment
        m.setattr(time, "time", lambda: ms / 1000)
        return admission.admit(ho.rc, qid, "ops", "a paid sale")


def test_an_existing_file_is_never_replaced(ho: HO, pos: Terminal, tmp_path: Path) -> None:
    """Another ledger's file (or another run's) in the directory: refused, left as it was."""
    _two_months(ho, pos)
    d = tmp_path / "arch"
    d.mkdir()
    other = d / f"ledger-{A.label}.cbor.gz"
    other.write_bytes(b"another chain's month")
    with pytest.raises(ArchiveError, match="exists already"):
        archive.archive_month(ho.db, A, d, "ops", now_ms=NOW)
    assert other.read_bytes() == b"another chain's month"
    assert sorted(p.name for p in d.iterdir()) == [other.name]  # no temporary file left
    assert ho.one("SELECT COUNT(*) FROM records") == 4  # nothing forgotten


def test_keep_months_below_two_is_refused(ho: HO, pos: Terminal, tmp_path: Path) -> None:
    _two_months(ho, pos)
    with pytest.raises(ArchiveError, match="at least 2 months") as e:
        archive.archive_month(ho.db, A, tmp_path, "ops", now_ms=NOW, keep_months=0)
    assert "دست‌کم" in e.value.fa


def test_an_admitted_record_is_not_admitted_again_after_its_month_left(
    ho: HO, pos: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ho.feed(pos, [pos.sale(ALI, earned=10)], now_ms=A.lo + HOUR)
    registry.revoke(ho.db, pos.device, "lost, found again", after_seq=1)
    paid = pos.sale(ALI, earned=100)  # seq 2: a real paid sale, quarantined
    ho.feed(pos, [paid], now_ms=A.lo + 2 * HOUR)
    _admit_at(ho, ho.one("SELECT MAX(id) FROM quarantine"), A.lo + 3 * HOUR, monkeypatch)
    ho.feed(pos, [paid], now_ms=C.lo + HOUR)  # never acked: the terminal sends it again
    again = ho.one("SELECT MAX(id) FROM quarantine")
    archive.archive_month(ho.db, A, tmp_path, "ops", now_ms=NOW)
    got = _admit_at(ho, again, NOW, monkeypatch)
    assert got.journal is None  # "already in the ledger", in its archive
    assert ho.member(ALI)[0] == 110 and ho.check() == []


def test_a_reinstalled_terminal_s_new_sales_at_archived_seqs_are_conflicts(
    ho: HO, pos: Terminal, tmp_path: Path
) -> None:
    """Same key, empty database: new paid sales from seq 1 again, whose seqs are archived.
    They differ from what was applied there: quarantined as conflicts, with an alert."""
    _two_months(ho, pos)
    archive.archive_month(ho.db, A, tmp_path / "arch", "ops", now_ms=NOW)
    (tmp_path / "new").mkdir()
    t = Terminal(tmp_path / "new", device=pos.device)
    t.key = pos.key
    t.outbox = Outbox(t.db, t.identity, Sealer(pos.key, pos.device), Clock(210, wall=t.time))
    t.time.to_day(DAY0 + 430)
    out = ho.feed(t, [t.sale(ALI, subtotal=5_000_000, earned=500)], now_ms=NOW + HOUR)
    assert (out.duplicates, out.quarantined) == (0, 1)
    assert ho.q("SELECT code, seq FROM quarantine") == [("conflict", 1)]
    # (a true replay of an archived record is still a duplicate: test_archive.py)


def test_a_clock_stepped_back_never_stamps_an_archived_month(
    ho: HO, pos: Terminal, tmp_path: Path
) -> None:
    _two_months(ho, pos)
    if ho.db.dialect == "postgresql":
        ho.db.run(lambda tx: partitions.ensure(tx, NOW))
    archive.archive_month(ho.db, A, tmp_path, "ops", now_ms=NOW)
    (tmp_path / "n").mkdir()
    new = Terminal(tmp_path / "n", device="pos-new")
    ho.register(new)
    assert ho.feed(new, [new.sale(ALI, earned=5)], now_ms=A.lo + 5 * HOUR).applied == 1
    at = int(ho.one("SELECT received_at FROM records WHERE device = 'pos-new'"))
    assert at >= A.hi  # 14 months slow, yet after the archived month
    assert ho.check() == []


def test_an_unbalanced_journal_is_not_archived(ho: HO, pos: Terminal, tmp_path: Path) -> None:
    _two_months(ho, pos)
    ho.db.run(lambda tx: tx.execute(
        "UPDATE entries SET amount = 0 WHERE account LIKE 'S:%:points_issued' AND at < ?",
        (A.hi,)))  # fmt: skip
    d = tmp_path / "arch"
    with pytest.raises(ArchiveError, match="entries add up to"):
        archive.archive_month(ho.db, A, d, "ops", now_ms=NOW)
    assert ho.one("SELECT COUNT(*) FROM archived_months") == 0
    assert [p.name for p in d.iterdir()] == []  # no file, no temporary file


def test_a_damaged_or_changed_copy_does_not_verify_without_the_ledger(
    ho: HO, pos: Terminal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The off-site copy, checked without the ledger's SHA-256: gzip's own CRC, a cut
    copy and a changed admitted record are all caught, as ArchiveErrors."""
    ho.feed(pos, [pos.sale(ALI, earned=10)], now_ms=A.lo + HOUR)
    registry.revoke(ho.db, pos.device, "lost", after_seq=1)
    paid = pos.sale(ALI, earned=100)
    ho.feed(pos, [paid], now_ms=A.lo + 2 * HOUR)
    _admit_at(ho, ho.one("SELECT MAX(id) FROM quarantine"), A.lo + 3 * HOUR, monkeypatch)
    done = archive.archive_month(ho.db, A, tmp_path / "a", "ops", now_ms=NOW)
    keys = archive.key_finder(ho.db)
    data = done.path.read_bytes()
    copy = tmp_path / "copy.cbor.gz"
    copy.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match=r"damaged|cut short"):
        archive.verify(copy, None, keys)
    copy.write_bytes(data[:-8] + bytes([data[-8] ^ 1]) + data[-7:])  # gzip's CRC
    with pytest.raises(ArchiveError, match="damaged"):
        archive.verify(copy, None, keys)
    raw = gzip.decompress(data)
    changed = bytearray(paid.raw)
    changed[len(changed) // 2] ^= 1
    copy.write_bytes(gzip.compress(raw.replace(paid.raw, bytes(changed))))
    with pytest.raises(ArchiveError, match=r"admitted|signature"):
        archive.verify(copy, None, keys)
    archive.verify(done.path, done.sha256, keys)  # the original still does


def test_a_tax_invoice_not_accepted_holds_its_month_and_never_stops_the_sender(
    ho: HO, pos: Terminal, tmp_path: Path
) -> None:
    _two_months(ho, pos, n=1)
    ho.db.run(lambda tx: tx.execute(
        "INSERT INTO tax_stores (store, memory_id, economic_code, key_file, cert_file) "
        "VALUES ('s1', 'A1B2C3', '14003778990', 'k', 'c')"))  # fmt: skip
    ins = ("INSERT INTO tax_invoices (store, device, seq, kind, serial, tax_id, day, amount, "
           "state, next_at, created_at, final_at) VALUES ('s1', ?, 1, 'sale', 1, 'X1', 1, 1, "
           "'failed', 0, 0, 1)")  # fmt: skip
    ho.db.run(lambda tx: tx.execute(ins, (pos.device,)))
    with pytest.raises(ArchiveError, match="not accepted"):
        archive.archive_month(ho.db, A, tmp_path, "ops", now_ms=NOW)
    # were it archived all the same (an old archive), a resend is blocked, not a crash
    ho.db.run(lambda tx: tx.execute("UPDATE tax_invoices SET state = 'accepted'"))
    archive.archive_month(ho.db, A, tmp_path, "ops", now_ms=NOW)
    ho.db.run(lambda tx: tx.execute("UPDATE tax_invoices SET state = 'failed'"))
    queue.resend(ho.db, FINANCE, int(ho.one("SELECT id FROM tax_invoices")))
    assert queue.send_due(ho.db, lambda store: pytest.fail("nothing to send"), now=10**15) == 0
    assert ho.q("SELECT state FROM tax_invoices") == [("blocked",)]
    assert "archive" in str(ho.one("SELECT errors FROM tax_invoices"))


def test_postgresql_the_hourly_partitions_never_hold_the_reconciler_behind_an_archive(
    ho: HO, pos: Terminal
) -> None:
    """An archive reading a month holds its tables' share lock for long; the service's
    hourly partition step gives up instead of queueing for its exclusive lock, which
    would queue every insert of the reconciler behind it."""
    if ho.db.dialect != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    ho.feed(pos, [pos.sale(ALI, earned=1)])
    archiver, service = Database(ho.db.url), Database(ho.db.url)
    reading, release = threading.Event(), threading.Event()

    def archive_read(tx: Any) -> None:  # what archive_month's write step holds
        tx.one("SELECT COUNT(*) FROM records")
        reading.set()
        release.wait(60)

    reader = threading.Thread(target=lambda: archiver.run(archive_read, write=False))
    reader.start()
    try:
        assert reading.wait(30)
        far = partitions.month_of_ms(int(time.time() * 1000))
        for _ in range(4):
            far = far.next()  # a month whose partitions do not exist yet
        with pytest.raises(service.errors):
            service.run(lambda tx: partitions.ensure(tx, far.lo, lock_timeout_ms=200), retries=0)
        sale = pos.sale(ALI, earned=1)  # made here: the terminal's database is this thread's
        fed = threading.Thread(target=lambda: ho.feed(pos, [sale]))
        fed.start()
        fed.join(30)
        assert not fed.is_alive(), "the reconciler waited behind the partition step"
    finally:
        release.set()
        reader.join(30)
        archiver.close()
        service.close()
    assert ho.one("SELECT COUNT(*) FROM records") == 2
