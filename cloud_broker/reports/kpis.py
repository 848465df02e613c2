"""The club's key figures for a period, each defined in docs/reports.md and each read from
an aggregate or an index, never a scan of the sales:

* from ``sales_daily``: participation (the members' share of sales and of revenue, anonymous
  sales counted), average order value of members and of anonymous customers, points given
  and redeemed;
* from the members' indexed columns: active members (a sale in the last 30, 90 and 365
  days, as of the period's last day's data, i.e. today), new members, the repeat purchase
  rate, purchase frequency, the tier distribution, the liability;
* from ``tier_changes``: upgrades and downgrades; from ``points_expired_daily`` (kept by
  the expiry job): points expired and breakage;
* campaign results: recipients against the control group held out when the campaign was
  planned (cloud_broker.messaging.campaigns)."""

from __future__ import annotations

import threading
import time
from typing import Any

from cloud_broker.club import today as today_
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.reports.periods import Period
from edge.core.ruleset import RuleSet

RESULT_DAYS = 14  # a campaign's results count purchases in the fortnight after it was sent


def _bp(part: int, whole: int) -> int:
    return part * 10_000 // whole if whole else 0


def _sales(tx: Tx, period: Period, store: str | None) -> dict[str, int]:
    where = "day >= ? AND day <= ?" + (" AND store = ?" if store else "")
    args: list[Any] = [period.first, period.last] + ([store] if store else [])
    out = {"sales": 0, "revenue": 0, "m_sales": 0, "m_revenue": 0, "earned": 0, "redeemed": 0}
    for m, sales, revenue, earned, redeemed in tx.all(
        "SELECT member, COALESCE(SUM(sales), 0), COALESCE(SUM(revenue), 0), "
        "COALESCE(SUM(points_earned), 0), COALESCE(SUM(points_redeemed), 0) FROM sales_daily "
        f"WHERE {where} GROUP BY member",
        args,
    ):
        out["sales"] += int(sales)
        out["revenue"] += int(revenue)
        out["earned"] += int(earned)
        out["redeemed"] += int(redeemed)
        if int(m):
            out["m_sales"] += int(sales)
            out["m_revenue"] += int(revenue)
    return out


def _members(tx: Tx, today: int) -> dict[str, Any]:
    """The figures of the members as they are now (each a count over an index of every
    member: tenths of a second on half a million, so the console keeps them a minute)."""
    out: dict[str, Any] = {}
    for n in (30, 90, 365):
        out[f"active_{n}"] = int(tx.one(
            "SELECT COUNT(*) FROM members WHERE last_day >= ? AND merged_into IS NULL",
            (today - n + 1,))[0])  # fmt: skip
    bought, again = tx.one(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN visits >= 2 THEN 1 ELSE 0 END), 0) FROM "
        "members WHERE visits >= 1 AND merged_into IS NULL"
    )
    out["repeat_rate_bp"] = _bp(int(again), int(bought))
    out["tiers"] = [
        {"tier": str(t), "members": int(n)}
        for t, n in tx.all(
            "SELECT tier, COUNT(*) FROM members WHERE merged_into IS NULL GROUP BY tier "
            "ORDER BY tier"
        )
    ]
    out["members_at"] = int(time.time() * 1000)
    return out


class MemberFigures:
    """:func:`_members`, computed at most once a minute by whoever asks first (the console
    refreshes its own in the background, so a page never waits for the count); the page
    says as of when.  Thread-safe."""

    def __init__(self, max_age_s: float = 60.0) -> None:
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._value: tuple[float, int, dict[str, Any]] | None = None

    def get(self, db: Database, today: int) -> dict[str, Any]:
        v = self._value
        if v is not None and v[1] == today and time.monotonic() - v[0] < self.max_age_s:
            return v[2]
        if not self._lock.acquire(blocking=v is None or v[1] != today):
            return v[2] if v is not None else self.refresh(db, today)  # being refreshed
        try:
            return self.refresh(db, today)
        finally:
            self._lock.release()

    def refresh(self, db: Database, today: int) -> dict[str, Any]:
        value = db.run(lambda tx: _members(tx, today), write=False)
        self._value = (time.monotonic(), today, value)
        return value


