"""The receiving half of a scripted serial port: the device's answers wait in ``rx`` and are
read as a pyserial port reads them.  Each driver's test adds the ``write`` that checks the
host's bytes against its transcript."""

from __future__ import annotations

import time


class ScriptedRx:
    port = "scripted"

    def __init__(self) -> None:
        self.rx = bytearray()
        self.closed = False

    @property
    def in_waiting(self) -> int:
        return len(self.rx)

    def read(self, size: int = 1) -> bytes:
        if not self.rx:
            time.sleep(0.001)  # as a port with a short timeout does
            return b""
        out = bytes(self.rx[:size])
        del self.rx[:size]
        return out

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
