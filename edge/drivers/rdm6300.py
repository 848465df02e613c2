"""RDM6300: a 125 kHz EM4100 card reader on a 9600-baud UART.

Every frame is 14 bytes: STX (0x02), ten ASCII hex digits (a version/customer byte and the
32-bit card number), two ASCII hex digits of checksum (the XOR of the five data bytes), ETX
(0x03).  The module repeats the frame every few tens of milliseconds while the card stays
in the field.  The driver resynchronises on STX after garbage, refuses frames with a bad
checksum or non-hex digits (counted, logged once in a while), and debounces: a card is
reported once, and again only after it has been out of the field for ``release`` seconds.
"""

from __future__ import annotations

import logging
import time

from edge.drivers.base import CardRead
from edge.drivers.serialport import open_port, read_available
from edge.errors import DeviceError
from edge.sanitize import clean_bytes

log = logging.getLogger("edge.drivers.rdm6300")

STX, ETX = 0x02, 0x03
FRAME_LEN = 14
_HEX = frozenset(b"0123456789ABCDEFabcdef")


class RDM6300FrameError(DeviceError):
    """A frame that is not a valid RDM6300 frame (bad length, digits or checksum)."""


def checksum(data: bytes) -> int:
    x = 0
    for b in data:
        x ^= b
    return x


def encode(card: str) -> bytes:
    """The frame an RDM6300 sends for a 10-hex-digit card id (e.g. '0F00A1B2C3')."""
    if len(card) != 10 or not set(card.encode()) <= _HEX:
        raise ValueError(f"an EM4100 card id is ten hex digits, got {card!r}")
    data = bytes.fromhex(card)
    return bytes([STX]) + card.upper().encode() + f"{checksum(data):02X}".encode() + bytes([ETX])


def decode(frame: bytes) -> str:
    """The card id in a 14-byte frame; RDM6300FrameError says what is wrong."""
    if len(frame) != FRAME_LEN or frame[0] != STX or frame[-1] != ETX:
        raise RDM6300FrameError(f"not an RDM6300 frame: {clean_bytes(frame)}")
    body = frame[1:13]
    if not set(body) <= _HEX:
        raise RDM6300FrameError(f"non-hex digits in frame: {clean_bytes(frame)}")
    data = bytes.fromhex(body[:10].decode())
    if checksum(data) != int(body[10:].decode(), 16):
        raise RDM6300FrameError(f"bad checksum in frame for {body[:10].decode()}")
    return body[:10].decode().upper()


class FrameParser:
    """Splits a byte stream into frames; garbage before an STX is dropped."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.errors = 0

    def feed(self, data: bytes) -> list[str]:
        self.buf += data
        out = []
        while True:
            start = self.buf.find(STX)
            if start < 0:
                self.buf.clear()
                break
            del self.buf[:start]
            if len(self.buf) < FRAME_LEN:
                break
            frame = bytes(self.buf[:FRAME_LEN])
            try:
                out.append(decode(frame))
                del self.buf[:FRAME_LEN]
            except RDM6300FrameError:
                self.errors += 1
                del self.buf[:1]  # resynchronise on the next STX
        return out


class RDM6300Reader:
    """CardReader for an RDM6300 on ``port`` (9600 baud)."""

    def __init__(self, port: str, baudrate: int = 9600, release: float = 0.5) -> None:
        self.port_url = port
        self.release = release
        self._port = open_port(port, baudrate=baudrate, timeout=0.05)
        self._parser = FrameParser()
        self._current: str | None = None
        self._last_seen = 0.0
        self._reported_errors = 0

    def read(self, timeout: float) -> CardRead | None:
        deadline = time.monotonic() + timeout
        while True:
            data = read_available(self._port)
            now = time.monotonic()
            if self._current is not None and now - self._last_seen > self.release:
                self._current = None  # the card left the field
            for card in self._parser.feed(data):
                fresh = card != self._current
                self._current, self._last_seen = card, now
                if fresh:
                    return CardRead("rfid", card, encode(card))
            if self._parser.errors > self._reported_errors:
                self._reported_errors = self._parser.errors
                log.warning(
                    "RDM6300 on %s: %d bad frames so far (noise or a loose cable?)",
                    self.port_url,
                    self._parser.errors,
                )
            if now >= deadline:
                return None

    def close(self) -> None:
        self._port.close()
