"""Waiting on a queue for the first item a test accepts, within a time limit."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def first(q: queue.Queue[T], accept: Callable[[T], bool], timeout: float) -> T | None:
    """The first item taken from ``q`` within ``timeout`` seconds that ``accept`` takes;
    items it refuses are dropped.  None when time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            item = q.get(timeout=left)
        except queue.Empty:
            return None
        if accept(item):
            return item
