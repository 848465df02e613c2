"""Serial barcode/QR scanners, for digital membership cards on customers' phones.

Scanners are line-oriented: an optional prefix, the code, a terminator (CR, LF, CR LF, or
whatever the scanner was programmed with).  The driver strips prefix and terminator, decodes
UTF-8, refuses lines that are too long or have control characters (logged with the reason,
never shown raw), and returns CardRead(kind="qr", uid=code).
"""

from __future__ import annotations

import logging
import time

from edge.drivers.base import CardRead
from edge.drivers.serialport import open_port, read_available
from edge.errors import ConfigError, DeviceError
from edge.sanitize import clean, clean_bytes, is_clean

log = logging.getLogger("edge.drivers.scanner")

TERMINATORS = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n", "tab": b"\t", "etx": b"\x03"}
MAX_CODE = 512


class ScanError(DeviceError):
    """A scanned line that cannot be a membership code."""


def parse_terminator(name: str) -> bytes:
    if name.lower() in TERMINATORS:
        return TERMINATORS[name.lower()]
    if name.lower().startswith("0x"):
        try:
            term = bytes.fromhex(name[2:])
        except ValueError:
            term = b""
        if term:
            return term
    raise ConfigError("scanner.terminator", f"use cr, lf, crlf, tab, etx or 0xHEX, got {name!r}")


class LineParser:
    def __init__(self, terminator: bytes = b"\r", prefix: bytes = b"") -> None:
        if not terminator:
            raise ValueError("a scanner line needs a terminator")
        self.terminator = terminator
        self.prefix = prefix
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[str | ScanError]:
        self.buf += data
        out: list[str | ScanError] = []
        while True:
            i = self.buf.find(self.terminator)
            if i < 0:
                if len(self.buf) > 4 * MAX_CODE:  # a scanner that never terminates
                    out.append(ScanError(f"{len(self.buf)} bytes without a terminator"))
                    self.buf.clear()
                break
            line = bytes(self.buf[:i])
            del self.buf[: i + len(self.terminator)]
            if self.terminator == b"\r" and self.buf[:1] == b"\n":
                del self.buf[:1]  # a scanner sending CR LF to a CR configuration
            out.append(self._code(line))
        return out

    def _code(self, line: bytes) -> str | ScanError:
        if self.prefix:
            if not line.startswith(self.prefix):
                return ScanError(f"line without the configured prefix: {clean_bytes(line)}")
            line = line[len(self.prefix) :]
        if not line:
            return ScanError("empty scan")
        if len(line) > MAX_CODE:
            return ScanError(f"scan of {len(line)} bytes is longer than {MAX_CODE}")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return ScanError(f"scan is not UTF-8: {clean_bytes(line)}")
        if not is_clean(text, MAX_CODE):
            return ScanError(f"control or formatting characters in scan: {clean(text)}")
        return text


class Scanner:
    """CardReader for a serial scanner."""

    def __init__(
        self, port: str, baudrate: int = 9600, terminator: str = "cr", prefix: str = ""
    ) -> None:
        self.port_url = port
        self._port = open_port(port, baudrate=baudrate, timeout=0.05)
        self._parser = LineParser(parse_terminator(terminator), prefix.encode())
        self._pending: list[str] = []

    def read(self, timeout: float) -> CardRead | None:
        deadline = time.monotonic() + timeout
        while not self._pending:
            for item in self._parser.feed(read_available(self._port)):
                if isinstance(item, ScanError):
                    log.warning("scanner on %s: %s", self.port_url, item)
                else:
                    self._pending.append(item)
            if not self._pending and time.monotonic() >= deadline:
                return None
        code = self._pending.pop(0)
        return CardRead("qr", code, code.encode())

    def close(self) -> None:
        self._port.close()
