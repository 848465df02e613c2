"""``sales_daily``: each store's sales, refunds, points and cashback per Tehran day, for
members and for anonymous customers apart.  The reconciler adds every record it applies in
the transaction that applies it; ``ledger check`` recomputes the table from the records
with the same function; the console's figures read it instead of the records."""

from __future__ import annotations

from typing import Any

from cloud_broker.ledger.db import Tx
from edge.core import record as R


def local_day(payload: dict[int, Any]) -> int:
    """The day (since 1970-01-01) of a record in its own time zone: the day it happened."""
    t = payload[R.K_TIME]
    return int((t[R.T_WALL] // 1000 + t[R.T_OFFSET] * 60) // 86400)


DAILY_COLUMNS = (
    "sales",
    "gross",
    "discount",
    "wallet_used",
    "revenue",
    "points_earned",
    "points_redeemed",
    "cashback",
    "refunds",
    "refunded",
)
DailyKey = tuple[str, str, int, int]  # tenant, store, day, 1 for a member's (0 anonymous)


def daily_figures(p: dict[int, Any]) -> list[int]:
    """What one sale, refund or void adds to its day's row of ``sales_daily`` (the same
    function serves the reconciler and ``ledger check``'s recomputation)."""
    a, pts, w = p[R.K_AMOUNTS], p[R.K_POINTS], p[R.K_WALLET]
    if p[R.K_TYPE] == "sale":
        return [
            1,
            a[R.A_GROSS],
            a[R.A_DISCOUNT],
            a[R.A_WALLET],
            a[R.A_PAID],
            pts[R.P_EARNED],
            pts[R.P_REDEEMED],
            w[R.W_CASHBACK],
            0,
            0,
        ]
    # a refund or void: what it gives back comes off the day of the refund
    return [
        0,
        0,
        0,
        0,
        0,
        -pts[R.P_EARNED],
        -pts[R.P_REDEEMED],
        -w[R.W_CASHBACK],
        1,
        a[R.A_PAID],
    ]


def flush_daily(tx: Tx, rows: dict[DailyKey, list[int]]) -> None:
    """Add the batch's figures to ``sales_daily`` (one upsert per row touched)."""
    cols = ", ".join(DAILY_COLUMNS)
    marks_ = ", ".join("?" * len(DAILY_COLUMNS))
    sets = ", ".join(f"{c} = sales_daily.{c} + excluded.{c}" for c in DAILY_COLUMNS)
    tx.executemany(
        f"INSERT INTO sales_daily (tenant, store, day, member, {cols}) VALUES (?, ?, ?, ?, "
        f"{marks_}) ON CONFLICT (tenant, store, day, member) DO UPDATE SET {sets}",
        [(*k, *v) for k, v in sorted(rows.items())],
    )
