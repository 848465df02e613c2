"""Signed rules bundles and the chain of head-office keys that may sign them.

A bundle is a COSE_Sign1 message (the same EdDSA profile as records, edge.protocol.cose)
whose kid is ``rules:{tenant}`` and whose payload is the deterministic CBOR of the rules
document (docs/rules.md).  A terminal accepts a bundle only if

1. the signature verifies with a head-office key the terminal trusts and has not retired
   (its :class:`KeyRing`, seeded with the key pinned at provisioning);
2. the document passes the engine's validation (edge.core.ruleset.compile_rules);
3. its tenant is the terminal's and its version is newer than the one in force
   (``RuleBook.put``): a terminal never goes back to older rules.

Otherwise the bundle is refused with the reason and the rules in force stay in force.

**Key rotation by endorsement** (docs/protocol.md, "Rotating the rules key").  Head office
rotates its rules key without visiting terminals: the key in force signs an
*endorsement* of the next one, a COSE_Sign1 of the same profile and kid whose payload is

    {0: h'<32-byte Ed25519 public key>', 1: key number (>= 2), 2: issued, ms since 1970}

The endorsements travel together, oldest first, as one retained message on
``loyalty/v1/{tenant}/rules_keys``: a CBOR array of their COSE bytes.  A terminal adds a
key only if its endorsement verifies with a key in force in its ring and its number is
higher than every key the ring holds, so a terminal that missed rotations catches up in
one message, and nobody without a key in force can add one.  The first bundle a terminal
accepts from key *n* retires every key numbered below *n* (``KeyRing.accept``): from then
on a bundle, or an endorsement, signed by a retired key is refused.

The payload shapes keep bundles and endorsements apart: a bundle's payload is a map with
text keys, an endorsement's a map with exactly the integer keys 0, 1 and 2, so neither
passes for the other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, overload

from edge.core.errors import RuleError
from edge.core.ruleset import RuleSet, compile_rules
from edge.errors import ConfigError, DecodeError, SignatureError
from edge.protocol import cbor, cose, ed25519
from edge.sanitize import clean, clean_bytes

log = logging.getLogger("edge.protocol.bundles")

MAX_BUNDLE = 1024 * 1024
MAX_ENDORSEMENT = 512  # one endorsement is about 150 bytes
MAX_ENDORSEMENTS = 64  # in one rules_keys message, and keys in one ring
MAX_KEYS_MESSAGE = MAX_ENDORSEMENTS * (MAX_ENDORSEMENT + 3) + 9
MAX_KEY_NUMBER = 0x7FFFFFFF
FIRST_KEY = 1  # the key pinned at provisioning, unless told otherwise


def kid(tenant: str) -> bytes:
    return f"rules:{tenant}".encode()


def sign(doc: dict[str, Any], key: ed25519.PrivateKey) -> bytes:
    """Validate ``doc`` and sign it; RuleError if head office is about to ship a bad one."""
    rs = compile_rules(doc)
    return cose.sign1(cbor.encode(doc), key, kid(rs.tenant))


def _raw(key: ed25519.PublicKey) -> bytes:
    return key.public_bytes_raw()


def _check_number(number: object, what: str = "key number") -> int:
    if type(number) is not int or not FIRST_KEY <= number <= MAX_KEY_NUMBER:
        raise DecodeError("bad_message", f"{what} must be an integer in 1..{MAX_KEY_NUMBER}")
    return number


# -- endorsements ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endorsement:
    """A structurally valid endorsement, its signature not yet checked."""

    public: bytes  # the endorsed key, raw 32 bytes
    number: int
    issued_ms: int
    signed: cose.Sign1

    @property
    def tenant(self) -> str:
        """The tenant its kid names (``rules:{tenant}``)."""
        return self.signed.kid.removeprefix(b"rules:").decode("utf-8", "replace")


def endorse(
    new_public: ed25519.PublicKey,
    number: int,
    signer: ed25519.PrivateKey,
    tenant: str,
    now_ms: int | None = None,
) -> bytes:
    """``signer`` (the key in force) says: the next rules key is ``new_public``, number
    ``number``.  ConfigError for a number below 2 or a key endorsing itself."""
    if type(number) is not int or not FIRST_KEY < number <= MAX_KEY_NUMBER:
        raise ConfigError("number", f"a new key's number is an integer in 2..{MAX_KEY_NUMBER}")
    new_raw = _raw(new_public)
    if new_raw == _raw(signer.public_key()):
        raise ConfigError("new key", "a key cannot endorse itself: generate the next key first")
    if not tenant:
        raise ConfigError("tenant", "an endorsement names its tenant")
    issued = int(time.time() * 1000) if now_ms is None else now_ms
    if type(issued) is not int or issued < 0:
        raise ConfigError("now_ms", "milliseconds since 1970, not negative")
    payload = cbor.encode({0: new_raw, 1: number, 2: issued})
    return cose.sign1(payload, signer, kid(tenant))


def parse_endorsement(raw: bytes, tenant: str | None = None) -> Endorsement:
    """The endorsement in ``raw``, checked for shape (and tenant) but not signature:
    SignatureError or DecodeError."""
    s = cose.parse(raw, max_size=MAX_ENDORSEMENT)
    if (tenant is not None and s.kid != kid(tenant)) or not s.kid.startswith(b"rules:"):
        want = f"rules:{clean(tenant, 64)}" if tenant is not None else "rules:{tenant}"
        raise SignatureError("bad_kid", f"endorsement kid {clean_bytes(s.kid)!r} is not {want}")
    body = cbor.decode(s.payload, max_size=MAX_ENDORSEMENT, max_depth=2)
    if type(body) is not dict or set(body) != {0, 1, 2}:
        raise DecodeError("bad_message", "an endorsement's payload is {0: key, 1: number, 2: ms}")
    public, number, issued = body[0], body[1], body[2]
    if type(public) is not bytes or len(public) != 32:
        raise DecodeError("bad_message", "an endorsed key is a raw 32-byte Ed25519 public key")
    if _check_number(number) < FIRST_KEY + 1:
        raise DecodeError("bad_message", "an endorsed key's number is at least 2")
    if type(issued) is not int or issued < 0:
        raise DecodeError("bad_message", "an endorsement's issue time is ms since 1970")
    return Endorsement(public, number, issued, s)


def encode_endorsements(endorsements: list[bytes]) -> bytes:
    """The retained rules_keys message: a CBOR array of endorsements, oldest first."""
    if len(endorsements) > MAX_ENDORSEMENTS:
        raise ConfigError("endorsements", f"at most {MAX_ENDORSEMENTS} in one message")
    for e in endorsements:
        if type(e) is not bytes or not 0 < len(e) <= MAX_ENDORSEMENT:
            raise ConfigError("endorsements", f"each is 1..{MAX_ENDORSEMENT} bytes of COSE")
    return cbor.encode(list(endorsements))


def decode_endorsements(data: bytes) -> list[bytes]:
    """The endorsements of a rules_keys message; DecodeError for anything else."""
    items = cbor.decode(data, max_size=MAX_KEYS_MESSAGE, max_depth=2)
    if type(items) is not list:
        raise DecodeError("bad_message", "a rules_keys message is an array of endorsements")
    if len(items) > MAX_ENDORSEMENTS:
        raise DecodeError("too_large", f"{len(items)} endorsements, at most {MAX_ENDORSEMENTS}")
    for e in items:
        if type(e) is not bytes or not 0 < len(e) <= MAX_ENDORSEMENT:
            raise DecodeError(
                "bad_message", f"an endorsement is 1..{MAX_ENDORSEMENT} bytes of COSE_Sign1"
            )
    return items


# -- the key ring ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RingKey:
    number: int
    raw: bytes
    public: ed25519.PublicKey


class KeyRing:
    """The head-office keys a terminal trusts, oldest first, each with its number.

    Keys numbered below ``in_force`` are retired: they verify nothing any more, but are
    kept so that what they sign is refused as ``retired_key`` rather than unknown.
    Mutated only by ``extend`` and ``accept`` (the agent thread); ``to_bytes`` is what
    the agent keeps in its kv table.
    """

    __slots__ = ("_keys", "in_force")

    def __init__(self, keys: Iterable[tuple[int, bytes]], in_force: int | None = None) -> None:
        self._keys: list[RingKey] = []
        for number, raw in keys:
            self._add(number, raw)
        if not self._keys:
            raise ConfigError("rules keys", "a key ring holds at least one key")
        first = self._keys[0].number
        self.in_force = first if in_force is None else in_force
        if not first <= self.in_force <= self.newest:
            raise ConfigError("rules keys", f"key {self.in_force} in force is not in the ring")

    def _add(self, number: int, raw: bytes) -> None:
        if type(raw) is not bytes or len(raw) != 32:
            raise ConfigError("rules keys", "an Ed25519 public key is 32 bytes")
        if self._keys and number <= self._keys[-1].number:
            raise ConfigError("rules keys", "key numbers increase along the ring")
        if any(k.raw == raw for k in self._keys):
            raise ConfigError("rules keys", "a key appears twice in the ring")
        if len(self._keys) >= MAX_ENDORSEMENTS:
            raise ConfigError("rules keys", f"a ring holds at most {MAX_ENDORSEMENTS} keys")
        try:
            public = ed25519.public_key(raw)
        except ValueError as e:
            raise ConfigError("rules keys", f"not an Ed25519 public key: {e}") from None
        self._keys.append(RingKey(number, raw, public))

    @classmethod
    def pinned(cls, public_key: ed25519.PublicKey, number: int = FIRST_KEY) -> KeyRing:
        """The ring of a newly provisioned terminal: the pinned key alone."""
        return cls([(number, _raw(public_key))])

    @property
    def keys(self) -> tuple[RingKey, ...]:
        return tuple(self._keys)

    @property
    def newest(self) -> int:
        """The number of the newest key (every key from ``in_force`` on is in force)."""
        return self._keys[-1].number

    def number_of(self, public_key: ed25519.PublicKey | bytes) -> int | None:
        raw = public_key if isinstance(public_key, bytes) else _raw(public_key)
        return next((k.number for k in self._keys if k.raw == raw), None)

    def signer(self, msg: cose.Sign1) -> int:
        """The number of the key that signed ``msg``; SignatureError ``unknown_key`` if no
        key of the ring did.  A retired signer is returned: the caller says what it means."""
        for k in reversed(self._keys):  # the newest first: that is who signs
            if ed25519.verifies(
                k.public, msg.signature, cose.sig_structure(msg.protected, msg.payload)
            ):
                return k.number
        raise SignatureError(
            "unknown_key",
            f"the signature does not verify with any of the {len(self._keys)} rules keys this "
            f"terminal trusts (newest: key {self.newest})",
        )

    def accept(self, number: int) -> bool:
        """A bundle signed by key ``number`` was accepted: retire every key before it.
        True if that retired any."""
        if all(k.number != number for k in self._keys):
            raise ConfigError("rules keys", f"key {number} is not in the ring")
        if number <= self.in_force:
            return False
        self.in_force = number
        return True

    def extend(self, endorsements: list[bytes], tenant: str) -> int:
        """Add, in order, each endorsed key whose endorsement verifies with a key in force
        and whose number is above every key in the ring; returns how many were added.
        Endorsements of keys already held are skipped silently, refused ones logged."""
        added = 0
        for i, raw in enumerate(endorsements):
            try:
                if self.add(raw, tenant):
                    added += 1
            except (SignatureError, DecodeError, ConfigError) as e:
                log.warning("refused rules key endorsement %d: %s", i + 1, clean(str(e), 200))
        return added

    def add(self, raw: bytes, tenant: str) -> bool:
        """Add the key one endorsement names: True if added, False if already held;
        SignatureError, DecodeError or ConfigError (the ring is full) if refused."""
        e = parse_endorsement(raw, tenant)
        if self.number_of(e.public) is not None:
            return False  # already held
        by = self.signer(e.signed)
        if by < self.in_force:
            raise SignatureError(
                "retired_key",
                f"key {e.number} is endorsed by key {by}, retired since key {self.in_force} "
                "signed the rules",
            )
        if e.number <= self.newest:
            raise SignatureError(
                "not_newer", f"key number {e.number} is not above the newest held, {self.newest}"
            )
        self._add(e.number, e.public)
        log.info("rules key %d (endorsed by key %d) added to the ring", e.number, by)
        return True

    def to_bytes(self) -> bytes:
        """Deterministic CBOR ``{0: [[number, key], ...], 1: number in force}``."""
        return cbor.encode({0: [[k.number, k.raw] for k in self._keys], 1: self.in_force})

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyRing:
        """The ring ``to_bytes`` wrote; DecodeError for anything else."""
        m = cbor.decode(data, max_size=MAX_KEYS_MESSAGE, max_depth=3)
        if type(m) is not dict or set(m) != {0, 1} or type(m[0]) is not list:
            raise DecodeError("bad_message", "a key ring is {0: [[number, key], ...], 1: number}")
        pairs = []
        for item in m[0]:
            if type(item) is not list or len(item) != 2 or type(item[1]) is not bytes:
                raise DecodeError("bad_message", "a ring key is [number, 32-byte key]")
            pairs.append((_check_number(item[0]), item[1]))
        try:
            return cls(pairs, _check_number(m[1], "the key in force"))
        except ConfigError as e:
            raise DecodeError("bad_message", f"not a valid key ring: {e}") from None


# -- opening a bundle ----------------------------------------------------------------------


@overload
def open_bundle(raw: bytes, pinned: ed25519.PublicKey, tenant: str | None = None) -> RuleSet: ...
@overload
def open_bundle(raw: bytes, pinned: KeyRing, tenant: str | None = None) -> tuple[RuleSet, int]: ...
def open_bundle(
    raw: bytes, pinned: ed25519.PublicKey | KeyRing, tenant: str | None = None
) -> RuleSet | tuple[RuleSet, int]:
    """Verify and validate a signed bundle; SignatureError, DecodeError or RuleError.

    With one public key (head office's tools), the rules; with a :class:`KeyRing`, the
    rules and the number of the key that signed them (refused as ``unknown_key`` or
    ``retired_key``).  Opening never changes the ring: the caller ``accept``s the number
    once the rules are in force.
    """
    s = cose.parse(raw, max_size=MAX_BUNDLE)
    if isinstance(pinned, KeyRing):
        number = pinned.signer(s)
    else:
        s.verify(pinned)
        number = 0
    doc = cbor.decode(s.payload, max_size=MAX_BUNDLE, max_depth=12)
    if type(doc) is not dict:
        raise DecodeError("bad_message", "a rules bundle's payload must be a map")
    rs = compile_rules(doc)
    if s.kid != kid(rs.tenant):
        raise SignatureError("bad_kid", f"bundle kid {s.kid!r} does not name tenant {rs.tenant}")
    if tenant is not None and rs.tenant != tenant:
        raise RuleError("bundle", f"rules for tenant {rs.tenant}, this terminal is {tenant}")
    if not isinstance(pinned, KeyRing):
        return rs
    if number < pinned.in_force:
        raise SignatureError(
            "retired_key",
            f"rules v{rs.version} are signed with rules key {number}, retired since key "
            f"{pinned.in_force} signed the rules in force",
        )
    return rs, number
