"""Polling for a condition that another process or thread will make true."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def until(cond: Callable[[], Any], timeout: float = 30.0, step: float = 0.05) -> bool:
    """True as soon as ``cond()`` is truthy; False when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return False
