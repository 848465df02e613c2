"""The server and bookkeeping every fake shares."""

from __future__ import annotations

import json
import math
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, dict[str, str], bytes]
FAULTS = (
    "invalid_number",
    "no_credit",
    "rate_limited",
    "server_error",
    "busy",
    "auth",
    "garbled",
    "timeout",
)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Stored:
    provider_id: int
    to: str
    text: str
    sender: str | None
    ref: str | None
    cost: int
    status: int
    template: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parts(text: str) -> int:
    """The fake's own tariff arithmetic (deliberately simpler than the code under test)."""
    n = len(text)
    if all(ord(c) < 128 for c in text):
        return 1 if n <= 160 else math.ceil(n / 153)
    return 1 if n <= 70 else math.ceil(n / 67)


def json_reply(status: int, doc: Any, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(doc, ensure_ascii=False).encode()
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body


class FakeGateway:
    """The server, the fault queue and the bookkeeping; subclasses speak a protocol."""

    price_per_part = 1_230  # Rials

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        self.messages: dict[int, Stored] = {}
        self.raw = False
        self.raw_count = 0
        self._faults: deque[str] = deque()
        self._release = threading.Event()
        self.httpd = _Server(("127.0.0.1", 0), _handler(self._dispatch))
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def fail_next(self, fault: str, times: int = 1) -> None:
        if fault not in FAULTS:
            raise ValueError(fault)
        with self.lock:
            self._faults.extend([fault] * times)

    def close(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def _fault(self) -> str | None:
        with self.lock:
            return self._faults.popleft() if self._faults else None

    def _hold(self) -> None:
        # "timeout": the request was taken in, the answer never comes in time.
        self._release.wait(30)

    def _dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if not self.raw:
            with self.lock:
                self.requests.append(Received(method, path, headers, body))
        return self.handle(method, path, headers, body)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that timed out and left: expected in the timeout tests
        super().handle_error(request, client_address)


def _handler(dispatch: Callable[[str, str, dict[str, str], bytes], Reply]) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body leave in one write...
        disable_nagle_algorithm = True  # ...at once: no 40 ms delayed-ACK stalls

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, out_headers, payload = dispatch(self.command, self.path, headers, body)
            try:
                self.send_response(status)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                self.close_connection = True  # the client gave up (timeout tests)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler
