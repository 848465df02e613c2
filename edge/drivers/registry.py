"""Driver names in the configuration -> driver classes, imported only when asked for.

Built-in drivers are listed here; third-party drivers register through the entry-point
group ``edge_loyalty.drivers`` with names ``KIND:NAME`` (``bank:pcpos = mypkg.pcpos:Terminal``).
Nothing is probed: a driver is created only for a port the configuration names.
"""

from __future__ import annotations

import importlib
from typing import Any

from edge.errors import ConfigError

KINDS = ("card", "phone", "bank")

BUILTIN: dict[tuple[str, str], str] = {
    ("card", "pn532"): "edge.drivers.pn532:PN532Reader",
    ("card", "rdm6300"): "edge.drivers.rdm6300:RDM6300Reader",
    ("card", "scanner"): "edge.drivers.scanner:Scanner",
    ("phone", "keypad"): "edge.drivers.keypad:Keypad",
    ("bank", "zvt"): "edge.drivers.zvt:ZVTTerminal",
}


def _third_party() -> dict[tuple[str, str], str]:
    # imported here: importlib.metadata costs the terminal ~4 MB it needs only for
    # third-party drivers
    from importlib.metadata import entry_points  # noqa: PLC0415

    out = {}
    for ep in entry_points(group="edge_loyalty.drivers"):
        kind, _, name = ep.name.partition(":")
        out[(kind, name)] = ep.value
    return out


def names(kind: str) -> list[str]:
    table = {**BUILTIN, **_third_party()}
    return sorted(n for k, n in table if k == kind)


def load(kind: str, name: str) -> type[Any]:
    if kind not in KINDS:
        raise ConfigError("driver", f"unknown device kind {kind!r} (known: {', '.join(KINDS)})")
    target = BUILTIN.get((kind, name)) or _third_party().get((kind, name))
    if target is None:
        raise ConfigError(
            f"{kind}.driver", f"unknown {kind} driver {name!r} (known: {', '.join(names(kind))})"
        )
    module, _, attr = target.partition(":")
    cls: type[Any] = getattr(importlib.import_module(module), attr)
    return cls


def create(kind: str, name: str, **options: Any) -> Any:
    """Instantiate the driver ``name`` of ``kind`` with its options (port, ...)."""
    return load(kind, name)(**options)
