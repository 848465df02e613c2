"""Capped exponential back-off with jitter, and the logging etiquette that goes with it:
the first failure is logged loudly, repeats quietly, the recovery once."""

from __future__ import annotations

import logging
import random
import time


class Backoff:
    def __init__(
        self,
        what: str,
        log: logging.Logger,
        base: float = 0.5,
        cap: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.what = what
        self.log = log
        self.base = base
        self.cap = cap
        self.failures = 0
        self.first_failure: float | None = None
        self.next_try = 0.0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def ready(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) >= self.next_try

    def failed(self, reason: str, now: float | None = None, cap: float | None = None) -> float:
        """Record a failure; returns the delay before the next attempt (``cap``: a lower
        ceiling for this attempt, for failures that are cheap to retry)."""
        now = time.monotonic() if now is None else now
        if self.failures == 0:
            self.first_failure = now
            self.log.warning(
                "%s failed: %s (retrying with back-off up to %.0fs)", self.what, reason, self.cap
            )
        else:
            self.log.debug("%s failed again (%d): %s", self.what, self.failures + 1, reason)
        self.failures += 1
        top = self.cap if cap is None else min(cap, self.cap)
        ceiling = min(top, self.base * float(2 ** min(self.failures - 1, 30)))
        delay: float = ceiling / 2 + self._rng.random() * ceiling / 2
        self.next_try = now + delay
        return delay

    def succeeded(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.failures:
            self.log.info(
                "%s recovered after %d failed attempts (%.1fs)",
                self.what,
                self.failures,
                now - (self.first_failure or now),
            )
        self.failures = 0
        self.first_failure = None
        self.next_try = 0.0
