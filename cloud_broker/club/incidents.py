"""What needs a look: alerts (acknowledged by an operator, with a note) and what was refused
into quarantine (the validly signed records among it admitted into the ledger or
dismissed, cloud_broker.reconcile.admission).  Every resolution is audited."""

from __future__ import annotations

import time
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.reconcile import admission
from cloud_broker.reconcile.reconciler import Reconciler
from edge.core.ruleset import RuleSet
from edge.errors import ConfigError
from edge.sanitize import clean


def alerts(db: Database, open_only: bool = True, limit: int = 100) -> list[dict[str, Any]]:
    sql = (
        "SELECT id, at, severity, kind, member, device, seq, detail, acknowledged_at, "
        "acknowledged_by FROM alerts"
    )
    if open_only:
        sql += " WHERE acknowledged_at IS NULL"
    keys = (
        "id",
        "at",
        "severity",
        "kind",
        "member",
        "device",
        "seq",
        "detail",
        "acknowledged_at",
        "acknowledged_by",
    )
    return [
        dict(zip(keys, r, strict=True))
        for r in db.read(sql + " ORDER BY id DESC LIMIT ?", (limit,))
    ]


def acknowledge(db: Database, actor: Operator, alert_id: int, note: str) -> None:
    actor.require("alerts")
    text = clean(note, 300).strip() or None

    def step(tx: Tx) -> None:
        row = tx.one("SELECT acknowledged_at, kind FROM alerts WHERE id = ?", (alert_id,))
        if row is None:
            raise ClubError("unknown_alert", "no such alert", "چنین هشداری نیست.")
        if row[0] is not None:
            return  # acknowledged already (a form sent twice): nothing more to do
        tx.execute(
            "UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ?",
            (int(time.time() * 1000), actor.username, alert_id),
        )
        audit.record(tx, actor.username, "alert.ack", f"alert:{alert_id}", {"kind": row[1]}, text)

    db.run(step)


def quarantine(db: Database, open_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
    sql = (
        "SELECT id, received_at, topic, device, seq, code, reason, resolved_at, resolution, "
        "resolved_by, resolution_note FROM quarantine"
    )
    if open_only:
        sql += (
            " WHERE resolved_at IS NULL AND code IN ('conflict', 'broken_chain', 'orphaned', "
            "'revoked')"
        )
    keys = (
        "id",
        "received_at",
        "topic",
        "device",
        "seq",
        "code",
        "reason",
        "resolved_at",
        "resolution",
        "resolved_by",
        "note",
    )
    rows = db.read(sql + " ORDER BY id DESC LIMIT ?", (limit,))
    out = [dict(zip(keys, r, strict=True)) for r in rows]
    for e in out:
        e["admissible"] = e["code"] in admission.ADMISSIBLE and e["resolved_at"] is None
    return out


def resolve(db: Database, rs: RuleSet, actor: Operator, qid: int, how: str, reason: str) -> str:
    """Admit (booked under the rules bundle the record names) or dismiss quarantine entry
    ``qid``; a line saying what happened.  ClubError with the entry's reason when it cannot
    be.  The audit entry is written with the resolution (cloud_broker.reconcile.admission)."""
    actor.require("quarantine")
    try:
        if how == "admit":
            rc = Reconciler(db, rs, verify_threads=1)
            try:
                a = admission.admit(rc, qid, actor.username, reason)
            finally:
                rc.close()
            return f"admitted: {a.device} seq {a.seq} ({a.kind})"
        if how == "dismiss":
            admission.dismiss(db, qid, actor.username, reason)
            return "dismissed"
        raise ClubError("bad_action", "admit or dismiss", "پذیرش یا رد.")
    except admission.ResolveError as e:
        raise ClubError("refused", e.en, e.fa) from e
    except ConfigError as e:  # no reason given
        raise ClubError("no_reason", "say why: the reason is kept", "علت را بنویسید.") from e
