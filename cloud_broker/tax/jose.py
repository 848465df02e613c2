"""Signing and encrypting what we send to the tax system (JWS inside JWE), and back.

Outbound (:func:`seal`):

1. **JWS**, compact: protected header ``{"alg": "RS256", "x5c": [certificate],
   "sigT": "2024-03-20T21:40:00Z", "crit": ["sigT"]}``; the payload is the packet's
   UTF-8 JSON (or, for the token, ``{"nonce": ..., "clientId": memory id}``).
   ``x5c`` is the taxpayer's certificate (base64 DER), ``sigT`` the signing time in UTC
   and, being listed in ``crit``, a header a verifier must understand.
2. **JWE**, compact, over the JWS text: ``{"alg": "RSA-OAEP-256", "enc": "A256GCM",
   "kid": server key id}`` with the server's public key from ``server-information``.

Inbound (:func:`open_packet`, used by the fake server and the tests): decrypt, then
verify the signature with the certificate in ``x5c``, that certificate against trusted
roots, and ``sigT`` against the certificate's validity and the clock.

Key material is never logged and never appears in a repr.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from joserfc import jwe, jws
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from joserfc.registry import HeaderParameter
from joserfc.util import urlsafe_b64decode

from cloud_broker.tax.errors import KeyFileError, PacketError
from cloud_broker.tax.wirejson import encode_json

__all__ = [
    "CONTENT_ENCRYPTION",
    "KEY_ENCRYPTION",
    "SIGNATURE_ALG",
    "ServerKey",
    "TaxpayerCredentials",
    "VerifiedJws",
    "auth_token",
    "decrypt",
    "encrypt",
    "open_packet",
    "seal",
    "sign",
    "signing_time",
    "verify",
]

SIGNATURE_ALG = "RS256"
KEY_ENCRYPTION = "RSA-OAEP-256"
CONTENT_ENCRYPTION = "A256GCM"
SIGT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class _JWSRegistry(jws.JWSRegistry):
    # x5c alone is over a kilobyte; joserfc's default limit is 512 bytes of header.
    max_header_length = 64 * 1024
    max_payload_length = 4 * 1024 * 1024


class _JWERegistry(jwe.JWERegistry):
    max_ciphertext_length = 8 * 1024 * 1024


_JWS = _JWSRegistry(
    header_registry={"sigT": HeaderParameter("Signing time (UTC)", "str")},
    algorithms=[SIGNATURE_ALG],
)
_JWE = _JWERegistry(algorithms=[KEY_ENCRYPTION, CONTENT_ENCRYPTION])


@dataclass(frozen=True, repr=False)
class TaxpayerCredentials:
    """The taxpayer's signing key and the certificate that vouches for it."""

    private_key: RSAPrivateKey
    certificate: x509.Certificate

    def __post_init__(self) -> None:
        if self.certificate.public_key() != self.private_key.public_key():
            raise KeyFileError(
                "certificate",
                "the certificate is not for this private key",
                "گواهی امضا متعلق به این کلید خصوصی نیست",
            )

    @property
    def x5c(self) -> str:
        """The certificate as ``x5c`` wants it: standard base64 of the DER bytes."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return base64.b64encode(der).decode("ascii")

    def __repr__(self) -> str:
        return f"TaxpayerCredentials(certificate={self.certificate.subject.rfc4514_string()!r})"


@dataclass(frozen=True)
class ServerKey:
    """One of the tax system's encryption keys (``server-information``'s ``publicKeys``)."""

    key_id: str
    public_key: RSAPublicKey

    @classmethod
    def from_wire(cls, key_id: str, key_b64: str) -> ServerKey:
        """From the API's form: base64 of a DER SubjectPublicKeyInfo."""
        try:
            loaded = serialization.load_der_public_key(base64.b64decode(key_b64, validate=True))
        except (ValueError, binascii.Error) as exc:
            raise PacketError(
                "server-key", f"server key {key_id!r} is unreadable", "کلید عمومی سامانه خوانا نیست"
            ) from exc
        if not isinstance(loaded, RSAPublicKey):
            raise PacketError(
                "server-key",
                f"server key {key_id!r} is not RSA",
                "کلید عمومی سامانه از نوع RSA نیست",
            )
        return cls(key_id, loaded)

    def to_wire(self) -> str:
        """Base64 DER SubjectPublicKeyInfo, as ``server-information`` publishes it."""
        der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")


