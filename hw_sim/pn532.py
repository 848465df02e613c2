"""A simulated NXP PN532 NFC controller on its high-speed UART (HSU), byte for byte after
UM0701-02 (PN532 User Manual, firmware v1.6) and AN10609 (PN532 C106 application note).

The frame parser here is written apart from the driver's (``edge.drivers.pn532_frames``)
on purpose: the simulator is the oracle the driver is tested against.

Power and wake-up
    The chip starts in Low VBAT mode (the C106 start-up mode, AN10609) and asleep.  On
    the HSU the first byte's falling edge wakes it; the bytes that arrive while its
    oscillator starts are lost -- modelled as the wake-up byte and the two after it
    (``WAKE_LOST``) -- which is why hosts send ``55 55 00 00 00 ...`` first (libnfc,
    Adafruit) or a long run of 00 preamble (nfcpy).  In Low VBAT mode the chip goes back
    to sleep after each answer until a SAMConfiguration puts it in normal mode.  After a
    PowerDown it sleeps again and only the wake-up sources it was given wake it (bit 4,
    0x10, is the HSU); once woken it is in normal mode.
Dialogue (6.2.2)
    A frame whose checksums hold is ACKed at once, then answered (response code = command
    code + 1, TFI D5).  A frame with a bad LCS or DCS is ignored, so the host times out
    waiting for the ACK and sends again.  A NACK from the host makes the chip send its
    last response again.  An ACK from the host aborts the command in progress; a new
    command does too.  A command the simulator does not know, a TFI other than D4 or
    parameters the manual does not allow get the syntax error frame
    ``00 00 FF 01 FF 7F 81 00`` after the ACK.
Commands (section 7)
    Diagnose 00 (tests 00 line echo, 01 ROM, 02 RAM, 04 polling to target, 05 echo back,
    06 card presence, 07 antenna), GetFirmwareVersion 02 (32 01 06 07 unless told
    otherwise), GetGeneralStatus 04, ReadRegister 06 / WriteRegister 08 (a register map
    that reads 00 until written; after a fruitless 106 kbps type A poll CIU_FIFOData 0x6339
    holds the REQA 0x26 still in the FIFO, which nfcpy looks at), SetSerialBaudrate 10
    (answered at the old rate; the new one takes effect at the host's ACK and is
    recorded in ``baudrate`` and ``baud_changes``: a pseudo-terminal has no speed),
    SetParameters 12, SAMConfiguration 14, PowerDown 16, RFConfiguration 32 (items 01 02
    04 05 0A 0B 0C 0D with their manual lengths), InListPassiveTarget 4A (106 kbps type A
    cards with 4-, 7- or 10-byte UIDs, ATQA/SAK, ATS for ISO 14443-4 cards; other baud
    rates find nothing).
    Commands outside start-up and polling (InDataExchange, target mode, ...) are not
    modelled and get the syntax error frame.
No card
    MxRtyPassiveActivation (RFConfiguration item 05, third byte) is FF after reset: the
    chip then polls for ever, answering InListPassiveTarget only when a card comes (the
    host aborts with an ACK or another command).  Any other value n gives n + 1 attempts
    of ``RETRY_TIME`` each, then ``D5 4B 00`` (NbTg = 0).  ``no_card_mode="silent"``
    makes the chip ignore that setting and never answer without a card, to exercise a
    host's abort path; ``"empty"`` (the default) follows the manual.
Scenario events (``event``)
    ``tap card=UID [atqa=0044] [sak=00] [ats=...] [for=SECONDS]``, ``remove [card=UID]``,
    ``cards cards=UID,UID`` (the set on the reader), ``garble [count=1]`` (the next
    responses go out with a broken DCS; a NACK gets them whole), ``unplug``, ``plug``
    (power-on: Low VBAT, asleep).
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from hw_sim.device import SimDevice, monotonic

ACK = bytes.fromhex("0000ff00ff00")
NACK = bytes.fromhex("0000ffff0000")
ERROR_FRAME = bytes.fromhex("0000ff01ff7f8100")
MAX_FIELD = 265  # TFI + 264 bytes of packet data (6.2.1.2)
WAKE_LOST = 3  # bytes lost while the oscillator starts after an HSU wake-up (a model)
RETRY_TIME = 0.002  # seconds one passive activation attempt takes (a model)
FIRMWARE = (0x32, 0x01, 0x06, 0x07)  # IC = PN532, Ver 1, Rev 6, Support: ISO18092, A, B
BAUDRATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)  # 7.2.8
HSU_WAKE = 0x10  # PowerDown WakeUpEnable bit 4 (7.2.11)
CIU_FIFO_DATA = 0x6339
REQA = 0x26
# RFConfiguration (7.3.1): CfgItem -> length of ConfigurationData
RF_ITEMS = {0x01: 1, 0x02: 3, 0x04: 1, 0x05: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}
NO_CARD_MODES = ("empty", "silent")
DEFAULT_ATS = bytes.fromhex("0578807002")  # TL T0 TA TB TC, for SAK with bit 6 (0x20) set


def _sum0(data: bytes | bytearray) -> int:
    return -sum(data) & 0xFF


def frame(field: bytes) -> bytes:
    """The frame the PN532 sends for data field ``field`` (TFI + packet data): normal up to
    255 bytes, extended above (6.2.1.2: it always uses the type that fits)."""
    n = len(field)
    if n <= 0xFF:
        head = bytes([0x00, 0x00, 0xFF, n, _sum0(bytes([n]))])
    else:
        length = bytes([n >> 8, n & 0xFF])
        head = bytes([0x00, 0x00, 0xFF, 0xFF, 0xFF]) + length + bytes([_sum0(length)])
    return head + field + bytes([_sum0(field), 0x00])


@dataclass(frozen=True, slots=True)
class Card:
    """An ISO/IEC 14443 type A card: ``atqa`` is SENS_RES as the PN532 reports it (most
    significant byte first: 0x0004 for a MIFARE Classic 1K, 0x0044 for an Ultralight)."""

    uid: bytes
    atqa: int
    sak: int
    ats: bytes = b""

    def target_data(self, tg: int) -> bytes:
        """TargetData of InListPassiveTarget at 106 kbps type A (7.3.5)."""
        out = bytes([tg, self.atqa >> 8, self.atqa & 0xFF, self.sak, len(self.uid)]) + self.uid
        if self.sak & 0x20:  # ISO/IEC 14443-4 compliant: the PN532 sent RATS, adds the ATS
            out += self.ats or DEFAULT_ATS
        return out


def _hex_int(value: object, name: str, limit: int) -> int:
    try:
        n = value if isinstance(value, int) else int(str(value), 16)
    except ValueError:
        raise ValueError(f"{name} must be hex, got {value!r}") from None
    if not 0 <= n <= limit:
        raise ValueError(f"{name} out of range: {value!r}")
    return n


def make_card(
    uid: str | bytes, atqa: object = None, sak: object = None, ats: object = None
) -> Card:
    """A card from its UID (hex, 4, 7 or 10 bytes); ATQA and SAK default to a MIFARE
    Classic 1K for 4 bytes and an Ultralight/NTAG for 7 (UID size in ATQA bits 7-6)."""
    try:
        raw = uid if isinstance(uid, bytes) else bytes.fromhex(str(uid))
    except ValueError:
        raise ValueError(f"a card UID is hex digits, got {uid!r}") from None
    if len(raw) not in (4, 7, 10):
        raise ValueError(f"a type A UID has 4, 7 or 10 bytes, got {len(raw)}")
    size = (4, 7, 10).index(len(raw))
    a = 0x0004 | size << 6 if atqa is None else _hex_int(atqa, "atqa", 0xFFFF)
    s = (0x08 if size == 0 else 0x00) if sak is None else _hex_int(sak, "sak", 0xFF)
    try:
        extra = b"" if ats is None else bytes.fromhex(str(ats))
    except ValueError:
        raise ValueError(f"ats must be hex, got {ats!r}") from None
    return Card(raw, a, s, extra)


def parse_card_spec(spec: str) -> Card:
    """``UID`` or ``UID:ATQA:SAK`` (hex), as on the command line and in sim:// URLs."""
    parts = spec.strip().split(":")
    if len(parts) not in (1, 3):
        raise ValueError(f"a card is UID or UID:ATQA:SAK, got {spec!r}")
    return make_card(parts[0], *(parts[1:] or (None, None)))


