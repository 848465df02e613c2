"""Rotating head office's rules key by endorsement (edge.protocol.bundles): the key in force
endorses the next one; a terminal's ring learns keys only from keys in force, and the first
bundle from a new key retires the keys before it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.core.errors import RuleError
from edge.core.ruleset import RuleSet
from edge.errors import ConfigError, DecodeError, SignatureError
from edge.protocol import bundles, cbor, cose, keys
from edge.protocol.bundles import KeyRing

TENANT = "hypershahr"


@pytest.fixture
def k() -> list[Ed25519PrivateKey]:
    """Head office's keys 1, 2 and 3 (index 0 unused, so k[n] is key number n)."""
    return [Ed25519PrivateKey.generate() for _ in range(4)]


def _endorse(k: list[Ed25519PrivateKey], new: int, by: int, tenant: str = TENANT) -> bytes:
    return bundles.endorse(k[new].public_key(), new, k[by], tenant, now_ms=1_700_000_000_000)


def _ring(k: list[Ed25519PrivateKey]) -> KeyRing:
    return KeyRing.pinned(k[1].public_key())


def _bundle(rules_doc: dict[str, Any], version: int, key: Ed25519PrivateKey) -> bytes:
    return bundles.sign({**rules_doc, "version": version}, key)


def test_an_endorsement_is_a_cose_sign1_of_the_bundle_profile(
    k: list[Ed25519PrivateKey],
) -> None:
    raw = _endorse(k, 2, 1)
    s = cose.parse(raw)
    assert s.kid == b"rules:hypershahr" and s.protected == cose.PROTECTED
    s.verify(k[1].public_key())
    assert cbor.decode(s.payload) == {0: keys.public_raw(k[2]), 1: 2, 2: 1_700_000_000_000}
    assert cbor.encode(cbor.decode(s.payload)) == s.payload  # deterministic
    e = bundles.parse_endorsement(raw, TENANT)
    assert (e.number, e.public, e.issued_ms, e.tenant) == (
        2,
        keys.public_raw(k[2]),
        1_700_000_000_000,
        TENANT,
    )
    with pytest.raises(ConfigError, match="2\\.\\."):
        bundles.endorse(k[2].public_key(), 1, k[1], TENANT)
    with pytest.raises(ConfigError, match="itself"):
        bundles.endorse(k[1].public_key(), 2, k[1], TENANT)


def test_extend_accept_retire(k: list[Ed25519PrivateKey], rules_doc: dict[str, Any]) -> None:
    ring = _ring(k)
    assert (ring.newest, ring.in_force) == (1, 1)
    assert ring.extend([_endorse(k, 2, 1)], TENANT) == 1
    assert [key.number for key in ring.keys] == [1, 2] and ring.newest == 2
    assert ring.number_of(k[2].public_key()) == 2
    # until a bundle from key 2 is accepted, key 1 still signs
    rs, number = bundles.open_bundle(_bundle(rules_doc, 2, k[1]), ring, TENANT)
    assert (rs.version, number) == (2, 1)
    assert ring.accept(1) is False and ring.in_force == 1
    rs, number = bundles.open_bundle(_bundle(rules_doc, 3, k[2]), ring, TENANT)
    assert (rs.version, number) == (3, 2)
    assert ring.accept(2) is True and ring.in_force == 2
    assert ring.accept(2) is False  # again: nothing changes
    # from now on key 1 signs nothing
    with pytest.raises(SignatureError, match="v4 are signed with rules key 1, retired") as info:
        bundles.open_bundle(_bundle(rules_doc, 4, k[1]), ring, TENANT)
    assert info.value.code == "retired_key"
    rs, number = bundles.open_bundle(_bundle(rules_doc, 4, k[2]), ring, TENANT)
    assert (rs.version, number) == (4, 2)


def test_two_rotations_at_once_for_a_terminal_that_missed_the_first(
    k: list[Ed25519PrivateKey], rules_doc: dict[str, Any]
) -> None:
    chain = [_endorse(k, 2, 1), _endorse(k, 3, 2)]
    up_to_date = _ring(k)
    assert up_to_date.extend(chain[:1], TENANT) == 1
    up_to_date.accept(2)
    assert up_to_date.extend(chain, TENANT) == 1  # key 2 is already held: skipped silently
    # the terminal that was offline: both keys in one message, in order
    offline = _ring(k)
    assert offline.extend(chain, TENANT) == 2
    assert [key.number for key in offline.keys] == [1, 2, 3]
    rs, number = bundles.open_bundle(_bundle(rules_doc, 9, k[3]), offline, TENANT)
    assert (rs.version, number) == (9, 3)
    offline.accept(number)
    for retired in (1, 2):
        with pytest.raises(SignatureError) as info:
            bundles.open_bundle(_bundle(rules_doc, 10, k[retired]), offline, TENANT)
        assert info.value.code == "retired_key"
    # out of order, the second cannot be checked yet: nothing is learnt from it
    shuffled = _ring(k)
    assert shuffled.extend(list(reversed(chain)), TENANT) == 1
    assert shuffled.newest == 2


