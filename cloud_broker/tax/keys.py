"""Loading the taxpayer's private key and certificate from PEM files.

The private key file must be readable by its owner only (mode 0600 or 0400): a key
that group or others can read is refused with a clear error rather than used, as for
every secret of head office (DESIGN.md section 12).  The mode is read from the opened
file itself, so the check and the read concern the same file.  Nothing read here is
ever logged.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from cloud_broker.tax.errors import KeyFileError
from cloud_broker.tax.jose import TaxpayerCredentials

__all__ = ["load_certificate", "load_credentials", "load_private_key"]

_TOO_OPEN = stat.S_IRWXG | stat.S_IRWXO


def _read(path: Path, *, secret: bool) -> bytes:
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise KeyFileError(str(path), "not a regular file", "فایل معمولی نیست")
            if secret and mode & _TOO_OPEN:
                raise KeyFileError(
                    str(path),
                    f"mode {stat.S_IMODE(mode):04o} lets group or others read the private key; "
                    f"run: chmod 600 {path}",
                    f"دسترسی {stat.S_IMODE(mode):04o} به دیگران اجازه خواندن کلید خصوصی را "
                    f"می‌دهد؛ دستور chmod 600 {path} را اجرا کنید",
                )
            return handle.read()
    except OSError as exc:
        raise KeyFileError(
            str(path), f"cannot read: {exc.strerror}", f"خوانده نشد: {exc.strerror}"
        ) from exc


def load_private_key(path: str | Path, password: bytes | None = None) -> RSAPrivateKey:
    """The RSA private key in the PEM file ``path`` (mode 0600 or stricter)."""
    file = Path(path)
    data = _read(file, secret=True)
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            str(file), "not a readable PEM private key", "کلید خصوصی PEM خوانا نیست"
        ) from exc
    if not isinstance(key, RSAPrivateKey) or key.key_size < 2048:
        raise KeyFileError(
            str(file),
            "the tax system needs an RSA key of at least 2048 bits",
            "سامانه مودیان کلید RSA دست‌کم ۲۰۴۸ بیتی می‌خواهد",
        )
    return key


def load_certificate(path: str | Path) -> x509.Certificate:
    """The X.509 certificate in the PEM file ``path``."""
    file = Path(path)
    data = _read(file, secret=False)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise KeyFileError(
            str(file), "not a readable PEM certificate", "گواهی PEM خوانا نیست"
        ) from exc


def load_credentials(
    key_path: str | Path, certificate_path: str | Path, password: bytes | None = None
) -> TaxpayerCredentials:
    """Key and certificate together, checked to belong to each other."""
    return TaxpayerCredentials(
        load_private_key(key_path, password), load_certificate(certificate_path)
    )
