"""Private keys on disk: every way a key file can be wrong is a ConfigError naming it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.errors import ConfigError
from edge.protocol import bundles, ed25519, keys

# cryptography's key (head office, the technician's tools) and the agent's own
# (edge.protocol.ed25519): the same checks, the same errors
LOADERS = pytest.mark.parametrize(
    "load", [keys.load_private, keys.load_signer], ids=["load_private", "load_signer"]
)
Loader = Callable[[Path], ed25519.PrivateKey]


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_generate_then_load(tmp_path: Path) -> None:
    key = keys.generate(tmp_path / "k" / "device.key")
    assert keys.public_raw(keys.load_private(tmp_path / "k" / "device.key")) == keys.public_raw(key)
    with pytest.raises(ConfigError, match="never overwritten"):
        keys.generate(tmp_path / "k" / "device.key")


@LOADERS
def test_an_encrypted_key_is_a_config_error(tmp_path: Path, load: Loader) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    path = _write(tmp_path / "enc.key", pem)
    with pytest.raises(ConfigError, match="encrypted") as info:
        load(path)
    assert info.value.setting == str(path)


@LOADERS
def test_a_directory_is_a_config_error(tmp_path: Path, load: Loader) -> None:
    path = tmp_path / "device.key"
    path.mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="cannot read the private key") as info:
        load(path)
    assert info.value.setting == str(path)


@LOADERS
def test_an_unreadable_file_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: Loader
) -> None:
    path = _write(tmp_path / "device.key", b"")
    if os.geteuid() != 0:
        path.chmod(0o000)
    else:  # root reads any file: make this one refuse as it would for the agent's user
        real = Path.read_bytes

        def refuse(self: Path) -> bytes:
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError, match="cannot read the private key: Permission denied"):
        load(path)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"not a key", "not a PEM private key"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a PEM"),
        (
            generate_private_key(SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "not an Ed25519 private key",
        ),
    ],
    ids=["garbage", "bad-der", "ec-key"],
)
@LOADERS
def test_wrong_contents_are_config_errors(
    tmp_path: Path, data: bytes, why: str, load: Loader
) -> None:
    with pytest.raises(ConfigError, match=why):
        load(_write(tmp_path / "device.key", data))


@LOADERS
def test_missing_and_world_readable(tmp_path: Path, load: Loader) -> None:
    with pytest.raises(ConfigError, match="no private key here"):
        load(tmp_path / "none.key")
    keys.generate(tmp_path / "device.key")
    (tmp_path / "device.key").chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        load(tmp_path / "device.key")


def test_usual_keys_load_without_the_serialization_package(tmp_path: Path) -> None:
    """A terminal reads its unencrypted Ed25519 keys itself (RFC 8410's fixed DER) and never
    loads cryptography's serialization package (2.6 MB of its 40 MB); the keys it reads are
    the ones the library wrote."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    key_path = tmp_path / "device.key"
    key = keys.generate(key_path)
    (tmp_path / "rules.pub.pem").write_text(keys.public_pem(key))
    code = (
        "import sys; from pathlib import Path; import edge.agent; from edge.protocol import keys;"
        f"k = keys.load_private(Path({str(key_path)!r}));"
        f"p = keys.public_from_pem(Path({str(tmp_path / 'rules.pub.pem')!r}).read_text());"
        "assert keys.public_raw(k) == keys.public_raw(p);"
        "print('cryptography.hazmat.primitives.serialization' in sys.modules)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
    assert keys.public_raw(keys.load_private(key_path)) == keys.public_raw(key)


def test_the_agent_loads_no_cryptography(tmp_path: Path) -> None:
    """The agent's keys (load_signer, verifier_from_pem) are edge.protocol.ed25519's, on the
    OpenSSL CPython loaded for hashlib: with the whole agent imported, a record signed and a
    bundle verified, cryptography (its Rust extension, about 8 MB) is never loaded."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.helpers.store import rules_doc

    ho = Ed25519PrivateKey.generate()
    (tmp_path / "rules.pub.pem").write_text(keys.public_pem(ho))
    (tmp_path / "rules.bundle").write_bytes(bundles.sign(rules_doc(), ho))
    key = keys.generate(tmp_path / "device.key")
    code = (
        "import sys; from pathlib import Path; import edge.__main__, edge.agent;"
        "from edge.protocol import bundles, cose, ed25519, keys;"
        f"d = Path({str(tmp_path)!r});"
        "k = keys.load_signer(d / 'device.key');"
        "p = keys.verifier_from_pem((d / 'rules.pub.pem').read_bytes());"
        "rs = bundles.open_bundle((d / 'rules.bundle').read_bytes(), p);"
        "cose.parse(cose.sign1(b'x', k, b'dev')).verify(k.public_key());"
        "print(ed25519.backend(), k.public_key().public_bytes_raw().hex(), rs.version,"
        " sorted(m for m in sys.modules if m.startswith(('cryptography', 'nacl'))))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["libcrypto", keys.public_raw(key).hex(), "1", "[]"]
