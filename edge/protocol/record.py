"""Signed, hash-chained transaction records: seal on the terminal, open at head office.

A record is a COSE_Sign1 message (edge.protocol.cose) whose payload is the deterministic
CBOR of a payload map built by :mod:`edge.core.record`.  Its *hash* is SHA-256 of the
whole COSE_Sign1 bytes; each record carries the hash of the previous record of the same
device (``prev``), so a device's records form a chain that head office checks.

Opening is in two steps so the caller can look the device up in between:
:func:`parse` (strict decode, schema check, kid == device) and :meth:`Unverified.verify`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge.core import record as R
from edge.core.inputs import MAX_LINES, MAX_QTY
from edge.core.phone import normalise
from edge.core.ruleset import MAX_AMOUNT
from edge.errors import CoreError, DecodeError, RecordError, SignatureError
from edge.protocol import cbor, cose, ed25519

MAX_RECORD = 64 * 1024
MAX_I64 = 2**63 - 1  # the largest value a BIGINT column (SQLite, PostgreSQL) holds
_HASH_LEN = 32


def record_hash(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


@dataclass(frozen=True, slots=True)
class Record:
    """A record whose signature has been verified (or that we sealed ourselves)."""

    raw: bytes
    hash: bytes
    payload: dict[int, Any]

    @property
    def type(self) -> str:
        return str(self.payload[R.K_TYPE])

    @property
    def device(self) -> str:
        return str(self.payload[R.K_DEVICE])

    @property
    def seq(self) -> int:
        return int(self.payload[R.K_SEQ])

    @property
    def prev(self) -> bytes:
        return bytes(self.payload[R.K_PREV])


@dataclass(frozen=True, slots=True)
class Unverified:
    """A structurally valid record whose signature is not checked yet."""

    raw: bytes
    sign1: cose.Sign1
    payload: dict[int, Any]

    @property
    def device(self) -> str:
        return str(self.payload[R.K_DEVICE])

    @property
    def tenant(self) -> str:
        return str(self.payload[R.K_TENANT])

    @property
    def store(self) -> str:
        return str(self.payload[R.K_STORE])

    @property
    def seq(self) -> int:
        return int(self.payload[R.K_SEQ])

    def verify(self, key: ed25519.PublicKey) -> Record:
        self.sign1.verify(key)
        return Record(self.raw, record_hash(self.raw), self.payload)


class Sealer:
    """Signs payloads with a device's key (kid = the device id)."""

    def __init__(self, key: ed25519.PrivateKey, device: str) -> None:
        self._key = key
        self.device = device
        self._kid = device.encode("utf-8")

    def seal(self, payload: dict[int, Any]) -> Record:
        if payload.get(R.K_DEVICE) != self.device:
            raise RecordError("kid_mismatch", "payload device differs from the signing device")
        raw = cose.sign1(cbor.encode(payload), self._key, self._kid)
        return Record(raw, record_hash(raw), payload)


def parse(raw: bytes) -> Unverified:
    """Decode and check a record's structure and schema; the signature is not checked."""
    sign1 = cose.parse(raw, max_size=MAX_RECORD)
    # typed=True: validate() below checks the type of every value in the payload
    payload = cbor.decode(sign1.payload, max_size=MAX_RECORD, typed=True)
    validate(payload)
    if sign1.kid != str(payload[R.K_DEVICE]).encode("utf-8"):
        raise SignatureError(
            "kid_mismatch", f"kid {sign1.kid!r} is not the payload's device {payload[R.K_DEVICE]!r}"
        )
    return Unverified(raw, sign1, payload)


def open_record(raw: bytes, key_for: Callable[[str], ed25519.PublicKey | None]) -> Record:
    """parse + verify with the key ``key_for(device)`` returns (None: unknown device)."""
    u = parse(raw)
    key = key_for(u.device)
    if key is None:
        raise SignatureError("unknown_device", f"no key registered for device {u.device!r}")
    return u.verify(key)


# -- schema --------------------------------------------------------------------------


def _fail(code: str, msg: str) -> RecordError:
    return RecordError(code, msg)


def _text(v: Any, where: str, maxlen: int = 64, empty: bool = False) -> str:
    if type(v) is not str or len(v) > maxlen or (not v and not empty):
        raise _fail("bad_field", f"{where} must be text of {0 if empty else 1}..{maxlen} chars")
    if v and (min(v) < " " or "\x7f" in v):
        raise _fail("bad_field", f"{where} contains a control character")
    return v


def _uint(v: Any, where: str, hi: int = MAX_AMOUNT) -> int:
    if type(v) is not int or v < 0 or v > hi:
        raise _fail("bad_field", f"{where} must be an integer in 0..{hi}")
    return v


def _int(v: Any, where: str) -> int:
    if type(v) is not int or abs(v) > MAX_AMOUNT:
        raise _fail("bad_field", f"{where} must be an integer within ±{MAX_AMOUNT}")
    return v


def _map(v: Any, where: str, allowed: range | tuple[int, ...]) -> dict[int, Any]:
    if type(v) is not dict:
        raise _fail("bad_field", f"{where} must be a map")
    for k in v:
        if type(k) is not int or k not in allowed:  # 1.0 == 1 and True == 1 in Python
            raise _fail("unknown_key", f"{where} has an unknown key {k!r}")
    return v


def _pair(v: Any, where: str, forgiven: bool = False) -> tuple[int, int]:
    """The points or wallet map: keys 0 and 1 (P_EARNED/P_REDEEMED, W_USED/W_CASHBACK);
    with ``forgiven`` (refunds) an optional 2 (P_FORGIVEN, W_FORGIVEN): the part not
    taken back."""
    first, second, third = R.P_EARNED, R.P_REDEEMED, R.P_FORGIVEN  # == W_USED, ...
    m = _map(v, where, (first, second, third) if forgiven else (first, second))
    if first not in m or second not in m:
        raise _fail("missing_field", f"{where} needs keys 0 and 1")
    if third in m:
        _uint(m[third], f"{where}.2")
    return _uint(m[first], f"{where}.0"), _uint(m[second], f"{where}.1")


_COMMON_REQUIRED = (
    R.K_V,
    R.K_TYPE,
    R.K_TENANT,
    R.K_STORE,
    R.K_DEVICE,
    R.K_SEQ,
    R.K_PREV,
    R.K_TIME,
    R.K_OFFLINE,
)
_MONEY_KEYS = (R.K_AMOUNTS, R.K_LINES, R.K_POINTS, R.K_WALLET, R.K_RULES)
_ALL_KEYS = range(20)


