"""How the simulated terminal (PT) moves APDUs over the wire: ZVT "Transport-Protocol"
(PA00P016), written for the simulator apart from the driver's ``edge.drivers.zvt.framing``
on purpose: the simulator is the referee the driver is tested against, so the two must
not share a bug.

Serial transport (RS-232 / USB-serial)::

    DLE STX  <APDU with every DLE (10) sent twice>  DLE ETX  CRC-low CRC-high

and the receiver answers every frame with ACK (06) or NAK (15).  TCP/IP transport: the
APDUs alone, one after another, each delimited by its own length field; no DLE, no CRC,
no ACK/NAK.

Where each part comes from
    Only the title pages and tables of contents of PA00P016 (rev. 04) and PA00P015 (rev.
    13.06) could be read; the body text was not available.  So every rule here is taken
    from public implementations and checked against published real-terminal traces:

    * Control characters DLE 10, STX 02, ETX 03, ACK 06, NAK 15; a lone ACK or NAK between
      frames; the CRC low byte first ("the CRC is little endian, the other fields are big
      endian"); serial frames told apart from TCP APDUs by their DLE STX: Wireshark's ZVT
      dissector (``epan/dissectors/packet-zvt.c``).
    * DLE doubling inside the frame, the CRC taken over the APDU as it is (not the
      doubled DLEs) followed by ETX: ecrterm (``transmission/transport_serial.py``,
      ``SerialMessage.dump_message`` and ``_get_crc``).
    * The CRC itself: the CCITT polynomial processed LSB first (reflected 0x8408) from 0
      with no final XOR, i.e. CRC-16/KERMIT (catalogue check value 0x2189 for
      "123456789"): ecrterm's ``crc.py`` table (built from 0x8408) and Portalum.Zvt's
      checksum test, which compares it with a CRC-16 "CCITT" over APDU + ETX.  Computed
      here bit by bit, not from a table.
    * Pinned by real-device frames (ecrterm's packet tests): ``80 00 00`` travels as
      ``10 02 80 00 00 10 03 F5 1F``; a Print Line whose data ends in ``B5 AB``; an
      authorisation of 110.00 EUR whose amount byte 10 is doubled.  The tests in
      ``tests/hw_sim/test_zvt_wire.py`` hold this module to them.
    * TCP: APDUs delimited by their length field (one byte, or FF and two bytes low byte
      first): Wireshark's ``get_zvt_message_len``.

What could not be confirmed
    What a PT does with bytes outside a frame that are neither ACK, NAK nor DLE STX (here:
    dropped and counted as noise), with a frame that starts again inside a frame (here:
    the torn one is NAKed and the new one read), with a frame too short to hold an APDU
    (here: NAKed like a bad CRC), and how long a frame may be (here: the longest APDU, 5 +
    65535 bytes).  The retry count and timers live in ``hw_sim.zvt``.
"""

from __future__ import annotations

from dataclasses import dataclass

DLE, STX, ETX, ACK, NAK = 0x10, 0x02, 0x03, 0x06, 0x15

MAX_APDU = 2 + 3 + 0xFFFF  # control field, FF + two length bytes, the longest data


def crc16_kermit(data: bytes, crc: int = 0) -> int:
    """CRC-16/KERMIT of ``data``, bit by bit: reflected polynomial 0x8408, init 0."""
    for byte in data:
        for bit in range(8):
            if (crc ^ (byte >> bit)) & 1:
                crc = (crc >> 1) ^ 0x8408
            else:
                crc >>= 1
    return crc


def frame_check(apdu: bytes) -> bytes:
    """The two bytes after DLE ETX: the CRC over the APDU and ETX, low byte first."""
    return crc16_kermit(apdu + b"\x03").to_bytes(2, "little")


def serial_frame(apdu: bytes) -> bytes:
    """The serial frame that carries ``apdu``."""
    body = bytearray()
    for b in apdu:
        body.append(b)
        if b == DLE:
            body.append(DLE)  # a DLE in the data is sent twice
    return b"\x10\x02" + bytes(body) + b"\x10\x03" + frame_check(apdu)


