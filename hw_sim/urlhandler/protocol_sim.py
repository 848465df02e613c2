"""``sim://KIND?option=value&...``: a simulated device in this process, opened like any
serial port (``serial.serial_for_url``), as pyserial's ``loop://`` is.

    sim://pn532?card=04A1B2C3D4E5F6
    sim://rdm6300?card=0F00A1B2C3
    sim://zvt?outcome=approve
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from hw_sim import catalog
from hw_sim.device import SimDevice

if TYPE_CHECKING:
    from typing_extensions import Buffer

TICK = 0.005


class Serial(SerialBase):
    """An in-memory serial link to a simulated device."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.device: SimDevice | None = None
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._ticker: threading.Thread | None = None
        self._running = False
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        if self.is_open:
            raise SerialException("port already open")
        if self.port is None:
            raise SerialException("port must be configured before it can be used")
        u = urlsplit(self.port)
        if u.scheme != "sim":
            raise SerialException(f"expected sim://KIND?..., got {self.port!r}")
        kind = u.netloc or u.path.lstrip("/")
        try:
            self.device = catalog.module(kind).from_url(parse_qs(u.query))
        except ValueError as e:
            raise SerialException(str(e)) from e
        self.device.attach(self._from_device)
        self._running = True
        self._ticker = threading.Thread(target=self._tick, name=f"sim-{kind}", daemon=True)
        self._ticker.start()
        self.is_open = True

    def _tick(self) -> None:
        while self._running:
            assert self.device is not None
            self.device.tick(time.monotonic())
            time.sleep(TICK)

    def _from_device(self, data: bytes) -> None:
        with self._cond:
            self._buf += data
            self._cond.notify_all()

    def close(self) -> None:
        self._running = False
        self.is_open = False
        if self._ticker is not None:
            self._ticker.join(1)

    def _reconfigure_port(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def in_waiting(self) -> int:
        with self._cond:
            return len(self._buf)

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise PortNotOpenError
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        with self._cond:
            while len(self._buf) < size:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            out = bytes(self._buf[:size])
            del self._buf[:size]
        return out

    def write(self, b: Buffer, /) -> int:
        if not self.is_open:
            raise PortNotOpenError
        if self.device is None:
            raise PortNotOpenError
        data = bytes(b)
        self.device.receive(data)
        return len(data)

    def reset_input_buffer(self) -> None:
        with self._cond:
            self._buf.clear()

    def reset_output_buffer(self) -> None:
        pass

    def flush(self) -> None:
        pass
