"""Records: sealed by the terminal, verified by us, by pycose and by python-cwt."""

from __future__ import annotations

import copy
import os
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from cwt import COSE, COSEKey
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import CoseMessage

from edge.core import record as R
from edge.errors import DecodeError, RecordError, SignatureError
from edge.protocol import cbor, cose, ed25519
from edge.protocol.keys import public_raw
from edge.protocol.record import Record, Sealer, open_record, parse, validate
from tests.helpers.device import Device, commit_all_types, commit_sale, make_device


def pycose_verifies(raw: bytes, pub: bytes) -> bool:
    msg = CoseMessage.decode(raw)
    msg.key = OKPKey(crv=Ed25519, x=pub)
    return bool(msg.verify_signature())


def cwt_verifies(raw: bytes, pub: bytes, kid: bytes) -> bytes | None:
    key = COSEKey.new({1: 1, -1: 6, -2: pub, 3: -8, 2: kid})
    try:
        return bytes(COSE.new().decode(raw, key))
    except Exception:
        return None


@pytest.fixture(params=["cryptography", "libcrypto"])
def records(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[list[Record], bytes, str]:
    """Records signed with cryptography's key (head office's tools) or the terminal's own
    (edge.protocol.ed25519, on the libcrypto CPython loaded): the agent signs with that."""
    key = None
    if request.param == "libcrypto":
        assert ed25519.backend() == "libcrypto"
        key = ed25519.private_key(os.urandom(32))
    dev = make_device(tmp_path, key=key)
    recs = commit_all_types(dev) + [commit_sale(dev, i, offline=i % 2 == 0) for i in range(8)]
    return recs, public_raw(dev.key), dev.id


def test_every_record_verifies_with_pycose_and_python_cwt(
    records: tuple[list[Record], bytes, str],
) -> None:
    recs, pub, device = records
    assert {r.type for r in recs} == set(R.TYPES)
    for r in recs:
        assert pycose_verifies(r.raw, pub), r.seq
        payload = cwt_verifies(r.raw, pub, device.encode())
        assert payload is not None, r.seq
        assert cbor.decode(payload) == r.payload


def test_a_flipped_bit_is_rejected_by_all_three(
    records: tuple[list[Record], bytes, str], tmp_path: Path
) -> None:
    recs, pub, device = records
    from edge.protocol.keys import public_from_raw

    key = public_from_raw(pub)
    r = recs[1]
    # one bit in the payload, one in the signature
    for pos in (len(r.raw) // 2, len(r.raw) - 3):
        bad = bytearray(r.raw)
        bad[pos] ^= 0x04
        bad_raw = bytes(bad)
        assert cwt_verifies(bad_raw, pub, device.encode()) is None
        try:
            pycose_ok = pycose_verifies(bad_raw, pub)
        except Exception:  # pycose may refuse to decode it at all: also a rejection
            pycose_ok = False
        assert not pycose_ok
        with pytest.raises((SignatureError, DecodeError, RecordError)):
            open_record(bad_raw, lambda _d: key)


def test_chain_and_seq(records: tuple[list[Record], bytes, str]) -> None:
    recs, _pub, _d = records
    assert [r.seq for r in recs] == list(range(1, len(recs) + 1))
    assert recs[0].prev == R.ZERO_HASH
    for a, b in pairwise(recs):
        assert b.prev == a.hash


def test_wrong_key_unknown_device_and_kid_mismatch(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    other = make_device(tmp_path, "dev-2")
    rec = commit_sale(dev)
    with pytest.raises(SignatureError) as info:
        open_record(rec.raw, lambda _d: other.key.public_key())
    assert info.value.code == "bad_signature"
    with pytest.raises(SignatureError) as info:
        open_record(rec.raw, lambda _d: None)
    assert info.value.code == "unknown_device"
    # a record whose kid names another device than its payload
    s1 = cose.parse(rec.raw)
    forged = cose.sign1(s1.payload, other.key, b"dev-2")
    with pytest.raises(SignatureError) as info:
        parse(forged)
    assert info.value.code == "kid_mismatch"
    with pytest.raises(RecordError):
        Sealer(dev.key, "dev-2").seal(rec.payload)


def _resign(payload: dict[int, Any], key: Any) -> bytes:
    return cose.sign1(cbor.encode(payload), key, str(payload[R.K_DEVICE]).encode())


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda p: p.__setitem__(R.K_V, 2), "bad_version"),
        (lambda p: p.__setitem__(R.K_TYPE, "gift"), "bad_type"),
        (lambda p: p.__setitem__(R.K_SEQ, 0), "bad_field"),
        (lambda p: p.__setitem__(R.K_PREV, b"\x01" * 31), "bad_field"),
        (lambda p: p.__setitem__(R.K_STORE, "s1\x1b[31m"), "bad_field"),
        (lambda p: p.__setitem__(23, 1), "unknown_key"),  # 24 on are bad_key in CBOR
        (lambda p: p.pop(R.K_TIME), "missing_field"),
        (lambda p: p[R.K_AMOUNTS].__setitem__(3, p[R.K_AMOUNTS][3] + 1), "inconsistent"),
        (lambda p: p[R.K_LINES][0].__setitem__(7, p[R.K_LINES][0][7] + 5), "inconsistent"),
        (lambda p: p[R.K_AMOUNTS].__setitem__(1, -5), "bad_field"),
        (lambda p: p.__setitem__(R.K_MEMBER, {0: "email", 1: "x"}), "bad_field"),
        (lambda p: p.__setitem__(R.K_ORIG, {0: "d", 1: 1, 2: b"\x00" * 32}), "unknown_key"),
        (lambda p: p.__setitem__(R.K_LINES, []), "bad_field"),
        (lambda p: p.__setitem__(R.K_EXTRA, {0: 1}), "unknown_key"),  # no extra on a sale
        (lambda p: p.__setitem__(R.K_EXTRA, 5), "unknown_key"),
        (lambda p: p[R.K_LINES][0].__setitem__(10, 0), "unknown_key"),  # refunds only
        (lambda p: p[R.K_BANK].__setitem__(1, -5), "bad_field"),
        (lambda p: p[R.K_BANK].__setitem__(1, 2**64 - 1), "bad_field"),  # beyond a BIGINT
        (lambda p: p[R.K_TIME].__setitem__(0, 2**63), "bad_field"),
        (lambda p: p.__setitem__(R.K_MEMBER, {0: "phone", 1: "09121234567"}), "bad_field"),
        (lambda p: p.__setitem__(R.K_MEMBER, {0: "phone", 1: "+98912"}), "bad_field"),
        (lambda p: p.__setitem__(R.K_MEMBER, {0: "phone", 1: "+98 912 123 4567"}), "bad_field"),
        (lambda p: p.__setitem__(R.K_MEMBER, {0: "phone", 1: "ali"}), "bad_field"),
    ],
)
def test_schema_violations_are_refused_with_a_code(tmp_path: Path, mutate: Any, code: str) -> None:
    dev = make_device(tmp_path)
    rec = commit_sale(dev)
    p = copy.deepcopy(rec.payload)
    mutate(p)
    with pytest.raises(RecordError) as info:
        parse(_resign(p, dev.key))
    assert info.value.code == code


