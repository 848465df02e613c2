"""A small X.509 PKI for the broker's TLS, for tests and small deployments.

One CA; a server certificate for the broker (its host names and addresses as subject
alternative names); a client certificate per terminal whose common name is the device
id, and one per head-office process (the reconciler, the rules publisher), since the
broker takes the CN as the MQTT user name (``use_identity_as_username``) and its ACL
keys on it.  Keys are ECDSA P-256, written PKCS#8 with mode 0600 and never over an
existing file.

A larger chain will already have a PKI; the broker configuration only needs its CA
file and certificates whose CN is the device id.

    python -m firmware_tools pki ca --dir pki
    python -m firmware_tools pki server --ca-dir pki --cn mq.example --host mq.example \\
        --out pki/broker
    python -m firmware_tools pki client --ca-dir pki --cn pos-0001 --out pki/pos-0001
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.errors import ConfigError
from edge.protocol import keys

PrivateKey = ec.EllipticCurvePrivateKey


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(cn: str = "Loyalty broker CA", days: int = 3650) -> tuple[PrivateKey, x509.Certificate]:
    key = new_key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(
    ca_key: PrivateKey,
    ca_cert: x509.Certificate,
    cn: str,
    *,
    hosts: list[str] | None = None,
    days: int = 825,
) -> tuple[PrivateKey, x509.Certificate]:
    """A new key and its certificate: a server certificate when ``hosts`` are given
    (DNS names or IP addresses), a client certificate otherwise."""
    key = new_key()
    now = _now()
    server = bool(hosts)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for h in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, b.sign(ca_key, hashes.SHA256())


def write_key(path: Path, key: PrivateKey) -> None:
    """PKCS#8 PEM, mode 0600; an existing file is never overwritten."""
    keys.write_private(path, key)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load_cert(data: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as e:
        raise ConfigError(what, f"not a PEM certificate: {e}") from None


def load_ca(directory: Path) -> tuple[PrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
        cert = load_cert((directory / "ca.pem").read_bytes(), str(directory / "ca.pem"))
    except (OSError, ValueError) as e:
        raise ConfigError(str(directory), f"no usable CA here (ca.key, ca.pem): {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(str(directory / "ca.key"), "expected an EC private key")
    return key, cert


def common_name(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = attrs[0].value if attrs else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def check_issued_by(cert: x509.Certificate, ca: x509.Certificate, what: str) -> None:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise ConfigError(what, "this certificate was not issued by the given CA") from None


def write_pair(prefix: Path, key: PrivateKey, cert: x509.Certificate) -> tuple[Path, Path]:
    """``PREFIX.pem`` and ``PREFIX.key``."""
    cert_path = prefix.with_name(prefix.name + ".pem")
    key_path = prefix.with_name(prefix.name + ".key")
    write_key(key_path, key)
    write_cert(cert_path, cert)
    return cert_path, key_path
