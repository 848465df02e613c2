"""The durable SMS outbox, in the ledger database: every message to a member is a row before
anything is sent, and its row says what became of it.

Exactly once per member, trigger and occasion: each row carries a ``dedupe`` key (a unique
index): ``welcome:{member}``, ``thanks:{journal}``, ``birthday:{member}:{year}``,
``occasion:{key}:{year}:{member}``, ``campaign:{id}:{member}``...; enqueueing the same key
again (a record redelivered, a trigger job run twice, two head-office processes) inserts
nothing.

A row's life::

    queued --claim--> sending --gateway accepted--> sent --report--> delivered | undelivered
       ^                 |                                           | blocked | failed
       |  transient error, quiet hours (held)                        |
       +-----------------+           permanent error --> failed      |
                         |           rule refused    --> skipped (opted_out, capped, expired)
                         +-- sender died holding it --> queued again when the gateway drops
                                                        a repeated ref, else ambiguous

A claim is an ``UPDATE ... RETURNING`` of rows still queued, so two senders never take the
same row; the gateway gets the row id as its reference (``sms-{id}``), which Kavenegar uses
to drop a repeated send, so a row a killed sender left in ``sending`` can be sent again
without reaching the member twice.  A gateway without such a reference leaves those rows
``ambiguous`` for a person to decide (never sent twice).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from cloud_broker.ledger.db import Database, Tx, chunks, marks

FINAL = ("delivered", "undelivered", "blocked", "failed", "skipped", "cancelled")
# a gateway's final delivery report -> the row's state
REPORTED = {"delivered": "delivered", "undelivered": "undelivered", "blocked": "blocked",
            "failed": "failed", "cancelled": "cancelled", "unknown": "undelivered"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    dedupe: str
    member: str
    phone: str
    kind: str
    campaign_id: int | None
    params: dict[str, Any]
    transactional: bool
    not_before: int
    expires_at: int | None
    attempts: int


_COLS = (
    "id, dedupe, member, phone, kind, campaign_id, params, transactional, not_before, "
    "expires_at, attempts"
)


def _message(r: Any) -> Message:
    return Message(
        int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]),
        None if r[5] is None else int(r[5]), json.loads(r[6]) if r[6] else {}, bool(r[7]),
        int(r[8]), None if r[9] is None else int(r[9]), int(r[10]),
    )  # fmt: skip


def now_ms() -> int:
    return int(time.time() * 1000)


def enqueue(
    tx: Tx, member: str, kind: str, dedupe: str, *, params: dict[str, Any] | None = None,
    not_before: int | None = None, expires_at: int | None = None, transactional: bool = False,
    campaign_id: int | None = None,
) -> bool:  # fmt: skip
    """A message for ``member`` (a phone member: card members have no number); False when
    the same ``dedupe`` key was queued before (or the member has no phone)."""
    if not member.startswith("+"):
        return False
    now = now_ms()
    cur = tx.execute(
        "INSERT INTO sms_outbox (dedupe, member, phone, kind, campaign_id, params, "
        "transactional, state, created_at, not_before, expires_at) VALUES (?, ?, ?, ?, ?, ?, "
        "?, 'queued', ?, ?, ?) ON CONFLICT (dedupe) DO NOTHING",
        (dedupe, member, member, kind, campaign_id,
         json.dumps(params, ensure_ascii=False) if params else None, int(transactional), now,
         now if not_before is None else not_before, expires_at),
    )  # fmt: skip
    return bool(cur.rowcount)


def enqueue_many(
    tx: Tx, where: str, args: tuple[Any, ...], kind: str, dedupe_prefix: str,
    campaign_id: int | None, not_before: int, expires_at: int | None,
) -> int:  # fmt: skip
    """One message to every member ``where`` selects (SQL on ``members m``, built by the
    callers from code constants; values as parameters), in one statement: a campaign to a
    million members is planned in seconds.  Only phone members not merged away; those who
    opted out are left out here already (the sender checks again).  How many were queued."""
    cur = tx.execute(
        "INSERT INTO sms_outbox (dedupe, member, phone, kind, campaign_id, transactional, "
        "state, created_at, not_before, expires_at) SELECT ? || m.member, m.member, m.member, "
        "?, ?, 0, 'queued', ?, ?, ? FROM members m WHERE m.member LIKE '+%' AND m.merged_into "
        f"IS NULL AND m.sms_opt_out = 0 AND ({where}) ON CONFLICT (dedupe) DO NOTHING",
        (dedupe_prefix, kind, campaign_id, now_ms(), not_before, expires_at, *args),
    )
    return int(cur.rowcount)


def claim(db: Database, worker: str, now: int, limit: int) -> list[Message]:
    """Up to ``limit`` queued rows due by ``now``, for ``worker`` alone."""

    def step(tx: Tx) -> list[Message]:
        lock = " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgresql" else ""
        ids = [
            int(r[0])
            for r in tx.all(
                "SELECT id FROM sms_outbox WHERE state = 'queued' AND not_before <= ? ORDER BY "
                f"not_before, id LIMIT ?{lock}",
                (now, limit),
            )
        ]
        if not ids:
            return []
        rows = tx.all(
            f"UPDATE sms_outbox SET state = 'sending', claimed_by = ?, claimed_at = ?, attempts = "
            f"attempts + 1 WHERE state = 'queued' AND id IN ({marks(len(ids))}) RETURNING {_COLS}",
            (worker, now, *ids),
        )
        return sorted((_message(r) for r in rows), key=lambda m: (m.not_before, m.id))

    return db.run(step)


def release(tx: Tx, msg_id: int, not_before: int, reason: str | None = None) -> None:
    """Back to the queue until ``not_before`` (quiet hours, a pause, a retry)."""
    tx.execute(
        "UPDATE sms_outbox SET state = 'queued', not_before = ?, claimed_by = NULL, reason = ? "
        "WHERE id = ? AND state = 'sending'",
        (not_before, reason, msg_id),
    )


def close(tx: Tx, msg_id: int, state: str, reason: str | None = None, **fields: Any) -> None:
    """The row's outcome (``sent``, ``failed``, ``skipped``, ``ambiguous``) and what the
    gateway said (text, parts, provider, provider_id, cost_rials, status, sent_at)."""
    allowed = ("text", "parts", "provider", "provider_id", "cost_rials", "status", "status_at",
               "sent_at")  # fmt: skip
    sets = "".join(f", {k} = ?" for k in fields if k in allowed)
    tx.execute(
        f"UPDATE sms_outbox SET state = ?, reason = ?, claimed_by = NULL{sets} WHERE id = ?",
        (state, reason, *(v for k, v in fields.items() if k in allowed), msg_id),
    )


def recover(db: Database, lease_ms: int, refs_deduplicated: bool, now: int | None = None) -> int:
    """Rows a sender claimed and never settled (it died): queued again when the gateway
    drops a repeated reference, else ``ambiguous``; how many."""
    t = now_ms() if now is None else now
    state = "queued" if refs_deduplicated else "ambiguous"
    reason = "the sender stopped while sending" + (
        "" if refs_deduplicated else ": maybe sent; not sent again (check at the gateway)"
    )

    def step(tx: Tx) -> int:
        cur = tx.execute(
            "UPDATE sms_outbox SET state = ?, reason = ?, claimed_by = NULL, not_before = ? "
            "WHERE state = 'sending' AND claimed_at < ?",
            (state, reason, t, t - lease_ms),
        )
        return int(cur.rowcount)

    return db.run(step)


def unsettled_reports(db: Database, limit: int = 500) -> list[tuple[int, str]]:
    """Sent rows whose delivery report is not final yet: (id, provider id)."""
    rows = db.read(
        "SELECT id, provider_id FROM sms_outbox WHERE state = 'sent' AND provider_id IS NOT "
        "NULL ORDER BY status_at NULLS FIRST, id LIMIT ?",
        (limit,),
    )
    return [(int(r[0]), str(r[1])) for r in rows]


def report(db: Database, statuses: dict[int, str]) -> None:
    """Delivery reports: a final one ends the row (``delivered``...), others are noted."""
    now = now_ms()

    def step(tx: Tx) -> None:
        for msg_id, status in statuses.items():
            state = REPORTED.get(status)  # None: not final yet (queued, sent)
            tx.execute(
                "UPDATE sms_outbox SET status = ?, status_at = ?, state = COALESCE(?, state) "
                "WHERE id = ? AND state = 'sent'",
                (status, now, state, msg_id),
            )

    db.run(step)


def counts(db: Database, campaign_id: int | None = None) -> dict[str, int]:
    """Rows by state (of one campaign, or all)."""
    sql = "SELECT state, COUNT(*) FROM sms_outbox"
    args: tuple[Any, ...] = ()
    if campaign_id is not None:
        sql += " WHERE campaign_id = ?"
        args = (campaign_id,)
    return {str(r[0]): int(r[1]) for r in db.read(sql + " GROUP BY state", args)}


def log(db: Database, member: str | None = None, state: str | None = None, limit: int = 100,
        before: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """The newest messages (of a member, in a state), for the console."""
    sql = ("SELECT id, member, kind, campaign_id, state, text, parts, cost_rials, status, "
           "created_at, sent_at, reason, attempts FROM sms_outbox WHERE 1 = 1")  # fmt: skip
    args: list[Any] = []
    if member is not None:
        sql += " AND member = ?"
        args.append(member)
    if state is not None:
        sql += " AND state = ?"
        args.append(state)
    if before is not None:
        sql += " AND id < ?"
        args.append(before)
    keys = ("id", "member", "kind", "campaign_id", "state", "text", "parts", "cost_rials",
            "status", "created_at", "sent_at", "reason", "attempts")  # fmt: skip
    return [dict(zip(keys, r, strict=True))
            for r in db.read(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))]  # fmt: skip


def members_of(tx: Tx, ids: list[str]) -> dict[str, Any]:
    """The members the sender is about to write to: name, balances, tier, opt-out, merge."""
    out: dict[str, Any] = {}
    for part in chunks(ids):
        for r in tx.all(
            "SELECT member, name, points, wallet, tier, sms_opt_out, merged_into FROM members "
            f"WHERE member IN ({marks(len(part))})",
            part,
        ):
            out[str(r[0])] = r
    return out
