"""Where a simulated device lives: a pseudo-terminal (with a symlink of the caller's
choosing, e.g. /tmp/ttyNFC), a TCP port (ZVT over LAN), or in-process (``sim://`` URLs).

Each server runs one thread that waits on its file descriptor with a short timeout,
hands received bytes to the device and ticks its clock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pty
import select
import socket
import termios
import threading
import time
import tty
from pathlib import Path
from typing import Self

from hw_sim.device import SimDevice
from hw_sim.faults import Faults

log = logging.getLogger("hw_sim")
TICK = 0.005


class _Server:
    def __init__(self, device: SimDevice, faults: Faults | None = None) -> None:
        self.device = device
        self.faults = faults or Faults()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _deliver(self, write: object, data: bytes) -> None:
        out = self.faults.apply(data) if self.faults.active else data
        if out is None:
            self.on_disconnect()
            return
        if out:
            with self._lock:
                write(out)  # type: ignore[operator]

    def on_disconnect(self) -> None:
        """The fault injector took the link down."""

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._run, name=f"sim-{self.device.kind}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PtyServer(_Server):
    """The device on a pseudo-terminal; ``path`` is the slave device and ``link`` a symlink
    to it that drivers can be pointed at."""

    def __init__(
        self, device: SimDevice, link: str | Path | None = None, faults: Faults | None = None
    ) -> None:
        super().__init__(device, faults)
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)  # no echo, no line discipline: bytes as the hardware sends
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        self.path = os.ttyname(self.slave)
        self.link = Path(link) if link else None
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
            self.link.symlink_to(self.path)
        self._down = False
        device.attach(lambda data: self._deliver(self._write, data))

    def _write(self, data: bytes) -> None:
        if not self._down:
            os.write(self.master, data)

    def on_disconnect(self) -> None:
        self._down = True  # the cable is pulled: nothing more reaches the host

    def _run(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], TICK)
            if r:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    data = b""
                if data and not self._down:
                    self.device.receive(data)
            self.device.tick(time.monotonic())

    def stop(self) -> None:
        super().stop()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class TcpServer(_Server):
    """The device on a TCP port (one client at a time, as a ZVT terminal serves one ECR)."""

    def __init__(
        self,
        device: SimDevice,
        port: int = 0,
        host: str = "127.0.0.1",
        faults: Faults | None = None,
    ) -> None:
        super().__init__(device, faults)
        self.sock = socket.create_server((host, port))
        self.sock.settimeout(TICK)
        self.port = int(self.sock.getsockname()[1])
        self._conn: socket.socket | None = None
        device.attach(lambda data: self._deliver(self._write, data))

    def _write(self, data: bytes) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.sendall(data)

    def on_disconnect(self) -> None:
        c, self._conn = self._conn, None
        if c is not None:
            c.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._conn is None:
                try:
                    conn, _ = self.sock.accept()
                except TimeoutError:
                    self.device.tick(time.monotonic())
                    continue
                conn.settimeout(TICK)
                self._conn = conn
                self.faults.sent = 0
                self.device.connected()  # what a torn message left behind is gone
            try:
                data = self._conn.recv(4096)
                if not data:
                    self._conn.close()
                    self._conn = None
                else:
                    self.device.receive(data)
            except TimeoutError:
                pass
            except OSError:
                self._conn = None
            self.device.tick(time.monotonic())

    def stop(self) -> None:
        super().stop()
        if self._conn is not None:
            self._conn.close()
        self.sock.close()