def figures(db: Database, rs: RuleSet, period: Period, today: int, store: str | None = None,
            totals: today_.Totals | None = None,
            cache: MemberFigures | None = None) -> dict[str, Any]:  # fmt: skip
    """Every KPI of the period (and those measured as of today)."""
    counted = (totals or today_.Totals(0)).get(db)
    member_figures = (cache or MemberFigures(0)).get(db, today)

    def run(tx: Tx) -> dict[str, Any]:
        s = _sales(tx, period, store)
        a_sales, a_rev = s["sales"] - s["m_sales"], s["revenue"] - s["m_revenue"]
        out: dict[str, Any] = {
            "sales": s["sales"],
            "revenue": s["revenue"],
            "participation_sales_bp": _bp(s["m_sales"], s["sales"]),
            "participation_revenue_bp": _bp(s["m_revenue"], s["revenue"]),
            "aov_members": s["m_revenue"] // s["m_sales"] if s["m_sales"] else 0,
            "aov_anonymous": a_rev // a_sales if a_sales else 0,
            "points_issued": s["earned"],
            "points_redeemed": s["redeemed"],
        }
        span = (today_.day_start_ms(period.first), today_.day_start_ms(period.last + 1))
        new = tx.one("SELECT COUNT(*) FROM members WHERE created_at >= ? AND created_at < ?", span)
        out["new_members"] = int(new[0])
        out.update(member_figures)
        year = _sales(tx, Period(today - 364, today), store)
        out["frequency_x100"] = (
            year["m_sales"] * 100 // out["active_365"] if out["active_365"] else 0
        )
        ups, downs, up_members, down_members = tx.one(
            "SELECT COALESCE(SUM(up), 0), COALESCE(SUM(1 - up), 0), "
            "COUNT(DISTINCT CASE WHEN up = 1 THEN member END), "
            "COUNT(DISTINCT CASE WHEN up = 0 THEN member END) FROM tier_changes "
            "WHERE day >= ? AND day <= ?",
            (period.first, period.last),
        )
        members = counted["members"]
        out["upgrades"], out["downgrades"] = int(ups), int(downs)
        out["upgrade_rate_bp"] = _bp(int(up_members), members)  # members who moved up
        out["downgrade_rate_bp"] = _bp(int(down_members), members)
        out["points_expired"] = int(tx.one(  # kept by the expiry job: a row a day
            "SELECT COALESCE(SUM(points), 0) FROM points_expired_daily WHERE day >= ? AND "
            "day <= ?", (period.first, period.last))[0])  # fmt: skip
        out["breakage_bp"] = _bp(out["points_expired"], out["points_issued"])
        return out

    out = db.run(run, write=False)
    value = int(rs.policy.get("point_value_rials", 0))
    out["members"] = counted["members"]
    out["liability"] = {"points": counted["points"], "points_rials": counted["points"] * value,
                        "wallet": counted["wallet"],
                        "total_rials": counted["points"] * value + counted["wallet"],
                        "point_value": value}  # fmt: skip
    out["counted_at"] = counted["at"]
    return out


def campaign_results(db: Database, period: Period, days: int = RESULT_DAYS) -> list[dict[str, Any]]:
    """The results of each campaign planned in the period (see :func:`campaign_result`)."""
    first_ms, end_ms = today_.day_start_ms(period.first), today_.day_start_ms(period.last + 1)
    return [
        campaign_result(db, int(r[0]), days)
        for r in db.read(
            "SELECT id FROM sms_campaigns WHERE planned_at >= ? AND planned_at < ? "
            "ORDER BY planned_at DESC",
            (first_ms, end_ms),
        )
    ]


GROUPS = {
    "recipients": "SELECT member FROM sms_outbox WHERE campaign_id = ? AND state IN "
    "('sent', 'delivered')",
    "control": "SELECT member FROM sms_campaign_control WHERE campaign_id = ?",
}


def campaign_result(db: Database, campaign_id: int, days: int = RESULT_DAYS) -> dict[str, Any]:
    """A campaign's recipients (sent or delivered) against its control group, over the
    ``days`` from the day it was planned: members, those who bought, their revenue, revenue
    per member, redemptions of the campaign's coupon; the lift in the share who bought."""
    name, coupon, planned_at, control_bp = db.read(
        "SELECT name, coupon, planned_at, control_bp FROM sms_campaigns WHERE id = ?",
        (campaign_id,),
    )[0]
    start = today_.local_day(int(planned_at)) if planned_at else None
    row: dict[str, Any] = {"id": campaign_id, "name": str(name), "day": start, "days": days,
                           "control_bp": int(control_bp), "coupon": coupon}  # fmt: skip
    for key, members_sql in GROUPS.items():
        n = int(db.read(f"SELECT COUNT(*) FROM ({members_sql}) g", (campaign_id,))[0][0])
        buyers = revenue = used = 0
        if start is not None and n:
            b, r = db.read(
                "SELECT COUNT(DISTINCT s.member), COALESCE(SUM(s.amount), 0) FROM member_spend "
                f"s WHERE s.member IN ({members_sql}) AND s.day >= ? AND s.day < ? AND "
                "s.amount > 0",
                (campaign_id, start, start + days),
            )[0]
            buyers, revenue = int(b), int(r)
            if coupon:
                used = int(db.read(
                    "SELECT COUNT(*) FROM coupon_uses WHERE code = ? AND member IN "
                    f"({members_sql})", (coupon, campaign_id))[0][0])  # fmt: skip
        row[key] = {"members": n, "buyers": buyers, "revenue": revenue,
                    "buyer_rate_bp": _bp(buyers, n), "revenue_per_member": revenue // n if n else 0,
                    "redemptions": used}  # fmt: skip
    rec, ctl = row["recipients"], row["control"]
    row["lift_bp"] = rec["buyer_rate_bp"] - ctl["buyer_rate_bp"] if ctl["members"] else None
    return row
