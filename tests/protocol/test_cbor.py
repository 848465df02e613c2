"""The strict CBOR decoder: every refusal has its code; random bytes never crash it."""

from __future__ import annotations

import random

import cbor2
import pytest

from edge.errors import DecodeError
from edge.protocol import cbor


@pytest.mark.parametrize(
    ("hexdata", "code"),
    [
        ("", "truncated"),
        ("1a0001", "truncated"),  # 4-byte uint with 2 bytes
        ("62 61".replace(" ", ""), "truncated"),  # text of 2, one byte
        ("0000", "trailing_bytes"),
        ("a10100ff", "trailing_bytes"),
        ("5f4161ff", "indefinite"),  # indefinite byte string
        ("7f6161ff", "indefinite"),
        ("9f01ff", "indefinite"),
        ("bf0101ff", "indefinite"),
        ("1817", "non_minimal"),  # 23 in two bytes
        ("190017", "non_minimal"),
        ("1a000000ff", "non_minimal"),
        ("1b00000000ffffffff", "non_minimal"),
        ("3800", "non_minimal"),  # -1 in two bytes
        ("5801 61".replace(" ", ""), "non_minimal"),  # length 1 in two bytes
        ("a2020001 00".replace(" ", ""), "unsorted_keys"),
        ("a2 6162 00 6161 00".replace(" ", ""), "unsorted_keys"),
        ("a2010001 00".replace(" ", ""), "duplicate_key"),
        ("a1 4161 00".replace(" ", ""), "bad_key"),  # byte-string key
        ("a1 80 00".replace(" ", ""), "bad_key"),
        ("a1 1818 00".replace(" ", ""), "bad_key"),  # key 24: two bytes
        ("a1 3818 00".replace(" ", ""), "bad_key"),  # key -25
        ("a2 1818 00 20 00".replace(" ", ""), "bad_key"),  # {24, -1}: bytewise order
        ("a2 20 00 1818 00".replace(" ", ""), "bad_key"),  # {-1, 24}: cbor2's order
        ("c100", "unknown_tag"),
        ("d8 18 4100".replace(" ", ""), "unknown_tag"),  # tag 24
        ("f93c00", "float"),
        ("fa3f800000", "float"),
        ("fb3ff0000000000000", "float"),
        ("f7", "bad_simple"),  # undefined
        ("f0", "bad_simple"),
        ("f820", "bad_simple"),
        ("ff", "malformed"),  # stray break
        ("1c", "malformed"),  # reserved additional information
        ("62c328", "bad_utf8"),
        ("c2 49 010000000000000000".replace(" ", ""), "unknown_tag"),  # bignum 2**64
        ("9b ffffffffffffffff".replace(" ", ""), "truncated"),  # huge array length
        ("bb ffffffffffffffff".replace(" ", ""), "truncated"),
    ],
)
def test_each_malformation_has_its_code(hexdata: str, code: str) -> None:
    with pytest.raises(DecodeError) as info:
        cbor.decode(bytes.fromhex(hexdata))
    assert info.value.code == code


def test_too_deep_and_too_large() -> None:
    deep = b"\x81" * 20 + b"\x00"
    with pytest.raises(DecodeError) as info:
        cbor.decode(deep)
    assert info.value.code == "too_deep"
    assert cbor.decode(b"\x81" * 16 + b"\x00") is not None  # exactly the limit is fine
    with pytest.raises(DecodeError) as info:
        cbor.decode(b"\x40" * 10, max_size=5)
    assert info.value.code == "too_large"


def test_round_trip_and_agreement_with_cbor2() -> None:
    value = {
        0: 1,
        1: "فروش",
        6: b"\x00" * 32,
        7: {0: 2**40, 1: -210},
        10: [{0: "a", 2: 3}],
        15: False,
        16: None,
        17: True,
        -1: -(2**63),
        "k": [1, [2, [3]]],
    }
    data = cbor.encode(value)
    assert data == cbor2.dumps(value, canonical=True)
    assert cbor.decode(data) == value
    tagged = cbor.encode(cbor2.CBORTag(18, [b"", {}, b"x", b"y"]))
    assert cbor.decode(tagged, allowed_tags=frozenset({18})).tag == 18


def test_encoder_refuses_floats_and_odd_types() -> None:
    with pytest.raises(DecodeError) as info:
        cbor.encode({0: 1.5})
    assert info.value.code == "float"
    with pytest.raises(DecodeError):
        cbor.encode({0: {1, 2}})
    with pytest.raises(DecodeError):
        cbor.encode({(1, 2): 0})


def test_integer_keys_are_one_byte() -> None:
    # beyond -24..23 cbor2's canonical (length-first) order and RFC 8949's bytewise
    # order differ: cbor2 puts -1 (20) before 24 (18 18), bytewise puts 24 first
    for k in (24, -25, 1000):
        with pytest.raises(DecodeError) as info:
            cbor.encode({k: 0})
        assert info.value.code == "bad_key"
        with pytest.raises(DecodeError):
            cbor.encode([{0: {k: 0}}])
    edge = {-24: 0, -1: 1, 0: 2, 23: 3, "": 4, "a": 5}
    data = cbor.encode(edge)
    assert data == bytes.fromhex("a6 0002 1703 2001 3700 6004 616105".replace(" ", ""))
    assert cbor.decode(data) == edge


def _valid_samples() -> list[bytes]:
    return [
        cbor.encode(v)
        for v in (
            {0: 1, 1: "sale", 2: [1, 2, {3: b"abc"}], 3: None},
            [1, -5, "x" * 30, b"\xff" * 300, {"a": True}],
            {i: i * 1000 for i in range(24)},
        )
    ]


def test_fuzz_random_and_mutated_bytes_only_ever_decode_error() -> None:
    rng = random.Random(4)
    samples = _valid_samples()
    cases = 0
    outcomes = {"ok": 0, "refused": 0}
    for i in range(12_000):
        if i % 3 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        else:
            data = bytearray(rng.choice(samples))
            for _ in range(rng.randint(1, 4)):
                op = rng.randrange(3)
                pos = rng.randrange(len(data))
                if op == 0:
                    data[pos] = rng.randrange(256)
                elif op == 1:
                    del data[pos]
                else:
                    data.insert(pos, rng.randrange(256))
            data = bytes(data)
        try:
            value = cbor.decode(data)
        except DecodeError:
            outcomes["refused"] += 1
        else:
            outcomes["ok"] += 1
            assert cbor.encode(value) == data  # whatever is accepted is canonical
        cases += 1
    assert cases == 12_000
    assert outcomes["refused"] > 5000 and outcomes["ok"] > 100
