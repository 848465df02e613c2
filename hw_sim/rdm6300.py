"""A simulated RDM6300: while a card is in the field it sends its 14-byte frame every
``interval`` seconds, as the module does.  The host never writes to it."""

from __future__ import annotations

import argparse
from typing import Any

from edge.drivers.rdm6300 import encode
from hw_sim.device import SimDevice, monotonic


class RDM6300Sim(SimDevice):
    kind = "rdm6300"

    def __init__(self, card: str | None = None, interval: float = 0.05) -> None:
        super().__init__()
        self.interval = interval
        self.card: str | None = None
        self.until: float | None = None
        self._next = 0.0
        if card:
            self.tap(card)

    def tap(self, card: str, duration: float | None = None) -> None:
        encode(card)  # ValueError for a malformed id
        with self.lock:
            self.card = card.upper()
            self.until = None if duration is None else monotonic() + duration
            self._next = 0.0

    def remove(self) -> None:
        with self.lock:
            self.card = None

    def on_tick(self, now: float) -> None:
        if self.card is None:
            return
        if self.until is not None and now >= self.until:
            self.card = None
            return
        if now >= self._next:
            self._next = now + self.interval
            self.send(encode(self.card))

    def event(self, action: str, **args: Any) -> None:
        if action == "tap":
            dur = args.get("for")
            self.tap(str(args["card"]), float(dur) if dur is not None else None)
        elif action == "remove":
            self.remove()
        else:
            super().event(action, **args)


def add_cli(p: argparse.ArgumentParser) -> None:
    p.add_argument("--card", help="a card in the field from the start (10 hex digits)")
    p.add_argument("--interval", type=float, default=0.05, help="seconds between frames")


def from_cli(args: argparse.Namespace) -> RDM6300Sim:
    return RDM6300Sim(args.card, args.interval)


def from_url(query: dict[str, list[str]]) -> RDM6300Sim:
    cards = query.get("card", [])
    return RDM6300Sim(cards[0] if cards else None, float(query.get("interval", ["0.05"])[0]))
