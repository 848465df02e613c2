"""Framing of the NXP PN532 host protocol (UM0701-02, PN532 User Manual, section 6.2).

This module knows bytes only: how frames are built, checked and cut out of a stream.  What
the commands mean is the business of :mod:`edge.drivers.pn532` (nfcpy's layering:
transport -> framing/chipset -> device).

Frames, as they travel on the high-speed UART (HSU)::

    normal information frame    00 | 00 FF | LEN LCS | TFI PD0..PDn | DCS | 00     (6.2.1.1)
    extended information frame  00 | 00 FF | FF FF LENM LENL LCS | TFI PD0..PDn | DCS | 00
                                                                                 (6.2.1.2)
    ACK                         00 00 FF 00 FF 00                                 (6.2.1.3)
    NACK                        00 00 FF FF 00 00                                 (6.2.1.4)
    syntax error frame          00 00 FF 01 FF 7F 81 00                           (6.2.1.5)

``LEN`` counts the data field (TFI and PD0..PDn); ``LEN + LCS`` (extended: ``LENM + LENL +
LCS``) and ``TFI + PD0 + ... + PDn + DCS`` are 0 modulo 256.  TFI is D4 from the host to
the PN532 and D5 from the PN532 to the host; PD0 is the command code, and a response's
code is the command's plus one.  The firmware takes at most 264 bytes of packet data (265
with TFI, 6.2.1.2) and always answers in the smallest frame type that fits.  Preamble and
postamble may be any number of 00 bytes (6.2.1.6).  The parsers take any number of
preamble zeros (none included) but want at least one postamble 00 after an information
frame: the PN532 always sends it, and it is what catches a 00 byte lost inside a frame,
which the sums cannot see (the postamble would stand in for the DCS).

Errors (the tree below :class:`edge.errors.DeviceError`)::

    DeviceError
     └── PN532Error                    anything the PN532 driver raises on purpose
          ├── PN532FrameError      not a PN532 frame; .code says why  (also ValueError)
          │    ├── ChecksumError       LCS or DCS does not sum to zero
          │    └── TruncatedFrameError the bytes end before the frame does
          ├── PN532TimeoutError    no ACK or no response in time: the reader is silent
          └── PN532CommandError        the chip refused a command (syntax error frame or an
                                       error status); .status is the manual's error code

:class:`FrameParser` never raises: it turns any byte stream into frames and
:class:`Garbled` markers, resynchronising after garbage and broken frames, with a bounded
buffer.  :func:`parse_frame` checks one complete frame and raises a :class:`PN532FrameError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import DeviceError

__all__ = [
    "ACK",
    "ERROR_FRAME",
    "MAX_DATA",
    "NACK",
    "TFI_HOST",
    "TFI_PN532",
    "Ack",
    "ChecksumError",
    "ErrorFrame",
    "Frame",
    "FrameParser",
    "Garbled",
    "Information",
    "Nack",
    "PN532CommandError",
    "PN532Error",
    "PN532FrameError",
    "PN532TimeoutError",
    "TruncatedFrameError",
    "build_frame",
    "checksum",
    "command_frame",
    "parse_frame",
    "response_frame",
]

TFI_HOST = 0xD4  # host controller -> PN532
TFI_PN532 = 0xD5  # PN532 -> host controller
TFI_ERROR = 0x7F  # the one byte of the syntax error frame's data field
MAX_DATA = 265  # TFI + 264 bytes of packet data (6.2.1.2)

START = b"\x00\xff"
ACK = bytes.fromhex("0000ff00ff00")
NACK = bytes.fromhex("0000ffff0000")
ERROR_FRAME = bytes.fromhex("0000ff01ff7f8100")

# The error codes of the manual's table "Error code list" (section 7.1), for messages.
STATUS_TEXT: dict[int, str] = {
    0x01: "time-out, the target has not answered",
    0x02: "CRC error detected by the CIU",
    0x03: "parity error detected by the CIU",
    0x04: "erroneous bit count during anticollision",
    0x05: "framing error during MIFARE operation",
    0x06: "abnormal bit collision during anticollision at 106 kbps",
    0x07: "communication buffer size insufficient",
    0x09: "RF buffer overflow detected by the CIU",
    0x0A: "RF field not switched on in time by the counterpart",
    0x0B: "RF protocol error",
    0x0D: "temperature error: antenna drivers switched off",
    0x0E: "internal buffer overflow",
    0x10: "invalid parameter",
    0x12: "DEP protocol: command not supported",
    0x13: "DEP protocol: data format out of specification",
    0x14: "MIFARE authentication error",
    0x23: "ISO/IEC 14443-3: UID check byte is wrong",
    0x25: "DEP protocol: invalid device state",
    0x26: "operation not allowed in this configuration",
    0x27: "command not acceptable in the current context",
    0x29: "the PN532 as target was released by the initiator",
    0x2A: "ISO/IEC 14443-3B: the card ID does not match",
    0x2B: "ISO/IEC 14443-3B: the card previously activated has disappeared",
    0x2C: "NFCID3 mismatch between initiator and target (DEP 212/424 kbps passive)",
    0x2D: "an over-current event has been detected",
    0x2E: "NAD missing in DEP frame",
    TFI_ERROR: "syntax error: the PN532 sent its error frame",
}


class PN532Error(DeviceError):
    """Anything the PN532 driver raises on purpose."""


class PN532FrameError(PN532Error, ValueError):
    """Bytes that are not a PN532 frame; ``code`` is a short machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(
            f"PN532 frame refused ({code}): {message}",
            fa=f"قاب PN532 پذیرفته نشد ({code}): {message}",
        )
        self.code = code


