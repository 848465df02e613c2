"""The simulated device model: bytes in, bytes out, and a clock.

A device is transport-agnostic: a transport (pseudo-terminal, TCP, or in-process for
``sim://`` URLs) calls :meth:`SimDevice.receive` with what the host wrote and
:meth:`SimDevice.tick` regularly; the device answers through :meth:`SimDevice.send`.
Scenario events (a card tapped, a number typed, the next payment declined) arrive
through :meth:`SimDevice.event`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("hw_sim")


class SimDevice:
    kind = "device"

    def __init__(self) -> None:
        self._out: Callable[[bytes], None] | None = None
        self.lock = threading.RLock()
        self.log: list[tuple[str, bytes]] = []  # ("in"|"out", bytes), for transcripts
        self.keep_log = False

    def attach(self, out: Callable[[bytes], None]) -> None:
        self._out = out

    def send(self, data: bytes) -> None:
        if self.keep_log:
            self.log.append(("out", data))
        if self._out is not None and data:
            self._out(data)

    def receive(self, data: bytes) -> None:
        if self.keep_log:
            self.log.append(("in", data))
        with self.lock:
            self.on_bytes(data)

    def tick(self, now: float) -> None:
        with self.lock:
            self.on_tick(now)

    def connected(self) -> None:
        """A host connected (a TCP client accepted): a new conversation starts."""
        with self.lock:
            self.on_connect()

    # -- to override -----------------------------------------------------------------------

    def on_connect(self) -> None:
        """A new host connection; a device whose link state outlives a connection resets it."""

    def on_bytes(self, data: bytes) -> None:
        """Bytes written by the host."""

    def on_tick(self, now: float) -> None:
        """Called every few milliseconds (repeats, timeouts)."""

    def event(self, action: str, **args: Any) -> None:
        """A scenario event; ValueError for an action this device does not know."""
        raise ValueError(f"{self.kind} has no action {action!r}")


def monotonic() -> float:
    return time.monotonic()
