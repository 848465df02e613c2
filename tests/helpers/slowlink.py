"""A store's internet link in a test: a TCP proxy with a bandwidth limit and a delay.

Every connection of one :class:`SlowLink` shares its bytes-per-second budget in each
direction (a store's terminals share the shop's line), and each chunk is delivered half the
round-trip time after it was read (a pipe: many chunks in flight at once).  Threads, not
asyncio: it runs beside paho's own threads in the blackout benchmark's terminal processes."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque


class _Bucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate / 10  # at most a tenth of a second's worth in a burst
        self.t = time.monotonic()
        self.lock = threading.Lock()

    def take(self, n: int) -> None:
        """Block until ``n`` bytes may pass."""
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.rate / 10, self.tokens + (now - self.t) * self.rate)
                self.t = now
                if self.tokens >= n or self.tokens >= self.rate / 10:
                    self.tokens -= n
                    return
                short = n - self.tokens
            time.sleep(min(short / self.rate, 0.1))  # the simulated bandwidth's pace


class SlowLink:
    def __init__(self, target: tuple[str, int], bytes_per_s: float, rtt_ms: float = 40.0) -> None:
        self.target = target
        self.up = _Bucket(bytes_per_s)
        self.down = _Bucket(bytes_per_s)
        self.delay = rtt_ms / 2000
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="slowlink").start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # the broker is down: the terminal sees a refused link
                continue
            server.settimeout(None)
            for a, b, bucket in ((client, server, self.up), (server, client, self.down)):
                threading.Thread(
                    target=self._pump, args=(a, b, bucket), daemon=True, name="slowlink-pump"
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, bucket: _Bucket) -> None:
        """Read as fast as the budget allows; a second thread delivers each chunk half a
        round trip after it was read (a pipe, not one chunk per delay)."""
        line: deque[tuple[float, bytes]] = deque()
        ready = threading.Condition()
        done = [False]

        def deliver() -> None:
            try:
                while True:
                    with ready:
                        while not line and not done[0]:
                            ready.wait()
                        if not line:
                            return
                        at, data = line.popleft()
                    wait = at - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)  # the simulated latency, not an event
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                _close(src, dst)

        threading.Thread(target=deliver, daemon=True, name="slowlink-deliver").start()
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                bucket.take(len(data))
                with ready:
                    line.append((time.monotonic() + self.delay, data))
                    ready.notify()
        except OSError:
            pass
        finally:
            with ready:
                done[0] = True
                ready.notify()


def _close(*socks: socket.socket) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            s.close()