class ChecksumError(PN532FrameError):
    """LCS or DCS does not make the sum 0 modulo 256."""


class TruncatedFrameError(PN532FrameError):
    """The bytes end before the frame does."""


class PN532TimeoutError(PN532Error):
    """No ACK or no response in time (bilingual message).  ``acked`` tells which: False,
    the reader said nothing at all; True, it took the command but did not answer in time
    (the driver has aborted the command)."""

    def __init__(self, message: str, *, fa: str | None = None, acked: bool = False) -> None:
        super().__init__(message, fa=fa)
        self.acked = acked


class PN532CommandError(PN532Error):
    """The chip refused a command: its syntax error frame or an error status byte."""

    def __init__(self, command: int, status: int) -> None:
        what = STATUS_TEXT.get(status, "unknown error code")
        super().__init__(
            f"the PN532 refused command 0x{command:02X}: error 0x{status:02X} ({what})",
            fa=f"کارت‌خوان PN532 فرمان 0x{command:02X} را نپذیرفت: خطای 0x{status:02X} ({what})",
        )
        self.command = command
        self.status = status


# -- frames as values ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ack:
    """ACK frame (6.2.1.3)."""


@dataclass(frozen=True, slots=True)
class Nack:
    """NACK frame (6.2.1.4): 'send your last response again'."""


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """The syntax error frame (6.2.1.5): an error at the application level."""


@dataclass(frozen=True, slots=True)
class Information:
    """An information frame: ``tfi`` and the packet data ``data`` (PD0..PDn)."""

    tfi: int
    data: bytes
    extended: bool = False

    @property
    def code(self) -> int | None:
        """PD0, the command (or response) code; None for an empty frame."""
        return self.data[0] if self.data else None


Frame = Ack | Nack | ErrorFrame | Information


@dataclass(frozen=True, slots=True)
class Garbled:
    """Something that started like a frame but failed a check (``reason``); ``raw`` holds
    the bytes looked at, for a trace (clean them before logging)."""

    reason: str
    raw: bytes


# -- building -----------------------------------------------------------------------------


def checksum(data: bytes) -> int:
    """The byte that makes ``sum(data) + checksum`` 0 modulo 256 (LCS and DCS)."""
    return -sum(data) & 0xFF


def build_frame(tfi: int, data: bytes, *, extended: bool | None = None) -> bytes:
    """An information frame with ``tfi`` and packet data ``data``.  Normal when the data
    field (TFI + data) fits in 255 bytes, extended otherwise or when ``extended`` is True."""
    if not 0 <= tfi <= 0xFF:
        raise PN532FrameError("tfi", f"TFI must be a byte, got {tfi!r}")
    field = bytes([tfi]) + bytes(data)
    n = len(field)
    if n > MAX_DATA:
        raise PN532FrameError("too-long", f"data field of {n} bytes (the PN532 takes {MAX_DATA})")
    if extended is None:
        extended = n > 0xFF
    if extended:
        length = bytes([n >> 8, n & 0xFF])
        head = b"\x00" + START + b"\xff\xff" + length + bytes([checksum(length)])
    else:
        if n > 0xFF:
            raise PN532FrameError("too-long", f"{n} bytes do not fit a normal frame")
        head = b"\x00" + START + bytes([n, checksum(bytes([n]))])
    return head + field + bytes([checksum(field), 0x00])


def command_frame(code: int, params: bytes = b"") -> bytes:
    """The frame a host sends for command ``code`` with ``params`` (TFI D4)."""
    if not 0 <= code <= 0xFF:
        raise PN532FrameError("code", f"command code must be a byte, got {code!r}")
    return build_frame(TFI_HOST, bytes([code]) + params)


def response_frame(command: int, payload: bytes = b"") -> bytes:
    """The frame a PN532 sends in answer to ``command`` (TFI D5, code + 1)."""
    if not 0 <= command < 0xFF:
        raise PN532FrameError("code", f"command code must be a byte below FF, got {command!r}")
    return build_frame(TFI_PN532, bytes([command + 1]) + payload)


# -- parsing ------------------------------------------------------------------------------


