"""The local API the POS software calls (docs/pos-api.md): HTTP + JSON on localhost or a
Unix socket.

    GET  /v1/status
    POST /v1/baskets                      {basket}            -> session + quote
    GET  /v1/sessions/{id}
    POST /v1/sessions/{id}/identify       {"phone": "..."} | {"card": "..."} | {"wait": s}
    POST /v1/sessions/{id}/options        {"redeem_points": .., "use_wallet": .., "coupons": [..]}
    POST /v1/sessions/{id}/pay
    POST /v1/sessions/{id}/cancel
    POST /v1/sales/{seq}/refund           {"lines": [{"line": 0, "qty": 1}]} | {"all": true}
    POST /v1/sales/{seq}/void

Errors are ``{"error": code, "en": ..., "fa": ...}`` with a 4xx/5xx status.  With a
``pos_api.token`` configured every request needs ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import json
import logging
import re
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from edge.agent import Agent, error_view
from edge.checkout import CheckoutError
from edge.errors import LoyaltyError
from edge.sanitize import clean

log = logging.getLogger("edge.posapi")
MAX_BODY = 1024 * 1024
_SESSION = re.compile(r"^/v1/sessions/([0-9a-f]{16})(?:/(identify|options|pay|cancel))?$")
_SALE = re.compile(r"^/v1/sales/(\d{1,18})/(refund|void)$")


class Handler(BaseHTTPRequestHandler):
    agent: Agent
    token: str | None = None
    server_version = "loyalty-edge"
    timeout = 30  # a client that stops sending mid-request does not hold a thread for ever

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address, fmt % args)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = (self.headers.get("Content-Length") or "0").strip()
        if not length.isdigit():
            raise CheckoutError(
                "bad_request", "Content-Length must be a number", "طول درخواست نامعتبر است.", 400
            )
        n = int(length)
        if n > MAX_BODY:
            raise CheckoutError(
                "too_large",
                f"request body over {MAX_BODY} bytes",
                "درخواست بیش از حد بزرگ است.",
                413,
            )
        if n == 0:
            return {}
        try:
            body = json.loads(self.rfile.read(n))
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
            raise CheckoutError(
                "bad_json", f"the body is not JSON: {e}", "بدنه درخواست JSON معتبر نیست.", 400
            ) from e
        if not isinstance(body, dict):
            raise CheckoutError(
                "bad_json",
                "the body must be a JSON object",
                "بدنه درخواست باید یک شیء JSON باشد.",
                400,
            )
        return body

    def _authorised(self) -> bool:
        if self.token is None:
            return True
        return self.headers.get("Authorization") == f"Bearer {self.token}"

    def _dispatch(self, method: str) -> None:
        try:
            if not self._authorised():
                raise CheckoutError(
                    "unauthorised", "missing or wrong API token", "توکن دسترسی نادرست است.", 401
                )
            status, body = self._route(method)
        except Exception as e:
            status, body = error_view(e)
            if not isinstance(e, LoyaltyError):  # a bug: the traceback is for the developer
                log.exception("POS API %s %s failed", method, clean(self.path, 120))
            elif status >= 500:
                log.warning("POS API %s %s: %s", method, clean(self.path, 120), e)
        self._send(status, body)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _route(self, method: str) -> tuple[int, dict[str, Any]]:  # noqa: PLR0911 - one per endpoint
        a = self.agent
        path = self.path.split("?", 1)[0]
        if path == "/v1/status" and method == "GET":
            return 200, a.status()
        if path == "/v1/baskets" and method == "POST":
            body = self._body()
            s = a.call(a.checkout.open, body.get("basket", body))
            return 201, s.view()
        m = _SESSION.match(path)
        if m:
            sid, action = m.group(1), m.group(2)
            if action is None and method == "GET":
                return 200, a.call(lambda: a.checkout._session(sid).view())
            if method != "POST" or action is None:
                return 405, {"error": "method", "en": "method not allowed", "fa": "روش نامجاز"}
            body = self._body()
            if action == "identify":
                return 200, self._identify(sid, body)
            if action == "options":
                return 200, a.call(a.checkout.set_options, sid, body).view()
            if action == "pay":
                return 200, a.call(a.checkout.pay, sid)
            return 200, a.call(a.checkout.cancel, sid).view()
        m = _SALE.match(path)
        if m and method == "POST":
            seq, action = int(m.group(1)), m.group(2)
            body = self._body()
            if action == "void":
                return 200, a.call(a.checkout.refund, seq, {"all": True}, "void")
            return 200, a.call(a.checkout.refund, seq, body, "refund")
        return 404, {
            "error": "not_found",
            "en": f"no such endpoint {path}",
            "fa": "چنین مسیری وجود ندارد.",
        }

    def _identify(self, sid: str, body: dict[str, Any]) -> dict[str, Any]:
        a = self.agent
        if "phone" in body:
            return a.call(a.checkout.identify, sid, phone=_text(body, "phone")).view()
        if "card" in body:
            kind = body.get("kind", "card")
            if kind not in CARD_KINDS:
                raise _bad(f"kind: one of {', '.join(CARD_KINDS)}", "نوع کارت نامعتبر است.")
            return a.call(a.checkout.identify, sid, card=_text(body, "card"), kind=kind).view()
        wait = body.get("wait", 0)
        if type(wait) not in (int, float) or not 0 < wait <= 120:
            raise CheckoutError(
                "bad_request",
                "give phone, card or wait (1..120 s)",
                "شماره، کارت یا زمان انتظار لازم است.",
                400,
            )
        ev = a.wait_ident(float(wait), since=a.checkout._session(sid).created)
        if ev is None:
            raise CheckoutError(
                "timeout",
                "nobody tapped a card, scanned or typed a number",
                "کارتی کشیده نشد و شماره‌ای وارد نشد.",
                408,
            )
        if "error" in ev:
            raise CheckoutError(ev["error"], ev["en"], ev["fa"], 400)
        if "phone" in ev:
            return a.call(a.checkout.identify, sid, phone=ev["phone"]).view()
        return a.call(a.checkout.identify, sid, card=ev["card"], kind=ev["kind"]).view()


CARD_KINDS = ("card", "nfc", "rfid", "qr")


def _bad(en: str, fa: str) -> CheckoutError:
    return CheckoutError("bad_request", en, fa, 400)


def _text(body: dict[str, Any], name: str) -> str:
    v = body[name]
    if not isinstance(v, str) or len(v) > 256:
        raise _bad(f"{name}: a text of at most 256 characters", "مقدار ورودی نامعتبر است.")
    return v


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def serve(
    agent: Agent, listen: str, token: str | None
) -> tuple[socketserver.BaseServer, threading.Thread, str]:
    handler = type("BoundHandler", (Handler,), {"agent": agent, "token": token})
    server: socketserver.BaseServer
    if listen.startswith("unix:"):
        sock = Path(listen[5:])
        if sock.is_socket():  # a stale socket of an earlier run; never any other file
            sock.unlink()
        server = _UnixServer(str(sock), handler)
        sock.chmod(0o660)
        where = listen
    else:
        host, _, port = listen.rpartition(":")
        http = ThreadingHTTPServer((host or "127.0.0.1", int(port)), handler)
        http.daemon_threads = True
        server = http
        host_s, port_n = http.server_address[:2]
        where = f"http://{host_s!s}:{port_n}"
    t = threading.Thread(target=server.serve_forever, name="pos-api", daemon=True)
    t.start()
    return server, t, where
