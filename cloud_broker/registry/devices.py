"""The device registry: which terminals exist, their public keys, store and status.

A device is registered with its Ed25519 public key (the private key never leaves the
terminal).  Keys rotate by seq: a new key applies from a given seq on, so records signed
before the rotation still verify.  Revocation records the last seq accepted from the
device (``revoked_after_seq``): records signed after it are refused.

One ledger serves one tenant: members are keyed by phone number (and cards) alone, so two
chains in one ledger would share their members' points.  :func:`register_tx` refuses a
device of a second tenant.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from edge.errors import ConfigError
from edge.protocol import topics
from edge.protocol.keys import public_from_raw, public_pem


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    device: str
    tenant: str
    store: str
    status: str
    revoked_after_seq: int | None
    keys: tuple[tuple[int, bytes], ...]  # (from_seq, raw public key), ascending
    _objs: dict[bytes, Ed25519PublicKey] = field(default_factory=dict, compare=False)

    def key_for(self, seq: int) -> Ed25519PublicKey | None:
        raw = None
        for from_seq, k in self.keys:
            if from_seq <= seq:
                raw = k
        if raw is None:
            return None
        obj = self._objs.get(raw)
        if obj is None:
            obj = self._objs[raw] = public_from_raw(raw)
        return obj


def last_accepted(status: str, revoked_after_seq: int | None) -> int | None:
    """The last seq accepted from a device: None (no limit) while it is active; for a
    revoked one its ``revoked_after_seq``, or -1 (nothing) if none was recorded."""
    if status == "active":
        return None
    return -1 if revoked_after_seq is None else int(revoked_after_seq)


def now_ms() -> int:
    return int(time.time() * 1000)


def register_tx(
    tx: Tx, device: str, tenant: str, store: str, public_key: bytes, by: str = "system"
) -> None:
    """:func:`register` inside the caller's transaction (enrollment marks its token used
    in the same one); audited as done ``by``."""
    for value, what in ((device, "device"), (tenant, "tenant"), (store, "store")):
        topics.check_id(value, what)
    if len(public_key) != 32:
        raise ConfigError("public key", "an Ed25519 public key is 32 bytes")
    tx.serialize("register")  # two tenants registering at once must not both pass below
    row = tx.one("SELECT status FROM devices WHERE device = ?", (device,))
    if row is not None:
        raise ConfigError(
            "device",
            f"{device} is already registered ({row[0]}); rotate its key or use a new device id",
        )
    check_tenant(tx, tenant)
    t = now_ms()
    tx.execute(
        "INSERT INTO devices (device, tenant, store, public_key, enrolled_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (device, tenant, store, public_key, t),
    )
    tx.execute(
        "INSERT INTO device_keys (device, from_seq, public_key, created_at) VALUES (?, 1, ?, ?)",
        (device, public_key, t),
    )
    audit.record(tx, by, "device.register", f"device:{device}", {"tenant": tenant, "store": store})


def other_tenant(tx: Tx, tenant: str) -> str | None:
    """The tenant this ledger already serves, if it is not ``tenant``."""
    row = tx.one("SELECT tenant FROM devices WHERE tenant != ? LIMIT 1", (tenant,))
    return None if row is None else str(row[0])


def check_tenant(tx: Tx, tenant: str) -> None:
    """ConfigError unless this ledger can serve ``tenant`` (one tenant per ledger)."""
    other = other_tenant(tx, tenant)
    if other is not None:
        raise ConfigError(
            "tenant",
            f"this ledger serves tenant {other}; {tenant} needs a ledger of its own "
            "(members are keyed by phone number, so one ledger holds one tenant)",
        )


def register(
    db: Database, device: str, tenant: str, store: str, public_key: bytes, by: str = "system"
) -> None:
    """Add a device with its public key, in force from seq 1."""
    db.run(lambda tx: register_tx(tx, device, tenant, store, public_key, by))


def rotate_key_tx(tx: Tx, device: str, public_key: bytes, from_seq: int) -> None:
    """:func:`rotate_key` inside the caller's transaction.

    The same key at the same ``from_seq`` again is a no-op (a device repeating a request
    whose reply it lost); another key at the latest ``from_seq`` replaces it, which is safe
    because nothing at or after ``from_seq`` has been applied."""
    if len(public_key) != 32:
        raise ConfigError("public key", "an Ed25519 public key is 32 bytes")
    row = tx.one("SELECT status, applied_through FROM devices WHERE device = ?", (device,))
    if row is None:
        raise ConfigError("device", f"unknown device {device}")
    if row[0] != "active":
        raise ConfigError("device", f"{device} is {row[0]}")
    if from_seq <= row[1]:
        raise ConfigError(
            "from_seq",
            f"records up to {row[1]} are already applied; a new key can only apply to later ones",
        )
    latest = int(tx.one("SELECT MAX(from_seq) FROM device_keys WHERE device = ?", (device,))[0])
    if from_seq < latest:
        raise ConfigError("from_seq", f"a key from seq {latest} is already registered")
    if from_seq == latest:
        have = tx.one(
            "SELECT public_key FROM device_keys WHERE device = ? AND from_seq = ?",
            (device, from_seq),
        )
        if bytes(have[0]) == public_key:
            return
        tx.execute(
            "UPDATE device_keys SET public_key = ?, created_at = ? WHERE device = ? "
            "AND from_seq = ?",
            (public_key, now_ms(), device, from_seq),
        )
    else:
        tx.execute(
            "INSERT INTO device_keys (device, from_seq, public_key, created_at) "
            "VALUES (?, ?, ?, ?)",
            (device, from_seq, public_key, now_ms()),
        )
    tx.execute("UPDATE devices SET public_key = ? WHERE device = ?", (public_key, device))


def rotate_key(db: Database, device: str, public_key: bytes, from_seq: int) -> None:
    db.run(lambda tx: rotate_key_tx(tx, device, public_key, from_seq))


def revoke_tx(
    tx: Tx, device: str, reason: str, after_seq: int | None = None, by: str = "system"
) -> int:
    """:func:`revoke` inside the caller's transaction; audited as done ``by``."""
    row = tx.one("SELECT applied_through, status FROM devices WHERE device = ?", (device,))
    if row is None:
        raise ConfigError("device", f"unknown device {device}")
    last = int(row[0]) if after_seq is None else after_seq
    tx.execute(
        "UPDATE devices SET status = 'revoked', revoked_at = ?, revoked_reason = ?, "
        "revoked_after_seq = ? WHERE device = ?",
        (now_ms(), reason, last, device),
    )
    audit.record(tx, by, "device.revoke", f"device:{device}", {"after_seq": last}, reason)
    return last


