"""The audit log: who did what, to what, when and why.  Append-only (triggers in the
database refuse UPDATE and DELETE, whoever connects); written in the same transaction as
the change it describes, so there is no change without its entry and no entry without
its change."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from cloud_broker.ledger.db import Database, Tx
from edge.sanitize import clean


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    at: int
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]
    reason: str | None


def record(
    tx: Tx,
    actor: str,
    action: str,
    target: str | None,
    detail: dict[str, Any],
    reason: str | None = None,
) -> int:
    """One entry, inside the caller's transaction; its id."""
    aid = tx.next_id("audit_log")
    tx.execute(
        "INSERT INTO audit_log (id, at, actor, action, target, detail, reason) VALUES "
        "(?, ?, ?, ?, ?, ?, ?)",
        (
            aid,
            int(time.time() * 1000),
            clean(actor, 64),
            action,
            clean(target, 128) if target else None,
            json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str),
            clean(reason, 500) if reason else None,
        ),
    )
    return aid


def entries(
    db: Database, target: str | None = None, before: int | None = None, limit: int = 50
) -> list[Entry]:
    """Newest first; ``target`` one thing's history; ``before`` an id, for the next page."""
    sql = "SELECT id, at, actor, action, target, detail, reason FROM audit_log WHERE 1 = 1"
    params: list[Any] = []
    if target is not None:
        sql += " AND target = ?"
        params.append(target)
    if before is not None:
        sql += " AND id < ?"
        params.append(before)
    rows = db.read(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    return [
        Entry(int(r[0]), int(r[1]), str(r[2]), str(r[3]), r[4], json.loads(r[5]), r[6])
        for r in rows
    ]
