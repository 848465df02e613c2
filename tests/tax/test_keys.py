"""Key files: only the owner may read the private key; nothing secret reaches a repr."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from cloud_broker.tax.errors import KeyFileError
from cloud_broker.tax.keys import load_certificate, load_credentials, load_private_key
from tests.tax.conftest import Pki
from tests.tax.pki import new_key


def write(path: Path, data: bytes, mode: int) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.fixture
def files(tmp_path: Path, pki: Pki) -> tuple[Path, Path]:
    pem = pki.taxpayer_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert = pki.taxpayer_cert.public_bytes(serialization.Encoding.PEM)
    return write(tmp_path / "tax.key", pem, 0o600), write(tmp_path / "tax.crt", cert, 0o644)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_key_loads(files: tuple[Path, Path], pki: Pki, mode: int) -> None:
    key_path, cert_path = files
    key_path.chmod(mode)
    creds = load_credentials(key_path, cert_path)
    assert creds.private_key.private_numbers() == pki.taxpayer_key.private_numbers()
    assert creds.certificate == pki.taxpayer_cert
    assert "BEGIN" not in repr(creds)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_key_readable_by_others_is_refused(files: tuple[Path, Path], mode: int) -> None:
    key_path, _ = files
    key_path.chmod(mode)
    with pytest.raises(KeyFileError) as caught:
        load_private_key(key_path)
    error = caught.value
    assert error.path == str(key_path)
    assert f"{mode:04o}" in error.en and "chmod 600" in error.en
    assert "chmod 600" in error.fa and "کلید خصوصی" in error.fa
    assert not error.transient
    assert "PRIVATE KEY" not in error.en  # the message never quotes the file


def test_certificate_may_be_world_readable(files: tuple[Path, Path], pki: Pki) -> None:
    assert load_certificate(files[1]) == pki.taxpayer_cert


def test_unusable_files(tmp_path: Path, files: tuple[Path, Path]) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        load_private_key(tmp_path / "missing.key")
    with pytest.raises(KeyFileError, match="not a readable PEM private key"):
        load_private_key(write(tmp_path / "junk.key", b"not a key", 0o600))
    with pytest.raises(KeyFileError, match="not a readable PEM certificate"):
        load_certificate(write(tmp_path / "junk.crt", b"nope", 0o644))
    with pytest.raises(KeyFileError, match="cannot read"):
        load_private_key(tmp_path)  # a directory
    other = new_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyFileError, match="not for this private key"):
        load_credentials(write(tmp_path / "other.key", other, 0o600), files[1])
