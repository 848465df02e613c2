"""A simulated keypad: typing sends the characters (UTF-8, so Persian digits work), one
key every ``key_delay`` seconds, then the confirm key."""

from __future__ import annotations

import argparse
from typing import Any

from hw_sim.device import SimDevice


class KeypadSim(SimDevice):
    kind = "keypad"

    def __init__(self, enter: str = "#", key_delay: float = 0.0) -> None:
        super().__init__()
        self.enter = enter
        self.key_delay = key_delay
        self._queue: list[bytes] = []
        self._next = 0.0

    def type(self, text: str, enter: bool = True) -> None:
        keys = [c.encode("utf-8") for c in text] + ([self.enter.encode()] if enter else [])
        with self.lock:
            if self.key_delay <= 0:
                self.send(b"".join(keys))
            else:
                self._queue += keys

    def on_tick(self, now: float) -> None:
        if self._queue and now >= self._next:
            self._next = now + self.key_delay
            self.send(self._queue.pop(0))

    def event(self, action: str, **args: Any) -> None:
        if action == "type":
            self.type(str(args["text"]), str(args.get("enter", "true")).lower() != "false")
        elif action == "raw":
            self.send(bytes.fromhex(str(args["hex"])))
        else:
            super().event(action, **args)


def add_cli(p: argparse.ArgumentParser) -> None:
    p.add_argument("--enter", default="#", help="the confirm key the keypad sends")
    p.add_argument("--key-delay", type=float, default=0.0)


def from_cli(args: argparse.Namespace) -> KeypadSim:
    return KeypadSim(args.enter, args.key_delay)


def from_url(query: dict[str, list[str]]) -> KeypadSim:
    return KeypadSim(query.get("enter", ["#"])[0], float(query.get("key_delay", ["0"])[0]))
