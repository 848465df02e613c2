"""Moving APDUs between the cash register and the terminal, reliably (PA00P016).

Two links with one interface (``send(apdu)``, ``receive(timeout) -> apdu | None``):

* :class:`SerialLink`: DLE framing (:mod:`.framing`).  Every frame is answered with ACK
  or NAK; a NAKed frame, or one with no answer within T2, is sent again, at most
  ``retries`` (3) more times.  A frame we receive is ACKed when its CRC is right and NAKed
  when it is not; one that stops arriving halfway (no byte for T1) is dropped and NAKed.
  A frame identical to the one just ACKed, with nothing sent by us in between, is the
  peer repeating itself because our ACK was lost: it is ACKed again and not delivered
  twice (ZVT is strictly ping-pong, so a real new message always follows one of ours).
* :class:`TcpLink`: bare APDUs over TCP; TCP already delivers bytes intact and in order.

Timers (seconds; :class:`Timers`, short ones in the tests):

    T1   the longest gap between two bytes of one frame (serial)
    T2   how long the sender waits for ACK/NAK after a frame (serial)
    T3   how long the cash register waits for the terminal's 80 00 00 to a command
    T4   the longest silence while the terminal holds master rights during a
         transaction; restarted by every message it sends (intermediate status messages
         exist partly to keep it running)

Both links read a pyserial port (``socket://`` included), never block longer than the
port's read timeout, and raise :class:`~edge.errors.DeviceError` when the link fails.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import serial

from edge.drivers.serialport import read_available, write_all
from edge.drivers.zvt.framing import (
    ACK,
    NAK,
    ApduSplitter,
    BadFrame,
    Control,
    Frame,
    FrameDecoder,
    encode_frame,
)
from edge.errors import DeviceError
from edge.sanitize import clean

log = logging.getLogger("edge.drivers.zvt")

SPY_HINT = "trace the line with a spy:// port URL, e.g. spy:///dev/ttyUSB0?file=zvt.txt"
SPY_HINT_FA = "برای ردیابی خط از نشانی spy:// استفاده کنید"


@dataclass(frozen=True, slots=True)
class Timers:
    t1: float = 0.5
    t2: float = 3.0
    t3: float = 5.0
    t4: float = 180.0
    retries: int = 3  # repetitions of a frame after the first try
    abort_grace: float = 15.0  # after the ECR's own time-out: how long to wait for the abort


class Link(Protocol):
    name: str

    def send(self, apdu: bytes) -> None: ...

    def receive(self, timeout: float) -> bytes | None: ...

    def close(self) -> None: ...


class _PortLink:
    def __init__(self, port: serial.SerialBase, timers: Timers, name: str) -> None:
        self.port = port
        self.timers = timers
        self.name = clean(name)
        self.what = (f"the bank terminal on {self.name}", f"درگاه پایانهٔ بانکی {self.name}")

    def _write(self, data: bytes) -> None:
        write_all(self.port, data, what=self.what)

    def _read(self) -> bytes:
        return read_available(self.port, what=self.what)

    def close(self) -> None:
        try:
            self.port.close()
        except (serial.SerialException, OSError) as e:  # closing is best effort
            log.debug("closing %s: %s", self.name, e)


class SerialLink(_PortLink):
    def __init__(self, port: serial.SerialBase, timers: Timers, name: str) -> None:
        super().__init__(port, timers, name)
        self.decoder = FrameDecoder()
        self._inbox: deque[bytes] = deque()
        self._controls: deque[int] = deque()
        self._last_rx: bytes | None = None
        self._sent_since_rx = True
        self._last_byte = 0.0
        self.retransmissions = 0
        self.naks_sent = 0

    def send(self, apdu: bytes) -> None:
        frame = encode_frame(apdu)
        self._controls.clear()
        for attempt in range(1 + self.timers.retries):
            if attempt:
                self.retransmissions += 1
            self._write(frame)
            self._sent_since_rx = True
            reply = self._wait_control(self.timers.t2)
            if reply == ACK:
                return
            log.info(
                "zvt %s: frame %s, sending it again (%d/%d)",
                self.name,
                "NAKed" if reply == NAK else f"not acknowledged within {self.timers.t2:g}s",
                attempt + 1,
                self.timers.retries,
            )
        raise DeviceError(
            f"the bank terminal on {self.name} did not acknowledge a frame after "
            f"{1 + self.timers.retries} tries (is it on and connected? {SPY_HINT})",
            fa=f"پایانهٔ بانکی روی {self.name} پس از چند بار ارسال پاسخی نداد. "
            f"روشن و وصل بودن آن را بررسی کنید؛ {SPY_HINT_FA}",
        )

    def _wait_control(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while not self._controls:
            self._pump()  # at least one read, even with no time left
            if not self._controls and time.monotonic() >= deadline:
                return None
        return self._controls.popleft()

    def receive(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while not self._inbox:
            self._pump()  # at least one read, even with no time left
            if not self._inbox and time.monotonic() >= deadline:
                return None
        return self._inbox.popleft()

    def _pump(self) -> None:
        data = self._read()
        now = time.monotonic()
        if not data:
            if self.decoder.in_frame and now - self._last_byte > self.timers.t1:
                log.info("zvt %s: frame stopped halfway (T1), NAK", self.name)
                self.decoder.reset()
                self._nak()
            return
        self._last_byte = now
        for tok in self.decoder.feed(data):
            if isinstance(tok, Control):
                self._controls.append(tok.byte)
            elif isinstance(tok, BadFrame):
                log.info("zvt %s: damaged frame (%s), NAK", self.name, tok.reason)
                self._nak()
            elif isinstance(tok, Frame):
                self._write(bytes([ACK]))
                if tok.apdu == self._last_rx and not self._sent_since_rx:
                    log.info("zvt %s: the terminal repeated a frame we had ACKed", self.name)
                    continue
                self._last_rx = tok.apdu
                self._sent_since_rx = False
                self._inbox.append(tok.apdu)

    def _nak(self) -> None:
        self.naks_sent += 1
        self._write(bytes([NAK]))


class TcpLink(_PortLink):
    def __init__(self, port: serial.SerialBase, timers: Timers, name: str) -> None:
        super().__init__(port, timers, name)
        self.splitter = ApduSplitter()
        self._inbox: deque[bytes] = deque()

    def send(self, apdu: bytes) -> None:
        self._write(apdu)

    def receive(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while not self._inbox:
            data = self._read()  # at least one read, even with no time left
            if data:
                self._inbox.extend(self.splitter.feed(data))
            elif time.monotonic() >= deadline:
                return None
        return self._inbox.popleft()
