"""ZVT application protocol data units (PA00P015 "Commands, Bitmaps, Error Messages").

An APDU is ``CCRC APRC LEN DATA``: a two-byte control field (class, instruction), a length
(one byte, or FF followed by two bytes little-endian when the data is 255 bytes or more)
and the data.  Answers use the class byte as CCRC: 80 is a positive acknowledgement, 84 a
negative one whose second byte is the result code (84 00 counts as positive).

The data of most messages is a sequence of BMPs ("bitmaps"): one tag byte, then a value of
fixed length, or an LL/LLL-var value whose length is given in two/three bytes F0-F9 (one
decimal digit per byte), or (BMP 06) a TLV container with BER-style tags and lengths.
Numbers are packed BCD: an amount of 1 250 000 Rials is ``04 00 00 01 25 00 00``.

Everything here is pure: bytes in, values out, :class:`ZVTError` for bytes that break the
protocol.  No I/O, no timers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from edge.errors import DeviceError
from edge.sanitize import clean, clean_bytes

# control fields (class << 8 | instruction)
REGISTRATION = 0x0600  # ECR -> PT, chapter 2.1
AUTHORISATION = 0x0601  # ECR -> PT, chapter 2.2
STATUS_INFO = 0x040F  # PT -> ECR, chapter 3.1 (result of a transaction)
INTERMEDIATE = 0x04FF  # PT -> ECR, chapter 3.2 (intermediate status information)
COMPLETION = 0x060F  # PT -> ECR, chapter 3.3 (master rights return to the ECR)
PT_ABORT = 0x061E  # PT -> ECR, chapter 3.4 (the transaction ended without success)
ECR_ABORT = 0x06B0  # ECR -> PT, chapter 2.21 (abort the running transaction)
REPEAT_RECEIPT = 0x0620  # ECR -> PT: send the last transaction's result and receipt again
REVERSAL = 0x0630  # ECR -> PT, chapter 2.10 (cancel a payment of today by its receipt number)
REFUND = 0x0631  # ECR -> PT, chapter 2.11 (credit an amount to the card)
PRINT_LINE = 0x06D1  # PT -> ECR, chapter 3.5 (one receipt line for the ECR's printer)
PRINT_BLOCK = 0x06D3  # PT -> ECR, chapter 3.6 (a whole receipt as a TLV text block)

POSITIVE, NEGATIVE = 0x80, 0x84

NAMES = {
    REGISTRATION: "Registration",
    AUTHORISATION: "Authorisation",
    STATUS_INFO: "Status-Information",
    INTERMEDIATE: "Intermediate Status",
    COMPLETION: "Completion",
    PT_ABORT: "Abort (PT)",
    ECR_ABORT: "Abort (ECR)",
    REPEAT_RECEIPT: "Repeat Receipt",
    REVERSAL: "Reversal",
    REFUND: "Refund",
    PRINT_LINE: "Print Line",
    PRINT_BLOCK: "Print Text-Block",
}


class ZVTError(DeviceError):
    """An APDU, BMP or TLV that breaks the ZVT protocol."""

    def __init__(self, message: str) -> None:
        super().__init__(message, fa=f"پیام نامعتبر در پروتکل ZVT پایانهٔ بانکی: {message}")


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
        """80 xx, or 84 00 (which the specification counts as positive)."""
        return self.cls == POSITIVE or (self.cls == NEGATIVE and self.ins == 0)

    @property
    def negative(self) -> bool:
        return self.cls == NEGATIVE and self.ins != 0

    @property
    def is_answer(self) -> bool:
        return self.cls in (POSITIVE, NEGATIVE)

    def encode(self) -> bytes:
        n = len(self.data)
        if n > 0xFFFF:
            raise ValueError(f"APDU data of {n} bytes is longer than 65535")
        head = bytes([self.cls, self.ins])
        if n < 0xFF:
            return head + bytes([n]) + self.data
        return head + bytes([0xFF, n & 0xFF, n >> 8]) + self.data

    @classmethod
    def parse(cls, raw: bytes) -> Apdu:
        """Exactly one APDU; ZVTError when the length field and the bytes disagree."""
        if len(raw) < 3:
            raise ZVTError(f"APDU of {len(raw)} bytes is shorter than 3: {clean_bytes(raw)}")
        n, head = raw[2], 3
        if n == 0xFF:
            if len(raw) < 5:
                raise ZVTError(f"extended length cut short: {clean_bytes(raw)}")
            n, head = raw[3] | raw[4] << 8, 5
        if len(raw) != head + n:
            raise ZVTError(f"APDU length field says {n} data bytes, {len(raw) - head} follow")
        return cls(raw[0], raw[1], bytes(raw[head:]))

    def describe(self) -> str:
        """For logs: the control field, its name and the size (never the data)."""
        name = NAMES.get(self.control, "answer" if self.is_answer else "unknown")
        return f"{self.cls:02X} {self.ins:02X} ({name}, {len(self.data)} bytes)"


ACK_APDU = Apdu(POSITIVE, 0x00)


def nack(code: int) -> Apdu:
    """A negative acknowledgement 84 xx with result code ``code``."""
    return Apdu(NEGATIVE, code)


# -- BCD and variable lengths ----------------------------------------------------------------


def bcd(value: int, nbytes: int) -> bytes:
    """``value`` as ``nbytes`` of packed BCD, most significant digit first."""
    if value < 0 or value >= 10 ** (2 * nbytes):
        raise ValueError(f"{value} does not fit in {nbytes} BCD bytes")
    return bytes.fromhex(f"{value:0{2 * nbytes}d}")


def bcd_digits(data: bytes) -> str:
    """The digits of packed BCD; ZVTError for a nibble that is not 0-9."""
    text = data.hex()
    if not text.isdigit():
        raise ZVTError(f"not BCD: {data.hex(' ')}")
    return text


def bcd_int(data: bytes) -> int:
    return int(bcd_digits(data)) if data else 0


def var_length(n: int, digits: int) -> bytes:
    """The LL-var (digits=2) or LLL-var (digits=3) length prefix: F<d> per digit."""
    if n < 0 or n >= 10**digits:
        raise ValueError(f"length {n} does not fit in {digits} digits")
    return bytes(0xF0 | int(d) for d in f"{n:0{digits}d}")


def _read_var_length(data: bytes, pos: int, digits: int) -> int:
    if pos + digits > len(data):
        raise ZVTError(f"variable length field cut short at byte {pos}")
    n = 0
    for b in data[pos : pos + digits]:
        if b >> 4 != 0xF or (b & 0xF) > 9:
            raise ZVTError(f"bad variable length byte 0x{b:02X} at {pos}")
        n = n * 10 + (b & 0xF)
    return n


# -- BMPs ----------------------------------------------------------------------------------

LL, LLL, TLV = -2, -3, -1

BMP_LENGTHS: dict[int, int] = {
    0x01: 1, 0x02: 1, 0x03: 1, 0x04: 6, 0x05: 1, 0x06: TLV, 0x0B: 3, 0x0C: 3, 0x0D: 2,
    0x0E: 2, 0x17: 2, 0x19: 1, 0x22: LL, 0x23: LL, 0x24: LLL, 0x27: 1, 0x29: 4, 0x2A: 15,
    0x2D: LL, 0x2E: LL, 0x37: 3, 0x3A: 2, 0x3B: 8, 0x3C: LLL, 0x3D: 3, 0x49: 2, 0x4C: LL,
    0x60: LLL, 0x87: 2, 0x88: 3, 0x8A: 1, 0x8B: LL, 0x8C: 1, 0x92: LLL, 0x9A: LLL,
    0xA0: 1, 0xA7: LL, 0xAA: 3, 0xAF: LLL, 0xBA: 5, 0xD0: 1, 0xD1: LL, 0xD2: 1, 0xD3: 1,
    0xE0: 1, 0xE1: LL, 0xE2: LL, 0xE3: LL, 0xE4: LL, 0xE5: LL, 0xE6: LL, 0xE7: LL,
    0xE8: LL, 0xE9: 1, 0xEA: 1, 0xEB: 8, 0xF0: 1, 0xF1: LL, 0xF2: LL, 0xF3: LL, 0xF4: LL,
    0xF5: LL, 0xF6: LL, 0xF7: LL, 0xF8: LL, 0xF9: 1, 0xFA: 1, 0xFB: 1, 0xFC: 1, 0xFD: 1,
}  # fmt: skip


def encode_bmps(items: Iterable[tuple[int, bytes]]) -> bytes:
    """BMPs in order; variable-length values get their LL/LLL/TLV length prefix."""
    out = bytearray()
    for bmp, value in items:
        kind = BMP_LENGTHS.get(bmp)
        if kind is None:
            raise ValueError(f"unknown BMP {bmp:02X}")
        out.append(bmp)
        if kind == TLV:
            out += tlv_length(len(value))
        elif kind in (LL, LLL):
            out += var_length(len(value), -kind)
        elif len(value) != kind:
            raise ValueError(f"BMP {bmp:02X} takes {kind} bytes, got {len(value)}")
        out += value
    return bytes(out)


def parse_bmps(data: bytes, *, strict: bool = True) -> tuple[list[tuple[int, bytes]], bytes]:
    """(BMPs, rest): the values come without their length prefixes.  An unknown BMP
    raises ZVTError when ``strict``; otherwise parsing stops there and the unread bytes
    are returned as ``rest`` (their length cannot be known)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        bmp = data[pos]
        kind = BMP_LENGTHS.get(bmp)
        if kind is None:
            if strict:
                raise ZVTError(f"unknown BMP {bmp:02X} at byte {pos}")
            return out, bytes(data[pos:])
        pos += 1
        if kind == TLV:
            n, pos = _read_tlv_length(data, pos)
        elif kind in (LL, LLL):
            n = _read_var_length(data, pos, -kind)
            pos += -kind
        else:
            n = kind
        if pos + n > len(data):
            raise ZVTError(f"BMP {bmp:02X} needs {n} bytes, {len(data) - pos} left")
        out.append((bmp, bytes(data[pos : pos + n])))
        pos += n
    return out, b""


# -- TLV (BMP 06) ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes
    children: tuple[Tlv, ...] = ()

    @property
    def constructed(self) -> bool:
        first = self.tag
        while first > 0xFF:
            first >>= 8
        return bool(first & 0x20)

    def find(self, tag: int) -> list[Tlv]:
        """This object's descendants (depth first) with ``tag``."""
        out = []
        for c in self.children:
            if c.tag == tag:
                out.append(c)
            out += c.find(tag)
        return out


MAX_TLV_DEPTH = 8


def tlv_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return bytes([0x81, n])
    if n <= 0xFFFF:
        return bytes([0x82, n >> 8, n & 0xFF])
    raise ValueError(f"TLV length {n} too long")


def _read_tlv_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise ZVTError("TLV length missing")
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    k = b & 0x7F
    if k not in (1, 2) or pos + 1 + k > len(data):
        raise ZVTError(f"bad TLV length byte 0x{b:02X}")
    return int.from_bytes(data[pos + 1 : pos + 1 + k], "big"), pos + 1 + k


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise ZVTError("TLV tag missing")
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:  # multi-byte tag: more bytes while bit 8 is set
        for _ in range(3):
            if pos >= len(data):
                raise ZVTError("TLV tag cut short")
            tag = tag << 8 | data[pos]
            pos += 1
            if not data[pos - 1] & 0x80:
                break
        else:
            raise ZVTError("TLV tag longer than 4 bytes")
    return tag, pos