def validate(p: Any) -> None:
    """Check a decoded payload against the schema (docs/protocol.md); RecordError if not."""
    if type(p) is not dict:
        raise _fail("bad_payload", "the payload must be a map")
    for k in p:
        if type(k) is not int or k not in _ALL_KEYS:
            raise _fail("unknown_key", f"unknown payload key {k!r}")
    for k in _COMMON_REQUIRED:
        if k not in p:
            raise _fail("missing_field", f"payload key {k} is required")
    if type(p[R.K_V]) is not int or p[R.K_V] != R.SCHEMA:
        raise _fail("bad_version", f"schema version {p[R.K_V]!r}, this code reads {R.SCHEMA}")
    kind = p[R.K_TYPE]
    if kind not in R.TYPES:
        raise _fail("bad_type", f"unknown record type {kind!r}")
    _text(p[R.K_TENANT], "tenant")
    _text(p[R.K_STORE], "store")
    _text(p[R.K_DEVICE], "device")
    if type(p[R.K_SEQ]) is not int or not 1 <= p[R.K_SEQ] <= MAX_I64:
        raise _fail("bad_field", "seq must be an integer in 1..2**63-1")
    if type(p[R.K_PREV]) is not bytes or len(p[R.K_PREV]) != _HASH_LEN:
        raise _fail("bad_field", "prev must be a 32-byte hash")
    if p[R.K_SEQ] == 1 and p[R.K_PREV] != R.ZERO_HASH:
        raise _fail("bad_chain", "the first record of a device must have prev = 32 zero bytes")
    t = _map(p[R.K_TIME], "time", (R.T_WALL, R.T_OFFSET, R.T_MONO, R.T_BOOT))
    _uint(t.get(R.T_WALL), "time.wall_ms", MAX_I64)
    if type(t.get(R.T_OFFSET)) is not int or abs(t[R.T_OFFSET]) > 14 * 60:
        raise _fail("bad_field", "time.offset must be minutes within ±14h")
    _uint(t.get(R.T_MONO), "time.mono_ms", MAX_I64)
    if type(t.get(R.T_BOOT)) is not bytes or len(t[R.T_BOOT]) != 8:
        raise _fail("bad_field", "time.boot must be 8 bytes")
    if type(p[R.K_OFFLINE]) is not bool:
        raise _fail("bad_field", "offline must be true or false")
    m = p.get(R.K_MEMBER)
    if m is not None:
        m = _map(m, "member", (R.M_HOW, R.M_REF))
        if m.get(R.M_HOW) not in ("phone", "card", "qr"):
            raise _fail("bad_field", "member.how must be phone, card or qr")
        ref = _text(m.get(R.M_REF), "member.ref")
        if m[R.M_HOW] == "phone" and not _is_e164(ref):
            # head office keys members by this text: "0912..." beside "+98912..." would be
            # a second member
            raise _fail("bad_field", "member.ref of a phone member must be E.164 (+989...)")
    b = p.get(R.K_BANK)
    if b is not None:
        _validate_bank(b)
    if p.get(R.K_BASKET) is not None:
        _text(p[R.K_BASKET], "basket", 64)
    if kind in ("sale", "refund", "void"):
        if R.K_EXTRA in p:
            raise _fail("unknown_key", f"a {kind} record carries no key {R.K_EXTRA}")
        _validate_money(p, kind)
    else:
        for k in (*_MONEY_KEYS, R.K_ORIG, R.K_APPLIED):
            if k in p:
                raise _fail("unknown_key", f"a {kind} record carries no key {k}")
        if R.K_EXTRA in p:
            _validate_extra(p[R.K_EXTRA], kind)


def _is_e164(ref: str) -> bool:
    try:
        return normalise(ref) == ref
    except CoreError:
        return False


def _validate_extra(extra: Any, kind: str) -> None:
    for k, v in _map(extra, "extra", range(16)).items():
        if type(v) is int:
            _int(v, f"extra.{k}")
        elif kind == "adjustment" and k in (R.ADJ_POINTS, R.ADJ_WALLET):
            raise _fail("bad_field", f"extra.{k} of an adjustment must be an integer")
        elif type(v) is str:
            _text(v, f"extra.{k}", 200, empty=True)
        elif v is not None and type(v) is not bool and type(v) is not bytes:
            raise _fail(
                "bad_field", f"extra.{k} must be an integer, text, bytes, a boolean or null"
            )


def _validate_bank(b: Any) -> None:
    b = _map(b, "bank", range(len(R.BANK_NAMES)))
    for i, name in enumerate(R.BANK_NAMES):
        if i not in b or i == R.B_AMOUNT:
            continue
        if type(b[i]) is int:
            _uint(b[i], f"bank.{name}", MAX_I64)
        else:
            _text(b[i], f"bank.{name}", 64, empty=True)
    if R.B_AMOUNT in b:
        _uint(b[R.B_AMOUNT], "bank.amount")


