"""A chain's ledger, written directly: N members and M sale records with everything the
console and the reports read about them, for their benchmarks.

    python -m tests.bench.ledger_gen --ledger sqlite:///var/bench/big.db \\
        --members 500000 --records 5000000

What it writes (tenant ``bench``, 100 stores of 5 terminals each):

* members: 90% phone numbers (+98912...), 10% NFC cards (``card:04...``) of whom half also
  have a card linked to a phone member; each with a Persian name (first and last names from
  a list, so a name search finds thousands and must stop at its limit);
* records: M sales, 30% by anonymous customers; members drawn with a skew (a tenth of them
  make a fifth of the sales), a seventh of them drifters who stopped two months ago; days
  weighted by the season (weekends, the weeks before Nowruz, Yalda: see
  tests.helpers.chain.season) over the last year (or ``--days``); each row is a real sale
  record, raw bytes included, drawn from 64 signed templates with one to six lines (the
  console parses them as it would any record; their signatures and chain are not the row's,
  which nothing here checks);
* journals, entries (points from ``S:bench:points_issued``), one point lot per member's sale
  with its expiry and its move, each device's hash chain, ``member_spend`` per member and
  day, the reports' daily tables (``sales_daily``, ``category_daily``, ``sku_daily``), tier
  upgrades, and each member's balances, visits, tier and first and last day as the
  reconciler would leave them.

``ledger check`` passes on it but for the daily tables' invariants: it recomputes them from
the records' raw bytes, which are the templates' (their store and time), not the row's.

The database is first migrated by head office's own migrations; secondary indexes are
dropped during the load and built again after (as a bulk load does).  Deterministic for a
given seed.  On PostgreSQL rows go through COPY.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import itertools
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cloud_broker.ledger.daily import month_of
from cloud_broker.ledger.db import Database
from cloud_broker.ledger.schema import MIGRATIONS
from edge.core import record as R
from tests.helpers.chain import season
from tests.helpers.terminal import Terminal

VERSION = 3  # bump when what is written changes: cached ledgers are then rebuilt
TENANT = "bench"
STORES = 100
DEVICES = 500
CHUNK = 50_000
ANONYMOUS_SHARE = 0.3  # sales to customers who did not identify themselves
SKEW = 1.6  # member = members * U**SKEW: the first tenth of members make a fifth of sales
FIRST = (
    "علی", "محمد", "رضا", "حسین", "مهدی", "امیر", "حمید", "کاوه", "بابک", "سعید",
    "مریم", "زهرا", "فاطمه", "سارا", "نرگس", "لیلا", "شیرین", "پریسا", "مینا", "نازنین",
)  # fmt: skip
LAST = (
    "کریمی", "احمدی", "محمدی", "رضایی", "حسینی", "موسوی", "جعفری", "کاظمی", "رحیمی",
    "صادقی", "قاسمی", "نوری", "تهرانی", "شیرازی", "اصفهانی", "یزدی", "کرمانی", "رستمی",
)  # fmt: skip
RECORD_COLS = ("device", "seq", "hash", "prev", "tenant", "store", "type", "member",
               "device_time", "offline", "journal_id", "received_at", "raw")  # fmt: skip
# secondary indexes rebuilt after the load
INDEXES = ("records_hash", "journals_member_id", "entries_journal", "entries_account",
           "lots_member", "lots_origin", "members_name", "members_created",
           "member_cards_member", "journals_kind")  # fmt: skip


def _hash(device: int, seq: int) -> bytes:
    return hashlib.sha256(f"{device}/{seq}".encode()).digest()


def member_key(i: int) -> str:
    return f"card:04{i:08X}" if i % 10 == 9 else f"+98912{i:07d}"


Template = tuple[bytes, int, int, int, list[tuple[str, str, int, int, int, int]]]


def templates(n: int = 64) -> list[Template]:
    """Signed sale records: (raw, paid, points earned, gross, lines), each line (sku,
    category, qty, gross, discount, paid)."""
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Terminal(Path(tmp), "tmpl-1", "s000", TENANT)
        for k in range(n):
            lines = 1 + k % 6
            each = 100_000 + 50_000 * k
            discount = (k % 3) * 10_000
            earned = each * lines // 10_000
            items = [
                {"sku": f"SKU-{k}-{j}", "category": ("dairy", "grocery", "home")[j % 3],
                 "qty": 1, "unit_price": each, "discount": discount if j == 0 else 0,
                 "wallet": 0, "paid": each - (discount if j == 0 else 0),
                 "points": earned if j == 0 else 0, "redeemed": 0, "cashback": 0}
                for j in range(lines)
            ]  # fmt: skip
            gross = each * lines
            body = R.sale_body(
                {"subtotal": gross, "discount": discount, "wallet_used": 0,
                 "payable": gross - discount, "points_earned": earned, "points_redeemed": 0,
                 "wallet_earned": 0, "rules_version": 1, "lines": items, "applied": []}
            )  # fmt: skip
            r = t.outbox.commit("sale", body, member=None, charged=True)
            lns = [(str(x["sku"]), str(x["category"]), 1, each, int(x["discount"]), int(x["paid"]))
                   for x in items]  # fmt: skip
            out.append((r.raw, gross - discount, earned, gross, lns))
    return out


class Writer:
    """Bulk rows into SQLite (executemany, one transaction per chunk) or PostgreSQL (COPY)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pg = url.startswith("postgresql")
        if self.pg:
            import psycopg

            self.conn: Any = psycopg.connect(url, autocommit=False)
        else:
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            self.conn.execute("PRAGMA synchronous=OFF")

    def rows(self, table: str, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.pg:
            with (
                self.conn.cursor() as cur,
                cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp,
            ):
                for r in rows:
                    cp.write_row(r)
        else:
            marks = ", ".join("?" * len(cols))
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})",
                rows,
            )

    def sql(self, text: str, params: tuple[Any, ...] = ()) -> list[Any]:
        cur = self.conn.execute(text.replace("?", "%s") if self.pg else text, params)
        try:
            return list(cur.fetchall())
        except Exception:
            return []

    def commit(self) -> None:
        self.conn.commit()

    def drop_indexes(self) -> list[str]:
        if self.pg:
            defs = [
                str(r[0])
                for r in self.sql(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                    "AND indexname = ANY(?)",
                    (list(INDEXES),),
                )
            ]
        else:
            defs = [
                str(r[0])
                for r in self.sql(
                    f"SELECT sql FROM sqlite_master WHERE type = 'index' AND name IN "
                    f"({', '.join('?' * len(INDEXES))})",
                    INDEXES,
                )
            ]
        for name in INDEXES:
            self.sql(f"DROP INDEX IF EXISTS {name}")
        self.commit()
        return defs

    def close(self) -> None:
        self.conn.close()


