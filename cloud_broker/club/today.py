"""The operator's day at a glance: sales and members today and this Jalali month, what the
club owes its members, every store and device and what it last said, what needs a look.

Sales come from ``sales_daily`` (kept in the transaction that applies each record, so the
figures are exact and cost a handful of rows, not a scan of the sales); members from their
indexed creation time; the liability from the members' balances.
"""

from __future__ import annotations

import threading
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


class Totals:
    """The members, the new ones and what the club owes them: a scan of every member (a
    tenth of a second on half a million), so it is computed at most once a minute by whoever
    asks first (the console counts in the background), and the page says as of when.
    Thread-safe."""

    def __init__(self, max_age_s: float = 60.0) -> None:
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._value: tuple[float, dict[str, int]] | None = None

    def get(self, db: Database) -> dict[str, int]:
        v = self._value
        if v is not None and time.monotonic() - v[0] < self.max_age_s:
            return v[1]
        if not self._lock.acquire(blocking=v is None):
            return v[1] if v is not None else self.refresh(db)  # another thread refreshes
        try:
            return self.refresh(db)
        finally:
            self._lock.release()

    def refresh(self, db: Database) -> dict[str, int]:
        row = db.read(
            "SELECT COUNT(*), COALESCE(SUM(points), 0), COALESCE(SUM(wallet), 0) FROM members "
            "WHERE merged_into IS NULL"
        )[0]
        today = local_day()
        new = db.read(
            "SELECT COALESCE(SUM(CASE WHEN created_at >= ? THEN 1 ELSE 0 END), 0), COUNT(*) "
            "FROM members WHERE created_at >= ?",
            (day_start_ms(today), day_start_ms(month_start(today))),
        )[0]
        value = {"members": int(row[0]), "points": int(row[1]), "wallet": int(row[2]),
                 "new_today": int(new[0]), "new_month": int(new[1]),
                 "at": int(time.time() * 1000)}  # fmt: skip
        self._value = (time.monotonic(), value)
        return value


def figures(
    db: Database, rs: RuleSet, totals: Totals | None = None, now_ms: int | None = None
) -> dict[str, Any]:
    today = local_day(now_ms)
    first = month_start(today)
    counted = (totals or Totals(0)).get(db)

    def run(tx: Tx) -> dict[str, Any]:
        out: dict[str, Any] = {"day": today, "month_start": first}
        out["today"] = _sales(tx, today, today)
        out["month"] = _sales(tx, first, today)
        out["members"] = counted["members"]
        out["counted_at"] = counted["at"]
        out["new_today"] = counted["new_today"]
        out["new_month"] = counted["new_month"]
        points, wallet = counted["points"], counted["wallet"]
        value = int(rs.policy.get("point_value_rials", 0))
        out["liability"] = {
            "points": points,
            "points_rials": points * value,
            "wallet": wallet,
            "total_rials": points * value + wallet,
            "point_value": value,
        }
        out["fleet"] = fleet(tx, rs.version)
        out["alerts_open"] = int(
            tx.one("SELECT COUNT(*) FROM alerts WHERE acknowledged_at IS NULL")[0]
        )
        out["quarantine_open"] = int(
            tx.one(
                "SELECT COUNT(*) FROM quarantine WHERE resolved_at IS NULL AND code IN "
                "('conflict', 'broken_chain', 'orphaned', 'revoked')"
            )[0]
        )
        # rows are never deleted: the newest id is how many were refused in all
        out["quarantine_all"] = int(tx.one("SELECT COALESCE(MAX(id), 0) FROM quarantine")[0])
        return out

    return db.run(run, write=False)


def fleet(tx: Tx, version: int, show: int = 30) -> dict[str, Any]:
    """Devices online, offline and revoked, and those that need a look (offline, records
    waiting in their outbox, or not on the newest rules): the worst ``show`` of them."""
    counts = {"online": 0, "offline": 0, "revoked": 0, "behind": 0}
    attention = []
    for d in devices(tx):
        if d["registry"] != "active":
            counts["revoked"] += 1
            continue
        online = d["state"] == "online"
        counts["online" if online else "offline"] += 1
        behind = d["rules_version"] is not None and d["rules_version"] < version
        counts["behind"] += int(behind)
        if not online or (d["depth"] or 0) > 0 or behind:
            attention.append(d)
    attention.sort(key=lambda d: (d["state"] == "online", d["status_at"] or d["last_seen_at"] or 0))
    return {**counts, "attention": attention[:show], "more": max(0, len(attention) - show)}


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
