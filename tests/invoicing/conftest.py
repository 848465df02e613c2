"""Tax invoicing fixtures: the ledger on both databases, the fake tax system and the
taxpayer's key and certificate in files (mode 0600)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.cloud.conftest import ho, ledger_url, pos  # noqa: F401 - re-exported fixtures
from tests.tax.conftest import Pki, fake, pki  # noqa: F401 - re-exported fixtures


@pytest.fixture
def key_files(tmp_path: Path, pki: Pki) -> tuple[str, str]:  # noqa: F811 - re-exported
    key, cert = tmp_path / "tax.key", tmp_path / "tax.crt"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pki.taxpayer_key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))  # fmt: skip
    cert.write_bytes(pki.taxpayer_cert.public_bytes(serialization.Encoding.PEM))
    return str(key), str(cert)
