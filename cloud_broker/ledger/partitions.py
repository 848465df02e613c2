"""The ledger's large tables by month: PostgreSQL declarative partitions, and the month
arithmetic the archive shares on both engines.

``records``, ``journals``, ``entries`` and ``lot_moves`` grow with every sale and are
partitioned by RANGE on head office's own clock (never a terminal's): ``records.received_at``
and ``at`` on the other three (an entry and a lot move carry their journal's ``at``; a record
and its journal are written by the same batch with the same time).  A partition is a Jalali
month in Tehran time (``records_140509`` holds Azar 1405), so a month is archived by
detaching one table per kind, and a fiscal year (Farvardin to Esfand) is twelve of them.

A ``_default`` partition under each table catches a row no month partition covers (a
ledger left without :func:`ensure` for months), so an insert never fails for want of a
partition; :func:`ensure` moves such rows into their month when it creates it.

Partitioned tables cannot hold a unique key without the partition column: on PostgreSQL the
primary key of ``records`` is ``(device, seq, received_at)`` and ``records_hash`` is a plain
index.  A device's records are still applied once: the reconciler applies seq
``applied_through + 1`` only, under the device row's lock, and checks a replay's hash; a
device's ``applied_at`` keeps its records' times in seq order, so a month holds a contiguous
run of each device's chain and archiving takes a prefix of it (``ledger check`` relies on
that).  SQLite keeps its plain tables: there a month is a range of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud_broker.ledger.db import Tx
from edge.core import jalali
from edge.errors import LedgerError

TEHRAN_OFFSET_MS = 210 * 60 * 1000  # Iran has kept +03:30 all year since 2022

#: table -> the column its month is read from (ms, head office's clock)
KEYS = {"records": "received_at", "journals": "at", "entries": "at", "lot_moves": "at"}
AHEAD = 2  # months made in advance of the current one
MAX_MONTHS = 240  # a ledger's history made into partitions at most (older: default)


@dataclass(frozen=True, slots=True)
class Month:
    """A Jalali month and its bounds in ms since the epoch, [lo, hi)."""

    year: int
    month: int

    @property
    def first_day(self) -> int:
        return int(jalali.to_days(self.year, self.month, 1))

    @property
    def lo(self) -> int:
        return self.first_day * 86_400_000 - TEHRAN_OFFSET_MS

    @property
    def hi(self) -> int:
        return self.next().lo

    @property
    def label(self) -> str:  # "1405-09"
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def prev(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def table(self, name: str) -> str:
        return f"{name}_{self.year:04d}{self.month:02d}"


def month_of_ms(ms: int) -> Month:
    y, m, _ = jalali.from_days((ms + TEHRAN_OFFSET_MS) // 86_400_000)
    return Month(int(y), int(m))


def parse_month(text: str) -> Month:
    """``1405-09`` (Latin or Persian digits) -> Month; ValueError otherwise."""
    t = text.strip().translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789"))
    parts = t.replace("/", "-").split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a Jalali month such as 1405-09")
    y, m = int(parts[0]), int(parts[1])
    if not 1 <= m <= 12 or not 1300 <= y <= 1700:
        raise ValueError(f"{text!r} is not a Jalali month such as 1405-09")
    return Month(y, m)


def months(first: Month, last: Month) -> list[Month]:
    out = [first]
    while out[-1] != last and len(out) < MAX_MONTHS:
        out.append(out[-1].next())
    return out


def partitioned(tx: Tx) -> bool:
    """True on a PostgreSQL ledger whose large tables are partitioned."""
    if tx.dialect != "postgresql":
        return False
    row = tx.one(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = 'records' AND c.relnamespace = current_schema()::regnamespace"
    )
    return row is not None


def existing(tx: Tx, table: str) -> set[str]:
    """The partitions of ``table`` (names)."""
    rows = tx.all(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ? "
        "AND p.relnamespace = current_schema()::regnamespace",
        (table,),
    )
    return {str(r[0]) for r in rows}


def ensure(
    tx: Tx, now_ms: int, ahead: int = AHEAD, lock_timeout_ms: int | None = None
) -> list[str]:
    """Make the partitions of the current month and ``ahead`` more where missing (and of
    any month whose rows sit in a default partition); returns the partitions made.  A
    no-op on SQLite.  ``lock_timeout_ms``: give up (the database's lock error) rather than
    wait longer for a table lock, so that the inserts queued behind this statement's lock
    request (an archive reading a month holds its tables for long) do not wait too."""
    if not partitioned(tx):
        return []
    if lock_timeout_ms is not None:
        tx.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms'")
    made: list[str] = []
    cur = month_of_ms(now_ms)
    want = [cur]
    for _ in range(ahead):
        want.append(want[-1].next())
    for table, key in KEYS.items():
        have = existing(tx, table)
        lo, hi = tx.one(f"SELECT MIN({key}), MAX({key}) FROM {table}_default")
        extra = [] if lo is None else months(month_of_ms(int(lo)), month_of_ms(int(hi)))
        for m in sorted(set(want) | set(extra), key=lambda m: (m.year, m.month)):
            if m.table(table) not in have:
                make(tx, table, m)
                made.append(m.table(table))
    return made


def make(tx: Tx, table: str, m: Month) -> None:
    """The partition of ``table`` for month ``m``; rows of that month waiting in the
    default partition move into it."""
    key, name = KEYS[table], m.table(table)
    bounds = f"{key} >= {m.lo} AND {key} < {m.hi}"
    tx.execute(
        f"CREATE TEMP TABLE moving ON COMMIT DROP AS WITH gone AS (DELETE FROM "
        f"{table}_default WHERE {bounds} RETURNING *) SELECT * FROM gone"
    )
    tx.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ({m.lo}) TO ({m.hi})")
    tx.execute(f"INSERT INTO {table} SELECT * FROM moving")
    tx.execute("DROP TABLE moving")


# -- the migration that partitions an existing PostgreSQL ledger --------------------------

_COLUMNS = {
    "records": """device TEXT NOT NULL, seq BIGINT NOT NULL, hash BYTEA NOT NULL,
        prev BYTEA NOT NULL, tenant TEXT NOT NULL, store TEXT NOT NULL, type TEXT NOT NULL,
        member TEXT, device_time BIGINT NOT NULL, offline INTEGER NOT NULL,
        journal_id BIGINT, received_at BIGINT NOT NULL, raw BYTEA NOT NULL""",
    "journals": """id BIGINT GENERATED BY DEFAULT AS IDENTITY, tenant TEXT NOT NULL,
        kind TEXT NOT NULL, device TEXT, seq BIGINT, member TEXT, day INTEGER NOT NULL,
        at BIGINT NOT NULL""",
    "entries": """journal_id BIGINT NOT NULL, account TEXT NOT NULL, unit TEXT NOT NULL,
        amount BIGINT NOT NULL, at BIGINT NOT NULL""",
    "lot_moves": """id BIGINT GENERATED BY DEFAULT AS IDENTITY, journal_id BIGINT NOT NULL,
        lot_id BIGINT NOT NULL, points BIGINT NOT NULL, ref_journal BIGINT,
        at BIGINT NOT NULL""",
}
_COPY = {
    "records": "SELECT * FROM records_old",
    "journals": "SELECT * FROM journals_old",
    # (a row whose journal is missing, which ledger check would name, is kept: at 0, in
    # the default partition)
    "entries": "SELECT e.journal_id, e.account, e.unit, e.amount, COALESCE(j.at, 0) FROM "
    "entries_old e LEFT JOIN journals j ON j.id = e.journal_id",
    "lot_moves": "SELECT m.id, m.journal_id, m.lot_id, m.points, m.ref_journal, "
    "COALESCE(j.at, 0) FROM lot_moves_old m LEFT JOIN journals j ON j.id = m.journal_id",
}
_INDEXES = {
    "records": [
        "ALTER TABLE records ADD PRIMARY KEY (device, seq, received_at)",
        "CREATE INDEX records_hash ON records (hash)",
    ],
    "journals": [
        "ALTER TABLE journals ADD PRIMARY KEY (id, at)",
        "CREATE INDEX journals_member ON journals (member)",
        "CREATE INDEX journals_kind ON journals (kind, id)",
        "CREATE INDEX journals_member_id ON journals (member, id)",
    ],
    "entries": [
        "CREATE INDEX entries_journal ON entries (journal_id)",
        "CREATE INDEX entries_account ON entries (account)",
    ],
    "lot_moves": [
        "ALTER TABLE lot_moves ADD PRIMARY KEY (id, at)",
        "CREATE INDEX lot_moves_journal ON lot_moves (journal_id)",
    ],
}


def partition_ledger(tx: Tx, now_ms: int) -> None:
    """Rebuild the four large tables of a PostgreSQL ledger as partitioned tables, one
    partition a month from the oldest row to ``AHEAD`` months from now.  The rows are
    copied once (entries and lot moves take their journal's time); ids continue where
    they were.  Run inside the migration's transaction: all or nothing."""
    for table in KEYS:
        tx.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
    seqs = {
        t: int(tx.one(f"SELECT COALESCE(MAX(id), 0) FROM {t}_old")[0])
        for t in ("journals", "lot_moves")
    }
    first = tx.one(
        "SELECT LEAST((SELECT MIN(received_at) FROM records_old), "
        "(SELECT MIN(at) FROM journals_old))"
    )[0]
    cur = month_of_ms(now_ms)
    last = cur
    for _ in range(AHEAD):
        last = last.next()
    span = months(month_of_ms(int(first)) if first is not None else cur, last)
    for table, key in KEYS.items():
        tx.execute(f"CREATE TABLE {table} ({_COLUMNS[table]}) PARTITION BY RANGE ({key})")
        tx.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
        for m in span:
            tx.execute(
                f"CREATE TABLE {m.table(table)} PARTITION OF {table} FOR VALUES FROM "
                f"({m.lo}) TO ({m.hi})"
            )
    tx.execute("ALTER TABLE journals_old RENAME TO journals_keep")
    tx.execute("ALTER TABLE journals RENAME TO journals_new")
    tx.execute("ALTER TABLE journals_keep RENAME TO journals")  # the joins below read it
    tx.execute("INSERT INTO journals_new SELECT * FROM journals")
    for table in ("records", "entries", "lot_moves"):
        tx.execute(f"INSERT INTO {table} {_COPY[table]}")
    for table in KEYS:
        old = "journals" if table == "journals" else f"{table}_old"
        new = "journals_new" if table == "journals" else table
        had, has = (int(tx.one(f"SELECT COUNT(*) FROM {t}")[0]) for t in (old, new))
        if had != has:  # never: the copy is a plain INSERT ... SELECT; but rows are money
            raise LedgerError(f"migration 18: {table} had {had} rows, the copy {has}")
        tx.execute(f"DROP TABLE {old}")
    tx.execute("ALTER TABLE journals_new RENAME TO journals")
    for table in KEYS:
        for stmt in _INDEXES[table]:
            tx.execute(stmt)
    for t, top in seqs.items():
        tx.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), {max(top, 1)}, {top > 0})")
