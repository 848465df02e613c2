"""Opening serial ports by URL, and only the ones the configuration names.

``open_port`` wraps pyserial's ``serial_for_url``, so ``/dev/ttyUSB0``, ``socket://host:port``,
``spy://...`` (a hex trace of every byte, for a technician chasing a silent device),
``loop://`` and the simulator's ``sim://pn532?...`` all work.  Pseudo-terminals have no modem
lines; pyserial tolerates that (EINVAL/ENOTTY on the modem ioctls) and so do we.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

import serial

from edge.errors import DeviceError

log = logging.getLogger("edge.drivers")

SIM_HANDLERS = "hw_sim.urlhandler"


def _register_sim() -> None:
    # The simulator is a registered target, as python-can registers its virtual bus:
    # ``sim://KIND?options`` resolves to hw_sim.urlhandler.protocol_sim.
    if SIM_HANDLERS not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(SIM_HANDLERS)


def open_port(
    url: str, *, baudrate: int = 115200, timeout: float = 0.1, **kw: Any
) -> serial.SerialBase:
    """Open the port at ``url``; DeviceError with the reason if it cannot be opened."""
    _register_sim()
    try:
        return serial.serial_for_url(
            url,
            baudrate=baudrate,
            timeout=timeout,
            write_timeout=2.0,
            exclusive=None if "://" in url else True,
            **kw,
        )
    except (serial.SerialException, ValueError, OSError) as e:
        raise DeviceError(f"cannot open {url}: {e}", fa=f"درگاه {url} باز نشد: {e}") from e


def read_available(port: serial.SerialBase) -> bytes:
    """Wait (up to the port's timeout) for the first byte, then take whatever else has
    arrived: a frame is handed on as soon as it is there, not when a buffer fills."""
    data = bytes(port.read(1))
    if data:
        waiting = int(getattr(port, "in_waiting", 0))  # every concrete port has it
        if waiting:
            data += bytes(port.read(waiting))
    return data


def set_modem_lines(
    port: serial.SerialBase, *, dtr: bool | None = None, rts: bool | None = None
) -> bool:
    """Set DTR/RTS where the port has them; a pseudo-terminal or a socket has none, which
    is not an error (returns False)."""
    try:
        if dtr is not None:
            port.dtr = dtr
        if rts is not None:
            port.rts = rts
    except (OSError, serial.SerialException) as e:
        code = getattr(e, "errno", None) or getattr(e.__cause__, "errno", None)
        if code in (errno.ENOTTY, errno.EINVAL) or "ioctl" in str(e).lower():
            log.debug("%s has no modem lines (%s)", port.port, e)
            return False
        raise DeviceError(f"cannot set modem lines on {port.port}: {e}") from e
    return True
