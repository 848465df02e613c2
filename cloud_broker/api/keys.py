"""API keys: ``lk_<prefix>_<secret>``, shown once when made; the ledger keeps the prefix (to
find the key) and a SHA-256 of the whole (the secret is 32 random bytes, so a fast hash is
enough: nothing to guess), the scopes and the rate.  Making and revoking are audited."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from edge.sanitize import clean

SCOPES = ("members:read", "quote", "sales:write", "coupons:write")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    scopes: tuple[str, ...]
    rate_per_min: int

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(
    db: Database, actor: Operator, name: str, scopes: list[str], rate_per_min: int = 600
) -> tuple[int, str]:
    """A new key; (its id, the key itself: shown this once)."""
    actor.require("operators")
    name = clean(name, 60).strip()
    if not name:
        raise ClubError("bad_key", "name the key (who uses it)", "برای کلید نامی بنویسید.")
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ClubError(
            "bad_scope", f"scopes are some of {', '.join(SCOPES)}", "دامنه‌های دسترسی نامعتبر است."
        )
    if not 1 <= rate_per_min <= 100_000:
        raise ClubError("bad_rate", "a rate of 1 to 100,000 a minute", "سرعت نامعتبر است.")
    prefix = secrets.token_hex(4)
    key = f"lk_{prefix}_{secrets.token_urlsafe(32)}"

    def run(tx: Tx) -> int:
        kid = tx.next_id("api_keys")
        tx.execute(
            "INSERT INTO api_keys (id, name, prefix, hash, scopes, rate_per_min, created_by, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                kid,
                name,
                prefix,
                _digest(key),
                json.dumps(sorted(set(scopes))),
                rate_per_min,
                actor.username,
                int(time.time() * 1000),
            ),
        )
        audit.record(
            tx,
            actor.username,
            "api_key.create",
            f"api_key:{kid}",
            {"name": name, "scopes": sorted(set(scopes)), "rate": rate_per_min},
        )
        return kid

    return db.run(run), key


def verify(db: Database, key: str) -> ApiKey | None:
    """The key's record, or None for anything that is not a live key (same answer for a
    wrong secret, an unknown prefix and a revoked key)."""
    parts = key.split("_", 2)  # the secret may hold "_" itself
    if len(parts) != 3 or parts[0] != "lk" or len(parts[1]) != 8:
        return None
    rows = db.read(
        "SELECT id, name, hash, scopes, rate_per_min FROM api_keys WHERE prefix = ? AND "
        "revoked_at IS NULL",
        (parts[1],),
    )
    if not rows:
        hmac.compare_digest(_digest(key), _digest(key))  # the same work either way
        return None
    r = rows[0]
    if not hmac.compare_digest(str(r[2]), _digest(key)):
        return None
    return ApiKey(int(r[0]), str(r[1]), tuple(json.loads(r[3])), int(r[4]))


def listing(db: Database) -> list[dict[str, Any]]:
    keys = (
        "id",
        "name",
        "prefix",
        "scopes",
        "rate_per_min",
        "created_by",
        "created_at",
        "revoked_at",
        "last_used_at",
    )
    out = []
    for r in db.read(f"SELECT {', '.join(keys)} FROM api_keys ORDER BY id"):
        d = dict(zip(keys, r, strict=True))
        d["scopes"] = json.loads(d["scopes"])
        out.append(d)
    return out


def revoke(db: Database, actor: Operator, key_id: int) -> None:
    actor.require("operators")

    def run(tx: Tx) -> None:
        done = tx.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (int(time.time() * 1000), key_id),
        ).rowcount
        if done != 1:
            raise ClubError("no_key", "no such live key", "چنین کلید فعالی نیست.")
        audit.record(tx, actor.username, "api_key.revoke", f"api_key:{key_id}", {})

    db.run(run)
