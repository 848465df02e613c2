"""What the technician sees: every message in English and Persian, device strings cleaned,
and the tool's typed errors with their exit status.

Exit status (the same for every command, docs/provisioning.md):

    0  done; every check that ran passed
    1  a check failed, or head office (or the broker) refused
    2  usage or configuration error: fix the command line or the configuration (also a
       file or directory the command names that cannot be read or written)
    3  head office or the broker did not answer in time: check the network, retry
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

from edge.errors import LoyaltyError
from edge.sanitize import clean

OK, FAILED, USAGE, UNREACHABLE = 0, 1, 2, 3
LINE_MAX = 400  # one line shown to the technician, at most
DEVICE_MAX = 64  # one string that came from a device, at most

STATUS_FA = {"OK": "سالم", "FAIL": "خطا", "SKIP": "بررسی نشد"}
# Terminal escape sequences, removed whole (edge.sanitize drops the control characters;
# this also drops what follows an ESC, so "ESC[2J" does not leave "[2J" behind):
# CSI (ESC [ or the 8-bit 0x9B), OSC (ESC ] ... BEL or ST), and two-character escapes.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[@-Z\\^_]"
)


class ToolError(LoyaltyError):
    """A failure the technician must see, in both languages; ``exit_code`` says which."""

    exit_code = FAILED

    def __init__(self, en: str, fa: str, code: str = "") -> None:
        super().__init__(en, fa=fa)
        self.code = code


class RefusedError(ToolError):
    """Head office, the broker or a check said no."""


class UnreachableError(ToolError):
    """Head office or the broker did not answer in time."""

    exit_code = UNREACHABLE


def dev(value: object, maxlen: int = DEVICE_MAX) -> str:
    """A string that came from a device (or names one), safe to show: terminal escape
    sequences, control characters and bidi overrides dropped, length capped."""
    text = value if isinstance(value, str) else str(value)
    return clean(_ESCAPES.sub("", text), maxlen)


class Out:
    """Bilingual output: each message is an English line, then a Persian line."""

    def __init__(self, stream: TextIO | None = None, err: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.err = err or sys.stderr

    def _line(self, text: str, stream: TextIO) -> None:
        stream.write(clean(text, LINE_MAX) + "\n")
        stream.flush()

    def say(self, en: str, fa: str) -> None:
        self._line(en, self.stream)
        self._line(fa, self.stream)

    def step(self, status: str, name: str, en: str, fa: str) -> None:
        """``OK|FAIL|SKIP step: detail`` and the same in Persian."""
        self._line(f"{status:<4} {name}: {en}", self.stream)
        self._line(f"     {STATUS_FA[status]} {name}: {fa}", self.stream)

    def hint(self, en: str, fa: str) -> None:
        self._line(f"     hint: {en}", self.stream)
        self._line(f"     راهنما: {fa}", self.stream)

    def error(self, en: str, fa: str) -> None:
        self._line(f"error: {en}", self.err)
        self._line(f"خطا: {fa}", self.err)
