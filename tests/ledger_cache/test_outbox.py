"""The outbox: one durable step, gapless seq, chained records, bounded by disk."""

from __future__ import annotations

import logging
import os
import random
import signal
import sqlite3
import time
from itertools import pairwise
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.clock import Clock
from edge.core import record as R
from edge.errors import DecodeError, DiskFullError, OutboxFullError, SignatureError, StorageError
from edge.ledger_cache import db
from edge.ledger_cache.outbox import Identity, Limits, MemberDelta, Outbox, OutboxView
from edge.protocol.record import Record, Sealer, open_record
from tests.helpers.device import Device, commit_sale, make_device

PHONE = "+989121234567"  # the member of tests.helpers.device.commit_sale


def _delta_seqs(dev: Device) -> list[int]:
    rows = dev.outbox.conn.execute(
        "SELECT seq FROM member_delta WHERE member = ? ORDER BY seq", (PHONE,)
    )
    return [int(r[0]) for r in rows]


def test_commit_allocates_gapless_seq_and_chains(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    recs = [commit_sale(dev, i) for i in range(5)]
    assert [r.seq for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0].prev == R.ZERO_HASH and all(b.prev == a.hash for a, b in pairwise(recs))
    st = dev.outbox.status()
    assert (st["last_seq"], st["depth"], st["bytes"]) == (5, 5, sum(len(r.raw) for r in recs))
    assert _delta_seqs(dev) == [1, 2, 3, 4, 5]
    # a reopened outbox continues the chain
    dev.outbox.close()
    ob = Outbox(dev.db, dev.identity, Sealer(dev.key, dev.id), Clock(210))
    nxt = ob.commit("heartbeat", {R.K_EXTRA: {0: 0}})
    assert nxt.seq == 6 and nxt.prev == recs[-1].hash


def test_failed_commit_leaves_nothing_behind(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    commit_sale(dev)
    before = dev.outbox.status()
    with pytest.raises(DecodeError):  # a float, refused inside the transaction
        dev.outbox.commit("sale", {R.K_AMOUNTS: {0: 1.5}})
    written: list[int] = []

    def bookkeeping_fails(conn: sqlite3.Connection, rec: Record) -> None:
        # by now the record, the counters and the member delta are written
        written.append(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        raise RuntimeError("the checkout's bookkeeping failed")

    delta = MemberDelta(PHONE, "2026-03-20", points=10, visits=1)
    with pytest.raises(RuntimeError, match="bookkeeping failed"):
        dev.outbox.commit("heartbeat", {R.K_EXTRA: {0: 0}}, delta=delta, also=bookkeeping_fails)
    assert written == [2]  # the failure came after the INSERTs: they were rolled back
    assert dev.outbox.status() == before
    assert _delta_seqs(dev) == [1]
    assert not dev.outbox.conn.in_transaction
    nxt = commit_sale(dev)
    assert nxt.seq == 2
    assert _delta_seqs(dev) == [1, 2]


def test_a_full_disk_is_reported_as_such(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    commit_sale(dev)
    conn = dev.outbox.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")  # the disk is full from here on
    with pytest.raises(DiskFullError, match="database or disk is full") as e:
        for i in range(1, 500):
            commit_sale(dev, i)
    assert not isinstance(e.value, OutboxFullError)  # the disk, not the outbox's own limit
    assert e.value.fa and e.value.fa != e.value.en
    assert not conn.in_transaction  # SQLite rolled back itself; our ROLLBACK was skipped
    conn.execute(f"PRAGMA max_page_count={2**30}")  # space again: the chain continues
    last = dev.outbox.status()["last_seq"]
    nxt = commit_sale(dev)
    assert nxt.seq == last + 1 and _delta_seqs(dev) == list(range(1, last + 2))


def test_transaction_rolls_back_on_error_and_survives_sqlite_s_own_rollback(
    tmp_path: Path,
) -> None:
    conn = db.connect(tmp_path / "t.db")
    with pytest.raises(KeyError), db.transaction(conn):
        conn.execute("INSERT INTO kv (key, value) VALUES ('a', x'00')")
        raise KeyError("boom")
    assert conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0] == 0
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(DiskFullError, match="full"), db.transaction(conn):
        conn.execute("INSERT INTO kv (key, value) VALUES ('b', zeroblob(1000000))")
    assert not conn.in_transaction
    with db.transaction(conn):
        conn.execute("INSERT INTO kv (key, value) VALUES ('c', x'00')")
    assert [r[0] for r in conn.execute("SELECT key FROM kv")] == ["c"]


def test_database_of_another_device_or_newer_schema_refused(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    commit_sale(dev)
    with pytest.raises(StorageError, match="belongs to acme/s1/dev-1"):
        Outbox(dev.db, Identity("acme", "s1", "dev-9"), Sealer(dev.key, "dev-9"), Clock(210))
    conn = sqlite3.connect(dev.db)
    conn.execute(f"PRAGMA user_version={len(db.MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StorageError, match="newer than this software"):
        db.connect(dev.db)


def test_durability_settings(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "x.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(db.MIGRATIONS)


def test_alarms_at_fill_levels_and_hard_limit_with_a_clear_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alarms: list[int] = []
    key = Ed25519PrivateKey.generate()
    ident = Identity("acme", "s1", "dev-1")
    limits = Limits(max_bytes=20_000, alarm_pct=(50, 80, 95))
    ob = Outbox(
        tmp_path / "o.db",
        ident,
        Sealer(key, "dev-1"),
        Clock(210),
        limits,
        on_alarm=lambda level, _msg: alarms.append(level),
    )
    caplog.set_level(logging.WARNING, "edge.outbox")
    n = 0
    while True:
        try:
            ob.check_capacity()
        except OutboxFullError as e:
            assert "Call support" in e.en and "پشتیبانی" in e.fa
            break
        ob.commit("heartbeat", {R.K_EXTRA: {0: n}})
        n += 1
        assert n < 1000
    assert alarms == [50, 80, 95]  # each level once, when it is crossed
    assert any("full" in r.message for r in caplog.records)
    with pytest.raises(OutboxFullError):
        ob.commit("heartbeat", {R.K_EXTRA: {0: 0}})
    # a sale whose card was already charged is never refused by the limit
    assert ob.commit("heartbeat", {R.K_EXTRA: {0: 1}}, charged=True).seq == n + 1
    # draining below the levels clears the alarm
    view = OutboxView(tmp_path / "o.db")
    last, _ = view.counters()
    view.ack(last, None, 0)
    ob.commit("heartbeat", {R.K_EXTRA: {0: 2}})
    assert alarms[-1] == 0
    ob.check_capacity()


def test_ack_deletes_covered_rows_only_and_refuses_foreign_acks(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    recs = [commit_sale(dev, i) for i in range(6)]
    view = OutboxView(dev.db)
    assert view.ack(3, recs[2].hash, 1) == 3
    assert [s for s, _ in view.pending(0, 100)] == [4, 5, 6]
    assert view.ack(2, None, 2) == 0  # old ack: nothing to do
    with pytest.raises(StorageError, match="only written 6"):
        view.ack(9, None, 3)
    with pytest.raises(StorageError, match="not this device's record"):
        view.ack(5, recs[0].hash, 4)
    assert [s for s, _ in view.pending(0, 100)] == [4, 5, 6]
    assert dev.outbox.status()["applied_through"] == 3


def test_status_names_the_oldest_record_without_reading_the_whole_outbox(
    tmp_path: Path,
) -> None:
    dev = make_device(tmp_path)
    conn = dev.outbox.conn
    assert dev.outbox.status()["oldest_ms"] is None
    recs = [commit_sale(dev, i) for i in range(3)]

    def created(seq: int) -> int:
        return int(
            conn.execute("SELECT created_ms FROM outbox WHERE seq = ?", (seq,)).fetchone()[0]
        )

    assert dev.outbox.status()["oldest_ms"] == created(1)
    OutboxView(dev.db).ack(1, recs[0].hash, 0)
    assert dev.outbox.status()["oldest_ms"] == created(2)
    # a deep outbox (rows straight into the table: only its size matters here)
    with db.transaction(conn):
        conn.executemany(
            "INSERT INTO outbox (seq, type, record, hash, created_ms) "
            "VALUES (?, 'x', x'00', x'00', 0)",
            ((s,) for s in range(10, 30_010)),
        )
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(count, 100)  # called every 100 SQLite VM instructions
    try:
        st = dev.outbox.status()
    finally:
        conn.set_progress_handler(None, 0)
    assert st["oldest_ms"] == created(2)
    assert steps[0] < 20, f"status() ran {steps[0] * 100} instructions: a scan of the outbox?"


def _writer(db_path: Path, seed: bytes, wfd: int) -> None:
    # child process: commit sales until killed; report each commit that returned
    key = Ed25519PrivateKey.from_private_bytes(seed)
    from tests.helpers.device import Device

    ob = Outbox(db_path, Identity("acme", "s1", "dev-1"), Sealer(key, "dev-1"), Clock(210))
    dev = Device(key, ob.identity, ob, db_path)
    i = 0
    while True:
        rec = commit_sale(dev, i)
        os.write(wfd, f"{rec.seq} {rec.hash.hex()}\n".encode())
        i += 1


def test_sigkill_at_random_moments_loses_no_committed_record(tmp_path: Path) -> None:
    db_path = tmp_path / "crash.db"
    seed = os.urandom(32)
    key = Ed25519PrivateKey.from_private_bytes(seed)
    rng = random.Random(1)
    committed: dict[int, str] = {}
    kills = 0
    for _ in range(220):
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(rfd)
            try:
                _writer(db_path, seed, wfd)
            finally:
                os._exit(1)
        os.close(wfd)
        time.sleep(rng.uniform(0.0, 0.04))  # a random moment to kill at, on purpose
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), "the writer stopped on its own: see its error"
        kills += 1
        data = b""
        while chunk := os.read(rfd, 65536):
            data += chunk
        os.close(rfd)
        for line in data.decode().split("\n")[:-1]:  # a torn last line was never complete
            seq, h = line.split()
            committed[int(seq)] = h
    assert kills >= 200
    assert len(committed) > 100, "the writer barely ran; the test proves little"
    conn = db.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute("SELECT seq, record, hash FROM outbox ORDER BY seq").fetchall()
    seqs = [r[0] for r in rows]
    assert seqs == list(range(1, len(seqs) + 1)), "seq has a gap"
    stored = {r[0]: bytes(r[2]).hex() for r in rows}
    lost = [s for s, h in committed.items() if stored.get(s) != h]
    assert lost == []
    prev = R.ZERO_HASH
    pub = key.public_key()
    for seq, raw, h in rows:
        rec = open_record(bytes(raw), lambda _d: pub)
        assert rec.seq == seq and rec.prev == prev and rec.hash == bytes(h)
        prev = rec.hash
    deltas = conn.execute("SELECT COUNT(*) FROM member_delta").fetchone()[0]
    assert deltas == len(rows)  # the balance update is in the same transaction
    next_seq, last_hash = conn.execute("SELECT next_seq, last_hash FROM device").fetchone()
    assert next_seq == len(rows) + 1 and bytes(last_hash) == prev
    # the records verified with the writer's key above, and with no other
    stranger = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(SignatureError):
        open_record(bytes(rows[-1][1]), lambda _d: stranger)