@pytest.mark.parametrize(
    ("kind", "mutate", "code"),
    [
        ("refund", lambda p: p[R.K_ORIG].__setitem__(1, 2**63), "bad_field"),
        ("refund", lambda p: p.__setitem__(R.K_EXTRA, {}), "unknown_key"),
        ("void", lambda p: p.__setitem__(R.K_EXTRA, {0: "x"}), "unknown_key"),
        ("adjustment", lambda p: p[R.K_EXTRA].__setitem__(1, "500"), "bad_field"),
        ("adjustment", lambda p: p[R.K_EXTRA].__setitem__(2, True), "bad_field"),
        ("adjustment", lambda p: p[R.K_EXTRA].__setitem__(1, None), "bad_field"),
        ("adjustment", lambda p: p[R.K_EXTRA].__setitem__(2, 10**16), "bad_field"),
        ("enroll", lambda p: p[R.K_EXTRA].__setitem__(1, "x" * 201), "bad_field"),
    ],
)
def test_schema_violations_of_other_types(
    tmp_path: Path, kind: str, mutate: Any, code: str
) -> None:
    dev = make_device(tmp_path)
    rec = next(r for r in commit_all_types(dev) if r.type == kind)
    p = copy.deepcopy(rec.payload)
    parse(_resign(p, dev.key))  # as the terminal wrote it: fine
    mutate(p)
    with pytest.raises(RecordError) as info:
        parse(_resign(p, dev.key))
    assert info.value.code == code


