"""Ed25519 keys for the terminal, signed and verified by the OpenSSL CPython already loaded.

Every CPython process with ``hashlib`` has the system's libcrypto mapped (``_hashlib`` links
it, and ``ssl`` the same library for the broker's TLS).  cryptography's Ed25519 binding is a
second, statically linked OpenSSL in a Rust extension: about 8 MB of resident memory,
a fifth of the agent's 40 MB budget (docs/benchmarks.md, agent memory).  So the agent signs
and verifies through that first libcrypto, calling its EVP functions through ctypes
(``EVP_PKEY_new_raw_private_key`` / ``_public_key``, ``EVP_DigestSign`` /
``EVP_DigestVerify`` and their contexts; OpenSSL 1.1.1 or later, which CPython 3.10+
requires anyway), and never imports cryptography unless it meets a key file it cannot read
itself.  Signatures are byte for byte cryptography's (Ed25519 is deterministic): checked
against RFC 8032 once per process before this library is used, and in the tests.

The keys made here (:func:`private_key`, :func:`public_key`) and cryptography's
``Ed25519PrivateKey`` / ``Ed25519PublicKey`` are interchangeable wherever the protocol
takes a key (:class:`PrivateKey`, :class:`PublicKey`): head office, the technician's tools
and the tests keep using cryptography's.  Check a signature with :func:`verifies`, which
takes either kind.  Where this libcrypto cannot be used (a CPython without ``_hashlib``, an
OpenSSL without Ed25519, a known-answer test that fails at load), both functions return
cryptography's keys instead.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Protocol, runtime_checkable

from edge.errors import SignatureError

__all__ = [
    "InvalidSignature",
    "PrivateKey",
    "PublicKey",
    "backend",
    "private_key",
    "public_key",
    "verifies",
]


@runtime_checkable
class PublicKey(Protocol):
    """An Ed25519 public key: this module's or cryptography's ``Ed25519PublicKey``."""

    def public_bytes_raw(self) -> bytes: ...

    def verify(self, signature: bytes, data: bytes, /) -> None:
        """Return if ``signature`` is the key's over ``data``; raise otherwise."""


@runtime_checkable
class PrivateKey(Protocol):
    """An Ed25519 private key: this module's or cryptography's ``Ed25519PrivateKey``."""

    def sign(self, data: bytes, /) -> bytes: ...

    def public_key(self) -> PublicKey: ...


class InvalidSignature(SignatureError):  # noqa: N818 - the name cryptography uses
    """A signature that does not verify (raised by this module's keys' ``verify``)."""

    def __init__(self, message: str = "the Ed25519 signature does not verify") -> None:
        super().__init__("bad_signature", message)


_NID_ED25519 = 1087  # EVP_PKEY_ED25519 (= NID_ED25519) in every OpenSSL since 1.1.1
_SIGNATURE = 64


class _LibCrypto:
    """The few libcrypto functions Ed25519 needs, with their C signatures."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        p, i, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
        buf, size_p = ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)

        def fn(name: str, res: Any, *args: Any) -> Any:
            f = getattr(lib, name)
            f.restype, f.argtypes = res, list(args)
            return f

        self.new_private = fn("EVP_PKEY_new_raw_private_key", p, i, p, buf, s)
        self.new_public = fn("EVP_PKEY_new_raw_public_key", p, i, p, buf, s)
        self.raw_public = fn("EVP_PKEY_get_raw_public_key", i, p, buf, size_p)
        self.free_key = fn("EVP_PKEY_free", None, p)
        self.ctx_new = fn("EVP_MD_CTX_new", p)
        self.ctx_free = fn("EVP_MD_CTX_free", None, p)
        self.sign_init = fn("EVP_DigestSignInit", i, p, p, p, p, p)
        self.sign = fn("EVP_DigestSign", i, p, buf, size_p, buf, s)
        self.verify_init = fn("EVP_DigestVerifyInit", i, p, p, p, p, p)
        self.verify = fn("EVP_DigestVerify", i, p, buf, s, buf, s)
        self.clear_errors = fn("ERR_clear_error", None)


class _Key:
    """An ``EVP_PKEY`` owned by this object (freed with it)."""

    __slots__ = ("_lib", "_pkey")

    def __init__(self, lib: _LibCrypto, pkey: int | None) -> None:
        if not pkey:
            lib.clear_errors()
            raise ValueError("libcrypto refused the Ed25519 key")
        self._lib = lib
        self._pkey: int | None = pkey

    def __del__(self) -> None:
        pkey, self._pkey = getattr(self, "_pkey", None), None
        if pkey:
            self._lib.free_key(pkey)


class _PublicKey(_Key):
    __slots__ = ("_raw",)

    def __init__(self, lib: _LibCrypto, raw: bytes) -> None:
        raw = bytes(raw)
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        super().__init__(lib, lib.new_public(_NID_ED25519, None, raw, 32))
        self._raw = raw

    def public_bytes_raw(self) -> bytes:
        return self._raw

    def check(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` is this key's over ``data``."""
        signature, data = bytes(signature), bytes(data)
        if len(signature) != _SIGNATURE:
            return False
        lib = self._lib
        ctx = lib.ctx_new()
        if not ctx:
            raise MemoryError("EVP_MD_CTX_new")
        try:
            ok: bool = (
                lib.verify_init(ctx, None, None, None, self._pkey) == 1
                and lib.verify(ctx, signature, _SIGNATURE, data, len(data)) == 1
            )
        finally:
            lib.ctx_free(ctx)
        if not ok:
            lib.clear_errors()  # a refusal leaves its reason queued: not for hashlib or ssl
        return ok

    def verify(self, signature: bytes, data: bytes, /) -> None:
        if not self.check(signature, data):
            raise InvalidSignature

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _PublicKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"<Ed25519 public key {self._raw.hex()[:16]}...>"


