"""NXP PN532 NFC reader on its high-speed UART (HSU), after UM0701-02 (PN532 User Manual).

Layers, as in nfcpy: the transport is the serial port that ``open_port`` opens (only the
one configured); :class:`Chipset` speaks frames (``edge.drivers.pn532_frames``): one
command at a time, ACK and response timeouts, NACK on a damaged response, abort by ACK;
:class:`PN532Reader` is the device: start-up, polling, debounce, the ``CardReader`` API.

What goes on the wire (hex; data fields only, section numbers of UM0701-02)::

    start-up
      55 55 00 00 00 ... 00          HSU wake-up: 0x55 edges wake the chip, the zeros
                                     cover its oscillator start (AN10609, libnfc)
      D4 14 01          -> D5 15     SAMConfiguration, normal mode (7.2.10): leaves the
                                     C106's Low VBAT start-up mode
      D4 02             -> D5 03 IC Ver Rev Support   GetFirmwareVersion (7.2.2)
      D4 32 05 FF 01 nn -> D5 33     RFConfiguration MaxRetries (7.3.1): MxRtyATR FF,
                                     MxRtyPSL 01, MxRtyPassiveActivation nn (default 02)
      D4 10 br          -> D5 11, host ACK, new rate     SetSerialBaudrate (7.2.8), only
                                     when ``baudrate`` is not 115200
    polling
      D4 4A 01 00       -> D5 4B NbTg [Tg SENS_RES(2) SEL_RES NFCIDLength NFCID1 [ATS]]
                                     InListPassiveTarget, 1 target, 106 kbps type A (7.3.5)
    close
      ACK (abort), [D4 10 04 back to 115200], D4 32 01 00 -> D5 33 (RF field off)

Each command: the frame, then the ACK within ``ack_timeout``, then the response within
the command's timeout.  Damaged bytes -- a frame failing its LCS, DCS or postamble, noise,
a frame cut short -- followed by a quiet line stand for a damaged response, which is asked
for again with a NACK (6.2.1.4), ``NACKS`` times at most.  A try that gets no ACK, only
damage, or (polls excepted) no response after the ACK is repeated, ``retries`` times;
after a try that got nothing back at all, behind the wake-up preamble.  Frames with
another TFI or response code (stale ones) are skipped.  With MxRtyPassiveActivation FF
the chip does not answer InListPassiveTarget until a card comes; the driver then aborts
the poll with an ACK when its wait is over.  A reader that does not answer at all, or
only after a wake-up, is configured again (it may have been power-cycled); if it still
says nothing, :class:`PN532TimeoutError` (a DeviceError) says so in English and Persian,
naming the port and the ``spy://`` URL to trace it.  Bytes from the reader appear in
logs and messages only as hex; the port name is cleaned (``edge.sanitize``).

Confirmation: a UID is taken only when two polls in a row return it (the second poll
follows at once).  The frame checksums are 8-bit sums, which two bit errors can fool; a
second read keeps a damaged UID away from a member's account.  ``confirm=False`` turns
this off.

Debounce: a card is reported once, when it is first (confirmed) seen.  While polls keep
finding it, it is not reported again.  It counts as removed after ``absent_polls``
consecutive polls (default 2) that find no card; a card found after that is reported, even
the same one.  A different card is reported at once (after its confirming poll).  Two
empty polls rather than one, so that a card at the edge of the field that misses a single
poll is not taken for a new tap.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from serial import SerialBase

from edge.drivers.base import CardRead
from edge.drivers.pn532_frames import (
    ACK,
    NACK,
    TFI_PN532,
    Ack,
    ErrorFrame,
    Frame,
    FrameParser,
    Garbled,
    Information,
    Nack,
    PN532CommandError,
    PN532Error,
    PN532FrameError,
    PN532TimeoutError,
    command_frame,
)
from edge.drivers.serialport import open_port, read_available, write_all
from edge.errors import ConfigError, DeviceError
from edge.sanitize import clean

log = logging.getLogger("edge.drivers.pn532")

WAKEUP = b"\x55\x55" + bytes(14)
GET_FIRMWARE_VERSION = 0x02
SET_SERIAL_BAUDRATE = 0x10
SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_LIST_PASSIVE_TARGET = 0x4A
NAMES = {
    GET_FIRMWARE_VERSION: "GetFirmwareVersion",
    SET_SERIAL_BAUDRATE: "SetSerialBaudrate",
    SAM_CONFIGURATION: "SAMConfiguration",
    RF_CONFIGURATION: "RFConfiguration",
    IN_LIST_PASSIVE_TARGET: "InListPassiveTarget",
}
BAUDRATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)  # 7.2.8
HSU_DEFAULT_BAUDRATE = 115200  # the PN532 always starts at 115200 on the HSU
NACKS = 3  # NACKs for one damaged response before the command is sent again
PORT_TIMEOUT = 0.01  # the port's read timeout: how often the driver looks at its clock
MIN_POLL_WAIT = 0.05
# A frame's bytes follow each other (275 bytes at most: 24 ms at 115200 baud); a frame
# that stops for this long lost bytes on the way and is asked for again.
INTER_BYTE_TIMEOUT = 0.05


def _hex(data: bytes, limit: int = 40) -> str:
    """Bytes from the device as hex: safe in a log or a message whatever they hold."""
    return data[:limit].hex(" ") + (" …" if len(data) > limit else "")


def silent_reader(port: str, what: str) -> PN532TimeoutError:
    """The error for a reader that does not answer, in both languages."""
    p = clean(port, 120)
    return PN532TimeoutError(
        f"no answer from the NFC reader on {p} ({what}); check the cable or trace it "
        f"with spy://{p}",
        fa=f"کارت‌خوان NFC روی {p} پاسخ نمی‌دهد ({what})؛ کابل را بررسی کنید یا با "
        f"spy://{p} ردگیری کنید",
    )


class Chipset:
    """One command at a time over the HSU: frames, ACK, NACK, timeouts (UM0701-02 6.2)."""

    def __init__(
        self, port: SerialBase, name: str, *, ack_timeout: float = 0.1, retries: int = 2
    ) -> None:
        self.port = port
        self.name = name
        self.ack_timeout = ack_timeout
        self.retries = retries
        self.parser = FrameParser()
        self._queue: deque[Frame | Garbled] = deque()
        self.woken = False  # a command was ACKed only after a wake-up preamble
        self._last_rx = 0.0

    # -- bytes ------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        log.debug("%s >>> %s", self.name, data.hex(" "))
        write_all(self.port, data, flush=False)

    def wake(self) -> None:
        """The HSU wake-up preamble; harmless when the chip is awake (bytes before a start
        code are ignored)."""
        self.write(WAKEUP)

    def send_ack(self) -> None:
        """An ACK from the host: aborts the command in progress (6.2.1.3) and completes a
        SetSerialBaudrate."""
        self.write(ACK)

    def _next(self, deadline: float) -> Frame | Garbled | None:
        """The next frame (or Garbled) that arrives before ``deadline``, else None."""
        while not self._queue:
            now = time.monotonic()
            if now - self._last_rx >= INTER_BYTE_TIMEOUT:
                cut = self.parser.abandon()  # the chip sends a frame in one go
                if cut is not None:
                    return cut
            if now >= deadline:
                return None
            data = read_available(self.port)
            if data:
                self._last_rx = time.monotonic()
                log.debug("%s <<< %s", self.name, data.hex(" "))
                self._queue.extend(self.parser.feed(data))
        return self._queue.popleft()

    # -- commands ---------------------------------------------------------------------

    def command(
        self, code: int, params: bytes = b"", *, timeout: float, retry_late: bool = True
    ) -> bytes:
        """Send command ``code`` and return the response's data after the response code.

        A try that gets no ACK, only damaged frames, or (``retry_late``) no response after
        the ACK is repeated, ``retries`` times.  PN532TimeoutError when no ACK ever came
        (``acked`` False) or no response came after it (``acked`` True; the command was
        aborted), PN532CommandError when the chip refuses the command, PN532FrameError when what
        comes back stays damaged."""
        frame = command_frame(code, params)
        name = NAMES.get(code, f"command 0x{code:02X}")
        got: bytes | str = ""
        for _attempt in range(1 + self.retries):
            self._queue.clear()
            self.parser.reset()
            # After a try that got nothing back, send again behind the wake-up preamble in
            # case the chip fell asleep (power-cycled: Low VBAT); ``woken`` tells the device.
            silent = got == "silent"
            self.write(WAKEUP + frame if silent else frame)
            got = self._exchange(code, name, timeout)
            if isinstance(got, bytes):
                self.woken = self.woken or silent
                return got
            if got == "late" and not retry_late:
                break
        if got == "damaged":
            raise PN532FrameError("damaged", f"{name}: what came back stayed damaged")
        if got == "late":
            p = clean(self.name, 120)
            raise PN532TimeoutError(
                f"the NFC reader on {p} did not answer {name} in {timeout:.2f} s",
                fa=f"کارت‌خوان NFC روی {p} به فرمان {name} در {timeout:.2f} ثانیه پاسخ نداد",
                acked=True,
            )
        raise silent_reader(self.name, f"no ACK to {name}")

    def _exchange(self, code: int, name: str, timeout: float) -> bytes | str:  # noqa: PLR0912 - one branch per frame kind
        """One try: the response data, or why not: "silent" (nothing came back),
        "damaged" (only broken frames), "late" (an ACK, then no response in ``timeout``:
        the command has been aborted with an ACK).

        Damaged bytes (a Garbled frame, noise, a frame cut short) followed by a quiet line
        stand for the ACK when it has not come yet, and for the response after it: that is
        asked for again with a NACK (6.2.1.4), NACKS times at most."""
        acked = damaged = False
        nacks = junk = 0  # junk: damaged bytes since the last ACK or NACK
        deadline = time.monotonic() + self.ack_timeout
        while True:
            quiet = self._last_rx + INTER_BYTE_TIMEOUT  # the chip sends a frame in one go
            item = self._next(min(deadline, quiet) if damaged else deadline)
            now = time.monotonic()
            if isinstance(item, Nack):  # the PN532 sends none: a damaged ACK
                item = Garbled("NACK from the chip", NACK)
            if item is None and damaged:  # broken bytes, then nothing
                # before the ACK, a few broken bytes were the ACK; more than an ACK's worth
                # means the response came (broken) too
                if acked or junk > len(ACK) + 2:
                    if nacks >= NACKS:
                        self.send_ack()
                        return "damaged"
                    nacks += 1
                    self._nack()
                damaged, junk = False, 0
                acked, deadline = True, now + max(timeout, self.ack_timeout)
            elif item is None:
                if not acked:
                    return "silent"
                self.send_ack()  # abort the command that is still running
                return "late"
            elif isinstance(item, Garbled):
                log.debug("%s: damaged (%s): %s", self.name, item.reason, _hex(item.raw))
                damaged, junk = True, junk + len(item.raw)
            elif isinstance(item, Ack):
                if not acked:
                    acked, damaged, junk, deadline = True, False, 0, now + timeout
            elif isinstance(item, ErrorFrame):
                if acked or damaged:
                    raise PN532CommandError(code, 0x7F)
            elif isinstance(item, Information):
                ours = item.tfi == TFI_PN532 and item.code == code + 1
                if ours and (acked or damaged):
                    return item.data[1:]
                log.debug("%s: skipped a stale or foreign frame", self.name)

    def _nack(self) -> None:
        self._queue.clear()
        self.write(NACK)


class PN532Reader:
    """CardReader for a PN532 on ``port`` (HSU; a path or any ``open_port`` URL)."""

    def __init__(
        self,
        port: str,
        baudrate: int = HSU_DEFAULT_BAUDRATE,
        poll_interval: float = 0.1,
        *,
        ack_timeout: float = 0.1,
        response_timeout: float = 0.5,
        passive_retries: int = 0x02,
        absent_polls: int = 2,
        retries: int = 2,
        confirm: bool = True,
    ) -> None:
        if baudrate not in BAUDRATES:
            raise ConfigError("card.baudrate", f"the PN532 HSU speeds are {BAUDRATES}")
        if not 0 <= passive_retries <= 0xFF:
            raise ConfigError("card.passive_retries", "a byte: 0..254 tries, 255 for ever")
        if absent_polls < 1 or retries < 0 or min(ack_timeout, response_timeout) <= 0:
            raise ConfigError("card", "absent_polls >= 1, retries >= 0, timeouts > 0")
        self.port_url = port
        self.baudrate = baudrate
        self.poll_interval = max(0.0, poll_interval)
        self.response_timeout = response_timeout
        self.passive_retries = passive_retries
        self.absent_polls = absent_polls
        self.confirm = confirm
        self.version: tuple[int, int, int, int] | None = None
        self._current: str | None = None  # the card on the reader, reported
        self._candidate: str | None = None  # a new UID seen once, to be confirmed
        self._absent = 0
        self._closed = False
        self._port = open_port(port, baudrate=HSU_DEFAULT_BAUDRATE, timeout=PORT_TIMEOUT)
        self.chip = Chipset(self._port, port, ack_timeout=ack_timeout, retries=retries)
        try:
            self._start()
        except BaseException:
            self._port.close()
            raise

    # -- start-up ---------------------------------------------------------------------

    def _start(self) -> None:
        try:
            self._configure()
        except PN532TimeoutError:
            if self.baudrate == HSU_DEFAULT_BAUDRATE:
                raise
            # a run that ended without close() may have left the chip at our speed
            self._port.baudrate = self.baudrate
            self._configure(switch=False)
            return
        log.info("PN532 on %s: firmware %s", self.port_url, self.describe())

    def _configure(self, switch: bool = True) -> None:
        t = self.response_timeout
        self.chip.wake()
        self.chip.command(SAM_CONFIGURATION, b"\x01", timeout=t)
        self.version = self.firmware()
        self.chip.command(
            RF_CONFIGURATION, bytes([0x05, 0xFF, 0x01, self.passive_retries]), timeout=t
        )
        if switch and self.baudrate != HSU_DEFAULT_BAUDRATE:
            self._set_baudrate(self.baudrate)

    def _set_baudrate(self, rate: int) -> None:
        self.chip.command(
            SET_SERIAL_BAUDRATE, bytes([BAUDRATES.index(rate)]), timeout=self.response_timeout
        )
        self.chip.send_ack()  # the chip changes speed after the host's ACK (7.2.8)
        time.sleep(0.002)
        self._port.baudrate = rate

    def firmware(self) -> tuple[int, int, int, int]:
        """GetFirmwareVersion: (IC, Ver, Rev, Support), e.g. (0x32, 1, 6, 7) for a PN532
        v1.6; for the technician's self-test."""
        data = self.chip.command(GET_FIRMWARE_VERSION, timeout=self.response_timeout)
        if len(data) != 4:
            raise PN532FrameError("firmware", f"GetFirmwareVersion answered {_hex(data)}")
        if data[0] != 0x32:
            log.warning("%s: IC 0x%02X is not a PN532 (0x32)", self.port_url, data[0])
        return data[0], data[1], data[2], data[3]

    def describe(self) -> str:
        """``PN532 v1.6`` (IC as the manual's hex, version and revision)."""
        if self.version is None:
            return "unknown"
        ic, ver, rev, _ = self.version
        return f"PN5{ic:02X} v{ver}.{rev}"

    # -- polling ----------------------------------------------------------------------

    def _poll(self, wait: float) -> tuple[bytes, bytes] | None:
        """One InListPassiveTarget: (UID, target data) of the card found, or None."""
        try:
            data = self.chip.command(
                IN_LIST_PASSIVE_TARGET, b"\x01\x00", timeout=wait, retry_late=False
            )
        except PN532TimeoutError as e:
            if e.acked:
                return None  # no card while we waited; the poll was aborted
            raise
        if not data or data[0] == 0:
            return None
        # NbTg 1, TargetData: Tg, SENS_RES (2 bytes), SEL_RES, NFCIDLength, NFCID1, and
        # the ATS (its first byte TL counts it) only for ISO/IEC 14443-4 cards (SEL_RES
        # bit 6).  Checked to the byte: a lost 00 can shift a frame past its checksums.
        n = data[5] if len(data) > 5 else 0
        rest = data[6 + n :]
        ats = not rest or bool(data[4] & 0x20 and rest[0] == len(rest))
        if data[0] != 1 or n not in (4, 7, 10) or len(data) < 6 + n or not ats:
            raise PN532FrameError("target", f"InListPassiveTarget answered {_hex(data)}")
        return bytes(data[6 : 6 + data[5]]), bytes(data[1:])

    def _recover(self) -> None:
        """The reader said nothing (or only after a wake-up): wake it and configure it
        again, once; PN532TimeoutError when it stays silent."""
        log.warning("PN532 on %s is silent; waking it and configuring it again", self.port_url)
        self.chip.woken = False
        try:
            self._configure(switch=False)  # at the speed we were talking at
        except PN532TimeoutError:
            if self._port.baudrate == HSU_DEFAULT_BAUDRATE:
                raise silent_reader(self.port_url, "no ACK after a wake-up") from None
        else:
            return
        self._port.baudrate = HSU_DEFAULT_BAUDRATE  # power-cycled: back at 115200
        try:
            self._configure()
        except PN532TimeoutError:
            raise silent_reader(self.port_url, "no ACK after a wake-up") from None

    def _poll_recovering(self, wait: float) -> tuple[bytes, bytes] | None:
        """A poll; a silent reader, or one that needed waking, is configured again."""
        try:
            found = self._poll(wait)
        except PN532TimeoutError:
            self._recover()
            return self._poll(wait)
        if self.chip.woken:  # it may have been power-cycled and lost its configuration
            self._recover()
        return found

    def read(self, timeout: float) -> CardRead | None:
        """The next card put on the reader within ``timeout`` seconds (see the module's
        debounce rule), or None.  DeviceError when the reader is silent or broken."""
        if self._closed:
            p = clean(self.port_url, 120)
            raise PN532Error(
                f"the NFC reader on {p} is closed", fa=f"کارت‌خوان NFC روی {p} بسته است"
            )
        deadline = time.monotonic() + max(0.0, timeout)
        damaged = 0
        overtime = 1  # polls allowed past the deadline to confirm a candidate
        while True:
            wait = max(deadline - time.monotonic(), MIN_POLL_WAIT)
            try:
                found = self._poll_recovering(wait)
            except PN532FrameError as e:
                damaged += 1
                log.warning("PN532 on %s: %s", clean(self.port_url, 120), e.en)
                if damaged > 3:
                    raise
                continue
            if found is None:
                self._candidate = None
                self._absent += 1
                if self._absent >= self.absent_polls:
                    self._current = None
            else:
                self._absent = 0
                uid = found[0].hex().upper()
                if uid != self._current and (uid == self._candidate or not self.confirm):
                    self._current = uid
                    return CardRead("nfc", uid, found[1])
                if uid != self._current:
                    self._candidate = uid  # poll again at once to confirm it
                    if time.monotonic() >= deadline:
                        overtime -= 1
                    if overtime >= 0:
                        continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(self.poll_interval, left))

    def close(self) -> None:
        """Abort what runs, switch the RF field off, go back to 115200, close the port."""
        if self._closed:
            return
        self._closed = True
        try:
            self.chip.send_ack()
            if self.baudrate != HSU_DEFAULT_BAUDRATE:
                self._set_baudrate(HSU_DEFAULT_BAUDRATE)
            self.chip.command(RF_CONFIGURATION, b"\x01\x00", timeout=self.response_timeout)
        except (DeviceError, OSError) as e:  # an unplugged port cannot be tidied
            log.info("PN532 on %s: could not tidy up on close: %s", self.port_url, e)
        finally:
            self._port.close()
