"""Signed rules bundles: head office signs, terminals verify against the pinned key.

A bundle is a COSE_Sign1 message (the same EdDSA profile as records, edge.protocol.cose)
whose kid is ``rules:{tenant}`` and whose payload is the deterministic CBOR of the rules
document (docs/rules.md).  A terminal accepts a bundle only if

1. the signature verifies with the head-office public key pinned at provisioning;
2. the document passes the engine's validation (edge.core.ruleset.compile_rules);
3. its tenant is the terminal's and its version is newer than the one in force
   (``RuleBook.put``): a terminal never goes back to older rules.

Otherwise the bundle is refused with the reason and the rules in force stay in force.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.core.errors import RuleError
from edge.core.ruleset import RuleSet, compile_rules
from edge.errors import DecodeError, SignatureError
from edge.protocol import cbor, cose

MAX_BUNDLE = 1024 * 1024


def kid(tenant: str) -> bytes:
    return f"rules:{tenant}".encode()


def sign(doc: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """Validate ``doc`` and sign it; RuleError if head office is about to ship a bad one."""
    rs = compile_rules(doc)
    return cose.sign1(cbor.encode(doc), key, kid(rs.tenant))


def open_bundle(raw: bytes, pinned: Ed25519PublicKey, tenant: str | None = None) -> RuleSet:
    """Verify and validate a signed bundle; SignatureError, DecodeError or RuleError."""
    s = cose.parse(raw, max_size=MAX_BUNDLE)
    s.verify(pinned)
    doc = cbor.decode(s.payload, max_size=MAX_BUNDLE, max_depth=12)
    if type(doc) is not dict:
        raise DecodeError("bad_message", "a rules bundle's payload must be a map")
    rs = compile_rules(doc)
    if s.kid != kid(rs.tenant):
        raise SignatureError("bad_kid", f"bundle kid {s.kid!r} does not name tenant {rs.tenant}")
    if tenant is not None and rs.tenant != tenant:
        raise RuleError("bundle", f"rules for tenant {rs.tenant}, this terminal is {tenant}")
    return rs
