"""A simulated RDM6300: while a card is in the field it sends its 14-byte frame every
``interval`` seconds, as the module does.  The host never writes to it.

The frame is built here from the RDM630/RDM6300 data sheet ("TTL interface RS232 data
format", 9600 baud), apart from the driver's ``edge.drivers.rdm6300`` on purpose, so a
misreading of the format cannot sit on both sides::

    02 | ten ASCII hex digits (the card's five data bytes) | two ASCII hex digits | 03

The two digits are the checksum, the XOR of the five data bytes: the data sheet's example
card 62E3086CED gives 62^E3^08^6C^ED = 08, sent as ``02 36 32 45 33 30 38 36 43 45 44 30
38 03``.  Its digits are upper case (``45`` for E), so the simulator sends upper case.
A module repeats the frame while the card stays in the field (about every 50 ms on the
ones users have measured, hence the default ``interval``); the data sheet does not say.
"""

from __future__ import annotations

import argparse
import string
from typing import Any

from hw_sim.device import SimDevice, monotonic

STX, ETX = 0x02, 0x03


def frame(card: str) -> bytes:
    """The 14 bytes an RDM6300 sends for the ten-hex-digit card id ``card``."""
    if len(card) != 10 or any(c not in string.hexdigits for c in card):
        raise ValueError(f"an EM4100 card id is ten hex digits, got {card!r}")
    digits = card.upper().encode("ascii")
    check = 0
    for i in range(0, 10, 2):
        check ^= int(digits[i : i + 2], 16)
    return bytes([STX]) + digits + f"{check:02X}".encode("ascii") + bytes([ETX])


class RDM6300Sim(SimDevice):
    kind = "rdm6300"

    def __init__(self, card: str | None = None, interval: float = 0.05) -> None:
        super().__init__()
        self.interval = interval
        self.card: str | None = None
        self.until: float | None = None
        self.frames_left: int | None = None
        self._next = 0.0
        if card:
            self.tap(card)

    def tap(self, card: str, duration: float | None = None, frames: int | None = None) -> None:
        """Put ``card`` in the field: for ``duration`` seconds, or until ``frames`` frames
        have gone out (however late this thread gets to send them), or until removed."""
        frame(card)  # ValueError for a malformed id
        if frames is not None and frames < 1:
            raise ValueError(f"frames must be at least 1, got {frames}")
        with self.lock:
            self.card = card.upper()
            self.until = None if duration is None else monotonic() + duration
            self.frames_left = frames
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
            self.send(frame(self.card))
            if self.frames_left is not None:
                self.frames_left -= 1
                if self.frames_left == 0:
                    self.card = None

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
