"""Device time: the wall clock with its UTC offset, plus the monotonic clock.

Records carry both, because a terminal's wall clock can be wrong or jump (NTP, a
technician, a dead RTC battery) while the monotonic clock only moves forward within
one boot.  Head office orders a device's records by ``seq``, never by time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.core import record as R
from edge.core.dates import format_timestamp


def _boot_id() -> bytes:
    try:
        text = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        text = f"no-boot-id-{time.time_ns()}"
    return hashlib.sha256(text.encode()).digest()[:8]


def _local_offset_minutes(epoch: float) -> int:
    tm = time.localtime(epoch)
    return int(tm.tm_gmtoff // 60)


@dataclass(frozen=True, slots=True)
class Now:
    wall_ms: int
    offset_min: int
    mono_ms: int
    boot: bytes

    def iso(self) -> str:
        """Local wall-clock time as the engine wants it: '2026-03-20T21:00:00+03:30'."""
        return format_timestamp(self.wall_ms // 1000, self.offset_min)

    def field(self) -> dict[int, Any]:
        return R.time_field(self.wall_ms, self.offset_min, self.mono_ms, self.boot)


class Clock:
    """The terminal's clock.  ``offset_min`` fixes the store's UTC offset (Iran has kept
    +03:30 all year since 1402); None takes it from the system time zone."""

    def __init__(
        self,
        offset_min: int | None = None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self._offset = offset_min
        self._wall = wall
        self._mono = mono
        self.boot = _boot_id()

    def now(self) -> Now:
        w = self._wall()
        off = self._offset if self._offset is not None else _local_offset_minutes(w)
        return Now(int(w * 1000), off, int(self._mono() * 1000), self.boot)
