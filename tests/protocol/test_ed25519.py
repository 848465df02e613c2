"""The terminal's Ed25519 (edge.protocol.ed25519, the libcrypto CPython loaded, through
ctypes) against RFC 8032's vectors and against cryptography: the same keys, the same
signatures, the same verdicts."""

from __future__ import annotations

import os
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.protocol import ed25519

# RFC 8032 section 7.1: (secret key, public key, message, signature)
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.fixture(autouse=True)
def _libcrypto() -> None:
    assert ed25519.backend() == "libcrypto", "CPython's hashlib links OpenSSL here"


@pytest.mark.parametrize(("sk", "pk", "msg", "sig"), RFC8032, ids=["test1", "test2", "test3"])
def test_rfc8032_vectors(sk: str, pk: str, msg: str, sig: str) -> None:
    key = ed25519.private_key(bytes.fromhex(sk))
    assert key.public_key().public_bytes_raw() == bytes.fromhex(pk)
    assert key.sign(bytes.fromhex(msg)) == bytes.fromhex(sig)
    public = ed25519.public_key(bytes.fromhex(pk))
    assert ed25519.verifies(public, bytes.fromhex(sig), bytes.fromhex(msg))
    public.verify(bytes.fromhex(sig), bytes.fromhex(msg))  # returns: it verifies
    assert not ed25519.verifies(public, bytes.fromhex(sig), bytes.fromhex(msg) + b"\x00")
    with pytest.raises(ed25519.InvalidSignature):
        public.verify(bytes.fromhex(sig), bytes.fromhex(msg) + b"\x00")


def test_the_same_as_cryptography_both_ways() -> None:
    """Ed25519 is deterministic: the same seed signs the same bytes, and each side
    verifies the other's signatures and refuses the other's tampered ones."""
    for n in range(200):
        seed, msg = os.urandom(32), os.urandom(n * 7)
        ours, theirs = ed25519.private_key(seed), Ed25519PrivateKey.from_private_bytes(seed)
        raw = theirs.public_key().public_bytes_raw()
        assert ours.public_key().public_bytes_raw() == raw
        sig = ours.sign(msg)
        assert sig == theirs.sign(msg)
        bad = bytearray(sig)
        bad[n % 64] ^= 1 << (n % 8)
        for public in (ours.public_key(), theirs.public_key(), ed25519.public_key(raw)):
            assert ed25519.verifies(public, sig, msg)
            assert not ed25519.verifies(public, bytes(bad), msg)
            assert not ed25519.verifies(public, sig, msg + b"!")


def test_wrong_sizes() -> None:
    key = ed25519.private_key(os.urandom(32))
    sig = key.sign(b"m")
    assert not ed25519.verifies(key.public_key(), sig[:63], b"m")
    assert not ed25519.verifies(key.public_key(), sig + b"\x00", b"m")
    assert not ed25519.verifies(key.public_key(), b"", b"m")
    with pytest.raises(ValueError, match="32 bytes"):
        ed25519.public_key(bytes(31))
    with pytest.raises(ValueError, match="32 bytes"):
        ed25519.private_key(bytes(33))


def test_keys_compare_by_value() -> None:
    raw = ed25519.private_key(os.urandom(32)).public_key().public_bytes_raw()
    assert ed25519.public_key(raw) == ed25519.public_key(raw)
    assert len({ed25519.public_key(raw), ed25519.public_key(raw)}) == 1
    assert isinstance(ed25519.public_key(raw), ed25519.PublicKey)
    assert isinstance(Ed25519PrivateKey.generate(), ed25519.PrivateKey)
    assert not isinstance(Ed25519PrivateKey.generate().public_key(), ed25519.PrivateKey)


def test_threads_sign_and_verify_at_once() -> None:
    """The agent signs on its thread while the POS API's threads may verify QR codes."""
    key = ed25519.private_key(os.urandom(32))
    msgs = [os.urandom(64) for _ in range(50)]
    want = [Ed25519PrivateKey.from_private_bytes(b"\x00" * 32).sign(m) for m in msgs]
    zero = ed25519.private_key(b"\x00" * 32)
    errors: list[str] = []

    def work() -> None:
        for m, w in zip(msgs, want, strict=True):
            if zero.sign(m) != w or not ed25519.verifies(zero.public_key(), w, m):
                errors.append("mismatch")
            if ed25519.verifies(key.public_key(), w, m):
                errors.append("another key verified it")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_without_this_libcrypto_the_keys_are_cryptographys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CPython without OpenSSL's hashlib (or an OpenSSL without Ed25519): cryptography."""
    monkeypatch.setattr(ed25519, "_lib", None)
    monkeypatch.setattr(ed25519, "_loaded", True)
    assert ed25519.backend() == "cryptography"
    seed = os.urandom(32)
    key = ed25519.private_key(seed)
    assert isinstance(key, Ed25519PrivateKey)
    public = ed25519.public_key(key.public_key().public_bytes_raw())
    sig = key.sign(b"m")
    assert sig == Ed25519PrivateKey.from_private_bytes(seed).sign(b"m")
    assert ed25519.verifies(public, sig, b"m")
    assert not ed25519.verifies(public, sig, b"n")