def _validate_money(p: dict[int, Any], kind: str) -> None:
    for k in _MONEY_KEYS:
        if k not in p:
            raise _fail("missing_field", f"a {kind} record needs key {k}")
    money_back = kind != "sale"
    keys = (R.A_GROSS, R.A_DISCOUNT, R.A_WALLET, R.A_PAID)
    a = _map(p[R.K_AMOUNTS], "amounts", (*keys, R.A_WITHHELD) if money_back else keys)
    gross, disc, wallet, payable = (_uint(a.get(i), f"amounts.{i}") for i in keys)
    withheld = _uint(a[R.A_WITHHELD], "amounts.4") if R.A_WITHHELD in a else 0
    if payable != gross - disc - wallet - withheld:
        raise _fail(
            "inconsistent", f"payable {payable} != {gross} - {disc} - {wallet} - {withheld}"
        )
    lines = p[R.K_LINES]
    if type(lines) is not list or not lines or len(lines) > MAX_LINES:
        raise _fail("bad_field", f"lines must be a list of 1..{MAX_LINES} maps")
    sums = [0] * 6
    line_keys = range(R.L_LINE) if kind == "sale" else range(R.L_LINE + 1)
    for i, raw_line in enumerate(lines):
        ln = _map(raw_line, f"lines[{i}]", line_keys)
        _text(ln.get(R.L_SKU), f"lines[{i}].sku", empty=True)
        _text(ln.get(R.L_CATEGORY, ""), f"lines[{i}].category", empty=True)
        _uint(ln.get(R.L_QTY), f"lines[{i}].qty", MAX_QTY)
        if R.L_UNIT_PRICE in ln:
            _uint(ln[R.L_UNIT_PRICE], f"lines[{i}].unit_price")
        for j in range(len(R.LINE_FIGURES)):
            sums[j] += _uint(ln.get(R.L_DISCOUNT + j), f"lines[{i}].{R.LINE_FIGURES[j]}")
        if kind != "sale":
            _uint(ln.get(R.L_LINE), f"lines[{i}].line", MAX_LINES)
    earned, redeemed = _pair(p[R.K_POINTS], "points", money_back)
    used, cashback = _pair(p[R.K_WALLET], "wallet", money_back)
    checks = (
        (sums[1], used, "wallet"),
        (sums[2], payable, "paid"),
        (sums[3], earned, "points"),
        (sums[4], redeemed, "redeemed"),
        (sums[5], cashback, "cashback"),
        (sums[0], disc, "discount"),
    )
    if kind == "sale":
        for got, want, what in checks:
            if got != want:
                raise _fail("inconsistent", f"lines' {what} add up to {got}, totals say {want}")
    _uint(p[R.K_RULES], "rules version", 2**53)
    if kind == "sale":
        if R.K_ORIG in p:
            raise _fail("unknown_key", "a sale refers to no original record")
        applied = p.get(R.K_APPLIED, [])
        if type(applied) is not list or len(applied) > 1000:
            raise _fail("bad_field", "applied must be a list")
        for i, raw_entry in enumerate(applied):
            e = _map(raw_entry, f"applied[{i}]", range(R.AP_ANNIVERSARY + 1))
            _text(e.get(R.AP_RULE), f"applied[{i}].rule")
            _text(e.get(R.AP_KIND), f"applied[{i}].kind")
            for j in (R.AP_DISCOUNT, R.AP_POINTS, R.AP_WALLET, R.AP_BIRTHDAY, R.AP_ANNIVERSARY):
                if j in e:
                    _int(e[j], f"applied[{i}].{j}")
            if R.AP_COUPON in e:
                _text(e[R.AP_COUPON], f"applied[{i}].coupon")
    else:
        o = _map(p.get(R.K_ORIG), "orig", (R.O_DEVICE, R.O_SEQ, R.O_HASH))
        _text(o.get(R.O_DEVICE), "orig.device")
        _uint(o.get(R.O_SEQ), "orig.seq", MAX_I64)
        if type(o.get(R.O_HASH)) is not bytes or len(o[R.O_HASH]) != _HASH_LEN:
            raise _fail("bad_field", "orig.hash must be 32 bytes")
        if R.K_APPLIED in p:
            raise _fail("unknown_key", f"a {kind} record carries no applied rules")


def describe(exc: Exception) -> str:
    """A one-line reason for quarantine tables and logs."""
    if isinstance(exc, DecodeError | RecordError | SignatureError):
        return f"{type(exc).__name__}[{exc.code}]: {exc}"
    return f"{type(exc).__name__}: {exc}"
