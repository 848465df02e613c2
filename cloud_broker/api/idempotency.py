"""The answer to every write, kept under the caller's ``Idempotency-Key``: a repeated request
gets the first answer (and nothing is done twice); the same key with another body is
refused.  An answer being made (a request still running, or one that died) holds its key:
a repeat while it runs is told to retry."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.ledger.db import Database, Tx

MAX_KEY = 100


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def begin(db: Database, key_id: int, idem: str, rhash: str) -> tuple[int, Any] | None:
    """Claim ``idem`` for this request; the kept answer (status, body) when it was done."""
    if not idem or len(idem) > MAX_KEY or not idem.isprintable():
        raise ClubError(
            "idempotency_key",
            "an Idempotency-Key header (1 to 100 characters) is required on every write",
            "سرآیند Idempotency-Key لازم است.",
        )

    def run(tx: Tx) -> tuple[int, Any] | None:
        row = tx.one(
            "SELECT request_hash, status, body FROM api_idempotency WHERE key_id = ? AND idem = ?",
            (key_id, idem),
        )
        if row is None:
            tx.execute(
                "INSERT INTO api_idempotency (key_id, idem, request_hash, created_at) "
                "VALUES (?, ?, ?, ?)",
                (key_id, idem, rhash, int(time.time() * 1000)),
            )
            return None
        if str(row[0]) != rhash:
            raise ClubError(
                "idempotency_conflict",
                "this Idempotency-Key was used for another request",
                "این کلید یکتایی برای درخواست دیگری به کار رفته است.",
            )
        if row[1] is None:
            raise ClubError(
                "in_progress",
                "the first request with this key is still being answered: retry in a moment",
                "درخواست نخست هنوز در جریان است.",
            )
        return int(row[1]), json.loads(row[2])

    return db.run(run)


def finish(db: Database, key_id: int, idem: str, status: int, body: Any) -> None:
    """Keep the answer (a refusal too: the same request would be refused the same way)."""
    db.run(
        lambda tx: tx.execute(
            "UPDATE api_idempotency SET status = ?, body = ? WHERE key_id = ? AND idem = ?",
            (status, json.dumps(body, ensure_ascii=False), key_id, idem),
        )
    )


def release(db: Database, key_id: int, idem: str) -> None:
    """Forget a claim whose request failed before doing anything (a server error)."""
    db.run(
        lambda tx: tx.execute(
            "DELETE FROM api_idempotency WHERE key_id = ? AND idem = ? AND status IS NULL",
            (key_id, idem),
        )
    )
