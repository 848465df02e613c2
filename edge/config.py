"""The terminal agent's configuration: one TOML file, validated when the agent starts.

Every problem is a :class:`~edge.errors.ConfigError` naming the setting (``devices.bank.port``,
``head_office.broker`` ...) and what is wrong, so a technician can fix it without reading code.
An example with every setting is docs/configuration.md; firmware_tools writes real ones.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.drivers import registry
from edge.errors import ConfigError
from edge.protocol import topics
from edge.protocol.mqtt import BrokerConfig


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    name: str
    kind: str  # card | phone | bank
    driver: str
    port: str
    options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    tenant: str
    store: str
    device: str
    key_file: Path
    data_dir: Path
    utc_offset_min: int | None
    broker: BrokerConfig | None
    rules_key_file: Path
    rules_file: Path | None  # a signed bundle installed at provisioning
    listen: str
    api_token: str | None
    outbox_max_bytes: int
    alarm_pct: tuple[int, ...]
    bank_timeout: float
    enroll_new_phones: bool
    devices: dict[str, DeviceConfig] = field(default_factory=dict)
    reserve_mb: int = 8  # disk preallocated for sales already charged
    min_free_mb: int = 16  # below this much free disk no new club sale starts
    display_listen: str | None = None  # the customer display's HOST:PORT (off when None)
    display_kiosk: bool = False  # the display page also serves a self-service kiosk
    display_idle_s: int = 60  # a kiosk clears itself after this long without a touch
    refund_days: int = 30  # sales and payments older than this leave once acknowledged

    @property
    def db_path(self) -> Path:
        return self.data_dir / "edge.db"


_SECTIONS = {
    "device": {"tenant", "store", "id", "key", "data_dir", "utc_offset_minutes"},
    "head_office": {"broker", "ca", "cert", "key", "rules_public_key", "rules_bundle"},
    "pos_api": {"listen", "token"},
    "outbox": {"max_mb", "alarm_pct", "reserve_mb", "min_free_mb"},
    "checkout": {"bank_timeout_s", "enroll_new_phones"},
    "display": {"listen", "kiosk", "idle_s"},
    "retention": {"refund_days"},
    "devices": None,  # one table per device
}
_DEVICE_KEYS = {"kind", "driver", "port", "options"}


def _get(t: dict[str, Any], section: str, key: str, typ: type, default: Any = ...) -> Any:
    where = f"{section}.{key}"
    if key not in t:
        if default is ...:
            raise ConfigError(where, "is missing")
        return default
    v = t[key]
    if typ is int and type(v) is not int:
        raise ConfigError(where, f"must be an integer, got {v!r}")
    if typ is not int and not isinstance(v, typ):
        raise ConfigError(where, f"must be {typ.__name__}, got {v!r}")
    return v


def _path(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else (base / p)


def _check_sections(raw: dict[str, Any]) -> None:
    for sec, value in raw.items():
        if sec not in _SECTIONS:
            raise ConfigError(sec, f"unknown section (known: {', '.join(sorted(_SECTIONS))})")
        if not isinstance(value, dict):
            raise ConfigError(sec, "must be a table")
        allowed = _SECTIONS[sec]
        if allowed is not None:
            for k in value:
                if k not in allowed:
                    raise ConfigError(
                        f"{sec}.{k}", f"unknown setting (known: {', '.join(sorted(allowed))})"
                    )


def _head_office(ho: dict[str, Any], base: Path) -> tuple[BrokerConfig | None, Path, Path | None]:
    def opt_file(key: str) -> str | None:
        v = _get(ho, "head_office", key, str, None)
        if v is None:
            return None
        p = _path(base, v)
        if not p.exists():
            raise ConfigError(f"head_office.{key}", f"{p} does not exist")
        return str(p)

    broker = None
    if "broker" in ho:
        broker = BrokerConfig.from_url(
            _get(ho, "head_office", "broker", str),
            ca_file=opt_file("ca"),
            cert_file=opt_file("cert"),
            key_file=opt_file("key"),
        )
    rules_key = _path(base, _get(ho, "head_office", "rules_public_key", str))
    if not rules_key.exists():
        raise ConfigError(
            "head_office.rules_public_key",
            f"{rules_key} does not exist: the terminal must pin head office's rules key",
        )
    rules_file = _get(ho, "head_office", "rules_bundle", str, None)
    return broker, rules_key, _path(base, rules_file) if rules_file is not None else None


def _devices(raw: dict[str, Any]) -> dict[str, DeviceConfig]:
    devices: dict[str, DeviceConfig] = {}
    for name, d in raw.items():
        where = f"devices.{name}"
        if not isinstance(d, dict):
            raise ConfigError(where, "must be a table")
        for k in d:
            if k not in _DEVICE_KEYS:
                raise ConfigError(
                    f"{where}.{k}", f"unknown setting (known: {', '.join(sorted(_DEVICE_KEYS))})"
                )
        kind = _get(d, where, "kind", str)
        driver = _get(d, where, "driver", str)
        try:
            registry.load(kind, driver)  # imports the module, opens nothing
        except ConfigError as e:
            raise ConfigError(f"{where}.driver", str(e)) from None
        port = _get(d, where, "port", str)
        if not port:
            raise ConfigError(f"{where}.port", "is empty")
        devices[name] = DeviceConfig(
            name, kind, driver, port, dict(_get(d, where, "options", dict, {}))
        )
    if len([d for d in devices.values() if d.kind == "bank"]) > 1:
        raise ConfigError("devices", "at most one bank terminal")
    return devices


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "no such configuration file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), f"not UTF-8 text (byte {e.start}): save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(str(path), f"cannot be read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), f"not valid TOML: {e}") from None


def _display(disp: dict[str, Any]) -> tuple[str | None, bool, int]:
    """The customer display: listen address (None: off), kiosk mode, idle seconds."""
    d_listen = _get(disp, "display", "listen", str, None)
    if d_listen is not None:
        d_port = d_listen.rpartition(":")[2]
        if not (d_port.isdigit() and int(d_port) <= 65535):
            raise ConfigError("display.listen", "use HOST:PORT (port 0..65535)")
    idle = _get(disp, "display", "idle_s", int, 60)
    if not 5 <= idle <= 3600:
        raise ConfigError("display.idle_s", "must be 5..3600 seconds")
    return d_listen, _get(disp, "display", "kiosk", bool, False), idle


def load(path: str | Path) -> Config:
    path = Path(path)
    raw = _read(path)
    base = path.parent
    _check_sections(raw)
    dev = raw.get("device")
    if dev is None:
        raise ConfigError("device", "section is missing")
    tenant = topics.check_id(_get(dev, "device", "tenant", str), "device.tenant")
    store = topics.check_id(_get(dev, "device", "store", str), "device.store")
    device = topics.check_id(_get(dev, "device", "id", str), "device.id")
    key_file = _path(base, _get(dev, "device", "key", str))
    if not key_file.exists():
        raise ConfigError(
            "device.key", f"{key_file} does not exist (firmware_tools init creates it)"
        )
    data_dir = _path(base, _get(dev, "device", "data_dir", str, "data"))
    offset = _get(dev, "device", "utc_offset_minutes", int, None)
    if offset is not None and not -14 * 60 <= offset <= 14 * 60:
        raise ConfigError("device.utc_offset_minutes", "must be within ±840")
    broker, rules_key, rules_path = _head_office(raw.get("head_office", {}), base)
    api = raw.get("pos_api", {})
    listen = _get(api, "pos_api", "listen", str, "127.0.0.1:8765")
    port = listen.rpartition(":")[2]
    if not (listen.startswith("unix:") or (port.isdigit() and int(port) <= 65535)):
        raise ConfigError("pos_api.listen", "use HOST:PORT (port 0..65535) or unix:/path/to.sock")
    ob = raw.get("outbox", {})
    max_mb = _get(ob, "outbox", "max_mb", int, 256)
    if not 1 <= max_mb <= 1_000_000:
        raise ConfigError("outbox.max_mb", "must be 1..1000000")
    alarm = _get(ob, "outbox", "alarm_pct", list, [50, 80, 95])
    if not all(type(a) is int and 1 <= a <= 100 for a in alarm):
        raise ConfigError("outbox.alarm_pct", "must be percentages 1..100")
    reserve_mb = _get(ob, "outbox", "reserve_mb", int, 8)
    if not 0 <= reserve_mb <= 4096:
        raise ConfigError("outbox.reserve_mb", "must be 0..4096")
    min_free_mb = _get(ob, "outbox", "min_free_mb", int, 16)
    if not 0 <= min_free_mb <= 1_000_000:
        raise ConfigError("outbox.min_free_mb", "must be 0..1000000")
    co = raw.get("checkout", {})
    bank_timeout = _get(co, "checkout", "bank_timeout_s", int, 120)
    if not 1 <= bank_timeout <= 600:
        raise ConfigError("checkout.bank_timeout_s", "must be 1..600 seconds")
    d_listen, d_kiosk, idle = _display(raw.get("display", {}))
    refund_days = _get(raw.get("retention", {}), "retention", "refund_days", int, 30)
    if not 1 <= refund_days <= 3650:
        raise ConfigError("retention.refund_days", "must be 1..3650 days")
    return Config(
        path,
        tenant,
        store,
        device,
        key_file,
        data_dir,
        offset,
        broker,
        rules_key,
        rules_path,
        listen,
        _get(api, "pos_api", "token", str, None),
        max_mb * 1024 * 1024,
        tuple(alarm),
        float(bank_timeout),
        _get(co, "checkout", "enroll_new_phones", bool, True),
        _devices(raw.get("devices", {})),
        reserve_mb,
        min_free_mb,
        d_listen,
        d_kiosk,
        idle,
        refund_days,
    )
