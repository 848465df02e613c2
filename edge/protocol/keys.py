"""Device and head-office Ed25519 keys on disk.

A private key is generated where it is used and written once, PKCS#8 PEM, file mode
0600, created exclusively (an existing key is never overwritten).  Loading refuses a
private key file that others can read.  Public keys travel as raw 32 bytes or PEM.

An Ed25519 key in PEM is a fixed DER structure (RFC 8410): the terminal reads the usual
unencrypted ones directly and leaves cryptography's ``serialization`` package (with its
SSH and PKCS#12 code, about 2.6 MB of the agent's 40 MB) unloaded; anything else goes
through that package, which also explains what is wrong.  The agent goes one step further
(:func:`load_signer`, :func:`verifier_from_pem`): its keys are edge.protocol.ed25519's, on
the OpenSSL CPython has loaded already, so it does not load cryptography at all (its Rust
extension is about 8 MB).  The other functions give cryptography's keys, as before.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import ConfigError
from edge.protocol import ed25519

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

# DER before the 32 key bytes (RFC 8410): PKCS#8 v1 private key, SubjectPublicKeyInfo
_PKCS8_ED25519 = bytes.fromhex("302e020100300506032b657004220420")
_SPKI_ED25519 = bytes.fromhex("302a300506032b6570032100")


def _der(pem: bytes, label: bytes) -> bytes | None:
    """The DER inside a single ``-----BEGIN label-----`` block, or None."""
    begin, end = b"-----BEGIN " + label + b"-----", b"-----END " + label + b"-----"
    text = pem.strip()
    if not (text.startswith(begin) and text.endswith(end)) or text.count(b"-----BEGIN") != 1:
        return None
    try:
        return base64.b64decode(b"".join(text[len(begin) : -len(end)].split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _raw_after(der: bytes | None, prefix: bytes) -> bytes | None:
    if der is not None and len(der) == len(prefix) + 32 and der.startswith(prefix):
        return der[len(prefix) :]
    return None


def generate(path: Path) -> Ed25519PrivateKey:
    """Create a new private key at ``path`` (mode 0600); refuse to overwrite one."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    key = Ed25519PrivateKey.generate()
    write_private(path, key)
    return key


def write_private(path: Path, key: PrivateKeyTypes) -> None:
    """Any private key as PKCS#8 PEM, mode 0600, created exclusively and fsynced; an
    existing file is never overwritten."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - see above

    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(str(path), "a key already exists here; it is never overwritten") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())


def _read_private(path: Path) -> bytes:
    """The PEM of the private key at ``path``, once it is there, readable and private."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(str(path), "no private key here (run firmware_tools init)") from None
    except OSError as e:
        raise ConfigError(str(path), f"cannot read the private key: {e.strerror or e}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            str(path),
            f"private key is readable by others (mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it",
        )
    try:
        return path.read_bytes()  # a directory, or a file this user may not read
    except OSError as e:
        raise ConfigError(str(path), f"cannot read the private key: {e.strerror or e}") from None


def _parse_private(path: Path, pem: bytes) -> Ed25519PrivateKey:
    """Any other PEM, through cryptography's serialization package (and its reasons)."""
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:  # cryptography: "Password was not given but private key is encrypted"
        raise ConfigError(
            str(path), "the private key is encrypted; the terminal needs an unencrypted key"
        ) from None
    except (ValueError, UnsupportedAlgorithm) as e:
        raise ConfigError(str(path), f"not a PEM private key: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(str(path), "not an Ed25519 private key")
    return key


def load_private(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key at ``path`` (cryptography's); ConfigError naming the path and why
    otherwise."""
    pem = _read_private(path)
    raw = _raw_after(_der(pem, b"PRIVATE KEY"), _PKCS8_ED25519)
    if raw is not None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
            Ed25519PrivateKey,
        )

        return Ed25519PrivateKey.from_private_bytes(raw)
    return _parse_private(path, pem)


def load_signer(path: Path) -> ed25519.PrivateKey:
    """The agent's :func:`load_private`: the same checks and errors, the key as
    edge.protocol.ed25519 makes it (cryptography stays unloaded for the usual key file)."""
    pem = _read_private(path)
    raw = _raw_after(_der(pem, b"PRIVATE KEY"), _PKCS8_ED25519)
    if raw is not None:
        return ed25519.private_key(raw)
    return _parse_private(path, pem)


def _public(key: ed25519.PrivateKey | ed25519.PublicKey) -> ed25519.PublicKey:
    return key.public_key() if isinstance(key, ed25519.PrivateKey) else key


def public_raw(key: ed25519.PrivateKey | ed25519.PublicKey) -> bytes:
    return _public(key).public_bytes_raw()


def public_pem(key: ed25519.PrivateKey | ed25519.PublicKey) -> str:
    der = base64.encodebytes(_SPKI_ED25519 + _public(key).public_bytes_raw()).decode()
    return f"-----BEGIN PUBLIC KEY-----\n{der}-----END PUBLIC KEY-----\n"


def public_from_raw(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != 32:
        raise ConfigError("public key", f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PublicKey,
    )

    return Ed25519PublicKey.from_public_bytes(raw)


def _parse_public(data: bytes) -> Ed25519PublicKey:
    """Any other PEM, through cryptography's serialization package (and its reasons)."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PublicKey,
    )

    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise ConfigError("public key", f"not a PEM public key: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("public key", "not an Ed25519 public key")
    return key


def public_from_pem(text: str | bytes) -> Ed25519PublicKey:
    data = text.encode() if isinstance(text, str) else text
    raw = _raw_after(_der(data, b"PUBLIC KEY"), _SPKI_ED25519)
    if raw is not None:
        return public_from_raw(raw)
    return _parse_public(data)


def verifier_from_pem(text: str | bytes) -> ed25519.PublicKey:
    """The agent's :func:`public_from_pem`: the key as edge.protocol.ed25519 makes it."""
    data = text.encode() if isinstance(text, str) else text
    raw = _raw_after(_der(data, b"PUBLIC KEY"), _SPKI_ED25519)
    if raw is not None:
        return ed25519.public_key(raw)
    return _parse_public(data)
