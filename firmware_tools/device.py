"""The terminal's side of provisioning on disk: ``init`` (the device key and the agent's
configuration), key files during a rotation, destroying a key, and making sure the agent
is not running while a tool uses its ports, key or outbox.

``init`` generates the Ed25519 key on the terminal (edge.protocol.keys: PKCS#8, mode
0600, never overwritten; it is never printed or sent), copies the files head office
handed over (the broker's CA, this device's TLS certificate and key, head office's
pinned rules key, optionally a signed rules bundle) next to the configuration, writes
the TOML configuration (docs/configuration.md) and loads it back with the agent's own
loader (edge.config.load), so a file the agent would refuse is never left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.config import Config, load
from edge.core.errors import RuleError
from edge.drivers import registry
from edge.errors import ConfigError, DecodeError, SignatureError
from edge.protocol import bundles, keys, topics
from firmware_tools import pki
from firmware_tools.ui import USAGE, Out, ToolError

KEY_FILE = "device.key"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class AgentRunningError(ToolError):
    """The agent is running: a tool must not share its ports, key or outbox."""

    exit_code = USAGE


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One ``[devices.NAME]`` table: ``NAME:KIND:DRIVER:PORT`` on the command line."""

    name: str
    kind: str
    driver: str
    port: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InitSpec:
    config: Path
    tenant: str
    store: str
    device: str
    rules_key: Path
    broker: str | None = None
    ca: Path | None = None
    cert: Path | None = None
    tls_key: Path | None = None
    rules_bundle: Path | None = None
    data_dir: str = "data"
    utc_offset: int | None = 210
    pos_listen: str = "127.0.0.1:8765"
    pos_token: str | None = None
    devices: tuple[DeviceSpec, ...] = ()
    force: bool = False


def fingerprint(public_key: bytes) -> str:
    """A short, comparable form of a public key: the first 16 bytes of its SHA-256."""
    h = hashlib.sha256(public_key).hexdigest()[:32]
    return ":".join(h[i : i + 4] for i in range(0, 32, 4))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed over it)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    _fsync_dir(path.parent)


def destroy(path: Path) -> bool:
    """Overwrite a key file with random bytes, then unlink it; False if there was none."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    with path.open("r+b") as f:
        f.write(os.urandom(max(size, 64)))
        f.flush()
        os.fsync(f.fileno())
    path.unlink()
    _fsync_dir(path.parent)
    return True


def new_key_path(key: Path) -> Path:
    return key.with_name(key.name + ".new")


def old_key_path(key: Path) -> Path:
    return key.with_name(key.name + ".old")


def switch_key(key: Path) -> None:
    """Put ``KEY.new`` in force atomically; the previous key stays as ``KEY.old``."""
    new, old = new_key_path(key), old_key_path(key)
    destroy(old)
    os.link(key, old)
    new.replace(key)
    _fsync_dir(key.parent)


def agent_running(cfg: Config) -> str | None:
    """The POS API address if the agent answers there, else None (port 0: unknowable)."""
    listen = cfg.listen
    try:
        if listen.startswith("unix:"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(0.3)
                s.connect(listen[len("unix:") :])
            return listen
        host, _, port = listen.rpartition(":")
        if int(port) == 0:
            return None
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.3):
            return listen
    except OSError:
        return None


def require_agent_stopped(cfg: Config) -> None:
    where = agent_running(cfg)
    if where is not None:
        raise AgentRunningError(
            f"the agent is running (its POS API answers on {where}); stop it first "
            "(systemctl stop loyalty-edge), then run this again",
            f"عامل پایانه در حال اجراست (روی {where} پاسخ می‌دهد)؛ نخست آن را متوقف کنید "
            "(systemctl stop loyalty-edge) و دوباره اجرا کنید",
            "agent_running",
        )


# -- init ----------------------------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    raise ConfigError("options", f"cannot write {value!r} to the configuration")


def render(spec: InitSpec, files: dict[str, str]) -> str:
    """The configuration text; ``files`` names the copied files (ca, cert, key, ...)."""
    lines = [
        "# written by python -m firmware_tools init; docs/configuration.md explains it",
        "[device]",
        f"tenant = {_toml(spec.tenant)}",
        f"store = {_toml(spec.store)}",
        f"id = {_toml(spec.device)}",
        f"key = {_toml(KEY_FILE)}",
        f"data_dir = {_toml(spec.data_dir)}",
    ]
    if spec.utc_offset is not None:
        lines.append(f"utc_offset_minutes = {spec.utc_offset}")
    lines += ["", "[head_office]"]
    if spec.broker:
        lines.append(f"broker = {_toml(spec.broker)}")
    for key in ("ca", "cert", "key", "rules_public_key", "rules_bundle"):
        if key in files:
            lines.append(f"{key} = {_toml(files[key])}")
    lines += ["", "[pos_api]", f"listen = {_toml(spec.pos_listen)}"]
    if spec.pos_token:
        lines.append(f"token = {_toml(spec.pos_token)}")
    for d in spec.devices:
        lines += [
            "",
            f"[devices.{d.name}]",
            f"kind = {_toml(d.kind)}",
            f"driver = {_toml(d.driver)}",
            f"port = {_toml(d.port)}",
        ]
        if d.options:
            lines.append(f"options = {_toml(d.options)}")
    return "\n".join(lines) + "\n"


def _check(spec: InitSpec) -> None:
    topics.check_id(spec.tenant, "tenant")
    topics.check_id(spec.store, "store")
    topics.check_id(spec.device, "device")
    if (spec.cert is None) != (spec.tls_key is None):
        raise ConfigError("--cert/--tls-key", "give the device's TLS certificate and key together")
    if spec.cert is not None and not spec.broker:
        raise ConfigError("--cert", "a TLS certificate without --broker")
    names = set()
    for d in spec.devices:
        if not _NAME.match(d.name) or d.name in names:
            raise ConfigError(f"devices.{d.name}", "names are unique: letters, digits, - and _")
        names.add(d.name)
        try:
            registry.load(d.kind, d.driver)  # imports the driver, opens nothing
        except ConfigError as e:
            raise ConfigError(f"devices.{d.name}.driver", str(e)) from None
        if not d.port:
            raise ConfigError(f"devices.{d.name}.port", "is empty")


def _copy_in(spec: InitSpec, where: Path) -> dict[str, str]:
    """Check and copy head office's files next to the configuration."""
    files: dict[str, str] = {}
    pinned = keys.public_from_pem(_read(spec.rules_key, "--rules-key"))
    write_file(where / "rules.pub.pem", keys.public_pem(pinned).encode())
    files["rules_public_key"] = "rules.pub.pem"
    if spec.rules_bundle is not None:
        raw = _read(spec.rules_bundle, "--rules-bundle")
        try:
            rs = bundles.open_bundle(raw, pinned, spec.tenant)
        except (SignatureError, DecodeError, RuleError) as e:
            raise ConfigError("--rules-bundle", f"refused with the pinned key: {e}") from None
        write_file(where / "rules.bundle", raw)
        files["rules_bundle"] = "rules.bundle"
        files["rules_version"] = str(rs.version)
    ca = None
    if spec.ca is not None:
        ca_pem = _read(spec.ca, "--ca")
        ca = pki.load_cert(ca_pem, "--ca")
        write_file(where / "ca.pem", ca_pem)
        files["ca"] = "ca.pem"
    if spec.cert is not None and spec.tls_key is not None:
        cert_pem = _read(spec.cert, "--cert")
        cert = pki.load_cert(cert_pem, "--cert")
        cn = pki.common_name(cert)
        if cn != spec.device:
            raise ConfigError(
                "--cert",
                f"the certificate is for {cn!r}; the broker would take this device "
                f"for it, not {spec.device}",
            )
        if ca is not None:
            pki.check_issued_by(cert, ca, "--cert")
        write_file(where / "device.pem", cert_pem)
        write_file(where / "device-tls.key", _read(spec.tls_key, "--tls-key"), 0o600)
        files["cert"], files["key"] = "device.pem", "device-tls.key"
    return files


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(what, f"cannot read {path}: {e.strerror}") from None


