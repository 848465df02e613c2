"""The catalogue of simulated device kinds, imported only when asked for (as drivers are).

Each module provides ``add_cli(parser)``, ``from_cli(args) -> SimDevice`` and
``from_url(query) -> SimDevice`` (query: the ``sim://KIND?...`` parameters).
"""

from __future__ import annotations

import importlib
from types import ModuleType

KINDS: dict[str, str] = {
    "pn532": "hw_sim.pn532",
    "rdm6300": "hw_sim.rdm6300",
    "scanner": "hw_sim.scanner",
    "keypad": "hw_sim.keypad",
    "zvt": "hw_sim.zvt",
}


def module(kind: str) -> ModuleType:
    if kind not in KINDS:
        raise ValueError(f"unknown simulated device {kind!r} (known: {', '.join(KINDS)})")
    return importlib.import_module(KINDS[kind])
