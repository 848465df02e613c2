"""The simulated terminal's (PT's) own ZVT application layer: APDUs, packed BCD, BMPs and
their lengths, the TLV container (BMP 06) as far as the simulator needs it, and the
messages a PT sends.  Written for the simulator apart from the driver's
``edge.drivers.zvt.apdu`` on purpose: the simulator is the referee the driver is tested
against, so a misreading of the protocol must not sit on both sides.  The transport
(DLE framing, CRC, ACK/NAK, TCP) is :mod:`hw_sim.zvt_link`.

The layout::

    APDU  = CCRC APRC LEN DATA   (control field = class, instruction)
    LEN   = one byte 00-FE, or FF followed by two bytes, low byte first
    DATA  = fixed fields, then BMPs: tag, value (fixed length, LL-var, LLL-var or TLV)

Where each part comes from
    Only the title page and table of contents of PA00P015 rev. 13.06 ("Commands, Bitmaps,
    Error Messages"; chapters 2.1 Registration, 2.2 Authorisation, 2.9 Reversal, 2.14
    Refund, 2.21 Abort, 3.x the PT's messages) could be read, not its body.  The rules are
    taken from public implementations and published real-terminal traces instead:

    * Length field FF + two bytes *low byte first*: Wireshark's ZVT dissector
      (``tvb_get_letohs``), ecrterm's ``compute_length_field`` and Portalum.Zvt's
      ``ApduHelper`` (``BitConverter.ToInt16``).  An older ecrterm parser read the two
      bytes high first with a "could be wrong" note; its later version reads them low
      first like the others.
    * 80 xx positive and 84 xx negative acknowledgements, the result code in the second
      byte: Wireshark (``CCRC_POS``/``CCRC_NEG``) and the trace ``84 9C 00``.
    * Control fields 04 0F, 04 FF, 06 00, 06 01, 06 0F, 06 1E, 06 30, 06 31, 06 D1, 06 D3:
      Wireshark's table; 06 20 (Repeat Receipt, password first) and 06 B0 (Abort from the
      cash register): Europa-Park's zvtlib.
    * Field order: Registration = password (3 bytes BCD), config byte, [currency (2 bytes
      BCD), BMPs (03 service byte, 06 TLV)]; Reversal and Refund = password, BMPs; PT
      abort 06 1E = result code, BMPs; Intermediate Status 04 FF = status, [time-out]:
      Wireshark's ``dissect_zvt_reg``, ``dissect_zvt_pass_bitmap_seq``,
      ``dissect_zvt_abort``, ``dissect_zvt_int_status``.
    * Config byte bits (02 the ECR prints payment receipts, 04 administration receipts,
      08 intermediate status wanted, 10/20 the ECR controls payment/administration, 80
      receipts sent as print lines): Portalum.Zvt's ``RegistrationConfig``.
    * BMP lengths: the entries on which ecrterm (``packets/bitmaps.py``), Wireshark
      (``bitmap_info``) and Portalum.Zvt (``BmpParser``) agree, or that only one of them
      lists (92: ecrterm; FD: Portalum).  LL-var / LLL-var lengths are two / three bytes
      F0-F9, one decimal digit each in the low nibble (all three; and a public Q&A that
      reads a terminal's ``F1 F0 F5 "Line1"`` so, citing the spec's BMP list for F1).
    * TLV (BMP 06): BER-style tags (more tag bytes while bit 8 is set, after a first byte
      whose low five bits are all 1) and lengths (< 80 one byte; 81 xx; 82 xx xx, high
      byte first): Wireshark's ``dissect_zvt_tlv_tag`` / ``dissect_zvt_tlv_len``, and the
      Print Text-Block trace (``25 81 A2``) of Portalum.Zvt's tests.
    * Card-type ids (BMP 8A): 2 ec-card, 5 girocard, 6 Mastercard, 10 VISA from
      Wireshark's ``card_type`` table; 46 (2E) Maestro from a Portalum.Zvt trace of a
      Maestro-family debit card.

What could not be confirmed
    * BMPs 2D, 2E and 37: the sources disagree (ecrterm: LL-var, LLL-var, 3 bytes BCD;
      Portalum.Zvt: 2 bytes, LL-var, LLL-var).  They are left out, so a command carrying
      one is refused with 84 9A like any unknown BMP; a cash register does not send them
      in the commands the simulator answers.  4C and 70-75 (one source each, none of
      them confirmed) are left out too.
    * Whether a PT checks that the high nibble of every LL/LLL length byte is F (here it
      does) and which TLV length forms beyond 81/82 it accepts (here none).
    * Card-type id 46 for Maestro (the spec's card-type list, chapter 10, was not read).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from edge.errors import LoyaltyError


class WireError(LoyaltyError, ValueError):
    """Bytes that break the ZVT application layer (a PT answers them with 84 9A)."""


# control fields: class << 8 | instruction
REGISTRATION = 0x0600
AUTHORISATION = 0x0601
REPEAT_RECEIPT = 0x0620
REVERSAL = 0x0630
REFUND = 0x0631
ECR_ABORT = 0x06B0
STATUS_INFO = 0x040F
INTERMEDIATE = 0x04FF
COMPLETION = 0x060F
PT_ABORT = 0x061E
PRINT_LINE = 0x06D1

POSITIVE, NEGATIVE = 0x80, 0x84

# Registration config byte
CFG_ECR_PRINTS_PAYMENT = 0x02
CFG_ECR_PRINTS_ADMIN = 0x04
CFG_INTERMEDIATE = 0x08
CFG_ECR_PAYMENT = 0x10
CFG_ECR_ADMIN = 0x20
CFG_PRINT_LINES = 0x80

ATTR_LAST = 0x81  # Print Line attribute: the receipt's last line


@dataclass(frozen=True, slots=True)
class Apdu:
    cls: int
    ins: int
    data: bytes = b""

    @property
    def control(self) -> int:
        return self.cls << 8 | self.ins

    @property
    def positive(self) -> bool:
        """80 xx; 84 00 counts as positive too (result code 00, "no error")."""
        return self.cls == POSITIVE or (self.cls == NEGATIVE and self.ins == 0x00)

    @property
    def negative(self) -> bool:
        return self.cls == NEGATIVE and self.ins != 0x00

    @property
    def is_answer(self) -> bool:
        return self.cls in (POSITIVE, NEGATIVE)

    def encode(self) -> bytes:
        size = len(self.data)
        if size < 0xFF:
            length = bytes([size])
        elif size <= 0xFFFF:
            length = b"\xff" + size.to_bytes(2, "little")
        else:
            raise ValueError(f"{size} bytes of data do not fit in an APDU")
        return bytes([self.cls, self.ins]) + length + self.data

    @classmethod
    def parse(cls, raw: bytes) -> Apdu:
        """Exactly one APDU; WireError when its length field and its size disagree."""
        if len(raw) < 3:
            raise WireError(f"{len(raw)} bytes are too few for an APDU")
        if raw[2] == 0xFF:
            if len(raw) < 5:
                raise WireError("the extended length field is cut short")
            start, size = 5, int.from_bytes(raw[3:5], "little")
        else:
            start, size = 3, raw[2]
        if len(raw) - start != size:
            raise WireError(f"the length field says {size} bytes, {len(raw) - start} came")
        return cls(raw[0], raw[1], bytes(raw[start:]))


ACK_APDU = Apdu(POSITIVE, 0x00)


def nack(code: int) -> Apdu:
    """84 <code> 00: the command is refused with result code ``code``."""
    return Apdu(NEGATIVE, code)


# -- packed BCD ------------------------------------------------------------------------------


def bcd(value: int, size: int) -> bytes:
    """``value`` in ``size`` bytes of packed BCD, two digits a byte, most significant
    first (an amount of 1 250 000 is 00 00 01 25 00 00)."""
    digits = str(value)
    if value < 0 or len(digits) > 2 * size:
        raise ValueError(f"{value} does not fit in {size} bytes of BCD")
    digits = digits.rjust(2 * size, "0")
    return bytes(int(digits[i]) << 4 | int(digits[i + 1]) for i in range(0, 2 * size, 2))


def bcd_digits(data: bytes) -> str:
    """The decimal digits of packed BCD; WireError for a nibble above 9."""
    out = []
    for b in data:
        high, low = b >> 4, b & 0x0F
        if high > 9 or low > 9:
            raise WireError(f"0x{b:02X} is not a BCD byte")
        out.append(f"{high}{low}")
    return "".join(out)


def bcd_int(data: bytes) -> int:
    digits = bcd_digits(data)
    return int(digits) if digits else 0


# -- BMPs --------------------------------------------------------------------------------------

LLVAR, LLLVAR, TLV = "LL", "LLL", "TLV"

# tag -> fixed length in bytes, or how the length is given
BMP_FORMATS: dict[int, int | str] = {
    0x01: 1,  # time-out
    0x02: 1,  # max. status infos
    0x03: 1,  # service byte
    0x04: 6,  # amount, BCD
    0x05: 1,  # pump number
    0x06: TLV,  # TLV container
    0x0B: 3,  # trace number, BCD
    0x0C: 3,  # time HHMMSS, BCD
    0x0D: 2,  # date MMDD, BCD
    0x0E: 2,  # expiry date YYMM, BCD
    0x17: 2,  # card sequence number
    0x19: 1,  # status byte / payment type / card type
    0x22: LLVAR,  # PAN (masked digits E)
    0x23: LLVAR,  # track 2
    0x24: LLLVAR,  # track 3
    0x27: 1,  # result code
    0x29: 4,  # terminal id, BCD
    0x2A: 15,  # VU number, ASCII
    0x3A: 2,  # CVV/CVC
    0x3B: 8,  # AID / authorisation attribute
    0x3C: LLLVAR,  # additional data / text
    0x3D: 3,  # password, BCD
    0x49: 2,  # currency code, BCD
    0x60: LLLVAR,  # individual totals
    0x87: 2,  # receipt number, BCD
    0x88: 3,  # turnover record number, BCD
    0x8A: 1,  # card type id
    0x8B: LLVAR,  # card name
    0x8C: 1,  # card type id of the network operator
    0x92: LLLVAR,  # additional data, ec-Cash chip offline
    0x9A: LLLVAR,  # Geldkarte records
    0xA0: 1,  # result code of the authorisation system
    0xA7: LLVAR,  # chip data, EF_ID
    0xAA: 3,  # date YYMMDD
    0xAF: LLLVAR,  # EF_Info
    0xBA: 5,  # AID parameter
    0xD0: 1,  # algorithm key
    0xD1: LLVAR,  # card offset / PIN data
    0xD2: 1,  # card output direction
    0xD3: 1,  # key position
    0xE0: 1,  # min. input length
    **dict.fromkeys(range(225, 233), LLVAR),  # text 2, lines 1-8
    0xE9: 1,  # max. input length
    0xEA: 1,  # echo the input
    0xEB: 8,  # MAC over text 1 and 2
    0xF0: 1,  # display duration
    **dict.fromkeys(range(241, 249), LLVAR),  # text 1, lines 1-8
    0xF9: 1,  # beep tones
    0xFA: 1,  # card reader / status
    0xFB: 1,  # confirm the input with OK
    0xFC: 1,  # dialog control
    0xFD: 1,  # display device
}


def var_length(size: int, digits: int) -> bytes:
    """The LL-var (2 digits) or LLL-var (3 digits) prefix: F0-F9, one digit a byte."""
    text = str(size)
    if size < 0 or len(text) > digits:
        raise ValueError(f"{size} does not fit in {digits} length digits")
    return bytes(0xF0 + int(d) for d in text.rjust(digits, "0"))


def _read_var_length(data: bytes, at: int, digits: int) -> int:
    field = data[at : at + digits]
    if len(field) < digits:
        raise WireError(f"the length digits at byte {at} are cut short")
    size = 0
    for b in field:
        if b & 0xF0 != 0xF0 or b & 0x0F > 9:
            raise WireError(f"0x{b:02X} at byte {at} is not a length digit (F0-F9)")
        size = 10 * size + (b & 0x0F)
    return size


def encode_bmps(items: Iterable[tuple[int, bytes]]) -> bytes:
    """Tag and value for each BMP, with the length prefix its format needs."""
    out = bytearray()
    for tag, value in items:
        fmt = BMP_FORMATS.get(tag)
        if fmt is None:
            raise ValueError(f"BMP {tag:02X} is not one the simulator knows")
        out.append(tag)
        if fmt == LLVAR:
            out += var_length(len(value), 2)
        elif fmt == LLLVAR:
            out += var_length(len(value), 3)
        elif fmt == TLV:
            out += tlv_length(len(value))
        elif len(value) != fmt:
            raise ValueError(f"BMP {tag:02X} is {fmt} bytes long, not {len(value)}")
        out += value
    return bytes(out)


def parse_bmps(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, value) pairs of a run of BMPs, values without their length prefixes;
    WireError for an unknown tag or a value cut short."""
    items: list[tuple[int, bytes]] = []
    at = 0
    while at < len(data):
        tag = data[at]
        fmt = BMP_FORMATS.get(tag)
        if fmt is None:
            raise WireError(f"unknown BMP {tag:02X} at byte {at}")
        at += 1
        if fmt == LLVAR:
            size = _read_var_length(data, at, 2)
            at += 2
        elif fmt == LLLVAR:
            size = _read_var_length(data, at, 3)
            at += 3
        elif fmt == TLV:
            size, at = _read_tlv_length(data, at)
        else:
            size = int(fmt)
        value = data[at : at + size]
        if len(value) < size:
            raise WireError(f"BMP {tag:02X} needs {size} bytes, {len(value)} are left")
        items.append((tag, bytes(value)))
        at += size
    return items


