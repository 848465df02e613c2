"""The terminal's side of provisioning on disk: ``init`` (the device key and the agent's
configuration), key files during a rotation, destroying a key, and making sure the agent
is not running while a tool uses its ports, key or outbox.

``init`` generates the Ed25519 key on the terminal (edge.protocol.keys: PKCS#8, mode
0600, never overwritten; it is never printed or sent), copies the files head office
handed over (the broker's CA, this device's TLS certificate and key, head office's
pinned rules key, optionally a signed rules bundle) next to the configuration, writes
the TOML configuration (docs/configuration.md) and loads it back with the agent's own
loader (edge.config.load), so a file the agent would refuse is never left behind and,
with ``--force``, the files in place are replaced only once the new ones load.
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


def read_file(path: Path, what: str) -> bytes:
    """The bytes of a file the command line named (``what``: the option); ConfigError
    naming the file and why otherwise."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(what, f"cannot read {path}: {e.strerror}") from None


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file renamed over it), creating
    the directories it lives in."""
    path.parent.mkdir(parents=True, exist_ok=True)
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


def staged_path(path: Path) -> Path:
    """Where ``init`` writes a file before the configuration naming it has loaded."""
    return path.with_name(path.name + ".new")


def _copy_in(spec: InitSpec, where: Path, staged: list[Path]) -> tuple[dict[str, str], int | None]:
    """Check head office's files and write them next to the configuration, each as
    ``NAME.new`` (its final path is appended to ``staged``); returns the configuration's
    file settings under their final names, and the rules bundle's version."""

    def stage(name: str, data: bytes, mode: int = 0o644) -> str:
        staged.append(where / name)  # first: a failed write is cleaned up too
        write_file(staged_path(where / name), data, mode)
        return name

    files: dict[str, str] = {}
    version = None
    pinned = keys.public_from_pem(read_file(spec.rules_key, "--rules-key"))
    files["rules_public_key"] = stage("rules.pub.pem", keys.public_pem(pinned).encode())
    if spec.rules_bundle is not None:
        raw = read_file(spec.rules_bundle, "--rules-bundle")
        try:
            rs = bundles.open_bundle(raw, pinned, spec.tenant)
        except (SignatureError, DecodeError, RuleError) as e:
            raise ConfigError("--rules-bundle", f"refused with the pinned key: {e}") from None
        files["rules_bundle"] = stage("rules.bundle", raw)
        version = rs.version
    ca = None
    if spec.ca is not None:
        ca_pem = read_file(spec.ca, "--ca")
        ca = pki.load_cert(ca_pem, "--ca")
        files["ca"] = stage("ca.pem", ca_pem)
    if spec.cert is not None and spec.tls_key is not None:
        cert_pem = read_file(spec.cert, "--cert")
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
        files["cert"] = stage("device.pem", cert_pem)
        files["key"] = stage("device-tls.key", read_file(spec.tls_key, "--tls-key"), 0o600)
    return files, version


def init(spec: InitSpec, out: Out) -> Config:
    """Generate the key, write the configuration; returns it as the agent will load it.

    Nothing already in place changes until the new configuration loads: head office's
    files are written as ``NAME.new`` and checked, with the configuration, by the agent's
    own loader; a refusal removes them (and a key made by this run)."""
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
    staged: list[Path] = []
    tmp = staged_path(spec.config)
    created = False  # a key made by this run, destroyed if the run fails
    try:
        files, version = _copy_in(spec, where, staged)
        if key_path.exists():
            key = keys.load_private(key_path)
        else:
            key = keys.generate(key_path)
            created = True
        trial = {k: staged_path(Path(v)).name for k, v in files.items()}
        tmp.write_text(render(spec, trial), "utf-8")
        load(tmp)  # the agent's own loader: a file it refuses is never left behind
    except BaseException:
        tmp.unlink(missing_ok=True)
        for path in staged:
            staged_path(path).unlink(missing_ok=True)
        if created:
            destroy(key_path)
        raise
    for path in staged:
        staged_path(path).replace(path)
    tmp.write_text(render(spec, files), "utf-8")
    # the POS API token is a secret: a configuration holding one is for the agent's eyes
    tmp.chmod(0o600 if spec.pos_token else 0o644)
    tmp.replace(spec.config)
    _fsync_dir(where)
    cfg = load(spec.config)
    fp = fingerprint(keys.public_raw(key))
    verb, verb_fa = ("generated", "ساخته شد") if created else ("kept", "نگه داشته شد")
    out.say(
        f"device key {verb}: {key_path} (mode 0600, never leaves this terminal), "
        f"public key fingerprint {fp}",
        f"کلید دستگاه {verb_fa}: {key_path} (دسترسی 0600، هرگز از این پایانه بیرون نمی‌رود)، "
        f"اثر انگشت کلید عمومی {fp}",
    )
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
