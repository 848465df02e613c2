"""JWS inside JWE: round trip, an independent decoder, and everything a verifier refuses."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jws
from joserfc.jwk import RSAKey

from cloud_broker.tax import jose
from cloud_broker.tax.errors import KeyFileError, PacketError
from cloud_broker.tax.jose import ServerKey, TaxpayerCredentials
from cloud_broker.tax.wirejson import encode_json
from tests.tax.conftest import Pki
from tests.tax.pki import new_key

PAYLOAD = encode_json(
    {"header": {"taxid": "DEF5GH0481F000000000C2", "tbill": 109_000}, "body": [{"sstt": "اسپری"}]}
)
NOW = datetime.now(UTC).replace(microsecond=0)


def b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@pytest.fixture(scope="module")
def creds(pki: Pki) -> TaxpayerCredentials:
    return TaxpayerCredentials(pki.taxpayer_key, pki.taxpayer_cert)


@pytest.fixture(scope="module")
def server_key(pki: Pki) -> ServerKey:
    return ServerKey("key-2024", pki.server_key.public_key())


def test_round_trip(pki: Pki, creds: TaxpayerCredentials, server_key: ServerKey) -> None:
    token = jose.seal(PAYLOAD, creds, server_key, now=NOW)
    jwe_header = json.loads(b64url(token.split(".")[0]))
    assert jwe_header == {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "key-2024"}
    opened = jose.open_packet(
        token, pki.server_key, [pki.ca.certificate], key_id="key-2024", now=NOW
    )
    assert opened.payload == PAYLOAD
    assert opened.header == {
        "alg": "RS256",
        "x5c": [creds.x5c],
        "sigT": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "crit": ["sigT"],
    }
    assert opened.certificate == pki.taxpayer_cert
    assert opened.signed_at == NOW


def test_an_independent_decoder_reads_our_packets(
    pki: Pki, creds: TaxpayerCredentials, server_key: ServerKey
) -> None:
    """Plain `cryptography`, no JOSE library: what any other implementation would do."""
    protected, wrapped_key, iv, ciphertext, tag = jose.seal(
        PAYLOAD, creds, server_key, now=NOW
    ).split(".")
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    cek = pki.server_key.decrypt(b64url(wrapped_key), oaep)
    assert len(cek) == 32 and len(b64url(iv)) == 12
    signed = AESGCM(cek).decrypt(
        b64url(iv), b64url(ciphertext) + b64url(tag), protected.encode("ascii")
    )
    head, body, signature = signed.decode("ascii").split(".")
    public = pki.taxpayer_cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(
        b64url(signature), f"{head}.{body}".encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
    )
    assert b64url(body) == PAYLOAD
    x5c = json.loads(b64url(head))["x5c"][0]
    assert base64.b64decode(x5c) == pki.taxpayer_cert.public_bytes(serialization.Encoding.DER)


def test_auth_token_payload(pki: Pki, creds: TaxpayerCredentials) -> None:
    token = jose.auth_token("n-1", "A1B2C3", creds, now=NOW)
    checked = jose.verify(token, [pki.ca.certificate], now=NOW)
    assert json.loads(checked.payload) == {"nonce": "n-1", "clientId": "A1B2C3"}


def _tamper(segment: str) -> str:
    raw = bytearray(b64url(segment))
    raw[len(raw) // 2] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode("ascii")


@pytest.mark.parametrize("part", [1, 2, 3, 4])
def test_tampered_jwe_is_refused(
    pki: Pki, creds: TaxpayerCredentials, server_key: ServerKey, part: int
) -> None:
    pieces = jose.seal(PAYLOAD, creds, server_key, now=NOW).split(".")
    pieces[part] = _tamper(pieces[part])
    with pytest.raises(PacketError) as caught:
        jose.open_packet(".".join(pieces), pki.server_key, [pki.ca.certificate], now=NOW)
    assert caught.value.code == "jwe-decrypt"
    assert not caught.value.transient and caught.value.fa


def test_jwe_header_checks(pki: Pki, creds: TaxpayerCredentials, server_key: ServerKey) -> None:
    token = jose.seal(PAYLOAD, creds, server_key, now=NOW)
    with pytest.raises(PacketError, match="jwe-kid"):
        jose.decrypt(token, pki.server_key, key_id="key-2025")
    with pytest.raises(PacketError, match="jwe-format"):
        jose.decrypt(token.rsplit(".", 1)[0], pki.server_key)
    with pytest.raises(PacketError, match="jwe-decrypt"):  # someone else's key
        jose.decrypt(token, pki.spare_server_key)


def test_altered_signed_content_is_refused(
    pki: Pki, creds: TaxpayerCredentials, server_key: ServerKey
) -> None:
    signed = jose.sign(PAYLOAD, creds, now=NOW)
    head, _, signature = signed.split(".")
    forged_body = (
        base64.urlsafe_b64encode(PAYLOAD.replace(b"109000", b"100000")).rstrip(b"=").decode()
    )
    forged = jose.encrypt(f"{head}.{forged_body}.{signature}", server_key)
    with pytest.raises(PacketError, match="jws-signature"):
        jose.open_packet(forged, pki.server_key, [pki.ca.certificate], now=NOW)


def test_certificate_checks(pki: Pki, creds: TaxpayerCredentials) -> None:
    rogue = TaxpayerCredentials(pki.taxpayer_key, pki.rogue_cert)
    with pytest.raises(PacketError, match="cert-untrusted"):
        jose.verify(jose.sign(PAYLOAD, rogue, now=NOW), [pki.ca.certificate], now=NOW)
    expired = TaxpayerCredentials(
        pki.taxpayer_key,
        pki.ca.issue(
            pki.taxpayer_key,
            "old",
            not_before=NOW - timedelta(days=400),
            not_after=NOW - timedelta(days=1),
        ),
    )
    with pytest.raises(PacketError, match="cert-expired"):
        jose.verify(jose.sign(PAYLOAD, expired, now=NOW), [pki.ca.certificate], now=NOW)


def test_signing_time_checks(pki: Pki, creds: TaxpayerCredentials) -> None:
    stale = jose.sign(PAYLOAD, creds, now=NOW - timedelta(hours=1))
    with pytest.raises(PacketError, match="jws-sigT"):
        jose.verify(stale, [pki.ca.certificate], now=NOW)
    key = RSAKey.import_key(pki.taxpayer_key)
    no_crit = jws.serialize_compact(
        {"alg": "RS256", "x5c": [creds.x5c], "sigT": jose.signing_time(NOW)},
        PAYLOAD,
        key,
        registry=jws.JWSRegistry(strict_check_header=False),
    )
    with pytest.raises(PacketError, match="jws-crit"):
        jose.verify(no_crit, [pki.ca.certificate], now=NOW)


def test_credentials_must_match_and_stay_out_of_repr(pki: Pki, creds: TaxpayerCredentials) -> None:
    with pytest.raises(KeyFileError, match="not for this private key"):
        TaxpayerCredentials(new_key(), pki.taxpayer_cert)
    assert "Test store" in repr(creds)
    assert "private" not in repr(creds).lower() and "RSAPrivateKey" not in repr(creds)


def test_server_key_wire_form(server_key: ServerKey) -> None:
    assert ServerKey.from_wire("key-2024", server_key.to_wire()) == server_key
    with pytest.raises(PacketError, match="server-key"):
        ServerKey.from_wire("k", "not base64!")
