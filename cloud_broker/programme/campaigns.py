"""Campaign budgets, as marketing sets them: a rule of the programme gets a budget in
Rials (its discounts and its points at the programme's point value), watched by the
reconciler with alerts at 80% and 100% (cloud_broker.ledger.budgets).  Setting or removing
a budget changes nothing at the tills, so it needs no approval; it is audited."""

from __future__ import annotations

import time
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit, budgets
from cloud_broker.ledger.db import Database, Tx
from edge.core.ruleset import MAX_AMOUNT, RuleSet


def set_budget(db: Database, rs: RuleSet, actor: Operator, rule: str, rials: int | None) -> None:
    """Give ``rule`` of the programme in force a budget (None: no budget any more); what it
    has cost so far is kept when the budget changes."""
    actor.require("programme")
    if not any(r.id == rule for r in rs.rules):
        raise ClubError("no_rule", "no such rule in the programme", "چنین قانونی در برنامه نیست.")
    if rials is not None and not 0 < rials <= MAX_AMOUNT:
        raise ClubError("bad_budget", "a budget is a positive amount of Rials",
                        "بودجه باید مبلغی مثبت باشد.")  # fmt: skip

    def step(tx: Tx) -> None:
        if rials is None:
            tx.execute("DELETE FROM programme_budgets WHERE tenant = ? AND rule = ?",
                       (rs.tenant, rule))  # fmt: skip
        else:
            tx.execute(
                "INSERT INTO programme_budgets (tenant, rule, budget_rials, set_by, set_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, rule) DO UPDATE SET budget_rials "
                "= excluded.budget_rials, alerted = 0, set_by = excluded.set_by, set_at = "
                "excluded.set_at",
                (rs.tenant, rule, rials, actor.username, int(time.time() * 1000)),
            )
        audit.record(tx, actor.username, "programme.budget", f"rule:{rule}", {"budget": rials})

    db.run(step)


def table(db: Database, rs: RuleSet) -> dict[str, dict[str, Any]]:
    """rule -> budget, what it cost (Rials off, points, their total at the point value)."""
    value = int(rs.policy.get("point_value_rials", 0))
    rows = db.run(lambda tx: budgets.table(tx, rs.tenant), write=False)
    for row in rows.values():
        row["cost"] = row["rials"] + row["points"] * value
        row["share_bp"] = row["cost"] * 10000 // row["budget"] if row["budget"] else 0
    return rows
