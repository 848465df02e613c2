"""A client for the tax system's API v2 (سامانه مودیان, ``/requestsmanager/api/v2``).

::

    with MoadianClient(PRODUCTION_URL, "A1B2C3", key, certificate) as client:
        sent = client.send(invoices)  # [SendResult(tax_id, uid, reference_number)]
        states = client.inquire_by_uid([s.uid for s in sent])

Authentication: every call but ``nonce`` carries ``Authorization: Bearer <JWS of
{"nonce", "clientId"}>``.  The token is reused until shortly before its nonce expires;
a 401/403 gets one fresh token and one retry, then :class:`TaxAuthError`.

Errors: transport failures, timeouts, 5xx and 429 raise transient errors; 4xx raise
permanent :class:`TaxRejectedError` with the system's codes.  The client never retries
on its own (apart from the token refresh): retrying and back-off belong to the durable
queue that calls it.  One client per thread.  Tokens, keys and packets are never
logged; a log line names the method, the path, the status and the time taken.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from cloud_broker.tax.errors import (
    TaxError,
    TaxProtocolError,
    TaxRejectedError,
    TaxTimeoutError,
    TaxUnavailableError,
    TaxValidationError,
)
from cloud_broker.tax.invoice import Invoice
from cloud_broker.tax.jose import ServerKey, TaxpayerCredentials, auth_token, seal
from cloud_broker.tax.responses import (
    InquiryResult,
    Nonce,
    SendResult,
    ServerInformation,
    parse_inquiry,
    parse_nonce,
    parse_send_response,
    parse_server_information,
    read_answer,
)
from cloud_broker.tax.taxid import validate_memory_id
from cloud_broker.tax.wirejson import encode_json

__all__ = [
    "API_PATH",
    "MAX_BATCH",
    "MAX_INQUIRY_IDS",
    "PRODUCTION_URL",
    "SANDBOX_URL",
    "MoadianClient",
    "new_request_uid",
]

log = logging.getLogger(__name__)

PRODUCTION_URL = "https://tp.tax.gov.ir"
SANDBOX_URL = "https://sandboxrc.tax.gov.ir"
API_PATH = "/requestsmanager/api/v2"
#: invoices per ``POST invoice``; the system answers error 4143 above it
MAX_BATCH = 1000
#: ids per inquiry request (our own cautious limit; the API does not publish one)
MAX_INQUIRY_IDS = 100
NONCE_TTL_RANGE = (10, 200)
DEFAULT_TIMEOUT_S = 30.0

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def new_request_uid() -> str:
    """A fresh ``requestTraceId`` (a UUID, as the system requires: error 4162 otherwise).

    A queue should make and store it *before* sending, so that after a timeout it can
    ask :meth:`MoadianClient.inquire_by_uid` whether the packet arrived.
    """
    return str(uuid.uuid4())


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _query_time(moment: datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ss.fffffff00K`` as the inquiry endpoints take it."""
    if moment.tzinfo is None:
        raise TaxValidationError("start/end", "needs a time zone", "منطقه زمانی لازم است")
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}000{offset[:3]}:{offset[3:]}"


def _chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: datetime