def encode_tlv(tag: int, value: bytes) -> bytes:
    width = max(1, (tag.bit_length() + 7) // 8)
    return tag.to_bytes(width, "big") + tlv_length(len(value)) + value


def parse_tlv(data: bytes, depth: int = 0) -> list[Tlv]:
    """The data objects of a TLV container's contents (constructed ones recursively)."""
    if depth > MAX_TLV_DEPTH:
        raise ZVTError("TLV nested too deeply")
    out = []
    pos = 0
    while pos < len(data):
        tag, pos = _read_tag(data, pos)
        n, pos = _read_tlv_length(data, pos)
        if pos + n > len(data):
            raise ZVTError(f"TLV tag {tag:X} needs {n} bytes, {len(data) - pos} left")
        value = bytes(data[pos : pos + n])
        pos += n
        obj = Tlv(tag, value)
        if obj.constructed:
            obj = Tlv(tag, value, tuple(parse_tlv(value, depth + 1)))
        out.append(obj)
    return out


def tlv_root(data: bytes) -> Tlv:
    """The contents of a TLV container as the children of one synthetic root object."""
    return Tlv(0, data, tuple(parse_tlv(data)))


# -- messages the ECR sends ----------------------------------------------------------------

# Registration config byte (chapter 2.1)
CFG_ECR_PRINTS_PAYMENT = 0x02  # the ECR prints the payment receipts
CFG_ECR_PRINTS_ADMIN = 0x04  # the ECR prints the administration receipts
CFG_INTERMEDIATE = 0x08  # the PT sends intermediate status information
CFG_ECR_PAYMENT = 0x10  # amount input on the PT not possible (the ECR controls payments)
CFG_ECR_ADMIN = 0x20  # administration on the PT not possible
CFG_PRINT_LINES = 0x80  # receipts come as Print Line (06 D1) / Text-Block (06 D3)

# TLV tags used here
TAG_TEXT_LINES = 0x07
TAG_ATTRIBUTE = 0x09
TAG_CHARS_PER_LINE = 0x12
TAG_PRINT_TEXTS = 0x25
TAG_RECEIPT_TYPE = 0x1F07


def password_bcd(password: str) -> bytes:
    if len(password) != 6 or not password.isdigit() or not password.isascii():
        raise ValueError("the ZVT password is six digits")
    return bytes.fromhex(password)


def registration(
    password: str,
    config: int,
    currency: int | None,
    *,
    service: int | None = None,
    chars_per_line: int | None = None,
) -> Apdu:
    """06 00: password, config byte, [currency, [03 service byte], [06 TLV container]]."""
    data = password_bcd(password) + bytes([config])
    if currency is not None:
        data += bcd(currency, 2)
        items = []
        if service is not None:
            items.append((0x03, bytes([service])))
        if chars_per_line is not None:
            items.append((0x06, encode_tlv(TAG_CHARS_PER_LINE, bcd(chars_per_line, 1))))
        data += encode_bmps(items)
    return Apdu(0x06, 0x00, data)


MAX_AMOUNT = 999_999_999_999  # twelve BCD digits


def authorisation(amount: int, currency: int | None) -> Apdu:
    """06 01: 04 <amount, 6 bytes BCD> [49 <currency, 2 bytes BCD>].  The amount is the
    integer number of Rials written as digits: no decimal places are implied."""
    items = [(0x04, bcd(amount, 6))]
    if currency is not None:
        items.append((0x49, bcd(currency, 2)))
    return Apdu(0x06, 0x01, encode_bmps(items))


def reversal(password: str, receipt: int) -> Apdu:
    """06 30: <password, 3 bytes BCD> 87 <receipt number, 2 bytes BCD>: cancel the
    payment with that receipt number (before the terminal's end of day)."""
    if not 0 < receipt <= 9999:
        raise ValueError(f"a receipt number is 1..9999, got {receipt}")
    return Apdu(0x06, 0x30, password_bcd(password) + encode_bmps([(0x87, bcd(receipt, 2))]))


def refund(password: str, amount: int, currency: int | None) -> Apdu:
    """06 31: <password, 3 bytes BCD> 04 <amount> [49 <currency>]: credit the card."""
    items = [(0x04, bcd(amount, 6))]
    if currency is not None:
        items.append((0x49, bcd(currency, 2)))
    return Apdu(0x06, 0x31, password_bcd(password) + encode_bmps(items))


ECR_ABORT_APDU = Apdu(0x06, 0xB0)


# -- messages the PT sends -----------------------------------------------------------------


def intermediate(status: int, timeout: int | None = None) -> Apdu:
    """04 FF: <status> [<timeout, seconds>]."""
    data = bytes([status]) + (b"" if timeout is None else bytes([timeout]))
    return Apdu(0x04, 0xFF, data)


def repeat_receipt(password: str) -> Apdu:
    """06 20 <password, 3 bytes BCD>: the terminal answers 80 00 00 and then sends the
    last transaction's Status-Information (and receipt) and a completion, or refuses."""
    return Apdu(0x06, 0x20, password_bcd(password))


def completion(bmps: Sequence[tuple[int, bytes]] = ()) -> Apdu:
    return Apdu(0x06, 0x0F, encode_bmps(bmps))


def pt_abort(result: int) -> Apdu:
    return Apdu(0x06, 0x1E, bytes([result]))


def status_info(bmps: Sequence[tuple[int, bytes]]) -> Apdu:
    return Apdu(0x04, 0x0F, encode_bmps(bmps))


ATTR_LAST = 0x81  # 1xxx xxxx other than 80 and FF: the last line of the receipt
ATTR_FEED = 0xFF  # line feeds; the count follows


def print_line(text: bytes, attribute: int = 0x00) -> Apdu:
    return Apdu(0x06, 0xD1, bytes([attribute]) + text)


def print_block(lines: Sequence[bytes], receipt_type: int = 2) -> Apdu:
    """06 D3: 06 <TLV: 1F07 receipt type, 25 (07 line)* 09 end-of-receipt attribute>."""
    texts = b"".join(encode_tlv(TAG_TEXT_LINES, line) for line in lines)
    texts += encode_tlv(TAG_ATTRIBUTE, bytes([ATTR_LAST]))
    body = encode_tlv(TAG_RECEIPT_TYPE, bytes([receipt_type])) + encode_tlv(TAG_PRINT_TEXTS, texts)
    return Apdu(0x06, 0xD3, encode_bmps([(0x06, body)]))


# -- reading what the PT sends -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """The fields of a Status-Information (04 0F) the cash register needs."""

    result: int | None = None
    amount: int | None = None
    trace: int | None = None
    time: str = ""  # HHMMSS
    date: str = ""  # MMDD
    terminal_id: str = ""
    receipt: int | None = None
    turnover: int | None = None
    currency: int | None = None
    card_type: int | None = None
    card_name: str = ""
    auth_code: str = ""
    vu_number: str = ""
    unparsed: int = 0  # bytes after an unknown BMP
    bmps: tuple[int, ...] = field(default_factory=tuple)


def _text(value: bytes, encoding: str, maxlen: int = 40) -> str:
    return clean(value.rstrip(b"\x00").decode(encoding, "replace").strip(), maxlen)


_STATUS_FIELDS: dict[int, tuple[str, Callable[[bytes, str], object]]] = {
    0x27: ("result", lambda v, e: v[0]),
    0x04: ("amount", lambda v, e: bcd_int(v)),
    0x0B: ("trace", lambda v, e: bcd_int(v)),
    0x0C: ("time", lambda v, e: bcd_digits(v)),
    0x0D: ("date", lambda v, e: bcd_digits(v)),
    0x29: ("terminal_id", lambda v, e: bcd_digits(v)),
    0x87: ("receipt", lambda v, e: bcd_int(v)),
    0x88: ("turnover", lambda v, e: bcd_int(v)),
    0x49: ("currency", lambda v, e: bcd_int(v)),
    0x8A: ("card_type", lambda v, e: v[0]),
    0x8B: ("card_name", _text),
    0x3B: ("auth_code", lambda v, e: _text(v, "ascii", 8)),
    0x2A: ("vu_number", lambda v, e: _text(v, "ascii", 15)),
    0x06: ("", lambda v, e: tlv_root(v)),  # validated; nothing in it the register needs
}


def parse_status_info(data: bytes, encoding: str = "cp437") -> StatusInfo:
    """The data of a 04 0F.  Unknown BMPs end parsing (what came before is kept)."""
    items, rest = parse_bmps(data, strict=False)
    f: dict[str, object] = {"unparsed": len(rest), "bmps": tuple(b for b, _ in items)}
    for bmp, v in items:
        if bmp in _STATUS_FIELDS:
            name, conv = _STATUS_FIELDS[bmp]
            value = conv(v, encoding)
            if name:
                f[name] = value
    return StatusInfo(**f)  # type: ignore[arg-type]


def parse_print_line(data: bytes, encoding: str = "cp437") -> tuple[int, list[str]]:
    """(attribute, lines) of a 06 D1.  A line-feed attribute (FF) gives that many empty
    lines (at most 10); a TLV container some terminals append after the text is dropped."""
    if not data:
        raise ZVTError("Print Line without its attribute byte")
    attr, text = data[0], data[1:]
    if attr == ATTR_FEED:
        return attr, [""] * min(text[0] if text else 1, 10)
    cut = text.find(b"\x06")  # 0x06 never appears in receipt text: it opens a BMP 06
    if cut >= 0:
        text = text[:cut]
    line = clean(text.decode(encoding, "replace").rstrip(), 80)
    return attr, [line] if (line or not attr & 0x80) else []


def parse_print_block(data: bytes, encoding: str = "cp437") -> tuple[int | None, list[str]]:
    """(receipt type, lines) of a 06 D3 (BMP 06: 1F07 receipt type, 25 -> 07 text lines)."""
    items, _ = parse_bmps(data)
    receipt_type: int | None = None
    lines: list[str] = []
    for bmp, v in items:
        if bmp != 0x06:
            continue
        root = tlv_root(v)
        for t in root.find(TAG_RECEIPT_TYPE):
            receipt_type = t.value[0] if t.value else None
        lines.extend(
            clean(t.value.decode(encoding, "replace").rstrip(), 80)
            for t in root.find(TAG_TEXT_LINES)
        )
    return receipt_type, lines


def parse_completion(data: bytes) -> dict[int, bytes]:
    """The BMPs of a 06 0F (after registration: 19 status byte, 29 TID, 49 currency)."""
    items, _ = parse_bmps(data, strict=False)
    return dict(items)