def init(spec: InitSpec, out: Out) -> Config:
    """Generate the key, write the configuration; returns it as the agent will load it."""
    _check(spec)
    where = spec.config.parent
    where.mkdir(parents=True, exist_ok=True)
    key_path = where / KEY_FILE
    if spec.config.exists() and not spec.force:
        raise ConfigError(
            str(spec.config), "a configuration exists; --force rewrites it (the key is kept)"
        )
    if key_path.exists() and not spec.force:
        raise ConfigError(
            str(key_path),
            "this terminal already has a device key; it is never replaced by init "
            "(rotate-key changes it, decommission retires it)",
        )
    files = _copy_in(spec, where)
    created = not key_path.exists()
    key = keys.generate(key_path) if created else keys.load_private(key_path)
    tmp = spec.config.with_name(spec.config.name + ".new")
    tmp.write_text(render(spec, files), "utf-8")
    try:
        load(tmp)  # the agent's own loader: a file it refuses is never left behind
    except ConfigError:
        tmp.unlink()
        if created:
            destroy(key_path)
        raise
    tmp.replace(spec.config)
    cfg = load(spec.config)
    fp = fingerprint(keys.public_raw(key))
    verb, verb_fa = ("generated", "ساخته شد") if created else ("kept", "نگه داشته شد")
    out.say(
        f"device key {verb}: {key_path} (mode 0600, never leaves this terminal), "
        f"public key fingerprint {fp}",
        f"کلید دستگاه {verb_fa}: {key_path} (دسترسی 0600، هرگز از این پایانه بیرون نمی‌رود)، "
        f"اثر انگشت کلید عمومی {fp}",
    )
    version = files.get("rules_version")
    rules_note = f", rules bundle v{version}" if version else ""
    rules_note_fa = f"، قوانین نسخهٔ {version}" if version else ""
    out.say(
        f"configuration written: {spec.config} ({spec.tenant}/{spec.store}/{spec.device}, "
        f"{len(spec.devices)} devices{rules_note})",
        f"پیکربندی نوشته شد: {spec.config} ({spec.tenant}/{spec.store}/{spec.device}، "
        f"{len(spec.devices)} دستگاه{rules_note_fa})",
    )
    out.say(
        f"next: python -m firmware_tools enroll --config {spec.config} --token TOKEN",
        f"گام بعد: python -m firmware_tools enroll --config {spec.config} --token TOKEN",
    )
    return cfg