class MoadianClient:
    """The tax system's API for one fiscal memory (``memory_id``).

    ``base_url`` is the server root (:data:`PRODUCTION_URL`, :data:`SANDBOX_URL` or a
    test server); the client adds :data:`API_PATH`.  ``http`` lets the caller share a
    configured :class:`httpx.Client` (it is then not closed here).  ``timeout`` bounds
    each request in seconds.  ``clock`` is for tests.
    """

    def __init__(
        self,
        base_url: str,
        memory_id: str,
        private_key: RSAPrivateKey,
        certificate: x509.Certificate,
        http: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        nonce_ttl_s: int = 30,
        token_margin_s: float = 5.0,
        reuse_tokens: bool = True,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not NONCE_TTL_RANGE[0] <= nonce_ttl_s <= NONCE_TTL_RANGE[1]:
            raise TaxValidationError(
                "nonce_ttl_s",
                f"must be {NONCE_TTL_RANGE[0]}-{NONCE_TTL_RANGE[1]} seconds",
                f"باید بین {NONCE_TTL_RANGE[0]} و {NONCE_TTL_RANGE[1]} ثانیه باشد",
            )
        self.memory_id = validate_memory_id(memory_id)
        self._credentials = TaxpayerCredentials(private_key, certificate)
        self._root = base_url.rstrip("/") + API_PATH
        self._own_http = http is None
        self._http = http if http is not None else httpx.Client()
        self._timeout = httpx.Timeout(timeout)
        self._nonce_ttl_s = nonce_ttl_s
        self._token_margin_s = token_margin_s
        self._reuse_tokens = reuse_tokens
        self._clock = clock
        self._token: _Token | None = None
        self._server_info: ServerInformation | None = None

    def __repr__(self) -> str:
        return f"MoadianClient({self._root!r}, memory_id={self.memory_id!r})"

    @property
    def send_budget_s(self) -> float:
        """The longest one :meth:`send` of up to :data:`MAX_BATCH` invoices can keep its
        packets unanswered: three exchanges (the server's key, a token, the invoices), each
        a connection and an answer, each bounded by ``timeout``.  A queue that stamps a
        request before it leaves and then dies knows the packet left within this."""
        return 3 * 2 * float(self._timeout.read or 0.0)

    # ---------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_http:
            self._http.close()

    def __enter__(self) -> MoadianClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---------------------------------------------------------------- HTTP

    def _send_http(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]] | None,
        body: bytes | None,
        auth: bool,
    ) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        started = time.monotonic()
        try:
            response = self._http.request(
                method,
                f"{self._root}/{path}",
                params=tuple(params) if params else None,
                content=body,
                headers=headers,
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            log.warning("tax %s %s timed out", method, path)
            raise TaxTimeoutError(
                f"no answer from the tax system to {method} {path} in time",
                f"سامانه مودیان به موقع به {method} {path} پاسخ نداد",
            ) from exc
        except httpx.HTTPError as exc:
            log.warning("tax %s %s failed: %s", method, path, type(exc).__name__)
            raise TaxUnavailableError(
                f"cannot reach the tax system ({type(exc).__name__})",
                f"ارتباط با سامانه مودیان برقرار نشد ({type(exc).__name__})",
            ) from exc
        elapsed_ms = (time.monotonic() - started) * 1000
        log.info("tax %s %s -> %d in %.0f ms", method, path, response.status_code, elapsed_ms)
        return response

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        auth: bool = True,
    ) -> Any:
        response = self._send_http(method, path, params, body, auth)
        if auth and response.status_code in (401, 403):
            self.invalidate_token()  # expired or already used: one fresh nonce, one retry
            response = self._send_http(method, path, params, body, auth)
        return read_answer(response.status_code, response.content, response.headers)

    # ---------------------------------------------------------------- session

    def get_nonce(self, ttl_s: int | None = None) -> Nonce:
        """A one-time challenge (``GET nonce?timeToLive=``); needs no token."""
        ttl = ttl_s if ttl_s is not None else self._nonce_ttl_s
        body = self._request("GET", "nonce", params=[("timeToLive", str(ttl))], auth=False)
        return parse_nonce(body, requested_ttl_s=ttl, now=self._clock())

    def token(self) -> str:
        """A bearer token, reused until ``token_margin_s`` before its nonce expires."""
        now = self._clock()
        cached = self._token
        fresh_enough = (
            cached is not None and (cached.expires_at - now).total_seconds() > self._token_margin_s
        )
        if self._reuse_tokens and cached is not None and fresh_enough:
            return cached.value
        nonce = self.get_nonce()
        value = auth_token(nonce.value, self.memory_id, self._credentials, now=now)
        self._token = _Token(value, nonce.expires_at)
        return value

    def invalidate_token(self) -> None:
        """Forget the cached token; the next call signs a fresh nonce."""
        self._token = None

    def server_information(self, *, refresh: bool = False) -> ServerInformation:
        """The server's time and encryption keys (cached until ``refresh``)."""
        if self._server_info is None or refresh:
            self._server_info = parse_server_information(self._request("GET", "server-information"))
        return self._server_info

    # ---------------------------------------------------------------- invoices

    def _check_batch(self, invoices: Sequence[Invoice], uids: Sequence[str]) -> None:
        if len(uids) != len(invoices):
            raise TaxValidationError(
                "uids", "one uid per invoice", "برای هر صورتحساب یک شناسه لازم است"
            )
        for uid in uids:
            if not _UUID.fullmatch(uid):
                raise TaxValidationError("uids", f"{uid!r} is not a UUID", f"«{uid}» یک UUID نیست")
        if len(set(uids)) != len(uids) or len({i.tax_id for i in invoices}) != len(invoices):
            raise TaxValidationError(
                "invoices",
                "tax ids and uids must be unique in a batch",
                "شماره‌ها در یک دسته تکراری‌اند",
            )
        for invoice in invoices:
            if invoice.seller.memory_id != self.memory_id:
                raise TaxValidationError(
                    "memory_id",
                    f"invoice {invoice.tax_id} belongs to memory {invoice.seller.memory_id}",
                    f"صورتحساب {invoice.tax_id} متعلق به حافظه {invoice.seller.memory_id} است",
                )

    def _packet(self, invoice: Invoice, uid: str, key: ServerKey) -> dict[str, Any]:
        payload = seal(encode_json(invoice.to_packet()), self._credentials, key, now=self._clock())
        return {"payload": payload, "header": {"requestTraceId": uid, "fiscalId": self.memory_id}}

    def send(
        self, invoices: Sequence[Invoice], uids: Sequence[str] | None = None
    ) -> list[SendResult]:
        """Sign, encrypt and send invoices, :data:`MAX_BATCH` per request.

        ``uids`` (one :func:`new_request_uid` per invoice) default to fresh ones.  Every
        invoice is checked before anything is sent.  Acceptance only means the system
        queued the packet; :meth:`inquire_by_uid` tells whether it was valid.  If a later
        chunk fails, the error's ``accepted`` lists the results of the earlier chunks.
        """
        if not invoices:
            return []
        request_uids = list(uids) if uids is not None else [new_request_uid() for _ in invoices]
        self._check_batch(invoices, request_uids)
        results: list[SendResult] = []
        try:
            key = self.server_information().encryption_key()
            for start in range(0, len(invoices), MAX_BATCH):
                chunk = list(
                    zip(
                        invoices[start : start + MAX_BATCH],
                        request_uids[start : start + MAX_BATCH],
                        strict=True,
                    )
                )
                packets = [self._packet(invoice, uid, key) for invoice, uid in chunk]
                accepted = parse_send_response(
                    self._request("POST", "invoice", body=encode_json(packets))
                )
                missing = [inv.tax_id for inv, uid in chunk if uid not in accepted]
                results.extend(
                    SendResult(inv.tax_id, uid, accepted[uid])
                    for inv, uid in chunk
                    if uid in accepted
                )
                if missing:
                    raise TaxProtocolError(
                        f"no reference number for {', '.join(missing)}",
                        f"برای {', '.join(missing)} شماره پیگیری برنگشت",
                    )
                log.info("tax: %d invoices queued by the tax system", len(chunk))
        except TaxError as exc:
            if isinstance(exc, TaxRejectedError):
                self._server_info = None  # a rotated server key is one cause: ask again next time
            exc.accepted = tuple(results)
            raise
        return results

    # ---------------------------------------------------------------- inquiries

    def _inquire(
        self,
        path: str,
        first: list[tuple[str, str]],
        key: str,
        ids: Sequence[str],
        start: datetime | None,
        end: datetime | None,
    ) -> list[InquiryResult]:
        found: list[InquiryResult] = []
        for chunk in _chunks(list(ids), MAX_INQUIRY_IDS):
            params = first + [(key, value) for value in chunk]
            if start is not None:
                params.append(("start", _query_time(start)))
            if end is not None:
                params.append(("end", _query_time(end)))
            found.extend(parse_inquiry(self._request("GET", path, params=params)))
        return found

    def inquire_by_uid(
        self, uids: Sequence[str], start: datetime | None = None, end: datetime | None = None
    ) -> list[InquiryResult]:
        """Status of packets by their ``requestTraceId`` (``GET inquiry-by-uid``)."""
        return self._inquire(
            "inquiry-by-uid", [("fiscalId", self.memory_id)], "uidList", uids, start, end
        )

    def inquire_by_reference(
        self,
        reference_numbers: Sequence[str],
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[InquiryResult]:
        """Status of packets by reference number (``GET inquiry-by-reference-id``)."""
        return self._inquire(
            "inquiry-by-reference-id", [], "referenceIds", reference_numbers, start, end
        )
