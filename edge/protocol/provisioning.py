"""Provisioning requests and head office's replies: enrollment, key rotation, decommissioning.

A device sends a **request** on ``loyalty/v1/{tenant}/enroll/{device}`` and head office
answers on ``.../enroll/{device}/reply`` (edge.protocol.topics).  The request is a
COSE_Sign1 message in the records' EdDSA profile (edge.protocol.cose) with kid
``prov:{device}`` (so it can never pass for a record, whose kid is the bare device id);
its payload is canonical CBOR::

    {0: 1,                                   ; version
     1: "enroll" | "rotate" | "decommission",
     2: tenant, 3: store, 4: device,
     5: device wall clock, ms since the epoch,
     6: nonce (16 bytes; the reply repeats it),
     7: public key (32 bytes)                ; enroll: the key that signs this request
                                             ;   (proof of possession); rotate: the new key
     8: one-time token (text)                ; enroll only
     9: seq}                                 ; rotate: the first seq the new key signs;
                                             ;   decommission: the last seq the device wrote

Who signs: ``enroll`` the new device key itself; ``rotate`` and ``decommission`` the key
head office has in force for the device (for ``rotate``: the one before ``seq``).

The **reply** is canonical CBOR, not signed (only head office may publish on reply
topics: the broker's ACL, docs/provisioning.md)::

    {0: 1, 1: nonce, 2: "ok" | "refused", 3: code, 4: English text, 5: Persian text,
     6: seq (optional: the rotation's from_seq, the revocation's last accepted seq),
     7: head office's wall clock, ms}

Decoding is strict; a malformed message is a DecodeError with code ``bad_message``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.errors import ConfigError, DecodeError
from edge.protocol import cbor, cose, topics

VERSION = 1
OPS = ("enroll", "rotate", "decommission")
NONCE_BYTES = 16
MAX_MESSAGE = 4096
KID_PREFIX = b"prov:"


def _bad(msg: str) -> DecodeError:
    return DecodeError("bad_message", msg)


def kid(device: str) -> bytes:
    return KID_PREFIX + device.encode("utf-8")


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


@dataclass(frozen=True, slots=True)
class Request:
    op: str
    tenant: str
    store: str
    device: str
    time_ms: int
    nonce: bytes
    public_key: bytes | None = None
    token: str | None = None
    seq: int | None = None

    def payload(self) -> dict[int, Any]:
        m: dict[int, Any] = {
            0: VERSION,
            1: self.op,
            2: self.tenant,
            3: self.store,
            4: self.device,
            5: self.time_ms,
            6: self.nonce,
        }
        if self.public_key is not None:
            m[7] = self.public_key
        if self.token is not None:
            m[8] = self.token
        if self.seq is not None:
            m[9] = self.seq
        return m


def _check_request(r: Request) -> None:
    """The shape each op needs; DecodeError (bad_message) otherwise."""
    if r.op not in OPS:
        raise _bad(f"op must be one of {', '.join(OPS)}")
    for value, what in ((r.tenant, "tenant"), (r.store, "store"), (r.device, "device")):
        try:
            topics.check_id(value, what)
        except ConfigError as e:
            raise _bad(str(e)) from None
    if len(r.nonce) != NONCE_BYTES:
        raise _bad(f"the nonce is {NONCE_BYTES} bytes")
    if r.time_ms < 0:
        raise _bad("the time is ms since the epoch")
    need_key = r.op in ("enroll", "rotate")
    if need_key != (r.public_key is not None) or (
        r.public_key is not None and len(r.public_key) != 32
    ):
        raise _bad(f"{r.op}: a 32-byte public key is {'required' if need_key else 'not allowed'}")
    if (r.op == "enroll") != (r.token is not None) or (
        r.token is not None and not 0 < len(r.token) <= 128
    ):
        raise _bad(f"{r.op}: a token is {'required' if r.op == 'enroll' else 'not allowed'}")
    need_seq = r.op in ("rotate", "decommission")
    if need_seq != (r.seq is not None):
        raise _bad(f"{r.op}: a seq is {'required' if need_seq else 'not allowed'}")
    if r.op == "rotate" and r.seq is not None and r.seq < 1:
        raise _bad("rotate: seq starts at 1")


def sign_request(req: Request, key: Ed25519PrivateKey) -> bytes:
    """The COSE_Sign1 request, signed by ``key`` (see the module docstring for which)."""
    _check_request(req)
    return cose.sign1(cbor.encode(req.payload()), key, kid(req.device))


def parse_request(raw: bytes) -> tuple[cose.Sign1, Request]:
    """Strictly decode a request; the caller verifies the signature with the right key."""
    s = cose.parse(raw, max_size=MAX_MESSAGE)
    m = cbor.decode(s.payload, max_size=MAX_MESSAGE, max_depth=2)
    if type(m) is not dict or not {0, 1, 2, 3, 4, 5, 6} <= set(m) <= set(range(10)):
        raise _bad("a provisioning request is a map with keys 0..6 and optional 7..9")
    if m[0] != VERSION:
        raise _bad(f"unknown request version {m[0]!r}")
    types = {1: str, 2: str, 3: str, 4: str, 5: int, 6: bytes, 7: bytes, 8: str, 9: int}
    for k, v in m.items():
        if k and type(v) is not types[k]:
            raise _bad(f"field {k} has the wrong type")
    req = Request(m[1], m[2], m[3], m[4], m[5], m[6], m.get(7), m.get(8), m.get(9))
    _check_request(req)
    if s.kid != kid(req.device):
        raise _bad(f"kid {s.kid!r} does not name device {req.device}")
    return s, req


@dataclass(frozen=True, slots=True)
class Reply:
    nonce: bytes
    ok: bool
    code: str
    en: str
    fa: str
    seq: int | None = None
    time_ms: int = 0


def encode_reply(r: Reply) -> bytes:
    m: dict[int, Any] = {
        0: VERSION,
        1: r.nonce,
        2: "ok" if r.ok else "refused",
        3: r.code,
        4: r.en,
        5: r.fa,
        7: r.time_ms,
    }
    if r.seq is not None:
        m[6] = r.seq
    return cbor.encode(m)


def decode_reply(data: bytes) -> Reply:
    m = cbor.decode(data, max_size=MAX_MESSAGE, max_depth=2)
    if type(m) is not dict or not {0, 1, 2, 3, 4, 5, 7} <= set(m) <= set(range(8)):
        raise _bad("a provisioning reply is a map with keys 0..5, 7 and optional 6")
    if m[0] != VERSION or m[2] not in ("ok", "refused"):
        raise _bad("unknown reply version or status")
    types = {1: bytes, 3: str, 4: str, 5: str, 6: int, 7: int}
    for k, t in types.items():
        if k in m and type(m[k]) is not t:
            raise _bad(f"field {k} has the wrong type")
    return Reply(m[1], m[2] == "ok", m[3], m[4], m[5], m.get(6), m[7])