# -- TLV (BMP 06) --------------------------------------------------------------------------


def tlv_length(size: int) -> bytes:
    """A BER length: one byte below 80, else 81 + one byte or 82 + two (high first)."""
    if 0 <= size < 0x80:
        return bytes([size])
    if size <= 0xFF:
        return bytes([0x81, size])
    if size <= 0xFFFF:
        return b"\x82" + size.to_bytes(2, "big")
    raise ValueError(f"a TLV length of {size} does not fit in two bytes")


def _read_tlv_length(data: bytes, at: int) -> tuple[int, int]:
    """(length, position after it)."""
    if at >= len(data):
        raise WireError("a TLV length is missing")
    first = data[at]
    if first < 0x80:
        return first, at + 1
    if first not in (0x81, 0x82):
        raise WireError(f"0x{first:02X} is not a TLV length the simulator reads")
    count = first - 0x80
    field = data[at + 1 : at + 1 + count]
    if len(field) < count:
        raise WireError("a TLV length is cut short")
    return int.from_bytes(field, "big"), at + 1 + count


def _read_tlv_tag(data: bytes, at: int) -> tuple[int, int]:
    """(tag as an integer of its bytes, position after it); at most four tag bytes."""
    if at >= len(data):
        raise WireError("a TLV tag is missing")
    tag, at = data[at], at + 1
    if tag & 0x1F != 0x1F:
        return tag, at
    for _ in range(3):
        if at >= len(data):
            raise WireError("a TLV tag is cut short")
        tag, at = tag << 8 | data[at], at + 1
        if not data[at - 1] & 0x80:
            return tag, at
    raise WireError("a TLV tag longer than four bytes")


def tlv_items(data: bytes) -> list[tuple[int, bytes]]:
    """The data objects at one level of a TLV container: (tag, value).  A constructed
    object (bit 6 of its first tag byte) is read by calling this on its value."""
    items: list[tuple[int, bytes]] = []
    at = 0
    while at < len(data):
        tag, at = _read_tlv_tag(data, at)
        size, at = _read_tlv_length(data, at)
        value = data[at : at + size]
        if len(value) < size:
            raise WireError(f"TLV tag {tag:X} needs {size} bytes, {len(value)} are left")
        items.append((tag, bytes(value)))
        at += size
    return items


def tlv(tag: int, value: bytes) -> bytes:
    """One data object: the tag's bytes, the BER length, the value."""
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big") + tlv_length(len(value)) + value


# -- what the PT sends -------------------------------------------------------------------------


def intermediate(status: int) -> Apdu:
    """04 FF <status>: Intermediate Status-Information (e.g. 0A insert card, 04 waiting
    for the bank)."""
    return Apdu(0x04, 0xFF, bytes([status]))


def status_info(bmps: Sequence[tuple[int, bytes]]) -> Apdu:
    """04 0F <BMPs>: Status-Information, the result of a transaction."""
    return Apdu(0x04, 0x0F, encode_bmps(bmps))


def completion(bmps: Sequence[tuple[int, bytes]] = ()) -> Apdu:
    """06 0F [BMPs]: master rights go back to the cash register."""
    return Apdu(0x06, 0x0F, encode_bmps(bmps))


def pt_abort(result: int) -> Apdu:
    """06 1E <result code>: the transaction ended without success."""
    return Apdu(0x06, 0x1E, bytes([result]))


def print_line(text: bytes, attribute: int = 0x00) -> Apdu:
    """06 D1 <attribute> <text>: one receipt line for the cash register's printer."""
    return Apdu(0x06, 0xD1, bytes([attribute]) + text)


# -- card types (BMP 8A) -------------------------------------------------------------------

CARD_TYPE_IDS = {"ec-card": 2, "girocard": 5, "mastercard": 6, "visa": 10, "maestro": 46}


def card_type_id(name: str) -> int | None:
    """The BMP 8A id of a card name (any case), None when ZVT has none (Shetab)."""
    return CARD_TYPE_IDS.get(name.lower())
