"""Disk space held in reserve for the one write that must never fail: recording a sale
whose card the bank terminal has already charged.

A file of ``size`` bytes is preallocated in the data directory (``reserve.bin``).  When
that write finds the disk full (another program filled it while the bank was approving),
the file is deleted and the write tried again: the space it held is now free.  The file
is made again once the disk has room for it and the minimum free space besides, so the
next emergency finds it there.  A reserve of 0 bytes disables it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("edge.reserve")

NAME = "reserve.bin"


class Reserve:
    def __init__(self, directory: Path, size: int) -> None:
        self.path = directory / NAME
        self.size = size

    def ready(self) -> bool:
        """The reserve is in place (or disabled)."""
        if self.size <= 0:
            return True
        try:
            return self.path.stat().st_size >= self.size
        except OSError:
            return False

    def ensure(self, min_free: int) -> bool:
        """Make the reserve if it is missing and the disk keeps ``min_free`` bytes free
        after it; True if it is in place afterwards."""
        if self.ready():
            return True
        with contextlib.suppress(OSError):
            self.path.unlink()  # a partial one from a failed attempt
        if shutil.disk_usage(self.path.parent).free < self.size + min_free:
            return False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)  # real blocks, not a sparse file
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            log.warning("cannot make the disk reserve %s: %s", self.path, e)
            with contextlib.suppress(OSError):
                self.path.unlink()
            return False
        log.info("disk reserve of %d bytes in place (%s)", self.size, self.path)
        return True

    def release(self) -> bool:
        """Free the reserved space; True if there was any to free."""
        if self.size <= 0 or not self.path.exists():
            return False
        try:
            self.path.unlink()
        except OSError as e:
            log.error("cannot release the disk reserve %s: %s", self.path, e)
            return False
        log.critical(
            "the disk is full: released the %d-byte reserve to record a sale already paid",
            self.size,
        )
        return True