@dataclass(frozen=True, slots=True)
class Frame:
    """A whole frame whose CRC holds."""

    apdu: bytes


@dataclass(frozen=True, slots=True)
class Control:
    """ACK (06) or NAK (15) between frames."""

    byte: int


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame that began but cannot be used; a PT answers it with NAK."""

    reason: str


Token = Frame | Control | BadFrame


class SerialReceiver:
    """Cuts a serial byte stream into frames, ACKs and NAKs, however it is chunked."""

    def __init__(self) -> None:
        self.noise = 0  # bytes between frames that meant nothing
        self.reset()

    def reset(self) -> None:
        """Drop a half-received frame (a new connection, or the line went quiet)."""
        self._where = "between"  # between | escape | data | data-escape | crc
        self._data = bytearray()
        self._crc = bytearray()

    def feed(self, chunk: bytes) -> list[Token]:
        tokens: list[Token] = []
        for b in chunk:
            token = self._byte(b)
            if token is not None:
                tokens.append(token)
        return tokens

    def _byte(self, b: int) -> Token | None:  # noqa: PLR0911 - one branch per place
        where = self._where
        if where == "between":
            if b == DLE:
                self._where = "escape"
                return None
            if b in (ACK, NAK):
                return Control(b)
            self.noise += 1
            return None
        if where == "escape":  # a DLE outside a frame: only DLE STX opens one
            if b == STX:
                self._open()
            elif b != DLE:
                self.noise += 2
                self._where = "between"
            return None
        if where == "data":
            if b == DLE:
                self._where = "data-escape"
                return None
            return self._keep(b)
        if where == "data-escape":
            return self._escaped(b)
        # "crc": the two check bytes are sent as they are, never doubled
        self._crc.append(b)
        return self._close() if len(self._crc) == 2 else None

    def _open(self) -> None:
        self._where = "data"
        self._data = bytearray()
        self._crc = bytearray()

    def _escaped(self, b: int) -> Token | None:
        if b == DLE:  # a doubled DLE is one DLE of the APDU
            self._where = "data"
            return self._keep(DLE)
        if b == ETX:
            self._where = "crc"
            return None
        if b == STX:  # the sender began again: give up the torn frame, read the new one
            self._open()
            return BadFrame("a new DLE STX inside a frame")
        self.reset()
        return BadFrame(f"DLE then 0x{b:02X} inside a frame")

    def _keep(self, b: int) -> Token | None:
        if len(self._data) >= MAX_APDU:
            self.reset()
            return BadFrame(f"a frame longer than {MAX_APDU} bytes")
        self._data.append(b)
        return None

    def _close(self) -> Token:
        apdu, got = bytes(self._data), bytes(self._crc)
        self.reset()
        want = frame_check(apdu)
        if got != want:
            return BadFrame(f"check bytes {got.hex()} instead of {want.hex()}")
        if len(apdu) < 3:
            return BadFrame(f"{len(apdu)} bytes cannot hold an APDU")
        return Frame(apdu)


def apdu_size(head: bytes | bytearray) -> int | None:
    """How many bytes the APDU starting ``head`` takes in all, or None while its length
    field has not arrived (one byte, or FF and two bytes low byte first)."""
    if len(head) < 3:
        return None
    if head[2] != 0xFF:
        return 3 + head[2]
    if len(head) < 5:
        return None
    return 5 + int.from_bytes(head[3:5], "little")


class TcpReceiver:
    """Cuts a TCP byte stream into APDUs by their length fields."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        out: list[bytes] = []
        size = apdu_size(self._buf)
        while size is not None and len(self._buf) >= size:
            out.append(bytes(self._buf[:size]))
            del self._buf[:size]
            size = apdu_size(self._buf)
        return out

    @property
    def pending(self) -> int:
        """Bytes of an APDU still incomplete."""
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()