class _PrivateKey(_Key):
    __slots__ = ("_public",)

    def __init__(self, lib: _LibCrypto, seed: bytes) -> None:
        seed = bytes(seed)
        if len(seed) != 32:
            raise ValueError("an Ed25519 private key is 32 bytes")
        super().__init__(lib, lib.new_private(_NID_ED25519, None, seed, 32))
        out, n = ctypes.create_string_buffer(32), ctypes.c_size_t(32)
        if lib.raw_public(self._pkey, out, ctypes.byref(n)) != 1 or n.value != 32:
            lib.clear_errors()
            raise ValueError("libcrypto gave no public key for the Ed25519 key")
        self._public = _PublicKey(lib, out.raw)

    def public_key(self) -> _PublicKey:
        return self._public

    def sign(self, data: bytes, /) -> bytes:
        data = bytes(data)
        lib = self._lib
        ctx = lib.ctx_new()
        if not ctx:
            raise MemoryError("EVP_MD_CTX_new")
        out, n = ctypes.create_string_buffer(_SIGNATURE), ctypes.c_size_t(_SIGNATURE)
        try:
            ok: bool = (
                lib.sign_init(ctx, None, None, None, self._pkey) == 1
                and lib.sign(ctx, out, ctypes.byref(n), data, len(data)) == 1
                and n.value == _SIGNATURE
            )
        finally:
            lib.ctx_free(ctx)
        if not ok:
            lib.clear_errors()
            raise RuntimeError("libcrypto failed to make an Ed25519 signature")
        return out.raw

    def __repr__(self) -> str:
        return "<Ed25519 private key>"


# RFC 8032 section 7.1, TEST 2: checked once before this libcrypto is trusted
_KAT_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
_KAT_PUBLIC = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
_KAT_SIGNATURE = bytes.fromhex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)


def _load() -> _LibCrypto | None:
    """The libcrypto ``hashlib`` uses, if it signs the RFC 8032 vector right; else None."""
    try:
        import _hashlib  # noqa: PLC0415 - only its file name: the library it links

        lib = _LibCrypto(ctypes.CDLL(_hashlib.__file__))
        key = _PrivateKey(lib, _KAT_SEED)
        ok = (
            key.public_key().public_bytes_raw() == _KAT_PUBLIC
            and key.sign(b"\x72") == _KAT_SIGNATURE
            and key.public_key().check(_KAT_SIGNATURE, b"\x72")
            and not key.public_key().check(_KAT_SIGNATURE, b"\x73")
        )
    except (ImportError, AttributeError, OSError, TypeError, ValueError, RuntimeError):
        return None
    return lib if ok else None


_lock = threading.Lock()
_lib: _LibCrypto | None = None
_loaded = False


def _libcrypto() -> _LibCrypto | None:
    global _lib, _loaded
    if not _loaded:
        with _lock:
            if not _loaded:
                _lib, _loaded = _load(), True
    return _lib


def backend() -> str:
    """``libcrypto`` (the OpenSSL CPython's hashlib uses) or ``cryptography``."""
    return "libcrypto" if _libcrypto() is not None else "cryptography"


def private_key(seed: bytes) -> PrivateKey:
    """The Ed25519 private key of a 32-byte seed (RFC 8032's private key)."""
    lib = _libcrypto()
    if lib is not None:
        return _PrivateKey(lib, seed)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key(raw: bytes) -> PublicKey:
    """The Ed25519 public key of its 32 raw bytes; ValueError for another length."""
    lib = _libcrypto()
    if lib is not None:
        return _PublicKey(lib, raw)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PublicKey,
    )

    return Ed25519PublicKey.from_public_bytes(raw)


def verifies(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``key``'s over ``data``; ``key`` from here or from
    cryptography."""
    if isinstance(key, _PublicKey):
        return key.check(signature, data)
    # cryptography's key: its package is loaded already, exceptions included
    from cryptography.exceptions import InvalidSignature as CryptographyInvalid  # noqa: PLC0415

    try:
        key.verify(signature, data)
    except (CryptographyInvalid, InvalidSignature):
        return False
    return True
