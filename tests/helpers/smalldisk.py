"""A small real file system for the tests that fill a disk: a tmpfs of a few MiB mounted
on a directory of the test's own (needs root, as CI and this machine run; elsewhere the
test is skipped with the reason, except under CI=true where it must run)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_disk(path: Path, size_kib: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        why = f"cannot mount a small tmpfs ({r.stderr.strip() or r.returncode}): needs root"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(directory: Path, name: str = "filler.bin") -> int:
    """Write zeros into ``directory`` until the file system is full; the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with (directory / name).open("wb", buffering=0) as f:
        while True:
            try:
                n = f.write(chunk)
            except OSError:
                break
            if not n:
                break
            written += n
        # the last partial block
        for size in (4096, 512, 1):
            while True:
                try:
                    if not f.write(b"\0" * size):
                        break
                    written += size
                except OSError:
                    break
    return written
