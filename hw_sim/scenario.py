"""Scenario files: which simulated devices a store has and what happens to them when.

    {"devices": {
        "nfc":  {"kind": "pn532", "link": "/tmp/store1/ttyNFC"},
        "rfid": {"kind": "rdm6300", "link": "/tmp/store1/ttyRFID"},
        "bank": {"kind": "zvt", "tcp": 0, "options": {"outcome": "approve"}}},
     "events": [
        {"at": 0.5, "device": "nfc", "action": "tap", "card": "04A1B2C3D4E5F6", "for": 1.0},
        {"at": 2.0, "device": "bank", "action": "next", "outcome": "decline"}]}

``at`` is seconds after the start; the other keys of an event go to the device's
``event(action, ...)``.  ``options`` are the device's ``sim://`` URL options.  A ``tcp``
of 0 picks a free port (see :attr:`Scenario.servers`).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from edge.errors import LoyaltyError
from hw_sim import catalog
from hw_sim.device import SimDevice
from hw_sim.faults import Faults
from hw_sim.transport import PtyServer, TcpServer

Server = PtyServer | TcpServer


class ScenarioError(LoyaltyError, ValueError):
    """A scenario file that cannot be run; the message says where."""


def build(name: str, spec: dict[str, Any]) -> tuple[SimDevice, Server]:
    kind = spec.get("kind")
    try:
        mod = catalog.module(str(kind))
    except ValueError as e:
        raise ScenarioError(f"device {name}: {e}") from None
    opts = {k: v if isinstance(v, list) else [str(v)] for k, v in spec.get("options", {}).items()}
    try:
        device: SimDevice = mod.from_url(opts)
        faults = Faults.parse(spec.get("faults"), spec.get("seed"))
    except (ValueError, KeyError) as e:
        raise ScenarioError(f"device {name}: {e}") from None
    if "tcp" in spec:
        return device, TcpServer(device, int(spec["tcp"]), faults=faults)
    return device, PtyServer(device, spec.get("link"), faults=faults)


class Scenario:
    def __init__(self, doc: dict[str, Any]) -> None:
        if not isinstance(doc.get("devices"), dict) or not doc["devices"]:
            raise ScenarioError("a scenario needs a 'devices' object")
        self.devices: dict[str, SimDevice] = {}
        self.servers: dict[str, Server] = {}
        events = doc.get("events", [])
        if not isinstance(events, list):
            raise ScenarioError("'events' must be a list")
        for i, ev in enumerate(events):
            if not isinstance(ev, dict) or "action" not in ev or "device" not in ev:
                raise ScenarioError(f"event {i} needs 'device' and 'action'")
            if ev["device"] not in doc["devices"]:
                raise ScenarioError(f"event {i}: unknown device {ev['device']!r}")
        self.events = sorted(events, key=lambda e: float(e.get("at", 0)))
        self._doc = doc
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.done = threading.Event()
        self.errors: list[str] = []

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        try:
            return cls(json.loads(Path(path).read_text("utf-8")))
        except (OSError, json.JSONDecodeError) as e:
            raise ScenarioError(f"{path}: {e}") from None

    def start(self) -> Scenario:
        for name, spec in self._doc["devices"].items():
            device, server = build(name, spec)
            self.devices[name] = device
            self.servers[name] = server.start()
        self._thread = threading.Thread(target=self._play, name="scenario", daemon=True)
        self._thread.start()
        return self

    def _play(self) -> None:
        t0 = time.monotonic()
        for ev in self.events:
            wait = t0 + float(ev.get("at", 0)) - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            args = {k: v for k, v in ev.items() if k not in ("at", "device", "action")}
            try:
                self.devices[ev["device"]].event(str(ev["action"]), **args)
            except (ValueError, KeyError) as e:
                self.errors.append(f"at {ev.get('at')}: {ev['device']}.{ev['action']}: {e}")
        self.done.set()

    def stop(self) -> None:
        self._stop.set()
        for s in self.servers.values():
            s.stop()

    def describe(self) -> list[str]:
        out = []
        for name, s in self.servers.items():
            where = (
                f"tcp 127.0.0.1:{s.port}"
                if isinstance(s, TcpServer)
                else f"{s.path}" + (f" (link {s.link})" if s.link else "")
            )
            out.append(f"{name}: {self.devices[name].kind} on {where}")
        return out