def test_first_record_must_start_the_chain(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    rec = commit_sale(dev)
    p = copy.deepcopy(rec.payload)
    p[R.K_PREV] = b"\x01" * 32
    with pytest.raises(RecordError) as info:
        validate(p)
    assert info.value.code == "bad_chain"


@pytest.mark.parametrize(
    ("build", "code"),
    [
        (
            lambda s: cbor.encode([s.protected, {4: s.kid}, s.payload, s.signature]),
            "not_cose_sign1",
        ),
        (
            lambda s: b"\xd2" + cbor.encode([b"\xa1\x01\x26", {4: s.kid}, s.payload, s.signature]),
            "bad_alg",
        ),
        (
            lambda s: (
                b"\xd2" + cbor.encode([s.protected, {4: s.kid, 1: -8}, s.payload, s.signature])
            ),
            "bad_header",
        ),
        (lambda s: b"\xd2" + cbor.encode([s.protected, {4: s.kid}, None, s.signature]), "detached"),
        (
            lambda s: b"\xd2" + cbor.encode([s.protected, {4: s.kid}, s.payload, s.signature[:63]]),
            "bad_signature",
        ),
        (
            lambda s: b"\xd2" + cbor.encode([s.protected, {4: b""}, s.payload, s.signature]),
            "bad_kid",
        ),
    ],
)
def test_cose_profile_violations(tmp_path: Path, build: Any, code: str) -> None:
    dev = make_device(tmp_path)
    s = cose.parse(commit_sale(dev).raw)
    with pytest.raises(SignatureError) as info:
        cose.parse(build(s))
    assert info.value.code == code


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.__setitem__(R.K_V, 1.0),  # equal to 1 in Python, still a float
        lambda p: p[R.K_AMOUNTS].__setitem__(0, float(p[R.K_AMOUNTS][0])),
        lambda p: p.__setitem__(R.K_OFFLINE, 0),
        lambda p: p[R.K_TIME].__setitem__(1, 210.0),
        lambda p: p.__setitem__(1.0, p.pop(R.K_TYPE)),  # a float key that equals 1
        lambda p: p[R.K_LINES][0].__setitem__(True, p[R.K_LINES][0].pop(1)),
        lambda p: p.__setitem__(R.K_BASKET, 12.5),
        lambda p: p.__setitem__(R.K_SEQ, 2**64),  # a bignum
        lambda p: p.__setitem__(R.K_EXTRA, 1.5),
        lambda p: p.__setitem__(R.K_EXTRA, 2**80),
        lambda p: p.__setitem__(R.K_EXTRA, {1, 2}),  # tag 258, a set
        lambda p: p.__setitem__(R.K_EXTRA, _nested(40)),
        lambda p: p[R.K_LINES][0].__setitem__(10, 2.5),
        lambda p: p[R.K_BANK].__setitem__(1, 2**70),
        lambda p: p[R.K_BANK].__setitem__(1, -5),
    ],
)
def test_typed_fast_path_still_refuses_wrong_types(tmp_path: Path, mutate: Any) -> None:
    import cbor2

    dev = make_device(tmp_path)
    p = copy.deepcopy(commit_sale(dev).payload)
    mutate(p)
    data = cbor2.dumps(p, canonical=True)  # our encoder would refuse to write these
    raw = cose.sign1(data, dev.key, dev.id.encode())
    with pytest.raises((RecordError, DecodeError)):
        parse(raw)


def _nested(depth: int) -> Any:
    v: Any = 0
    for _ in range(depth):
        v = [v]
    return v


def test_envelope_fast_path_agrees_with_the_strict_decoder(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    for r in commit_all_types(dev):
        fast = cose._fast(r.raw)
        assert fast is not None
        msg = cbor.decode(r.raw, allowed_tags=frozenset({18}))
        assert [fast.protected, {4: fast.kid}, fast.payload, fast.signature] == msg.value
    # non-minimal length heads take the strict path and are refused there
    s = cose.parse(commit_sale(dev).raw)
    odd = (
        b"\xd2\x84\x43\xa1\x01\x27\xa1\x04\x58\x05dev-1"
        + b"\x59"
        + len(s.payload).to_bytes(2, "big")
        + s.payload
        + b"\x58\x40"
        + s.signature
    )
    assert cose._fast(odd) is None
    with pytest.raises(DecodeError) as info:
        cose.parse(odd)
    assert info.value.code == "non_minimal"


@pytest.mark.parametrize("impl", ["libsodium", "openssl", "libcrypto"])
def test_both_verifiers_agree(tmp_path: Path, impl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Head office verifies with libsodium (PyNaCl), a terminal without it with OpenSSL:
    cryptography's (its own, statically linked), or the libcrypto CPython loaded, with the
    terminal's keys (edge.protocol.ed25519); the same records pass and the same forgeries
    and tamperings fail on all of them."""
    monkeypatch.setattr(cose, "_sodium_open", cose._sodium_open)  # restored afterwards
    monkeypatch.setattr(cose, "_sodium_bad", cose._sodium_bad)
    if impl == "libsodium":
        assert cose.prefer_libsodium(), "PyNaCl is installed with head office"
    else:
        monkeypatch.setattr(cose, "_sodium_open", None)
    dev = make_device(tmp_path)
    other = make_device(tmp_path, "dev-2")

    def public(d: Device) -> ed25519.PublicKey:
        if impl == "libcrypto":
            assert ed25519.backend() == "libcrypto"
            return ed25519.public_key(d.key.public_key().public_bytes_raw())
        return d.key.public_key()

    good = [commit_sale(dev, i) for i in range(5)]
    for rec in good:
        cose.parse(rec.raw).verify(public(dev))
    s = cose.parse(good[0].raw)
    bad_sig = cose.Sign1(s.protected, s.kid, s.payload, bytes(64))
    flipped = bytearray(s.signature)
    flipped[10] ^= 1
    for forged, key in [
        (s, public(other)),  # another device's key
        (bad_sig, public(dev)),  # zeros
        (cose.Sign1(s.protected, s.kid, s.payload, bytes(flipped)), public(dev)),
        (cose.Sign1(s.protected, s.kid, s.payload + b"\x00", s.signature), public(dev)),
    ]:
        with pytest.raises(SignatureError) as info:
            forged.verify(key)
        assert info.value.code == "bad_signature"