def revoke(
    db: Database, device: str, reason: str, after_seq: int | None = None, by: str = "system"
) -> int:
    """Revoke a device; records with seq > ``after_seq`` (default: what was applied so
    far) are refused from now on.  Returns the last seq accepted."""
    return db.run(lambda tx: revoke_tx(tx, device, reason, after_seq, by))


def load(tx: Tx, device: str) -> DeviceInfo | None:
    row = tx.one(
        "SELECT device, tenant, store, status, revoked_after_seq FROM devices WHERE device = ?",
        (device,),
    )
    if row is None:
        return None
    keys = tx.all(
        "SELECT from_seq, public_key FROM device_keys WHERE device = ? ORDER BY from_seq", (device,)
    )
    return DeviceInfo(
        row[0], row[1], row[2], row[3], row[4], tuple((int(k[0]), bytes(k[1])) for k in keys)
    )


def list_devices(db: Database) -> list[dict[str, object]]:
    rows = db.read(
        "SELECT device, tenant, store, status, applied_through, last_seen_at, "
        "revoked_reason, revoked_after_seq FROM devices ORDER BY tenant, store, "
        "device"
    )
    names = (
        "device",
        "tenant",
        "store",
        "status",
        "applied_through",
        "last_seen_at",
        "revoked_reason",
        "revoked_after_seq",
    )
    return [dict(zip(names, r, strict=True)) for r in rows]


def export_pem(db: Database, device: str | None = None) -> str:
    if device:
        rows = db.read("SELECT device, public_key FROM devices WHERE device = ?", (device,))
    else:
        rows = db.read("SELECT device, public_key FROM devices ORDER BY device")
    out = []
    for dev, key in rows:
        out.append(f"# {dev}\n{public_pem(public_from_raw(bytes(key)))}")
    return "".join(out)


class RegistryCache:
    """Devices by id for the verifying path; rows older than ``ttl`` seconds are re-read,
    so a revocation or rotation made by another process takes effect within ``ttl``."""

    def __init__(self, db: Database, ttl: float = 2.0) -> None:
        self._db = db
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, DeviceInfo | None]] = {}

    def get(self, device: str, fresh: bool = False) -> DeviceInfo | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(device)
        if hit is not None and not fresh and now - hit[0] < self._ttl:
            return hit[1]
        info = self._db.run(lambda tx: load(tx, device), write=False)
        with self._lock:
            self._cache[device] = (now, info)
        return info
