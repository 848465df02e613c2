"""The local API the POS software calls (docs/pos-api.md): HTTP + JSON on localhost or a
Unix socket.

    GET  /v1/status
    POST /v1/baskets                      {basket}            -> session + quote
    GET  /v1/sessions/{id}
    POST /v1/sessions/{id}/identify       {"phone": "..."} | {"card": "..."} | {"wait": s}
    POST /v1/sessions/{id}/options        {"redeem_points": .., "use_wallet": .., "coupons": [..]}
    POST /v1/sessions/{id}/pay            {"key": ..?, "loyalty": true | false}
    POST /v1/sessions/{id}/cancel
    POST /v1/sales/{seq}/refund           {"lines": [{"line": 0, "qty": 1}]} | {"all": true}
    POST /v1/sales/{seq}/void
    POST /v1/members                      {"phone": "...", "consent": true,
                                           "referral": "CODE"?}  enrol now

Errors are ``{"error": code, "en": ..., "fa": ...}``; this module alone maps each code to
its HTTP status (:data:`STATUS`), for the domain's errors and for HTTP's own (a garbage
request line, an unknown method, a body without a length).  With a ``pos_api.token``
configured every request needs ``Authorization: Bearer TOKEN`` (the scheme in any case).
An ``Idempotency-Key`` header (or ``key`` in the body) makes ``pay`` and ``refund``
answer a repeat with the first answer instead of moving money again.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import socketserver
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from edge.agent import Agent
from edge.errors import LoyaltyError
from edge.sanitize import clean
from edge.settlement import CheckoutError

log = logging.getLogger("edge.posapi")
MAX_BODY = 1024 * 1024
_SESSION = re.compile(r"^/v1/sessions/([^/]{1,64})(?:/(identify|options|pay|cancel))?$")
_SALE = re.compile(r"^/v1/sales/(\d{1,18})/(refund|void)$")

# every error code the POS can see, and its HTTP status (docs/pos-api.md)
STATUS: dict[str, int] = {
    "bad_request": 400,
    "bad_json": 400,
    "bad_basket": 400,
    "bad_phone": 400,
    "bad_referral": 400,
    "bad_card": 400,
    "bad_qr": 400,
    "expired_qr": 400,
    "bad_refund": 400,
    "wrong_store": 400,
    "unauthorised": 401,
    "not_found": 404,
    "unknown_session": 404,
    "unknown_sale": 404,
    "method": 405,
    "timeout": 408,
    "not_open": 409,
    "payment_pending": 409,
    "refund_pending": 409,
    "length_required": 411,
    "too_large": 413,
    "internal": 500,
    "bank_unknown": 502,
    "device": 502,
    "no_rules": 503,
    "no_bank": 503,
    "chain_conflict": 503,
    "busy": 503,
    "outbox_full": 507,
    "disk_full": 507,
}


def error_view(e: Exception) -> tuple[int, dict[str, Any]]:
    if isinstance(e, CheckoutError):
        return STATUS.get(e.code, 400), {"error": e.code, "en": e.en, "fa": e.fa}
    if isinstance(e, LoyaltyError):
        return 502, {"error": "device", "en": e.en, "fa": e.fa}
    return 500, {
        "error": "internal",
        "en": "internal error (see the agent's log)",
        "fa": "خطای داخلی (گزارش سرویس را ببینید)",
    }


def _err(code: str, en: str, fa: str) -> CheckoutError:
    return CheckoutError(code, en, fa)


# HTTP's own refusals (raised by http.server before our code runs), said for a cashier
_HTTP_TEXT: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "the request is not valid HTTP", "درخواست نامعتبر است."),
    404: ("not_found", "no such endpoint", "چنین مسیری وجود ندارد."),
    405: ("method", "method not allowed", "این روش درخواست مجاز نیست."),
    408: ("timeout", "the request took too long to arrive", "درخواست به‌موقع نرسید."),
    411: (
        "length_required",
        "send Content-Length or a chunked body",
        "طول درخواست مشخص نشده است.",
    ),
    413: ("too_large", "the request is too large", "درخواست بیش از حد بزرگ است."),
    414: ("too_large", "the address is too long", "آدرس درخواست بیش از حد طولانی است."),
    431: ("too_large", "the request headers are too large", "سرآیند درخواست بیش از حد بزرگ است."),
    501: ("method", "method not supported", "این روش درخواست پشتیبانی نمی‌شود."),
    505: ("bad_request", "HTTP version not supported", "نسخه HTTP پشتیبانی نمی‌شود."),
}


class Handler(BaseHTTPRequestHandler):
    agent: Agent
    token: str | None = None
    server_version = "loyalty-edge"
    protocol_version = "HTTP/1.0"
    # a request line too broken to name its version still gets a status line and headers
    default_request_version = "HTTP/1.0"
    timeout = 30  # a client that stops sending mid-request does not hold a thread for ever

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address, clean(fmt % args, 300))

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a garbage request line, an unknown method, ...) in the
        documented JSON envelope instead of an HTML page."""
        name, en, fa = _HTTP_TEXT.get(
            code, ("bad_request", HTTPStatus(code).phrase, "درخواست نامعتبر است.")
        )
        self.close_connection = True
        if not hasattr(self, "command") or self.command is None:
            self.command = ""
        try:
            self._send(code, {"error": name, "en": en, "fa": fa})
        except OSError:
            log.debug("the client left before its error was sent")

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            line = self.rfile.readline(66)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _err(
                    "bad_request", "a malformed chunked body", "بدنه درخواست نامعتبر است."
                ) from None
            if size == 0:
                while self.rfile.readline(1026) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(out)
            if len(out) + size > MAX_BODY:
                raise _err(
                    "too_large",
                    f"request body over {MAX_BODY} bytes",
                    "درخواست بیش از حد بزرگ است.",
                )
            out += self.rfile.read(size)
            self.rfile.readline(3)  # the CRLF after the chunk

    def _raw_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        length = length.strip()
        if not length.isdigit():
            raise _err("bad_request", "Content-Length must be a number", "طول درخواست نامعتبر است.")
        n = int(length)
        if n > MAX_BODY:
            raise _err(
                "too_large", f"request body over {MAX_BODY} bytes", "درخواست بیش از حد بزرگ است."
            )
        return self.rfile.read(n) if n else b""

    def _body(self) -> dict[str, Any]:
        raw = self._raw_body()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
            raise _err(
                "bad_json",
                f"the body is not JSON: {clean(str(e), 120)}",
                "بدنه درخواست JSON معتبر نیست.",
            ) from e
        if not isinstance(body, dict):
            raise _err(
                "bad_json", "the body must be a JSON object", "بدنه درخواست باید یک شیء JSON باشد."
            )
        return body

    def _authorised(self) -> bool:
        if self.token is None:
            return True
        scheme, _, given = (self.headers.get("Authorization") or "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        )

    def _dispatch(self, method: str) -> None:
        try:
            if not self._authorised():
                raise _err("unauthorised", "missing or wrong API token", "توکن دسترسی نادرست است.")
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

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _key(self, body: dict[str, Any]) -> str | None:
        key = self.headers.get("Idempotency-Key")
        if key is None:
            key = body.pop("key", None)
        return key if key is None or isinstance(key, str) else str(key)

    def _route(self, method: str) -> tuple[int, dict[str, Any]]:  # noqa: PLR0911 - one per endpoint
        a = self.agent
        path = self.path.split("?", 1)[0]
        if path == "/v1/status":
            _only(method, "GET")
            return 200, a.status()
        if path == "/v1/baskets":
            _only(method, "POST")
            body = self._body()
            s = a.call(a.checkout.open, body.get("basket", body))
            return 201, s.view()
        if path == "/v1/members":
            _only(method, "POST")
            body = self._body()
            if body.get("consent") is not True:
                raise _err(
                    "bad_request",
                    "enrolment needs the customer's consent: send consent true",
                    "عضویت به رضایت مشتری نیاز دارد.",
                )
            referral = body.get("referral")
            if referral is not None and not isinstance(referral, str):
                raise _err("bad_request", "referral: text", "کد معرف باید متن باشد.")
            return 200, a.call(a.checkout.enroll, _text(body, "phone", "شماره موبایل"), referral)
        m = _SESSION.match(path)
        if m:
            return self._session(method, m.group(1), m.group(2))
        m = _SALE.match(path)
        if m:
            _only(method, "POST")
            seq, action = int(m.group(1)), m.group(2)
            body = self._body()
            key = self._key(body)
            if action == "void":
                req = {"all": True, **{k: v for k, v in body.items() if k in ("to", "id")}}
                return 200, a.call(a.refunds.refund, seq, req, "void", key)
            return 200, a.call(a.refunds.refund, seq, body, "refund", key)
        return 404, {
            "error": "not_found",
            "en": f"no such endpoint {clean(path, 80)}",
            "fa": "چنین مسیری وجود ندارد.",
        }

    def _session(self, method: str, sid: str, action: str | None) -> tuple[int, dict[str, Any]]:
        a = self.agent
        if action is None:
            _only(method, "GET")
            return 200, a.call(lambda: a.checkout.session(sid).view())
        _only(method, "POST")
        body = self._body()
        if action == "identify":
            return 200, self._identify(sid, body)
        if action == "options":
            return 200, a.call(a.checkout.set_options, sid, body).view()
        if action == "pay":
            key = self._key(body)
            loyalty = body.get("loyalty", True)
            if type(loyalty) is not bool:
                raise _err("bad_request", "loyalty: true or false", "مقدار loyalty نامعتبر است.")
            return 200, a.call(a.checkout.pay, sid, key, loyalty=loyalty)
        if a.abort_payment(sid):  # the customer had not paid yet: the terminal stops
            return 200, a.call(lambda: a.checkout.session(sid).view())
        return 200, a.call(a.checkout.cancel, sid).view()

    def _identify(self, sid: str, body: dict[str, Any]) -> dict[str, Any]:
        a = self.agent
        if "phone" in body:
            return a.call(
                a.checkout.identify, sid, phone=_text(body, "phone", "شماره موبایل")
            ).view()
        if "card" in body:
            kind = body.get("kind", "card")
            if kind not in CARD_KINDS:
                raise _err(
                    "bad_request", f"kind: one of {', '.join(CARD_KINDS)}", "نوع کارت نامعتبر است."
                )
            card = _text(body, "card", "شناسه کارت")
            return a.call(a.checkout.identify, sid, card=card, kind=kind).view()
        wait = body.get("wait", 0)
        if type(wait) not in (int, float) or not 0 < wait <= 120:
            raise _err(
                "bad_request",
                "give phone, card or wait (1..120 s)",
                "شماره، کارت یا زمان انتظار لازم است.",
            )
        # the session belongs to the agent thread: read its start there, like every call
        since = a.call(lambda: a.checkout.session(sid).created)
        ev = a.wait_ident(float(wait), since=since)
        if ev is None:
            raise _err(
                "timeout",
                "nobody tapped a card, scanned or typed a number",
                "کارتی کشیده نشد و شماره‌ای وارد نشد.",
            )
        if "error" in ev:
            raise CheckoutError(ev["error"], ev["en"], ev["fa"])
        if "phone" in ev:
            return a.call(a.checkout.identify, sid, phone=ev["phone"]).view()
        return a.call(a.checkout.identify, sid, card=ev["card"], kind=ev["kind"]).view()


CARD_KINDS = ("card", "nfc", "rfid", "qr")


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise _err(
            "method",
            f"method {method} not allowed here (use {allowed})",
            "این روش درخواست برای این مسیر مجاز نیست.",
        )


def _text(body: dict[str, Any], name: str, fa_name: str) -> str:
    v = body[name]
    if not isinstance(v, str):
        raise _err(
            "bad_request",
            f"the {name} must be text (a JSON string), not {type(v).__name__}",
            f"{fa_name} باید به صورت متن فرستاده شود.",
        )
    if len(v) > 256:
        raise _err(
            "bad_request",
            f"the {name} is longer than 256 characters",
            f"{fa_name} بیش از حد طولانی است.",
        )
    return v


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def bind(agent: Agent, listen: str, token: str | None) -> tuple[socketserver.BaseServer, str]:
    """The POS API's socket, bound but not serving yet (so a taken address is found before
    any device is opened); OSError if it cannot be bound."""
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
    return server, where


def start(server: socketserver.BaseServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name="pos-api", daemon=True)
    t.start()
    return t


def serve(
    agent: Agent, listen: str, token: str | None
) -> tuple[socketserver.BaseServer, threading.Thread, str]:
    server, where = bind(agent, listen, token)
    return server, start(server), where
