"""A local fake of the tax system (سامانه مودیان), API v2, on a real HTTP socket.

It serves ``/requestsmanager/api/v2/{nonce, server-information, invoice,
inquiry-by-uid, inquiry-by-reference-id}`` and does what the real system does with
what it receives, with its own RSA key and a test CA it trusts:

- ``nonce`` hands out challenges with a time to live (10-200 s, as documented);
- every other call needs ``Authorization: Bearer <JWS>``: the signature, the ``x5c``
  certificate (issued by the trusted CA), ``sigT`` and the nonce are checked, and the
  token's ``clientId`` is the caller's fiscal memory;
- ``invoice`` checks the batch (at most 1000, ``requestTraceId`` a UUID, ``fiscalId``
  the caller's), decrypts each JWE and verifies each JWS (a failure refuses the whole
  request, 400), then queues the packets and answers a reference number per uid;
- the queued invoice is validated as the system would later: tax id format, check
  digit, memory id = the token's client, the line arithmetic and the totals, the
  invoice type/pattern/subject, and any tax id the test asked it to reject;
- inquiries answer ``IN_PROGRESS`` (or ``pending_status``) for the first
  ``polls_until_final`` inquiries of a packet, then ``SUCCESS`` or ``FAILED`` with the
  error list.  Counting inquiries rather than seconds keeps the tests free of sleeps.

Failures on purpose: :meth:`FakeMoadian.fail_next` (``timeout``: hold the request
until the client has given up on it, and until the test releases it if it asked to,
then process it anyway; ``5xx``; ``429``), and :meth:`FakeMoadian.reject`.  The timeout
waits for those events, not for a number of seconds that a loaded machine's client may
outlast.  Error codes found in public material are used as such (4143, 4144, 4145,
4162, 4102); the fake's own checks use ``FAKE-...`` codes.
"""

from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from cloud_broker.tax.errors import PacketError
from cloud_broker.tax.jose import ServerKey, open_packet, verify
from cloud_broker.tax.wirejson import decode_json
from tests.tax.fake_validation import check_invoice

PREFIX = "/requestsmanager/api/v2/"
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
Fault = Literal["timeout", "5xx", "429"]
Reply = tuple[int, dict[str, str], Any]


class _RefusedError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class FaultPlan:
    """Planned failures (:meth:`FakeMoadian.fail_next`).  A held ``timeout`` goes on once
    :meth:`release` is called; :meth:`wait_done` waits until all ``count`` failed
    requests have been handled (a timed-out invoice's packets are then in the fake)."""

    kind: Fault
    path: str | None
    skip: int
    count: int
    delay_s: float
    released: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    unfinished: int = 0

    def __post_init__(self) -> None:
        self.unfinished = self.count

    def release(self) -> None:
        self.released.set()

    def wait_done(self, timeout_s: float = 30.0) -> bool:
        return self.done.wait(timeout_s)


@dataclass
class Packet:
    """One packet the fake accepted."""

    uid: str
    reference_number: str
    client_id: str
    invoice: dict[str, Any]
    errors: list[dict[str, str]]
    inquiries: int = 0

    @property
    def tax_id(self) -> str:
        return str(self.invoice.get("header", {}).get("taxid", ""))


@dataclass
class _State:
    nonces: dict[str, datetime] = field(default_factory=dict)
    used_nonces: set[str] = field(default_factory=set)
    packets: dict[str, Packet] = field(default_factory=dict)
    by_reference: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    invoice_batches: list[int] = field(default_factory=list)
    faults: list[FaultPlan] = field(default_factory=list)
    plans: list[FaultPlan] = field(default_factory=list)  # every one made, for stop()


def _envelope(code: str, message: str) -> dict[str, Any]:
    return {
        "timestamp": int(datetime.now(UTC).timestamp() * 1000),
        "requestTraceId": str(uuid.uuid4()),
        "errors": [{"code": code, "message": message}],
    }


class FakeMoadian:
    """The fake tax system; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        trusted_ca: x509.Certificate,
        *,
        server_key: rsa.RSAPrivateKey | None = None,
        polls_until_final: int = 1,
        pending_status: str = "IN_PROGRESS",
        single_use_nonces: bool = False,
    ) -> None:
        self.trusted_ca = trusted_ca
        self.server_key = server_key or rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )
        self.key_id = str(uuid.uuid4())
        self.polls_until_final = polls_until_final
        self.pending_status = pending_status
        self.single_use_nonces = single_use_nonces
        self.rejections: dict[str, tuple[str, str]] = {}
        self._state = _State()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # ------------------------------------------------------------ control

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeMoadian:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for plan in self._state.plans:
                plan.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeMoadian:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(
        self,
        kind: Fault,
        *,
        path: str | None = None,
        count: int = 1,
        skip: int = 0,
        delay_s: float = 30.0,
        hold: bool = False,
    ) -> FaultPlan:
        """Fail the next ``count`` requests to ``path`` (any when None), after ``skip`` of them.

        ``timeout`` holds each request until its client closes the connection (gives up;
        at most ``delay_s``, after which a client still waiting gets a late answer) and,
        with ``hold``, until the returned plan is released; then it does the work."""
        plan = FaultPlan(kind, path, skip, count, delay_s)
        if not hold:
            plan.release()
        with self._lock:
            self._state.faults.append(plan)
            self._state.plans.append(plan)
        return plan

    def reject(self, tax_id: str, code: str, message: str) -> None:
        """Make validation of ``tax_id`` fail with the system's ``code`` and ``message``."""
        self.rejections[tax_id.upper()] = (code, message)

    def rotate_key(self, new_key: rsa.RSAPrivateKey) -> None:
        """Replace the encryption key (clients holding the old key id are refused)."""
        with self._lock:
            self.server_key, self.key_id = new_key, str(uuid.uuid4())

    @property
    def packets(self) -> list[Packet]:
        with self._lock:
            return list(self._state.packets.values())

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._state.requests)

    @property
    def invoice_batches(self) -> list[int]:
        with self._lock:
            return list(self._state.invoice_batches)

    def count(self, path: str) -> int:
        return sum(1 for _, p in self.requests if p == path)

    # ------------------------------------------------------------ requests

    def _take_fault(self, path: str) -> FaultPlan | None:
        with self._lock:
            for plan in self._state.faults:
                if plan.path not in (None, path):
                    continue
                if plan.skip:
                    plan.skip -= 1
                    return None
                plan.count -= 1
                if plan.count == 0:
                    self._state.faults.remove(plan)
                return plan
        return None

    def handle(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        client_gone: Callable[[float], bool] | None = None,
    ) -> Reply:
        """Answer one request; ``client_gone(limit_s)`` waits until the client hangs up."""
        url = urlsplit(target)
        if not url.path.startswith(PREFIX):
            return 404, {}, _envelope("FAKE-404", "not found")
        path = url.path[len(PREFIX) :]
        with self._lock:
            self._state.requests.append((method, path))
        fault = self._take_fault(path)
        try:
            return self._answer(method, path, url.query, headers, body, fault, client_gone)
        finally:
            if fault is not None:
                with self._lock:
                    fault.unfinished -= 1
                    if fault.unfinished == 0:
                        fault.done.set()

    def _answer(
        self,
        method: str,
        path: str,
        query_text: str,
        headers: dict[str, str],
        body: bytes,
        fault: FaultPlan | None,
        client_gone: Callable[[float], bool] | None,
    ) -> Reply:
        if fault is not None:
            if fault.kind == "5xx":
                return 503, {}, _envelope("FAKE-UNAVAILABLE", "سرویس موقتاً در دسترس نیست")
            if fault.kind == "429":
                return 429, {"Retry-After": "3"}, _envelope("FAKE-RATE", "تعداد درخواست‌ها زیاد است")
            # A timeout: the answer comes only after the client gave up (and the test let
            # the request go on), yet the work is done.
            if client_gone is not None:
                client_gone(fault.delay_s)
            else:
                self._stopping.wait(fault.delay_s)
            fault.released.wait()
        try:
            return self._route(method, path, parse_qs(query_text), headers, body)
        except _RefusedError as refused:
            return refused.status, {}, _envelope(refused.code, refused.message)

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> Reply:
        if (method, path) == ("GET", "nonce"):
            return self._nonce(query)
        client_id = self._authenticate(headers.get("authorization", ""))
        if (method, path) == ("GET", "server-information"):
            key = ServerKey(self.key_id, self.server_key.public_key())
            now_ms = int(datetime.now(UTC).timestamp() * 1000)
            keys = [{"id": key.key_id, "key": key.to_wire(), "algorithm": "RSA", "purpose": 1}]
            return 200, {}, {"serverTime": now_ms, "publicKeys": keys}
        if (method, path) == ("POST", "invoice"):
            return self._invoice(client_id, body)
        if (method, path) == ("GET", "inquiry-by-uid"):
            if query.get("fiscalId", [""])[0] != client_id:
                raise _RefusedError(403, "FAKE-FISCAL-ID", "شناسه حافظه با توکن یکی نیست")
            return 200, {}, self._inquire(client_id, query.get("uidList", []), by_reference=False)
        if (method, path) == ("GET", "inquiry-by-reference-id"):
            return (
                200,
                {},
                self._inquire(client_id, query.get("referenceIds", []), by_reference=True),
            )
        raise _RefusedError(404, "FAKE-404", f"no {method} {path}")

    def _nonce(self, query: dict[str, list[str]]) -> Reply:
        ttl_text = query.get("timeToLive", ["30"])[0]
        if not ttl_text.isdigit() or not 10 <= int(ttl_text) <= 200:
            raise _RefusedError(400, "FAKE-TTL", "timeToLive باید بین ۱۰ و ۲۰۰ باشد")
        nonce = uuid.uuid4().hex
        expires = datetime.now(UTC) + timedelta(seconds=int(ttl_text))
        with self._lock:
            self._state.nonces[nonce] = expires
        return 200, {}, {"nonce": nonce, "expDate": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}

    def _authenticate(self, authorization: str) -> str:
        if not authorization.startswith("Bearer "):
            raise _RefusedError(401, "4102", "توکن ارسال نشده است")
        try:
            token = verify(authorization.removeprefix("Bearer "), [self.trusted_ca])
            claims = json.loads(token.payload)
        except (PacketError, ValueError) as exc:
            raise _RefusedError(401, "4102", f"توکن نامعتبر است ({exc})") from exc
        nonce, client_id = claims.get("nonce"), claims.get("clientId")
        with self._lock:
            expires = self._state.nonces.get(str(nonce))
            if expires is None or expires < datetime.now(UTC) or nonce in self._state.used_nonces:
                raise _RefusedError(401, "4102", "چالش تصادفی معتبر نیست یا منقضی شده است")
            if self.single_use_nonces:
                self._state.used_nonces.add(str(nonce))
        if not isinstance(client_id, str) or len(client_id) != 6:
            raise _RefusedError(401, "4102", "clientId نامعتبر است")
        return client_id

    def _invoice(self, client_id: str, body: bytes) -> Reply:
        try:
            items = json.loads(body)
        except ValueError:
            items = None
        if not isinstance(items, list) or not items:
            raise _RefusedError(400, "4144", "بدنه درخواست خالی است یا JSON معتبر نیست")
        if len(items) > 1000:
            raise _RefusedError(
                400, "4143", "در یک درخواست نمی‌توانید بیش از ۱۰۰۰ صورتحساب ارسال کنید"
            )
        opened = []
        for item in items:
            header = item.get("header") if isinstance(item, dict) else None
            if not isinstance(header, dict) or not all(
                (item.get("payload"), header.get("requestTraceId"), header.get("fiscalId"))
            ):
                raise _RefusedError(400, "4145", "payload، requestTraceId و fiscalId لازم است")
            uid = str(header["requestTraceId"])
            if not UUID_RE.fullmatch(uid):
                raise _RefusedError(400, "4162", "شناسه درخواست (requestTraceId) معتبر نیست")
            if header["fiscalId"] != client_id:
                raise _RefusedError(400, "FAKE-FISCAL-ID", "fiscalId با توکن یکی نیست")
            with self._lock:
                key, key_id, seen = self.server_key, self.key_id, uid in self._state.packets
            if seen:
                raise _RefusedError(400, "FAKE-DUPLICATE-UID", f"requestTraceId {uid} تکراری است")
            try:
                signed = open_packet(str(item["payload"]), key, [self.trusted_ca], key_id=key_id)
                invoice = decode_json(signed.payload)
            except PacketError as exc:
                raise _RefusedError(400, f"FAKE-{exc.code}", exc.fa) from exc
            except ValueError as exc:
                raise _RefusedError(400, "FAKE-JSON", "محتوای امضاشده JSON نیست") from exc
            opened.append((uid, invoice))
        result = []
        with self._lock:
            self._state.invoice_batches.append(len(items))
            for uid, invoice in opened:
                errors = check_invoice(invoice, client_id)
                tax_id = str(invoice.get("header", {}).get("taxid", "")).upper()
                if tax_id in self.rejections:
                    code, message = self.rejections[tax_id]
                    errors.append({"code": code, "message": message, "errorType": "ERROR"})
                ref = str(uuid.uuid4())
                self._state.packets[uid] = Packet(uid, ref, client_id, invoice, errors)
                self._state.by_reference[ref] = uid
                result.append(
                    {"uid": uid, "packetType": "INVOICE.V01", "referenceNumber": ref, "data": None}
                )
        return 200, {}, {"timestamp": int(datetime.now(UTC).timestamp() * 1000), "result": result}

    def _inquire(
        self, client_id: str, ids: list[str], *, by_reference: bool
    ) -> list[dict[str, Any]]:
        answers = []
        with self._lock:
            for ident in ids:
                uid = self._state.by_reference.get(ident) if by_reference else ident
                packet = self._state.packets.get(uid or "")
                if packet is None or packet.client_id != client_id:
                    key = "referenceNumber" if by_reference else "uid"
                    answers.append({key: ident, "status": "NOT_FOUND", "data": {}})
                    continue
                packet.inquiries += 1
                entry: dict[str, Any] = {
                    "uid": packet.uid,
                    "referenceNumber": packet.reference_number,
                    "packetType": "INVOICE.V01",
                    "fiscalId": client_id,
                    "sign": "",
                }
                if packet.inquiries <= self.polls_until_final:
                    entry.update(status=self.pending_status, data={})
                else:
                    ok = not packet.errors
                    entry.update(
                        status="SUCCESS" if ok else "FAILED",
                        data={"error": packet.errors, "warning": [], "success": ok},
                    )
                answers.append(entry)
        return answers


def _wait_hung_up(sock: socket.socket, stopping: threading.Event, limit_s: float) -> bool:
    """Wait until the client closes its end of ``sock`` (True), or ``limit_s`` passes or
    the fake stops (False)."""
    deadline = time.monotonic() + limit_s
    while not stopping.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        readable, _, _ = select.select([sock], [], [], min(left, 0.25))
        if not readable:
            continue
        try:
            if not sock.recv(1, socket.MSG_PEEK):
                return True  # end of file: the client gave up and closed the connection
        except OSError:
            return True  # reset by the client
        stopping.wait(left)  # it sent more (no client of ours does): wait the limit out
    return False


def _handler_for(fake: FakeMoadian) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = fake.handle(
                method,
                self.path,
                headers,
                body,
                lambda limit_s: _wait_hung_up(self.connection, fake._stopping, limit_s),
            )
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a "timeout" fault): nothing to answer

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler
