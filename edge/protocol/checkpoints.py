"""Chain checkpoints: what head office holds of one device's hash chain, signed with head
office's rules key so that a terminal can resume after a reinstall.

A terminal reinstalled with its old key (or restored from an old copy of its database)
starts its chain again at seq 1; head office already applied seqs 1..N of the old chain,
so every new record is a *conflict* and the terminal stops recording club sales as soon as
an ack tells it (edge.ledger_cache.outbox).  Head office then issues a checkpoint::

    {0: "checkpoint", 1: tenant, 2: store, 3: device,
     4: applied_through, 5: hash of that record (32 bytes; zeros for 0),
     6: [hashes of this device's records head office holds outside its chain], 7: issued ms}

and the technician's ``python -m firmware_tools resume`` verifies it against the pinned
rules key, checks that every record still in the terminal's outbox is among key 6 (so
head office can admit those sales and none is lost), and continues the chain from
``applied_through`` and its hash.  COSE_Sign1 (EdDSA), kid ``checkpoint:{tenant}``,
deterministic CBOR, as records and rules bundles are.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.errors import DecodeError, SignatureError
from edge.protocol import cbor, cose

MAX_CHECKPOINT = 4 * 1024 * 1024
MAGIC = "checkpoint"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    tenant: str
    store: str
    device: str
    applied_through: int
    last_hash: bytes
    received: tuple[bytes, ...]
    issued_ms: int


def kid(tenant: str) -> bytes:
    return f"checkpoint:{tenant}".encode()


def sign(cp: Checkpoint, key: Ed25519PrivateKey) -> bytes:
    payload = {
        0: MAGIC,
        1: cp.tenant,
        2: cp.store,
        3: cp.device,
        4: cp.applied_through,
        5: cp.last_hash,
        6: list(cp.received),
        7: cp.issued_ms,
    }
    return cose.sign1(cbor.encode(payload), key, kid(cp.tenant))


def open_checkpoint(raw: bytes, pinned: Ed25519PublicKey) -> Checkpoint:
    """Verify and decode; SignatureError or DecodeError with the reason."""
    s = cose.parse(raw, max_size=MAX_CHECKPOINT)
    s.verify(pinned)
    p = cbor.decode(s.payload, max_size=MAX_CHECKPOINT, max_depth=4)
    if type(p) is not dict or p.get(0) != MAGIC:
        raise DecodeError("bad_message", "not a chain checkpoint")
    try:
        cp = Checkpoint(
            _text(p[1]),
            _text(p[2]),
            _text(p[3]),
            _uint(p[4]),
            _hash(p[5]),
            tuple(_hash(h) for h in p[6]),
            _uint(p[7]),
        )
    except (KeyError, TypeError) as e:
        raise DecodeError("bad_message", f"a checkpoint field is missing or wrong: {e}") from e
    if s.kid != kid(cp.tenant):
        raise SignatureError("bad_kid", f"checkpoint kid {s.kid!r} does not name {cp.tenant}")
    return cp


def _text(v: object) -> str:
    if type(v) is not str or not v:
        raise TypeError("expected text")
    return v


def _uint(v: object) -> int:
    if type(v) is not int or v < 0:
        raise TypeError("expected a non-negative integer")
    return v


def _hash(v: object) -> bytes:
    if type(v) is not bytes or len(v) != 32:
        raise TypeError("expected a 32-byte hash")
    return v
