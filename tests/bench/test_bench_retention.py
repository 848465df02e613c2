"""A busy till over a simulated year: the terminal database with retention."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from edge.checkout import Checkout
from edge.ledger_cache import retention
from edge.ledger_cache.outbox import OutboxView
from tests.helpers.checkout import FakeBank, make_checkout

pytestmark = pytest.mark.timeout(3600)

DAY = 86_400.0
PER_DAY = 840  # 14 hours x 60 sales, as in docs/operations.md
DAYS = 365
KEEP = 30


def _size(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def _day(co: Checkout, day: int) -> None:
    for i in range(PER_DAY):
        n = day * PER_DAY + i
        s = co.open(
            {
                "id": f"B{n}",
                "lines": [
                    {
                        "sku": f"A{n % 97}",
                        "category": "grocery",
                        "qty": 1 + n % 3,
                        "unit_price": 1_000_000,
                    },
                    {"sku": "DRK-COLA-1.5", "category": "drinks", "qty": 2, "unit_price": 450_000},
                ],
            }
        )
        if n % 2:
            co.identify(s.id, phone=f"0912{n % 5000:07d}")
        sale = co.pay(s.id, key=f"k{n}")
        if n % 100 == 7:  # one sale in a hundred comes back
            co.refunds.refund(sale["record"]["seq"], {"all": True})  # type: ignore[attr-defined]


def test_a_year_at_a_busy_till(benchmark: Any, tmp_path: Path) -> None:
    start = time.time() - DAYS * DAY
    now = [start]
    co = make_checkout(tmp_path, FakeBank(), enroll=True, wall=lambda: now[0])
    co.outbox.conn.execute("PRAGMA synchronous=OFF")  # the disk's speed is not measured here
    db = tmp_path / "edge.db"
    view = OutboxView(db)
    sizes: dict[int, int] = {}
    pruned = retention.Pruned()

    def year() -> None:
        nonlocal pruned
        for day in range(DAYS):
            now[0] = start + day * DAY + 8 * 3600
            _day(co, day)
            # head office acknowledges the day's records that night
            last, _ = view.counters()
            h = co.outbox.conn.execute("SELECT hash FROM outbox WHERE seq = ?", (last,)).fetchone()
            view.ack(last, bytes(h[0]), int(now[0] * 1000))
            now[0] = start + (day + 1) * DAY  # the hourly job, at midnight
            p = retention.prune_all(co.outbox.conn, int(now[0] * 1000), KEEP)
            pruned = retention.Pruned(pruned.sales + p.sales, pruned.payments + p.payments)
            if day + 1 in (KEEP, 90, 180, DAYS):
                sizes[day + 1] = _size(db)

    benchmark.pedantic(year, rounds=1, iterations=1)
    c = co.outbox.conn
    sales = c.execute("SELECT COUNT(*) FROM sales").fetchone()[0]
    assert sales <= (KEEP + 1) * PER_DAY and pruned.sales > 0
    per_day = sizes[KEEP] / KEEP
    benchmark.extra_info.update(
        {
            "sales_per_day": PER_DAY,
            "refund_days": KEEP,
            "sales_written": DAYS * PER_DAY,
            "sales_kept": sales,
            "payments_kept": c.execute("SELECT COUNT(*) FROM payments").fetchone()[0],
            "sales_pruned": pruned.sales,
            "payments_pruned": pruned.payments,
            "mb_after_30_days": round(sizes[KEEP] / 2**20, 1),
            "mb_after_90_days": round(sizes[90] / 2**20, 1),
            "mb_after_180_days": round(sizes[180] / 2**20, 1),
            "mb_after_a_year": round(sizes[DAYS] / 2**20, 1),
            # what the first 30 days' growth, kept for a year, would come to
            "mb_a_year_without_retention": round(per_day * DAYS / 2**20, 1),
        }
    )
    view.close()
