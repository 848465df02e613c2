"""ZVT framing: how APDUs travel on the wire (ZVT transport protocol, PA00P016).

Serial transport (RS-232, USB-serial)::

    DLE STX  <APDU, every DLE (0x10) doubled>  DLE ETX  CRC-lo CRC-hi

The CRC is computed over the APDU as it is (not the doubled DLEs) followed by ETX (0x03).
It is the CCITT polynomial x^16 + x^12 + x^5 + 1 processed LSB first (reflected, 0x8408)
from 0x0000 with no final XOR, i.e. **CRC-16/KERMIT** (check value for "123456789":
0x2189), sent low byte first.  The published terminal traces pin it: the positive
acknowledgement 80 00 00 travels as ``10 02 80 00 00 10 03 F5 1F``.  The receiver answers
every frame with ACK (0x06) or NAK (0x15); a NAKed or unanswered frame is sent again.

TCP/IP transport (port 20007 by convention): bare APDUs, one after another, delimited by
their own length field; no DLE framing, no CRC, no ACK/NAK (TCP does that).

This module only splits and joins bytes; what an APDU means is :mod:`.apdu`, who waits
for what is :mod:`.transport`.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import DeviceError
from edge.sanitize import clean_bytes

DLE, STX, ETX, ACK, NAK = 0x10, 0x02, 0x03, 0x06, 0x15

# The longest APDU: control field, FF + two length bytes, 65535 bytes of data.
MAX_APDU = 5 + 0xFFFF


class FramingError(DeviceError):
    """Bytes that are not a well-formed ZVT frame (bad delimiters, stuffing or CRC)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, fa=f"قاب ZVT نامعتبر از پایانهٔ بانکی: {message}")


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/KERMIT (poly 0x1021 reflected, init 0, no final XOR) of ``data``."""
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc


def frame_crc(apdu: bytes) -> bytes:
    """The two CRC bytes (low first) that close the frame of ``apdu``."""
    c = crc16(apdu + bytes([ETX]))
    return bytes([c & 0xFF, c >> 8])


def encode_frame(apdu: bytes) -> bytes:
    """The serial frame of one APDU."""
    return (
        bytes([DLE, STX]) + apdu.replace(b"\x10", b"\x10\x10") + bytes([DLE, ETX]) + frame_crc(apdu)
    )


def decode_frame(raw: bytes) -> bytes:
    """The APDU in exactly one serial frame; FramingError says what is wrong."""
    tokens = FrameDecoder().feed(raw)
    if len(tokens) != 1:
        raise FramingError(f"expected one frame, got {len(tokens)} tokens: {clean_bytes(raw)}")
    tok = tokens[0]
    if isinstance(tok, BadFrame):
        raise FramingError(tok.reason)
    if not isinstance(tok, Frame):
        raise FramingError(f"not a frame: {clean_bytes(raw)}")
    return tok.apdu


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame whose CRC checked out."""

    apdu: bytes


@dataclass(frozen=True, slots=True)
class Control:
    """A lone ACK (0x06) or NAK (0x15) between frames."""

    byte: int


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame that started but was damaged; the receiver answers NAK."""

    reason: str


Token = Frame | Control | BadFrame

# decoder states
_IDLE, _IDLE_DLE, _BODY, _BODY_DLE, _CRC1, _CRC2 = range(6)


class FrameDecoder:
    """Splits a serial byte stream into frames, ACKs and NAKs, whatever the chunking.

    Bytes outside a frame that are neither ACK, NAK nor the DLE STX that opens a frame are
    line noise: dropped and counted in :attr:`noise`.  A damaged frame becomes one
    :class:`BadFrame`; the decoder then looks for the next DLE STX.
    """

    def __init__(self) -> None:
        self.noise = 0
        self.bad = 0
        self.reset()

    def reset(self) -> None:
        """Forget a partial frame (the inter-character timeout ran out)."""
        self._state = _IDLE
        self._body = bytearray()
        self._crc = 0

    @property
    def in_frame(self) -> bool:
        """Inside a frame that has not ended yet."""
        return self._state not in (_IDLE, _IDLE_DLE)

    def feed(self, data: bytes) -> list[Token]:
        out: list[Token] = []
        for b in data:
            tok = self._step(b)
            if tok is not None:
                out.append(tok)
        return out

    def _bad(self, reason: str) -> BadFrame:
        self.bad += 1
        self.reset()
        return BadFrame(reason)

    def _step(self, b: int) -> Token | None:  # noqa: PLR0911, PLR0912 - one branch per state
        st = self._state
        if st == _IDLE:
            if b in (ACK, NAK):
                return Control(b)
            if b == DLE:
                self._state = _IDLE_DLE
            else:
                self.noise += 1
            return None
        if st == _IDLE_DLE:
            if b == STX:
                self._state = _BODY
                self._body = bytearray()
            elif b != DLE:
                self.noise += 2
                self._state = _IDLE
            return None
        if st == _BODY:
            if b == DLE:
                self._state = _BODY_DLE
                return None
            return self._append(b)
        if st == _BODY_DLE:
            if b == DLE:
                self._state = _BODY
                return self._append(DLE)
            if b == ETX:
                self._state = _CRC1
                return None
            if b == STX:  # the sender started over: drop the torn frame, read the new one
                tok = self._bad("frame restarted (DLE STX inside a frame)")
                self._state = _BODY
                return tok
            return self._bad(f"DLE followed by 0x{b:02X} inside a frame")
        if st == _CRC1:
            self._crc = b
            self._state = _CRC2
            return None
        # _CRC2
        got = self._crc | (b << 8)
        body = bytes(self._body)
        want = crc16(body + bytes([ETX]))
        self.reset()
        if got != want:
            self.bad += 1
            return BadFrame(f"CRC 0x{got:04X} != 0x{want:04X} over {len(body)} bytes")
        if len(body) < 3:
            self.bad += 1
            return BadFrame(f"frame of {len(body)} bytes is too short for an APDU")
        return Frame(body)

    def _append(self, b: int) -> Token | None:
        if len(self._body) >= MAX_APDU:
            return self._bad(f"frame longer than {MAX_APDU} bytes")
        self._body.append(b)
        return None


class ApduSplitter:
    """Splits a TCP byte stream into APDUs by their length field (TCP/IP transport)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out = []
        while len(self.buf) >= 3:
            n = self.buf[2]
            head = 3
            if n == 0xFF:
                if len(self.buf) < 5:
                    break
                n = self.buf[3] | self.buf[4] << 8
                head = 5
            if len(self.buf) < head + n:
                break
            out.append(bytes(self.buf[: head + n]))
            del self.buf[: head + n]
        return out

    @property
    def pending(self) -> int:
        """Bytes of an APDU that has not arrived completely."""
        return len(self.buf)

    def reset(self) -> None:
        self.buf.clear()
