"""Head office's member snapshots in the terminal's database."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edge.members import Members
from edge.protocol.snapshots import MemberSnapshot
from tests.helpers.device import commit_sale, make_device

PHONE = "+989121234567"  # the member of tests.helpers.device.commit_sale


def _snap(member: str, version: int = 1, **kw: Any) -> MemberSnapshot:
    fields: dict[str, Any] = {
        "points": 100,
        "wallet": 0,
        "tier": "silver",
        "visits": 1,
        "spend": (),
        "birthday": None,
        "birthday_claimed": 0,
        "version": version,
        "device_seqs": {},
    }
    return MemberSnapshot(member, **(fields | kw))


def test_a_snapshot_message_is_stored_in_one_transaction(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    conn = dev.outbox.conn
    members = Members(conn, dev.id)
    snaps = [_snap(f"+98912000{i:04d}", cards=(f"C{i}",)) for i in range(50)]
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        assert members.apply(snaps, 1) == 50
    finally:
        conn.set_trace_callback(None)
    # one commit (one fsync with synchronous=FULL), not one per statement
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
    assert statements.count("BEGIN IMMEDIATE") == statements.count("COMMIT") == 1
    assert members.by_card("C7") == "+989120000007"


def test_a_failing_snapshot_message_changes_nothing(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    commit_sale(dev)
    conn = dev.outbox.conn
    members = Members(conn, dev.id)
    good = _snap(PHONE, device_seqs={dev.id: 1}, cards=("C1",))
    broken = _snap("+989120000000", cards=(object(),))  # type: ignore[arg-type]
    with pytest.raises(sqlite3.ProgrammingError, match="not supported"):  # cannot bind it
        members.apply([good, broken], 1)
    assert not conn.in_transaction
    assert conn.execute("SELECT COUNT(*) FROM member_snapshot").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM member_delta").fetchone()[0] == 1
    assert members.by_card("C1") == "card:C1"
    # the same message without the broken snapshot applies, and drops the included delta
    assert members.apply([good], 2) == 1
    assert conn.execute("SELECT COUNT(*) FROM member_delta").fetchone()[0] == 0
    assert members.apply([good], 3) == 0  # a repeated snapshot is ignored
