"""The database adapter: reads beside a writer, a lost PostgreSQL connection."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest

from cloud_broker.ledger.check import check
from cloud_broker.ledger.db import Database
from cloud_broker.reconcile.service import build_snapshots
from cloud_broker.registry.devices import RegistryCache
from tests.cloud.conftest import PG_DSN
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal

ALI = "+989121234567"


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_reads_do_not_wait_for_a_writer(ho: HO, pos: Terminal, ledger_url: str) -> None:
    ho.feed(pos, [pos.sale(ALI, earned=5)])
    writer = sqlite3.connect(ledger_url[len("sqlite:///") :], isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process, mid-commit
    got: dict[str, Any] = {}
    done = threading.Event()

    def reads() -> None:
        got["read"] = ho.db.read("SELECT COUNT(*) FROM records")[0][0]
        got["check"] = check(ho.db)[0]
        got["device"] = RegistryCache(ho.db, ttl=0).get(pos.device)
        got["snapshots"] = ho.db.run(lambda tx: build_snapshots(tx, [ALI], 365), write=False)
        done.set()

    th = threading.Thread(target=reads, daemon=True)
    th.start()
    try:
        assert done.wait(10), "a read waited for the write lock"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        th.join(70)
    assert got["read"] == 1 and got["check"] == []
    assert got["device"].store == "s1" and got["snapshots"][0][1].points == 5


@pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)
def test_a_lost_postgresql_connection_is_reopened(ledger_url: str) -> None:
    import psycopg

    db = Database(ledger_url)
    try:
        pid = db.read("SELECT pg_backend_pid()")[0][0]
        with psycopg.connect(PG_DSN, autocommit=True) as c:
            # a server restart, say (waiting up to 5 s for the backend to end)
            c.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        assert db.read("SELECT 1") == [(1,)]
        assert db.read("SELECT pg_backend_pid()")[0][0] != pid
        assert isinstance(db.errors, tuple) and issubclass(psycopg.Error, db.errors)
    finally:
        db.close()
