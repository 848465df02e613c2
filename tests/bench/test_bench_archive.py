"""Months of the ledger: the migration that partitions an existing ledger, and archiving a
month, on a ledger of 30,000 sales over three months (both databases)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.ledger import archive
from cloud_broker.ledger.partitions import Month
from cloud_broker.ledger.schema import MIGRATIONS
from tests.helpers.headoffice import HO
from tests.helpers.ledger17 import back_to_17
from tests.helpers.terminal import DAY0, Terminal

pytestmark = pytest.mark.timeout(3600)

DEVICES = 20
PER_DEVICE = 1500  # 30,000 sales, 10,000 a month
MONTHS = (Month(1404, 1), Month(1404, 2), Month(1404, 3))
MEMBERS = [f"+98912{i:07d}" for i in range(2000)]
NOW = Month(1405, 6).lo


def _fill(ho: HO, tmp: Path) -> None:
    terms = [Terminal(tmp, f"pos-{i:02d}", f"s{i % 5}") for i in range(DEVICES)]
    ho.register(*terms)
    per_month = PER_DEVICE // len(MONTHS)
    for k, m in enumerate(MONTHS):
        for t in terms:
            t.outbox._conn.execute("PRAGMA synchronous=OFF")  # fast set-up only
            t.time.to_day(DAY0 + 31 * k)
            recs = [
                t.sale(MEMBERS[i * DEVICES % len(MEMBERS)], earned=100, redeemed=50 * (i % 4 == 3))
                for i in range(per_month)
            ]
            for j in range(0, len(recs), 500):
                ho.feed(t, recs[j : j + 500], now_ms=m.lo + 3_600_000 + j)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_ledger_months(
    benchmark: Any, tmp_path: Path, engine: str, pg_url_factory: Callable[[], str]
) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db" if engine == "sqlite" else pg_url_factory()
    ho = HO(url)
    _fill(ho, tmp_path)
    rows = {t: int(ho.one(f"SELECT COUNT(*) FROM {t}")) for t in
            ("records", "journals", "entries", "lot_moves")}  # fmt: skip
    ho.db.run(back_to_17)
    t0 = time.perf_counter()
    ho.db.migrate(MIGRATIONS)
    migrate_s = time.perf_counter() - t0
    assert ho.check() == []
    done: list[archive.Archived] = []

    def first_month() -> None:
        done.append(archive.archive_month(ho.db, MONTHS[0], tmp_path / "a", "bench", now_ms=NOW))

    benchmark.pedantic(first_month, rounds=1, iterations=1)
    t0 = time.perf_counter()
    archive.verify(done[0].path, done[0].sha256, archive.key_finder(ho.db))
    verify_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    failures = ho.check()
    check_s = time.perf_counter() - t0
    assert failures == []
    archived = done[0].counts
    assert archived["records"] == DEVICES * PER_DEVICE // len(MONTHS)
    all_rows = sum(rows.values())
    benchmark.extra_info.update(
        {
            "engine": engine,
            "records": rows["records"],
            "rows_in_the_four_tables": all_rows,
            "migration_s": round(migrate_s, 1),
            "migration_rows_per_s": round(all_rows / migrate_s),
            "archived_records": archived["records"],
            "archived_rows": sum(archived.values()),
            "archive_bytes_per_record": round(done[0].size / archived["records"]),
            "verify_s_with_signatures": round(verify_s, 1),
            "check_s_after": round(check_s, 1),
        }
    )
    ho.close()
