"""COSE_Sign1 (RFC 9052) with Ed25519, exactly the profile records use.

    18([ protected: bstr .cbor {1: -8},      ; alg: EdDSA
         unprotected: {4: kid},              ; kid: the device id, UTF-8
         payload: bstr,                      ; deterministic CBOR
         signature: bstr .size 64 ])

The signature covers the Sig_structure ``["Signature1", protected, h'', payload]``.
Anything else (another algorithm, extra header parameters, an untagged message, a
detached payload) is refused with a SignatureError or DecodeError naming the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cbor2

from edge.errors import SignatureError
from edge.protocol import cbor, ed25519

# head office verifies with libsodium (PyNaCl), about twice as fast as OpenSSL, once it
# calls prefer_libsodium(); a terminal never loads it (its memory budget is 40 MB).  Keys
# are edge.protocol.ed25519's (the terminal) or cryptography's (head office, tools).
_sodium_open: Callable[[bytes, bytes], bytes] | None = None
_sodium_bad: type[Exception] = Exception


def prefer_libsodium() -> bool:
    """Verify with libsodium from now on, if PyNaCl is installed (head office's extra);
    True if it is.  libsodium also refuses small-order keys and non-canonical signatures,
    which OpenSSL may accept: no record a terminal signs is either."""
    global _sodium_open, _sodium_bad  # noqa: PLW0603 - one switch for the process
    try:
        from nacl.bindings import crypto_sign_open  # noqa: PLC0415
        from nacl.exceptions import BadSignatureError  # noqa: PLC0415
    except ImportError:
        return False
    _sodium_open = crypto_sign_open
    _sodium_bad = BadSignatureError
    return True


COSE_SIGN1_TAG = 18
ALG_EDDSA = -8
PROTECTED = b"\xa1\x01\x27"  # {1: -8}
_SIG1_CONTEXT = b"\x6aSignature1"
_TAGS = frozenset({COSE_SIGN1_TAG})


def _bstr_head(n: int) -> bytes:
    if n < 24:
        return bytes((0x40 | n,))
    if n < 0x100:
        return bytes((0x58, n))
    if n < 0x10000:
        return b"\x59" + n.to_bytes(2, "big")
    return b"\x5a" + n.to_bytes(4, "big")


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The bytes Ed25519 signs: ``["Signature1", protected, h'', payload]``."""
    return b"".join(
        (
            b"\x84",
            _SIG1_CONTEXT,
            _bstr_head(len(protected)),
            protected,
            b"\x40",
            _bstr_head(len(payload)),
            payload,
        )
    )


def sign1(payload: bytes, key: ed25519.PrivateKey, kid: bytes) -> bytes:
    """A tagged COSE_Sign1 message carrying ``payload``, signed by ``key``."""
    signature = key.sign(sig_structure(PROTECTED, payload))
    return b"".join(
        (
            b"\xd2\x84",
            _bstr_head(len(PROTECTED)),
            PROTECTED,
            b"\xa1\x04",
            _bstr_head(len(kid)),
            kid,
            _bstr_head(len(payload)),
            payload,
            b"\x58\x40",
            signature,
        )
    )


@dataclass(frozen=True, slots=True)
class Sign1:
    """A structurally valid COSE_Sign1 message, signature not yet checked."""

    protected: bytes
    kid: bytes
    payload: bytes
    signature: bytes

    def verify(self, public_key: ed25519.PublicKey) -> None:
        data = sig_structure(self.protected, self.payload)
        if _sodium_open is not None:
            try:
                _sodium_open(self.signature + data, public_key.public_bytes_raw())
            except _sodium_bad:
                ok = False
            else:
                ok = True
        else:
            ok = ed25519.verifies(public_key, self.signature, data)
        if not ok:
            raise SignatureError(
                "bad_signature",
                f"the signature does not verify with the key registered for {self.kid!r}",
            ) from None


_PREFIX = b"\xd2\x84\x43\xa1\x01\x27\xa1\x04"  # 18([h'a10127', {4: ...


def _bstr(data: bytes, pos: int) -> tuple[bytes, int] | None:
    """A byte string with a shortest-form head at ``pos``, or None (let the strict
    decoder explain)."""
    if pos >= len(data):
        return None
    ib = data[pos]
    if 0x40 <= ib <= 0x57:
        n, pos = ib - 0x40, pos + 1
    elif ib == 0x58 and pos + 1 < len(data) and data[pos + 1] >= 24:
        n, pos = data[pos + 1], pos + 2
    elif ib == 0x59 and pos + 2 < len(data):
        n = int.from_bytes(data[pos + 1 : pos + 3], "big")
        if n < 0x100:
            return None
        pos += 3
    else:
        return None
    if pos + n > len(data):
        return None
    return data[pos : pos + n], pos + n


def _fast(data: bytes) -> Sign1 | None:
    """The exact shape the terminal emits, checked byte by byte; None for anything else."""
    if not data.startswith(_PREFIX):
        return None
    kid = _bstr(data, len(_PREFIX))
    if kid is None or not 0 < len(kid[0]) <= 64:
        return None
    payload = _bstr(data, kid[1])
    if payload is None:
        return None
    pos = payload[1]
    if len(data) != pos + 66 or data[pos : pos + 2] != b"\x58\x40":
        return None
    return Sign1(PROTECTED, kid[0], payload[0], data[pos + 2 :])


def parse(data: bytes, max_size: int = cbor.MAX_SIZE) -> Sign1:
    """Strictly decode a tagged COSE_Sign1 message of the EdDSA profile."""
    if type(data) is bytes and len(data) <= max_size:
        fast = _fast(data)
        if fast is not None:
            return fast
    msg = cbor.decode(data, allowed_tags=_TAGS, max_size=max_size)
    if type(msg) is not cbor2.CBORTag or msg.tag != COSE_SIGN1_TAG:
        raise SignatureError("not_cose_sign1", "expected a tagged COSE_Sign1 (tag 18)")
    body = msg.value
    if type(body) is not list or len(body) != 4:
        raise SignatureError("not_cose_sign1", "COSE_Sign1 must be an array of four items")
    protected, unprotected, payload, signature = body
    if type(protected) is not bytes or protected != PROTECTED:
        hdr = cbor.decode(protected) if type(protected) is bytes and protected else protected
        raise SignatureError("bad_alg", f"protected header must be {{1: -8}} (EdDSA), got {hdr!r}")
    if type(unprotected) is not dict or set(unprotected) != {4}:
        raise SignatureError("bad_header", "unprotected header must be exactly {4: kid}")
    kid = unprotected[4]
    if type(kid) is not bytes or not 0 < len(kid) <= 64:
        raise SignatureError("bad_kid", "kid must be 1..64 bytes")
    if type(payload) is not bytes:
        raise SignatureError("detached", "the payload must be attached (a byte string)")
    if type(signature) is not bytes or len(signature) != 64:
        raise SignatureError("bad_signature", "an Ed25519 signature is 64 bytes")
    return Sign1(protected, kid, payload, signature)
