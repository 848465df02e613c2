"""The terminal's SQLite database: connection settings and versioned migrations.

Durability settings: WAL journal, ``synchronous=FULL`` (a commit that returned survives
a power cut), foreign keys on, a busy timeout for the uplink thread's connection.  The
schema version lives in ``PRAGMA user_version``; each migration runs in its own
transaction and a database newer than this code is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge.errors import DiskFullError, StorageError

MIGRATIONS: list[str] = [
    # 1: device counters, outbox, local member deltas, cached member snapshots and rules
    """
    CREATE TABLE device (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        tenant TEXT NOT NULL,
        store TEXT NOT NULL,
        device TEXT NOT NULL,
        next_seq INTEGER NOT NULL,
        last_hash BLOB NOT NULL,
        applied_through INTEGER NOT NULL DEFAULT 0,
        applied_hash BLOB,
        last_ack_ms INTEGER,
        outbox_rows INTEGER NOT NULL DEFAULT 0,
        outbox_bytes INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        record BLOB NOT NULL,
        hash BLOB NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE member_delta (
        seq INTEGER PRIMARY KEY,
        member TEXT NOT NULL,
        day TEXT NOT NULL,
        points INTEGER NOT NULL,
        wallet INTEGER NOT NULL,
        spend INTEGER NOT NULL,
        discount INTEGER NOT NULL,
        earned INTEGER NOT NULL,
        visits INTEGER NOT NULL,
        info TEXT
    );
    CREATE INDEX member_delta_member ON member_delta (member);
    CREATE TABLE member_snapshot (
        member TEXT PRIMARY KEY,
        doc TEXT NOT NULL,
        as_of_ms INTEGER NOT NULL
    );
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    """,
    # 2: the checkout's durable state: payment intents (so a crash between the bank's
    #    approval and the commit is recovered), sales kept for refunds, card -> member
    """
    CREATE TABLE payments (
        id INTEGER PRIMARY KEY,
        session TEXT NOT NULL,
        basket TEXT,
        member TEXT,
        amount INTEGER NOT NULL,
        state TEXT NOT NULL,
        quote TEXT NOT NULL,
        ident TEXT,
        bank TEXT,
        seq INTEGER,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE INDEX payments_state ON payments (state);
    CREATE TABLE sales (
        seq INTEGER PRIMARY KEY,
        hash BLOB NOT NULL,
        basket TEXT,
        member TEXT,
        quote TEXT NOT NULL,
        refunded TEXT NOT NULL DEFAULT '[]',
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX sales_basket ON sales (basket);
    CREATE TABLE cards (
        card TEXT PRIMARY KEY,
        member TEXT NOT NULL
    );
    """,
    # 3: money going back to the card goes through the same intents as money coming in;
    #    the POS's idempotency key (one charge per key, across restarts) and the answer
    #    it was given, for a repeat
    """
    ALTER TABLE payments ADD COLUMN kind TEXT NOT NULL DEFAULT 'sale';
    ALTER TABLE payments ADD COLUMN idem TEXT;
    ALTER TABLE payments ADD COLUMN result TEXT;
    ALTER TABLE payments ADD COLUMN orig_seq INTEGER;
    ALTER TABLE payments ADD COLUMN request TEXT;
    CREATE UNIQUE INDEX payments_idem ON payments (idem)
        WHERE idem IS NOT NULL AND state NOT IN ('declined', 'cancelled');
    ALTER TABLE sales ADD COLUMN bank TEXT;
    """,
]


def connect(path: Path | str, *, migrate: bool = True) -> sqlite3.Connection:
    """Open the database with the durability settings and bring its schema up to date."""
    try:
        conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=True)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        # a terminal's working set is small: 512 KiB of pages per connection, not 2 MiB
        conn.execute("PRAGMA cache_size=-512")
        conn.execute("PRAGMA foreign_keys=ON")
        if migrate:
            _migrate(conn)
    except sqlite3.DatabaseError as e:
        raise StorageError(f"cannot open the terminal database {path}: {e}") from e
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; on any error ``ROLLBACK`` and re-raise.

    On some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM) SQLite has already rolled
    the transaction back itself; a second ROLLBACK would fail with "no transaction is
    active" and hide the real error, so it is issued only if a transaction is open.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.OperationalError as e:
        if is_full(e):
            raise DiskFullError(f"the terminal's disk is full: {e}", fa=DISK_FULL_FA) from e
        raise


DISK_FULL_FA = "دیسک پایانه پر است"


def is_full(e: BaseException) -> bool:
    """SQLITE_FULL: the file system has no room (not the outbox's own limit)."""
    return isinstance(e, sqlite3.OperationalError) and (
        getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(e)
    )


def write(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
    """One statement in autocommit, with a full disk reported as DiskFullError."""
    try:
        return conn.execute(sql, params)
    except sqlite3.OperationalError as e:
        if is_full(e):
            raise DiskFullError(f"the terminal's disk is full: {e}", fa=DISK_FULL_FA) from e
        raise


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StorageError(
            f"database schema {version} is newer than this software "
            f"({len(MIGRATIONS)}); refusing to touch it"
        )
    for v in range(version, len(MIGRATIONS)):
        with transaction(conn):
            # re-check under the write lock: another process may have migrated meanwhile
            if conn.execute("PRAGMA user_version").fetchone()[0] != v:
                continue
            for stmt in MIGRATIONS[v].split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute(f"PRAGMA user_version={v + 1}")
