"""Stores and their devices as an operator manages them: names, enrolment tokens for a
technician, revocation, key history.  Every change is audited; a token is shown once and
only its hash is kept (cloud_broker.registry.enrollment)."""

from __future__ import annotations

import time
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.club.today import devices
from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.registry import devices as registry
from cloud_broker.registry import enrollment
from edge.errors import ConfigError
from edge.protocol import topics
from edge.sanitize import clean, is_clean


def _now() -> int:
    return int(time.time() * 1000)


def overview(db: Database) -> dict[str, Any]:
    """Stores (named or only known from their devices), devices with their status, open
    enrolment tokens."""

    def run(tx: Tx) -> dict[str, Any]:
        named = {
            str(r[0]): {"store": str(r[0]), "name_fa": r[1], "name_en": r[2], "city": r[3]}
            for r in tx.all("SELECT store, name_fa, name_en, city FROM stores ORDER BY store")
        }
        devs = devices(tx)
        for d in devs:
            named.setdefault(
                str(d["store"]),
                {"store": d["store"], "name_fa": None, "name_en": None, "city": None},
            )
        tokens = [
            dict(zip(("store", "device", "created_at", "expires_at"), r, strict=True))
            for r in tx.all(
                "SELECT store, device, created_at, expires_at FROM enroll_tokens WHERE used_at "
                "IS NULL AND expires_at > ? ORDER BY expires_at",
                (_now(),),
            )
        ]
        return {
            "stores": sorted(named.values(), key=lambda s: s["store"]),
            "devices": devs,
            "tokens": tokens,
        }

    return db.run(run, write=False)


def key_history(db: Database, device: str) -> list[dict[str, Any]]:
    rows = db.read(
        "SELECT from_seq, public_key, created_at FROM device_keys WHERE device = ? "
        "ORDER BY from_seq",
        (device,),
    )
    return [
        {"from_seq": int(r[0]), "fingerprint": bytes(r[1]).hex()[:16], "created_at": int(r[2])}
        for r in rows
    ]


def save_store(
    db: Database, actor: Operator, store: str, name_fa: str, name_en: str, city: str, tenant: str
) -> None:
    actor.require("stores")
    try:
        topics.check_id(store, "store")
    except ConfigError as e:
        raise ClubError(
            "bad_store", f"store id: {e}", "شناسه فروشگاه فقط حروف لاتین و رقم است."
        ) from e
    if not (name_fa and is_clean(name_fa, 80) and name_en and is_clean(name_en, 80)):
        raise ClubError(
            "bad_name", "give the store's name in both languages", "نام فروشگاه را بنویسید."
        )

    def step(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO stores (store, tenant, name_fa, name_en, city, created_at) VALUES "
            "(?, ?, ?, ?, ?, ?) ON CONFLICT (store) DO UPDATE SET name_fa = excluded.name_fa, "
            "name_en = excluded.name_en, city = excluded.city",
            (store, tenant, name_fa, name_en, clean(city, 40) or None, _now()),
        )
        audit.record(
            tx, actor.username, "store.save", f"store:{store}",
            {"name_fa": name_fa, "name_en": name_en, "city": city},
        )  # fmt: skip

    db.run(step)


def issue_token(
    db: Database, actor: Operator, tenant: str, store: str, device: str | None, ttl_text: str
) -> tuple[str, int]:
    """A one-time enrolment token for a technician: (the token, shown this once; expiry)."""
    actor.require("stores")
    try:
        ttl = enrollment.parse_ttl(ttl_text or "24h")
        return enrollment.issue_token(db, tenant, store, device or None, ttl, by=actor.username)
    except ConfigError as e:
        raise ClubError("bad_token_request", str(e), "درخواست توکن نامعتبر است.") from e


def revoke(db: Database, actor: Operator, device: str, reason: str, after_seq: int | None) -> int:
    """Revoke a device (stolen, decommissioned); its records after ``after_seq`` (default:
    what head office applied) are refused from now on."""
    actor.require("stores")
    why = clean(reason, 200).strip()
    if not why:
        raise ClubError("no_reason", "say why the device is revoked", "علت ابطال را بنویسید.")

    def step(tx: Tx) -> int:
        if tx.one("SELECT 1 FROM devices WHERE device = ?", (device,)) is None:
            raise ClubError("unknown_device", "no such device", "چنین دستگاهی ثبت نشده است.")
        return registry.revoke_tx(tx, device, why, after_seq, by=actor.username)

    return db.run(step)


def safe(text: str) -> str:
    return clean(text, 64)
