"""The operator's day at a glance: sales and members today and this Jalali month, what the
club owes its members, every store and device and what it last said, what needs a look.

Sales come from ``sales_daily`` (kept in the transaction that applies each record, so the
figures are exact and cost a handful of rows, not a scan of the sales); members from their
indexed creation time; the liability from the members' balances.
"""

from __future__ import annotations

import time
from typing import Any

from cloud_broker.ledger.db import Database, Tx
from edge.core import jalali
from edge.core.ruleset import RuleSet

OFFSET_MIN = 210  # Tehran: the store's day, as the records count it


def local_day(now_ms: int | None = None) -> int:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return int((ms // 1000 + OFFSET_MIN * 60) // 86400)


def day_start_ms(day: int) -> int:
    return (day * 86400 - OFFSET_MIN * 60) * 1000


def month_start(day: int) -> int:
    y, m, _ = jalali.from_days(day)
    return int(jalali.to_days(y, m, 1))


def _sales(tx: Tx, first: int, last: int) -> dict[str, int]:
    row = tx.one(
        "SELECT COALESCE(SUM(sales), 0), COALESCE(SUM(revenue), 0), "
        "COALESCE(SUM(CASE WHEN member = 1 THEN sales ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN member = 1 THEN revenue ELSE 0 END), 0), "
        "COALESCE(SUM(discount), 0), COALESCE(SUM(points_earned), 0), "
        "COALESCE(SUM(refunded), 0) FROM sales_daily WHERE day >= ? AND day <= ?",
        (first, last),
    )
    keys = ("sales", "revenue", "member_sales", "member_revenue", "discount", "points", "refunded")
    return {k: int(v) for k, v in zip(keys, row, strict=True)}


def figures(db: Database, rs: RuleSet, now_ms: int | None = None) -> dict[str, Any]:
    today = local_day(now_ms)
    first = month_start(today)

    def run(tx: Tx) -> dict[str, Any]:
        out: dict[str, Any] = {"day": today, "month_start": first}
        out["today"] = _sales(tx, today, today)
        out["month"] = _sales(tx, first, today)
        members = tx.one(
            "SELECT COUNT(*), COALESCE(SUM(points), 0), COALESCE(SUM(wallet), 0) FROM members "
            "WHERE merged_into IS NULL"
        )
        out["members"] = int(members[0])
        out["new_today"] = int(
            tx.one("SELECT COUNT(*) FROM members WHERE created_at >= ?", (day_start_ms(today),))[0]
        )
        out["new_month"] = int(
            tx.one("SELECT COUNT(*) FROM members WHERE created_at >= ?", (day_start_ms(first),))[0]
        )
        points, wallet = int(members[1]), int(members[2])
        value = int(rs.policy.get("point_value_rials", 0))
        out["liability"] = {
            "points": points,
            "points_rials": points * value,
            "wallet": wallet,
            "total_rials": points * value + wallet,
            "point_value": value,
        }
        out["devices"] = devices(tx)
        out["alerts_open"] = int(
            tx.one("SELECT COUNT(*) FROM alerts WHERE acknowledged_at IS NULL")[0]
        )
        out["quarantine_open"] = int(
            tx.one(
                "SELECT COUNT(*) FROM quarantine WHERE resolved_at IS NULL AND code IN "
                "('conflict', 'broken_chain', 'orphaned', 'revoked')"
            )[0]
        )
        out["quarantine_all"] = int(tx.one("SELECT COUNT(*) FROM quarantine")[0])
        return out

    return db.run(run, write=False)


def devices(tx: Tx) -> list[dict[str, Any]]:
    """Every device with its store, registry state and what it last said of itself."""
    rows = tx.all(
        "SELECT d.device, d.store, d.status, d.applied_through, d.last_seen_at, s.state, "
        "s.reason, s.depth, s.rules_version, s.received_at, st.name_fa, st.name_en "
        "FROM devices d LEFT JOIN device_status s ON s.device = d.device "
        "LEFT JOIN stores st ON st.store = d.store ORDER BY d.store, d.device"
    )
    keys = (
        "device",
        "store",
        "registry",
        "applied_through",
        "last_seen_at",
        "state",
        "reason",
        "depth",
        "rules_version",
        "status_at",
        "store_fa",
        "store_en",
    )
    return [dict(zip(keys, r, strict=True)) for r in rows]