def signing_time(now: datetime | None = None) -> str:
    """``sigT``: the signing time in UTC, ``yyyy-MM-ddTHH:mm:ssZ``."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime(SIGT_FORMAT)


def sign(payload: bytes, credentials: TaxpayerCredentials, *, now: datetime | None = None) -> str:
    """A compact JWS of ``payload`` (RS256, ``x5c``, critical ``sigT``)."""
    header = {
        "alg": SIGNATURE_ALG,
        "x5c": [credentials.x5c],
        "sigT": signing_time(now),
        "crit": ["sigT"],
    }
    key = RSAKey.import_key(credentials.private_key)
    return jws.serialize_compact(header, payload, key, registry=_JWS)


def auth_token(
    nonce: str, memory_id: str, credentials: TaxpayerCredentials, *, now: datetime | None = None
) -> str:
    """The bearer token: a JWS of ``{"nonce": nonce, "clientId": memory id}``."""
    return sign(encode_json({"nonce": nonce, "clientId": memory_id}), credentials, now=now)


def encrypt(signed: str, server_key: ServerKey) -> str:
    """A compact JWE (RSA-OAEP-256 + A256GCM, ``kid``) of the JWS text ``signed``."""
    header = {"alg": KEY_ENCRYPTION, "enc": CONTENT_ENCRYPTION, "kid": server_key.key_id}
    key = RSAKey.import_key(server_key.public_key)
    return jwe.encrypt_compact(header, signed.encode("ascii"), key, registry=_JWE)


def seal(
    payload: bytes,
    credentials: TaxpayerCredentials,
    server_key: ServerKey,
    *,
    now: datetime | None = None,
) -> str:
    """Sign ``payload`` and encrypt the JWS for the server: the ``payload`` of a packet."""
    return encrypt(sign(payload, credentials, now=now), server_key)


# ---------------------------------------------------------------- the receiving side


@dataclass(frozen=True)
class VerifiedJws:
    """A JWS whose signature, certificate and signing time were checked."""

    header: dict[str, Any]
    payload: bytes
    certificate: x509.Certificate
    signed_at: datetime


def _protected_header(token: str, parts: int, code: str) -> dict[str, Any]:
    pieces = token.split(".")
    if len(pieces) != parts:
        raise PacketError(code, f"expected {parts} dot-separated parts", "ساختار بسته نادرست است")
    try:
        header = json.loads(urlsafe_b64decode(pieces[0].encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise PacketError(code, "unreadable protected header", "سرآیند بسته خوانا نیست") from exc
    if not isinstance(header, dict):
        raise PacketError(code, "protected header is not an object", "سرآیند بسته نادرست است")
    return header


def decrypt(token: str, private_key: RSAPrivateKey, *, key_id: str | None = None) -> str:
    """Open a JWE made by :func:`encrypt`; return the JWS text inside."""
    header = _protected_header(token, 5, "jwe-format")
    if header.get("alg") != KEY_ENCRYPTION or header.get("enc") != CONTENT_ENCRYPTION:
        raise PacketError(
            "jwe-alg",
            f"expected {KEY_ENCRYPTION}/{CONTENT_ENCRYPTION}, "
            f"got {header.get('alg')}/{header.get('enc')}",
            "الگوریتم رمزنگاری بسته پذیرفته نیست",
        )
    if key_id is not None and header.get("kid") != key_id:
        raise PacketError(
            "jwe-kid", f"unknown key id {header.get('kid')!r}", "شناسه کلید سامانه ناشناخته است"
        )
    try:
        opened = jwe.decrypt_compact(token, RSAKey.import_key(private_key), registry=_JWE)
        return (opened.plaintext or b"").decode("ascii")
    except (JoseError, InvalidTag, ValueError) as exc:
        raise PacketError(
            "jwe-decrypt",
            "the packet cannot be decrypted or was altered",
            "بسته رمزگشایی نشد یا دستکاری شده است",
        ) from exc


def _chain_is_trusted(
    leaf: x509.Certificate, intermediates: list[x509.Certificate], roots: Sequence[x509.Certificate]
) -> bool:
    current = leaf
    for _ in range(len(intermediates) + 1):
        for root in roots:
            if current.issuer == root.subject:
                try:
                    current.verify_directly_issued_by(root)
                except (ValueError, TypeError, InvalidSignature):
                    continue
                return True
        issuers = [c for c in intermediates if c.subject == current.issuer and c is not current]
        if not issuers:
            return False
        try:
            current.verify_directly_issued_by(issuers[0])
        except (ValueError, TypeError, InvalidSignature):
            return False
        current = issuers[0]
    return False


def _certificates(header: dict[str, Any]) -> list[x509.Certificate]:
    chain = header.get("x5c")
    if not isinstance(chain, list) or not chain or not all(isinstance(c, str) for c in chain):
        raise PacketError("jws-x5c", "no x5c certificate", "گواهی امضا (x5c) در بسته نیست")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in chain]
    except (ValueError, binascii.Error) as exc:
        raise PacketError("jws-x5c", "unreadable x5c certificate", "گواهی امضا خوانا نیست") from exc


def _signed_at(header: dict[str, Any]) -> datetime:
    crit = header.get("crit")
    if not isinstance(crit, list) or "sigT" not in crit:
        raise PacketError(
            "jws-crit", "sigT is not marked critical", "زمان امضا (sigT) در crit نیامده است"
        )
    try:
        return datetime.strptime(str(header.get("sigT")), SIGT_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise PacketError(
            "jws-sigT", "missing or malformed sigT", "زمان امضا (sigT) نادرست است"
        ) from exc


def verify(
    token: str,
    trusted_roots: Sequence[x509.Certificate],
    *,
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=10),
) -> VerifiedJws:
    """Check a compact JWS made by :func:`sign`; raise :class:`PacketError` if any check fails."""
    header = _protected_header(token, 3, "jws-format")
    if header.get("alg") != SIGNATURE_ALG:
        raise PacketError(
            "jws-alg", f"expected RS256, got {header.get('alg')!r}", "الگوریتم امضا RS256 نیست"
        )
    signed_at = _signed_at(header)
    chain = _certificates(header)
    leaf = chain[0]
    if not _chain_is_trusted(leaf, chain[1:], trusted_roots):
        raise PacketError(
            "cert-untrusted",
            "certificate not issued by a trusted CA",
            "گواهی امضا از مرجع معتبر نیست",
        )
    if not leaf.not_valid_before_utc <= signed_at <= leaf.not_valid_after_utc:
        raise PacketError(
            "cert-expired",
            "certificate not valid at sigT",
            "گواهی امضا در زمان امضا معتبر نبوده است",
        )
    clock = (now or datetime.now(UTC)).astimezone(UTC)
    if abs(clock - signed_at) > max_skew:
        raise PacketError(
            "jws-sigT",
            "sigT too far from the server's clock",
            "زمان امضا با ساعت سامانه فاصله زیادی دارد",
        )
    public = leaf.public_key()
    if not isinstance(public, RSAPublicKey):
        raise PacketError(
            "jws-x5c", "certificate key is not RSA", "کلید گواهی امضا از نوع RSA نیست"
        )
    try:
        verified = jws.deserialize_compact(token, RSAKey.import_key(public), registry=_JWS)
    except (JoseError, ValueError) as exc:
        raise PacketError("jws-signature", "bad signature", "امضای بسته نامعتبر است") from exc
    return VerifiedJws(dict(verified.headers()), verified.payload, leaf, signed_at)


def open_packet(
    token: str,
    server_private_key: RSAPrivateKey,
    trusted_roots: Sequence[x509.Certificate],
    *,
    key_id: str | None = None,
    now: datetime | None = None,
) -> VerifiedJws:
    """:func:`decrypt` then :func:`verify`: what the tax system does with a packet."""
    return verify(decrypt(token, server_private_key, key_id=key_id), trusted_roots, now=now)
