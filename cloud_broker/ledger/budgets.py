"""Campaign budgets: what a rule of the programme has cost so far, against the budget
marketing gave it, with an alert at 80% and at 100%.

A till cannot stop an offer at a budget (it sells offline, alone), so a budget is watched,
not enforced: the reconciler adds each rule's discounts and points (at the programme's
point value) in the transaction that applies the sales, and raises ``budget_80`` (warning)
and ``budget_spent`` (critical) once each; ending the offer is a new version of the
programme.  Refunds are not netted: the figure is what the offer gave.
"""

from __future__ import annotations

from typing import Any

from cloud_broker.ledger.db import Tx
from edge.core import record as R

UseKey = tuple[str, str]  # tenant, rule id


def count(use: dict[UseKey, list[int]], tenant: str, applied: list[dict[int, Any]]) -> None:
    """Add one sale's applied rules (record field applied: rule, discount, points)."""
    for a in applied:
        rials, points = int(a.get(R.AP_DISCOUNT) or 0), int(a.get(R.AP_POINTS) or 0)
        if rials or points:
            row = use.setdefault((tenant, str(a[R.AP_RULE])), [0, 0])
            row[0] += rials
            row[1] += points


def flush(tx: Tx, use: dict[UseKey, list[int]], point_value: int, alert: Any) -> None:
    """Add ``use`` to the budgets of the rules that have one; ``alert(severity, kind,
    detail)`` for each threshold crossed now."""
    if not use:
        return
    for (tenant, rule), (rials, points) in sorted(use.items()):
        row = tx.one(
            "SELECT budget_rials, spent_rials, spent_points, alerted FROM programme_budgets "
            "WHERE tenant = ? AND rule = ?",
            (tenant, rule),
        )
        if row is None:
            continue
        budget, alerted = int(row[0]), int(row[3])
        spent_r, spent_p = int(row[1]) + rials, int(row[2]) + points
        cost = spent_r + spent_p * point_value
        now_level = 100 if cost >= budget else 80 if cost * 100 >= budget * 80 else 0
        tx.execute(
            "UPDATE programme_budgets SET spent_rials = ?, spent_points = ?, alerted = ? WHERE "
            "tenant = ? AND rule = ?",
            (spent_r, spent_p, max(alerted, now_level), tenant, rule),
        )
        if now_level > alerted:
            alert(
                "critical" if now_level == 100 else "warning",
                "budget_spent" if now_level == 100 else "budget_80",
                f"rule {rule} has cost {cost:,} Rials of its budget of {budget:,} "
                f"({spent_r:,} Rials off, {spent_p:,} points): end it with a new version if "
                "it should stop",
            )
    use.clear()


def table(tx: Tx, tenant: str) -> dict[str, dict[str, int]]:
    """rule -> its budget and what it cost (for the programme page)."""
    return {
        str(r[0]): {"budget": int(r[1]), "rials": int(r[2]), "points": int(r[3])}
        for r in tx.all(
            "SELECT rule, budget_rials, spent_rials, spent_points FROM programme_budgets WHERE "
            "tenant = ?",
            (tenant,),
        )
    }
