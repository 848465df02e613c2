"""Fault injection on what a simulated device sends: corrupted, dropped and delayed bytes,
and disconnects.  Reproducible with a seed."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field


@dataclass
class Faults:
    corrupt: float = 0.0  # probability that a byte gets one bit flipped
    drop: float = 0.0  # probability that a byte is lost
    delay: float = 0.0  # seconds added before each chunk is delivered
    disconnect_after: int | None = None  # bytes sent before the link goes down
    seed: int | None = None
    sent: int = 0
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - a test double, not cryptography

    @property
    def active(self) -> bool:
        return bool(self.corrupt or self.drop or self.delay or self.disconnect_after is not None)

    def apply(self, data: bytes) -> bytes | None:
        """The bytes to deliver, or None when the link is down."""
        if self.disconnect_after is not None and self.sent >= self.disconnect_after:
            return None
        if self.delay:
            time.sleep(self.delay)
        out = bytearray()
        for byte in data:
            if self.drop and self._rng.random() < self.drop:
                continue
            b = byte
            if self.corrupt and self._rng.random() < self.corrupt:
                b ^= 1 << self._rng.randrange(8)
            out.append(b)
        self.sent += len(data)
        return bytes(out)

    @classmethod
    def parse(cls, spec: str | None, seed: int | None = None) -> Faults:
        """'corrupt=0.01,drop=0.001,delay=0.05,disconnect_after=500'."""
        f = cls(seed=seed)
        if not spec:
            return f
        for part in spec.split(","):
            key, _, value = part.partition("=")
            key = key.strip()
            if key not in ("corrupt", "drop", "delay", "disconnect_after"):
                raise ValueError(f"unknown fault {key!r} (corrupt, drop, delay, disconnect_after)")
            setattr(f, key, int(value) if key == "disconnect_after" else float(value))
        return f
