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
from edge.sanitize import clean

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


Label = tuple[str, str]  # what a port is, for messages: (English, Persian)


def _port_error(
    port: serial.SerialBase, verb: str, verb_fa: str, e: Exception, what: Label | None
) -> DeviceError:
    if what is None:
        name = clean(getattr(port, "port", None) or "?", 120)
        what = (name, f"درگاه {name}")
    return DeviceError(
        f"cannot {verb} {what[0]}: {e} (unplugged?)",
        fa=f"{verb_fa} {what[1]} ممکن نشد: {e} (کابل جدا شده؟)",
    )


def read_available(port: serial.SerialBase, limit: int = 4096, what: Label | None = None) -> bytes:
    """Wait (up to the port's timeout) for the first byte, then take whatever else has
    arrived: a frame is handed on as soon as it is there, not when a buffer fills.  A port
    that went away (a USB adapter pulled out) is a DeviceError, like every device fault."""
    try:
        data = bytes(port.read(1))
        if data:
            waiting = int(getattr(port, "in_waiting", 0))  # every concrete port has it
            if waiting:
                data += bytes(port.read(min(waiting, limit)))
    except (serial.SerialException, OSError) as e:
        raise _port_error(port, "read from", "خواندن از", e, what) from e
    return data


def write_all(
    port: serial.SerialBase, data: bytes, *, flush: bool = True, what: Label | None = None
) -> None:
    """Write ``data`` (and wait until it left, with ``flush``); DeviceError if the port
    went away."""
    try:
        port.write(data)
        if flush:
            port.flush()
    except (serial.SerialException, OSError) as e:
        raise _port_error(port, "write to", "نوشتن روی", e, what) from e


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