class InputParser:
    """What the host writes, cut into ("ack" | "nack" | "frame" | "bad", bytes) items;
    "frame" carries the data field (TFI and packet data).  Never raises; the buffer is
    bounded by one frame."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def reset(self) -> None:
        self.buf.clear()

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        self.buf += data
        out: list[tuple[str, bytes]] = []
        while True:
            i = self.buf.find(b"\x00\xff")
            if i < 0:
                keep = 1 if self.buf.endswith(b"\x00") else 0
                del self.buf[: len(self.buf) - keep]
                return out
            del self.buf[:i]
            item, used = self._one()
            if item is None:
                return out
            out.append(item)
            del self.buf[:used]

    def _one(self) -> tuple[tuple[str, bytes] | None, int]:  # noqa: PLR0911 - one exit per frame type
        b = self.buf
        if len(b) < 4:
            return None, 0
        if b[2:4] == b"\x00\xff":
            return ("ack", b""), 4
        if b[2:4] == b"\xff\x00":
            return ("nack", b""), 4
        if b[2:4] == b"\xff\xff":
            if len(b) < 7:
                return None, 0
            if (b[4] + b[5] + b[6]) & 0xFF:
                return ("bad", bytes(b[:7])), 2
            n, head = b[4] << 8 | b[5], 7
        else:
            if (b[2] + b[3]) & 0xFF:
                return ("bad", bytes(b[:4])), 2
            n, head = b[2], 4
        if not 1 <= n <= MAX_FIELD:
            return ("bad", bytes(b[:head])), 2
        if len(b) < head + n + 1:
            return None, 0
        field = bytes(b[head : head + n])
        if (sum(field) + b[head + n]) & 0xFF:
            return ("bad", bytes(b[: head + n + 1])), 2
        return ("frame", field), head + n + 1


@dataclass
class _Poll:
    """An InListPassiveTarget in progress."""

    max_tg: int
    brty: int
    uid: bytes | None  # InitiatorData: look for this UID only
    deadline: float | None  # None: poll until a card comes or the host aborts


class PN532Sim(SimDevice):
    kind = "pn532"

    def __init__(
        self,
        cards: Iterable[Card | str] = (),
        *,
        no_card_mode: str = "empty",
        firmware: tuple[int, int, int, int] = FIRMWARE,
    ) -> None:
        super().__init__()
        if no_card_mode not in NO_CARD_MODES:
            raise ValueError(f"no_card_mode is one of {NO_CARD_MODES}, got {no_card_mode!r}")
        if len(firmware) != 4 or not all(0 <= b <= 0xFF for b in firmware):
            raise ValueError(f"firmware is four bytes (IC, Ver, Rev, Support): {firmware!r}")
        self.no_card_mode = no_card_mode
        self.firmware = tuple(firmware)
        self.cards: dict[bytes, Card] = {}
        self._until: dict[bytes, float] = {}
        for c in cards:
            card = c if isinstance(c, Card) else parse_card_spec(c)
            self.cards[card.uid] = card
        self.parser = InputParser()
        self.plugged = True
        self.commands: list[int] = []  # command codes received, for tests
        self.garble = 0
        # polls that ended without a card (NbTg = 0, or aborted by the host), for scenarios
        # that must know the host has seen the field empty (a driver's debounce)
        self.empty_polls = 0
        self._polled = threading.Condition(self.lock)
        self.power_on()

    # -- power ------------------------------------------------------------------------

    def power_on(self) -> None:
        """The state after power-up (or reset): Low VBAT, asleep, registers cleared."""
        with self.lock:
            self.power = "lowvbat"  # "lowvbat" | "normal" | "powerdown"
            self.awake = False
            self._lost = 0
            self.wake_enable = 0xFF
            self.baudrate = 115200
            self._new_baud: int | None = None
            self.baud_changes: list[int] = []
            self.registers: dict[int, int] = {}
            self.rf_config: dict[int, bytes] = {}
            self.max_retries = (0xFF, 0x01, 0xFF)  # MxRtyATR, MxRtyPSL, MxRtyPassiveActivation
            self.rf_on = False
            self.parameters = 0x00
            self.sam_mode: int | None = None
            self.listed: list[Card] = []
            self.last_error = 0
            self.last_response: bytes | None = None
            self._poll: _Poll | None = None
            self._echo_back = False
            self.parser.reset()

    def _sleep(self) -> None:
        self.awake = False
        self.parser.reset()

    # -- bytes in ---------------------------------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        if not self.plugged:
            return
        if not self.awake:
            if self.power == "powerdown" and not self.wake_enable & HSU_WAKE:
                return  # the HSU is not a wake-up source: nothing reaches the chip
            self.awake, self._lost = True, WAKE_LOST
            if self.power == "powerdown":
                self.power = "normal"  # woken from PowerDown: back in normal mode
        if self._lost:
            k = min(self._lost, len(data))
            data, self._lost = data[k:], self._lost - k
        for kind, body in self.parser.feed(data):
            if not self.awake:
                break  # went back to sleep: what follows was not heard
            self._handle(kind, body)

    def _handle(self, kind: str, body: bytes) -> None:
        if kind == "bad":
            return  # a frame that fails its checksum is ignored: no ACK, no answer
        if kind == "nack":
            if self.last_response is not None:
                self._emit(self.last_response)
            return
        self._switch_baudrate()
        if kind == "ack":
            self._abort()
            return
        self._abort()  # a new command ends the one in progress
        self.send(ACK)
        if body[0] != 0xD4 or len(body) < 2:
            self._error()
            return
        code, params = body[1], body[2:]
        self.commands.append(code)
        handler = self._handlers.get(code)
        if handler is None:
            self._error()
        else:
            handler(self, params)
        if self.power == "lowvbat" and self._poll is None and not self._echo_back:
            self._sleep()  # still in Low VBAT: back to sleep until SAMConfiguration

    def _switch_baudrate(self) -> None:
        """A SetSerialBaudrate takes effect at the host's ACK (7.2.8).  A host that sends
        its next command instead (nfcpy flushes its ACK away when it reopens the port) is
        evidently at the new rate already: a pseudo-terminal cannot tell, so switch too."""
        if self._new_baud is not None:
            self.baudrate, self._new_baud = self._new_baud, None
            self.baud_changes.append(self.baudrate)

    def _abort(self) -> None:
        if self._poll is not None:
            self._ended_empty()  # the host gave up on the poll: it found nothing
        self._poll = None
        self._echo_back = False

    def _ended_empty(self) -> None:
        self.empty_polls += 1
        self._polled.notify_all()

    def wait_empty_polls(self, count: int, timeout: float) -> bool:
        """Wait until ``empty_polls`` reaches ``count`` (False if ``timeout`` passes first):
        the host has polled the field and found it empty that often."""
        with self._polled:
            return self._polled.wait_for(lambda: self.empty_polls >= count, timeout)

    # -- bytes out --------------------------------------------------------------------

    def _emit(self, data: bytes) -> None:
        if self.garble and data not in (ACK, ERROR_FRAME):
            self.garble -= 1
            data = data[:-2] + bytes([data[-2] ^ 0x5A]) + data[-1:]
        self.send(data)

    def _respond(self, command: int, payload: bytes = b"") -> None:
        self.last_response = frame(bytes([0xD5, command + 1]) + payload)
        self._emit(self.last_response)

    def _error(self) -> None:
        self.last_response = ERROR_FRAME
        self.send(ERROR_FRAME)

    # -- commands (section 7) ---------------------------------------------------------

    def _diagnose(self, p: bytes) -> None:
        test = p[0] if p else None
        if test == 0x00:  # communication line test: NumTst and InParam come back
            self._respond(0x00, p)
        elif test in (0x01, 0x02):  # ROM, RAM test: 00 = good
            self._respond(0x00, b"\x00")
        elif test == 0x04 and p[1:] in (b"\x01", b"\x02"):
            self._respond(0x00, b"\x80")  # polling test at 212/424 kbps: no FeliCa, 128 fails
        elif test == 0x05 and len(p) == 4:
            self._echo_back = True  # echo back test: runs until aborted, no answer
        elif test == 0x06:  # card presence of the target in use
            if not self.listed:
                self._respond(0x00, b"\x27")
            else:
                self._respond(0x00, b"\x00" if self.listed[0].uid in self.cards else b"\x01")
        elif test == 0x07 and len(p) == 2:
            self._respond(0x00, b"\x00")  # antenna self test: antenna present
        else:
            self._error()

    def _get_firmware_version(self, p: bytes) -> None:
        self._respond(0x02, bytes(self.firmware))

    def _get_general_status(self, p: bytes) -> None:
        out = bytes([self.last_error, 0x00, len(self.listed)])
        for i, _card in enumerate(self.listed, 1):
            out += bytes([i, 0x00, 0x00, 0x00])  # Tg, BrRx, BrTx 106 kbps, type A
        self._respond(0x04, out + b"\x00")  # SAM status

    def _read_register(self, p: bytes) -> None:
        if not p or len(p) % 2:
            self._error()
            return
        addrs = [p[i] << 8 | p[i + 1] for i in range(0, len(p), 2)]
        self._respond(0x06, bytes(self.registers.get(a, 0) for a in addrs))

    def _write_register(self, p: bytes) -> None:
        if not p or len(p) % 3:
            self._error()
            return
        for i in range(0, len(p), 3):
            self.registers[p[i] << 8 | p[i + 1]] = p[i + 2]
        self._respond(0x08)

    def _set_serial_baudrate(self, p: bytes) -> None:
        if len(p) != 1 or p[0] >= len(BAUDRATES):
            self._error()
            return
        self._respond(0x10)  # at the old rate; the new one after the host's ACK
        self._new_baud = BAUDRATES[p[0]]

    def _set_parameters(self, p: bytes) -> None:
        if len(p) != 1:
            self._error()
            return
        self.parameters = p[0]
        self._respond(0x12)

    def _sam_configuration(self, p: bytes) -> None:
        if not 1 <= len(p) <= 3 or not 1 <= p[0] <= 4 or (p[0] == 2 and len(p) < 2):
            self._error()  # Mode 1..4; Timeout is mandatory in virtual card mode
            return
        self.sam_mode = p[0]
        self.power = "normal"
        self._respond(0x14)

    def _power_down(self, p: bytes) -> None:
        if not 1 <= len(p) <= 2:
            self._error()
            return
        self._respond(0x16, b"\x00")
        self.wake_enable = p[0]
        self.power = "powerdown"
        self.listed = []
        self._sleep()

    def _rf_configuration(self, p: bytes) -> None:
        if not p or RF_ITEMS.get(p[0]) != len(p) - 1:
            self._error()
            return
        item, data = p[0], p[1:]
        self.rf_config[item] = data
        if item == 0x01:
            self.rf_on = bool(data[0] & 0x01)
        elif item == 0x05:
            self.max_retries = (data[0], data[1], data[2])
        self._respond(0x32)

    def _in_list_passive_target(self, p: bytes) -> None:
        if len(p) < 2 or p[0] not in (1, 2) or p[1] > 0x04:
            self._error()  # MaxTg is 1 or 2; BrTy 00..04
            return
        uid = None
        if p[1] == 0x00 and len(p) > 2:  # InitiatorData: the UID, cascade tags 88 included
            data = p[2:]
            if len(data) == 4:
                uid = data
            elif len(data) == 8 and data[0] == 0x88:
                uid = data[1:]
            elif len(data) == 12 and data[0] == 0x88 and data[4] == 0x88:
                uid = data[1:4] + data[5:]
            else:
                self._error()
                return
        self.listed = []
        self.rf_on = True
        mx = self.max_retries[2]
        forever = mx == 0xFF or self.no_card_mode == "silent"
        deadline = None if forever else monotonic() + (mx + 1) * RETRY_TIME
        self._poll = _Poll(p[0], p[1], uid, deadline)
        self._try_poll()

    def _try_poll(self) -> bool:
        """Answer the poll in progress if a card is there."""
        poll = self._poll
        if poll is None or poll.brty != 0x00:
            return False
        found = [c for c in self.cards.values() if poll.uid is None or c.uid == poll.uid]
        if not found:
            return False
        self._poll = None
        self.listed = found[: poll.max_tg]
        data = b"".join(c.target_data(i) for i, c in enumerate(self.listed, 1))
        self._respond(0x4A, bytes([len(self.listed)]) + data)
        if self.power == "lowvbat":
            self._sleep()
        return True

    _handlers: ClassVar[dict[int, Callable[[PN532Sim, bytes], None]]] = {
        0x00: _diagnose,
        0x02: _get_firmware_version,
        0x04: _get_general_status,
        0x06: _read_register,
        0x08: _write_register,
        0x10: _set_serial_baudrate,
        0x12: _set_parameters,
        0x14: _sam_configuration,
        0x16: _power_down,
        0x32: _rf_configuration,
        0x4A: _in_list_passive_target,
    }

    # -- time -------------------------------------------------------------------------

    def on_tick(self, now: float) -> None:
        if not self.plugged:
            return
        for uid, until in list(self._until.items()):
            if now >= until:
                self.cards.pop(uid, None)
                del self._until[uid]
        poll = self._poll
        if poll is not None and poll.deadline is not None and now >= poll.deadline:
            self._poll = None
            if poll.brty == 0x00:
                self.registers[CIU_FIFO_DATA] = REQA  # no SENS_RES: REQA still in the FIFO
            self._respond(0x4A, b"\x00")  # NbTg = 0 after MxRtyPassiveActivation retries
            self._ended_empty()
            if self.power == "lowvbat":
                self._sleep()

    # -- scenario ---------------------------------------------------------------------

    def tap(self, card: Card | str, duration: float | None = None, **fields: object) -> Card:
        """Put a card on the reader (for ``duration`` seconds, or until removed); ``fields``
        may give its ``atqa``, ``sak`` and ``ats`` (hex)."""
        c = card if isinstance(card, Card) else make_card(card, **fields)
        with self.lock:
            self.cards[c.uid] = c
            self._until.pop(c.uid, None)
            if duration is not None:
                self._until[c.uid] = monotonic() + duration
            self._try_poll()
        return c

    def remove(self, card: str | None = None) -> None:
        """Take one card (by UID) or all cards off the reader."""
        with self.lock:
            for uid in list(self.cards) if card is None else [make_card(card).uid]:
                self.cards.pop(uid, None)
                self._until.pop(uid, None)

    def set_cards(self, cards: Iterable[Card | str]) -> None:
        new = [c if isinstance(c, Card) else parse_card_spec(c) for c in cards]
        with self.lock:
            self.cards = {c.uid: c for c in new}
            self._until.clear()
            self._try_poll()

    def event(self, action: str, **args: Any) -> None:
        if action == "tap":
            if "card" not in args:
                raise ValueError("tap needs card=UID")
            dur = None if args.get("for") is None else float(args["for"])
            extra = {k: args[k] for k in ("atqa", "sak", "ats") if k in args}
            self.tap(str(args["card"]), dur, **extra)
        elif action == "remove":
            self.remove(None if args.get("card") is None else str(args["card"]))
        elif action == "cards":
            spec = args.get("cards", "")
            items = spec if isinstance(spec, list) else str(spec).replace(",", " ").split()
            self.set_cards([str(c) for c in items])
        elif action in ("garble", "unplug", "plug"):
            with self.lock:
                if action == "garble":
                    self.garble += int(args.get("count", 1))
                else:
                    self.plugged = action == "plug"
                    self._abort()
                    if self.plugged:
                        self.power_on()
        else:
            super().event(action, **args)


def _firmware(text: str) -> tuple[int, int, int, int]:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 4:
        raise ValueError(f"firmware is 8 hex digits (IC Ver Rev Support), got {text!r}")
    return raw[0], raw[1], raw[2], raw[3]


def add_cli(p: argparse.ArgumentParser) -> None:
    p.add_argument("--card", action="append", default=[],
                   help="a card on the reader from the start: UID or UID:ATQA:SAK, hex "
                   "(repeatable)")  # fmt: skip
    p.add_argument("--no-card-mode", choices=NO_CARD_MODES, default="empty",
                   help="empty: as the manual (NbTg=0 after the retries unless they are FF); "
                   "silent: never answer InListPassiveTarget without a card")  # fmt: skip
    p.add_argument("--firmware", default="32010607",
                   help="GetFirmwareVersion answer: IC Ver Rev Support, 8 hex digits")  # fmt: skip


def from_cli(args: argparse.Namespace) -> PN532Sim:
    return PN532Sim(args.card, no_card_mode=args.no_card_mode, firmware=_firmware(args.firmware))


def from_url(query: dict[str, list[str]]) -> PN532Sim:
    """``sim://pn532?card=04A1B2C3D4E5F6&card=...&no_card_mode=silent&firmware=32010607``."""
    q = {k.replace("-", "_"): v for k, v in query.items()}
    unknown = set(q) - {"card", "no_card_mode", "firmware"}
    if unknown:
        raise ValueError(f"unknown pn532 option(s): {', '.join(sorted(unknown))}")
    return PN532Sim(
        q.get("card", []),
        no_card_mode=q.get("no_card_mode", ["empty"])[-1],
        firmware=_firmware(q.get("firmware", ["32010607"])[-1]),
    )
