"""A store's internet link in a test: a TCP proxy with a bandwidth limit and a delay.

Every connection of one :class:`SlowLink` shares its bytes-per-second budget in each
direction (a store's terminals share the shop's line), and each chunk is held for half
the round-trip time before it is forwarded.  Threads, not asyncio: it runs beside paho's
own threads in the terminal processes of the blackout benchmark."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


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
            time.sleep(min(short / self.rate, 0.1))


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
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                bucket.take(len(data))
                if self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