def tier_of(m: int, members: int) -> str:
    """A member's tier: the few who buy most (the lowest numbers, see SKEW) are gold."""
    share = m / members
    return ("gold" if share < 0.03 else "silver" if share < 0.12 else "bronze" if share < 0.3
            else "regular")  # fmt: skip


def _chunks(n: int) -> Iterator[range]:
    for start in range(0, n, CHUNK):
        yield range(start, min(n, start + CHUNK))


def generate(
    url: str, members: int, records: int, seed: int = 1405, say: Any = print, days: int = 365
) -> None:
    """Write the ledger (see the module docstring) into an empty, just-made ``url``."""
    db = Database(url)
    db.migrate(MIGRATIONS)
    db.close()
    rng = random.Random(seed)
    tmpl = templates()
    now_ms = int(time.time() * 1000)
    today = int((now_ms // 1000 + 210 * 60) // 86400)
    w = Writer(url)
    w.sql("CREATE TABLE bench_meta (version INTEGER, members BIGINT, records BIGINT)")
    defs = w.drop_indexes()
    t0 = time.monotonic()
    last = [records // DEVICES + (1 if d < records % DEVICES else 0) for d in range(DEVICES)]
    w.rows("devices", ("device", "tenant", "store", "public_key", "enrolled_at",
                       "applied_through", "last_hash"),
           [(f"dev-{d:03d}", TENANT, f"s{d % STORES:03d}", bytes(32), now_ms, last[d],
             _hash(d, last[d]) if last[d] else None) for d in range(DEVICES)])  # fmt: skip
    # members' running figures: points, visits, spend per day
    points = [0] * members
    visits = [0] * members
    first_day = [0] * members
    last_day = [0] * members
    seqs = [0] * DEVICES
    spend: dict[tuple[int, int], int] = {}
    daily: dict[tuple[str, int, int], list[int]] = {}
    cats: dict[tuple[str, int, str, str], list[int]] = {}
    skus: dict[tuple[int, str, str], list[int]] = {}
    # busier days weigh more: weekends, the weeks before Nowruz, Yalda (tests.helpers.chain)
    weights = list(itertools.accumulate(season(today - k) for k in range(days)))
    for part in _chunks(records):
        recs, jrn, ent, lots, moves = [], [], [], [], []
        for i in part:
            anonymous = rng.random() < ANONYMOUS_SHARE
            m = min(members - 1, int(members * rng.random() ** SKEW))  # a few buy a lot
            d = i % DEVICES
            seqs[d] += 1
            seq = seqs[d]
            raw, paid, earned, gross, lns = tmpl[rng.randrange(len(tmpl))]
            day = today - bisect.bisect_left(weights, rng.random() * weights[-1])
            if not anonymous and m % 7 == 3 and day > today - 60:
                day -= 60  # a drifter: nothing in the last two months
            at = (day * 86400 - 210 * 60 + 9 * 3600 + rng.randrange(12 * 3600)) * 1000
            key = None if anonymous else member_key(m)
            store = f"s{d % STORES:03d}"
            jid = i + 1
            h = _hash(d, seq)
            prev = _hash(d, seq - 1) if seq > 1 else bytes(32)
            recs.append((f"dev-{d:03d}", seq, h, prev, TENANT, store, "sale", key, at, 0,
                         jid, at, raw))  # fmt: skip
            jrn.append((jid, TENANT, "sale", f"dev-{d:03d}", seq, key, day, at))
            row = daily.setdefault((store, day, int(key is not None)), [0, 0, 0, 0])
            row[0] += 1
            row[1] += gross
            row[2] += paid
            row[3] += earned if key else 0
            tier = "" if key is None else tier_of(m, members)
            for sku, cat, qty, lgross, ldisc, lpaid in lns:
                c = cats.setdefault((store, day, tier, cat), [0, 0, 0, 0])
                c[0] += qty
                c[1] += lgross
                c[2] += ldisc
                c[3] += lpaid
                k = skus.setdefault((day, sku, cat), [0, 0, 0, 0])
                k[0] += qty
                k[1] += lgross
                k[2] += ldisc
                k[3] += lpaid
            if key is None:
                continue
            ent.append((jid, f"M:{key}:PTS", "PTS", earned))
            ent.append((jid, f"S:{TENANT}:points_issued", "PTS", -earned))
            lots.append((jid, key, jid, f"dev-{d:03d}", seq, "earn", earned, earned, day,
                         day + 365))  # fmt: skip
            moves.append((jid, jid, jid, earned))
            points[m] += earned
            visits[m] += 1
            first_day[m] = min(first_day[m] or day, day)
            last_day[m] = max(last_day[m], day)
            spend[(m, day)] = spend.get((m, day), 0) + paid
        w.rows("records", RECORD_COLS, recs)
        w.rows("journals", ("id", "tenant", "kind", "device", "seq", "member", "day", "at"), jrn)
        w.rows("entries", ("journal_id", "account", "unit", "amount"), ent)
        w.rows("lots", ("id", "member", "journal_id", "device", "seq", "kind", "earned",
                        "remaining", "earned_day", "expires_day"), lots)  # fmt: skip
        w.rows("lot_moves", ("id", "journal_id", "lot_id", "points"), moves)
        w.commit()
        if part.stop % 1_000_000 == 0:
            say(f"  {part.stop:,} records ({time.monotonic() - t0:.0f} s)")
    ups: list[tuple[str, int, str, str, int]] = []
    for part in _chunks(members):
        rows, cards = [], []
        for m in part:
            key = member_key(m)
            name = f"{FIRST[m % len(FIRST)]} {LAST[(m // len(FIRST)) % len(LAST)]}"
            rows.append((key, TENANT, now_ms - m * 1000, points[m], 0, tier_of(m, members),
                         visits[m], name, name, 1, first_day[m] or None,
                         last_day[m] or None))  # fmt: skip
            if tier_of(m, members) != "regular" and m % 3 == 0:
                ups.append((key, today - m % days, "regular", tier_of(m, members), 1))
            if m % 10 == 9:
                cards.append((f"04{m:08X}", key))
            elif m % 20 == 3:
                cards.append((f"0F{m:08X}", key))  # an RFID card linked to a phone member
        w.rows("members", ("member", "tenant", "created_at", "points", "wallet", "tier",
                           "visits", "name", "name_key", "version", "first_day", "last_day"),
               rows)  # fmt: skip
        w.rows("member_cards", ("card", "member"), cards)
        w.commit()
    items = sorted(spend.items())
    for start in range(0, len(items), CHUNK):
        w.rows("member_spend", ("member", "day", "amount"),
               [(member_key(m), day, a) for (m, day), a in items[start:start + CHUNK]])  # fmt: skip
        w.commit()
    w.rows("sales_daily", ("tenant", "store", "day", "member", "sales", "gross", "revenue",
                           "points_earned"),
           [(TENANT, s, day, mem, *v) for (s, day, mem), v in sorted(daily.items())])  # fmt: skip
    w.rows("category_daily", ("tenant", "store", "day", "tier", "category", "qty", "gross",
                              "discount", "revenue"),
           [(TENANT, *k, *v) for k, v in sorted(cats.items())])  # fmt: skip
    w.rows("sku_daily", ("tenant", "day", "sku", "category", "qty", "gross", "discount",
                         "revenue"),
           [(TENANT, *k, *v) for k, v in sorted(skus.items())])  # fmt: skip
    cat_months: dict[tuple[str, int, str, str], list[int]] = {}
    for (store, day, tier, cat), v in cats.items():
        acc = cat_months.setdefault((store, month_of(day), tier, cat), [0, 0, 0, 0])
        for i, x in enumerate(v):
            acc[i] += x
    sku_months: dict[tuple[int, str, str], list[int]] = {}
    for (day, sku, cat), v in skus.items():
        acc = sku_months.setdefault((month_of(day), sku, cat), [0, 0, 0, 0])
        for i, x in enumerate(v):
            acc[i] += x
    w.rows("category_monthly", ("tenant", "store", "month", "tier", "category", "qty", "gross",
                                "discount", "revenue"),
           [(TENANT, *k, *v) for k, v in sorted(cat_months.items())])  # fmt: skip
    w.rows("sku_monthly", ("tenant", "month", "sku", "category", "qty", "gross", "discount",
                           "revenue"),
           [(TENANT, *k, *v) for k, v in sorted(sku_months.items())])  # fmt: skip
    w.rows("tier_changes", ("member", "day", "from_tier", "to_tier", "up"), ups)
    w.rows("bench_meta", ("version", "members", "records"), [(VERSION, members, records)])
    w.commit()
    say(f"  rows written in {time.monotonic() - t0:.0f} s; building indexes")
    for index_sql in defs:
        w.sql(index_sql)
        w.commit()
    if w.pg:  # rows written with their ids: the identity sequences continue after them
        for table in ("journals", "lots", "lot_moves"):
            w.sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                  f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")  # fmt: skip
    w.sql("ANALYZE")
    w.commit()
    w.close()
    say(f"  done in {time.monotonic() - t0:.0f} s")


def ready(url: str, members: int, records: int) -> bool:
    """Whether ``url`` holds a ledger this generator (this version) made at this size."""
    try:
        db = Database(url)
        try:
            rows = db.read("SELECT version, members, records FROM bench_meta")
        finally:
            db.close()
    except Exception:
        return False
    return [tuple(r) for r in rows] == [(VERSION, members, records)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.ledger_gen", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--ledger", required=True)
    ap.add_argument("--members", type=int, default=500_000)
    ap.add_argument("--records", type=int, default=5_000_000)
    ap.add_argument("--seed", type=int, default=1405)
    ap.add_argument("--days", type=int, default=365, help="the sales spread over these days")
    a = ap.parse_args(argv)
    generate(a.ledger, a.members, a.records, a.seed, days=a.days)
    return 0


if __name__ == "__main__":
    sys.exit(main())