def test_forged_foreign_and_stale_endorsements_are_refused(
    k: list[Ed25519PrivateKey], rules_doc: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    mallory, hers = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ring = _ring(k)
    caplog.set_level(logging.WARNING, "edge.protocol.bundles")

    def refused(raws: list[bytes], code: str) -> None:
        caplog.clear()
        assert ring.extend(raws, TENANT) == 0
        assert len(caplog.records) == len(raws) and code in caplog.text, caplog.text

    refused([bundles.endorse(mallory.public_key(), 2, hers, TENANT)], "unknown_key")
    refused([_endorse(k, 2, 1, tenant="other")], "bad_kid")
    refused([b"\xd2\x84junk", cbor.encode([1, 2])], "not_cose_sign1")
    assert ring.newest == 1 and ring.number_of(mallory.public_key()) is None
    # a number that is not above the newest held
    assert ring.extend([_endorse(k, 3, 1)], TENANT) == 1
    refused([_endorse(k, 2, 3)], "not_newer")
    # a retired key endorses nothing (if it leaked, the leak cannot add a key)
    ring.accept(3)
    refused([bundles.endorse(mallory.public_key(), 7, k[1], TENANT)], "retired_key")
    # something else signed by the key in force is no endorsement
    refused([cose.sign1(cbor.encode({"version": 2}), k[3], bundles.kid(TENANT))], "bad_message")
    refused([_bundle(rules_doc, 2, k[3])], "too_large")  # a rules bundle
    assert ring.newest == 3 and ring.in_force == 3


def test_a_bundle_from_an_unknown_key_is_refused_and_changes_nothing(
    k: list[Ed25519PrivateKey], rules_doc: dict[str, Any]
) -> None:
    ring = _ring(k)
    ring.extend([_endorse(k, 2, 1)], TENANT)
    before = ring.to_bytes()
    with pytest.raises(SignatureError, match="signature does not verify") as info:
        bundles.open_bundle(_bundle(rules_doc, 5, Ed25519PrivateKey.generate()), ring, TENANT)
    assert info.value.code == "unknown_key"
    # an endorsement where a bundle is expected is not a rules document
    with pytest.raises(RuleError, match="unknown field 0"):
        bundles.open_bundle(_endorse(k, 3, 2), ring, TENANT)
    assert ring.to_bytes() == before


def test_endorsement_lists_are_strict(k: list[Ed25519PrivateKey]) -> None:
    chain = [_endorse(k, 2, 1), _endorse(k, 3, 2)]
    msg = bundles.encode_endorsements(chain)
    assert msg == cbor.encode(chain) and bundles.decode_endorsements(msg) == chain
    assert bundles.decode_endorsements(bundles.encode_endorsements([])) == []
    garbled = [
        b"",
        b"\xff\x00",
        msg[:-1],
        msg + b"\x00",
        cbor.encode({0: chain}),
        cbor.encode([1, 2]),
        cbor.encode([b""]),
        cbor.encode([b"x" * (bundles.MAX_ENDORSEMENT + 1)]),
        cbor.encode([chain[0]] * (bundles.MAX_ENDORSEMENTS + 1)),
        b"\x9f\x41\x00\xff",  # indefinite length
        b"\x81" * 40 + b"\x40",  # too deep
        b"\x80" + b"\x00" * bundles.MAX_KEYS_MESSAGE,  # too large
    ]
    for raw in garbled:
        with pytest.raises(DecodeError):
            bundles.decode_endorsements(raw)
    with pytest.raises(ConfigError):
        bundles.encode_endorsements([chain[0]] * (bundles.MAX_ENDORSEMENTS + 1))


def test_persistence_round_trip(k: list[Ed25519PrivateKey], rules_doc: dict[str, Any]) -> None:
    ring = _ring(k)
    ring.extend([_endorse(k, 2, 1), _endorse(k, 3, 2)], TENANT)
    ring.accept(2)
    data = ring.to_bytes()
    assert cbor.decode(data) == {
        0: [[1, keys.public_raw(k[1])], [2, keys.public_raw(k[2])], [3, keys.public_raw(k[3])]],
        1: 2,
    }
    again = KeyRing.from_bytes(data)
    assert again.to_bytes() == data
    assert (again.newest, again.in_force) == (3, 2)
    with pytest.raises(SignatureError) as info:
        bundles.open_bundle(_bundle(rules_doc, 7, k[1]), again, TENANT)
    assert info.value.code == "retired_key"
    for bad in (
        b"",
        cbor.encode([1]),
        cbor.encode({0: [], 1: 1}),  # no key
        cbor.encode({0: [[1, b"short"]], 1: 1}),
        cbor.encode({0: [[2, keys.public_raw(k[2])], [1, keys.public_raw(k[1])]], 1: 1}),
        cbor.encode({0: [[1, keys.public_raw(k[1])], [2, keys.public_raw(k[1])]], 1: 1}),
        cbor.encode({0: [[1, keys.public_raw(k[1])]], 1: 5}),  # in force: not in the ring
        cbor.encode({0: [[0, keys.public_raw(k[1])]], 1: 0}),
        data + b"\x00",
    ):
        with pytest.raises(DecodeError):
            KeyRing.from_bytes(bad)


def test_the_old_call_with_one_public_key_still_works(
    k: list[Ed25519PrivateKey], rules_doc: dict[str, Any]
) -> None:
    raw = _bundle(rules_doc, 3, k[1])
    rs = bundles.open_bundle(raw, k[1].public_key(), TENANT)
    assert isinstance(rs, RuleSet) and rs.version == 3
    with pytest.raises(SignatureError) as info:
        bundles.open_bundle(raw, k[2].public_key())
    assert info.value.code == "bad_signature"