def _scan(buf: bytes | bytearray, i: int) -> tuple[Frame | Garbled | None, int]:  # noqa: PLR0911, PLR0912 - one exit per frame type
    """Look at the frame whose start code 00 FF is at ``buf[i]``.  Returns the frame (and
    the index after it), a Garbled (and the index to resume scanning at: just past the
    start code, so a good frame hidden behind a broken one is still found), or None when
    the frame's bytes have not all arrived yet."""
    n = len(buf)
    if n < i + 4:
        return None, i
    a, b = buf[i + 2], buf[i + 3]
    if (a, b) == (0x00, 0xFF):
        return Ack(), i + 4
    if (a, b) == (0xFF, 0x00):
        return Nack(), i + 4
    if (a, b) == (0xFF, 0xFF):
        if n < i + 7:
            return None, i
        lenm, lenl, lcs = buf[i + 4], buf[i + 5], buf[i + 6]
        if (lenm + lenl + lcs) & 0xFF:
            return Garbled("length checksum (LCS) of extended frame", bytes(buf[i : i + 7])), i + 2
        length, head, extended = lenm << 8 | lenl, i + 7, True
    else:
        if (a + b) & 0xFF:
            return Garbled("length checksum (LCS)", bytes(buf[i : i + 4])), i + 2
        length, head, extended = a, i + 4, False
    if length == 0 or length > MAX_DATA:
        return Garbled(f"length {length} outside 1..{MAX_DATA}", bytes(buf[i:head])), i + 2
    end = head + length + 2  # the data field, DCS and the postamble
    if n < end:
        return None, i
    field = buf[head : end - 2]
    if (sum(field) + buf[end - 2]) & 0xFF:
        return Garbled("data checksum (DCS)", bytes(buf[i : end - 1])), i + 2
    if buf[end - 1] != 0x00:
        return Garbled("no postamble after DCS", bytes(buf[i:end])), i + 2
    if length == 1 and field[0] == TFI_ERROR:
        return ErrorFrame(), end
    return Information(field[0], bytes(field[1:]), extended), end


def parse_frame(raw: bytes) -> Frame:
    """The one frame in ``raw`` (any 00 preamble before it; its postamble, and any more 00
    bytes, after it).
    PN532FrameError (ChecksumError, TruncatedFrameError) says what is wrong."""
    data = bytes(raw)
    body = data.lstrip(b"\x00")
    i = len(data) - len(body) - 1  # the 00 of the start code
    if i < 0 or not body or body[0] != 0xFF:
        raise PN532FrameError("start", "no start code 00 FF after the preamble")
    got, end = _scan(data, i)
    if got is None:
        raise TruncatedFrameError("truncated", f"{len(data)} bytes end inside the frame")
    if isinstance(got, Garbled):
        if "checksum" in got.reason:
            raise ChecksumError("checksum", got.reason)
        raise PN532FrameError("postamble" if "postamble" in got.reason else "length", got.reason)
    if data[end:].strip(b"\x00"):
        raise PN532FrameError("trailing", f"{len(data) - end} bytes after the frame are not 00")
    return got


class FrameParser:
    """Cuts a byte stream into frames, in order.  Bytes outside frames that are not just 00
    padding come out as ``Garbled("noise")`` (and count in ``noise``); a frame that fails a
    check comes out as :class:`Garbled` and scanning resumes just past its start code.  The
    buffer never holds more than one frame (at most 274 bytes)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.noise = 0  # bytes dropped that were not preamble/postamble zeros
        self.garbled = 0  # frames that failed a check

    def reset(self) -> None:
        self.buf.clear()

    @property
    def pending(self) -> int:
        """Bytes held of a frame still arriving (0 when none has started)."""
        return len(self.buf) if self.buf.startswith(START) else 0

    def abandon(self) -> Garbled | None:
        """Give up on a frame that stopped arriving (bytes lost on the line): a Garbled for
        it, or None when no frame had started."""
        if not self.pending:
            return None
        raw = bytes(self.buf)
        self.buf.clear()
        self.garbled += 1
        return Garbled("frame cut short", raw)

    def _drop(self, n: int, out: list[Frame | Garbled]) -> None:
        junk = bytes(self.buf[:n])
        del self.buf[:n]
        if junk.strip(b"\x00"):  # not just preamble/postamble zeros
            self.noise += sum(1 for b in junk if b)
            out.append(Garbled("noise", junk))

    def feed(self, data: bytes) -> list[Frame | Garbled]:
        self.buf += data
        out: list[Frame | Garbled] = []
        while True:
            i = self.buf.find(START)
            if i < 0:
                # keep a trailing 00: it may be the first half of a start code
                self._drop(len(self.buf) - (1 if self.buf.endswith(b"\x00") else 0), out)
                return out
            self._drop(i, out)
            got, end = _scan(self.buf, 0)
            if got is None:
                return out
            if isinstance(got, Garbled):
                self.garbled += 1
            del self.buf[:end]
            out.append(got)
