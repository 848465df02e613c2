"""The tax system's answers, read into typed values.

Shapes (API v2; see docs/tax-invoices.md for the sources):

- ``GET nonce`` -> ``{"nonce": str, "expDate": str}``
- ``GET server-information`` -> ``{"serverTime": ms, "publicKeys": [{"id", "key",
  "algorithm", "purpose"}]}``
- ``POST invoice`` -> ``{"timestamp": ms, "result": [{"uid", "packetType",
  "referenceNumber", "data"}]}``, ``uid`` being the packet's ``requestTraceId``
- ``GET inquiry-by-uid`` / ``inquiry-by-reference-id`` -> ``[{"uid",
  "referenceNumber", "status", "data": {"error": [...], "warning": [...],
  "success": bool}, ...}]``
- any error -> ``{"timestamp", "requestTraceId", "errors": [{"code", "message"}]}``

Readers are lenient about extra fields and strict about the ones we rely on: a
missing one raises :class:`TaxProtocolError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cloud_broker.tax.errors import (
    PacketError,
    SystemMessage,
    TaxAuthError,
    TaxProtocolError,
    TaxRateLimitedError,
    TaxRejectedError,
    TaxServerError,
    TaxTimeoutError,
)
from cloud_broker.tax.jose import ServerKey
from cloud_broker.tax.wirejson import decode_json

__all__ = [
    "InquiryResult",
    "InquiryStatus",
    "Nonce",
    "SendResult",
    "ServerInformation",
    "parse_error_envelope",
    "parse_inquiry",
    "parse_nonce",
    "parse_send_response",
    "parse_server_information",
    "read_answer",
]


class InquiryStatus(StrEnum):
    """Where a packet stands.  ``PENDING`` is the older name of ``IN_PROGRESS``."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    IN_PROGRESS = "IN_PROGRESS"
    PENDING = "PENDING"
    NOT_FOUND = "NOT_FOUND"
    UNKNOWN = "UNKNOWN"


_FINAL = frozenset({InquiryStatus.SUCCESS, InquiryStatus.FAILED})


@dataclass(frozen=True)
class Nonce:
    """A one-time challenge and when it stops being accepted."""

    value: str
    expires_at: datetime


@dataclass(frozen=True)
class ServerInformation:
    """The server's clock and its encryption keys."""

    server_time_ms: int
    keys: tuple[ServerKey, ...]

    def encryption_key(self) -> ServerKey:
        """The key packets are encrypted for (the first RSA key the server lists)."""
        if not self.keys:
            raise TaxProtocolError(
                "server-information lists no RSA encryption key",
                "اطلاعات سامانه هیچ کلید رمزنگاری RSA ندارد",
            )
        return self.keys[0]


@dataclass(frozen=True)
class SendResult:
    """One invoice the system accepted for processing (not yet validated)."""

    tax_id: str
    uid: str
    reference_number: str


@dataclass(frozen=True)
class InquiryResult:
    """The processing state of one packet."""

    uid: str | None
    reference_number: str | None
    status: InquiryStatus
    raw_status: str
    errors: tuple[SystemMessage, ...] = ()
    warnings: tuple[SystemMessage, ...] = ()
    tax_id: str | None = None

    @property
    def is_final(self) -> bool:
        """SUCCESS or FAILED: asking again will not change the answer."""
        return self.status in _FINAL


def _protocol(what: str) -> TaxProtocolError:
    return TaxProtocolError(
        f"unexpected answer from the tax system: {what}",
        f"پاسخ نامنتظره از سامانه مودیان: {what}",
    )


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise _protocol(f"missing {key!r}")
    return value


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _protocol(f"{what} is not a JSON object")
    return body


def _messages(items: Any, kind: str) -> tuple[SystemMessage, ...]:
    if not isinstance(items, list):
        return ()
    out = []
    for item in items:
        if isinstance(item, dict) and item.get("code") is not None:
            message = item.get("message")
            out.append(
                SystemMessage(
                    str(item["code"]),
                    message if isinstance(message, str) else "",
                    str(item.get("errorType") or kind),
                )
            )
    return tuple(out)


def parse_error_envelope(body: Any) -> tuple[SystemMessage, ...]:
    """The ``errors`` of an error answer (empty when the body is not an envelope)."""
    if isinstance(body, dict):
        return _messages(body.get("errors"), "ERROR")
    return ()


def _parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_nonce(body: Any, *, requested_ttl_s: int, now: datetime) -> Nonce:
    """Read a nonce.  Its expiry is the earlier of ``expDate`` and now + the TTL asked for
    (a missing or unreadable ``expDate`` falls back to the latter)."""
    obj = _object(body, "nonce")
    local = now + timedelta(seconds=requested_ttl_s)
    stated = _parse_time(obj["expDate"]) if isinstance(obj.get("expDate"), str) else None
    return Nonce(_str(obj, "nonce"), min(local, stated) if stated else local)


def parse_server_information(body: Any) -> ServerInformation:
    """Read ``server-information``; keys other than RSA are skipped."""
    obj = _object(body, "server-information")
    keys = obj.get("publicKeys")
    if not isinstance(keys, list):
        raise _protocol("server-information without publicKeys")
    try:
        rsa_keys = tuple(
            ServerKey.from_wire(_str(k, "id"), _str(k, "key"))
            for k in keys
            if isinstance(k, dict) and str(k.get("algorithm", "RSA")).upper() == "RSA"
        )
    except PacketError as exc:
        raise _protocol(f"server-information key: {exc.en}") from exc
    server_time = obj.get("serverTime")
    return ServerInformation(server_time if isinstance(server_time, int) else 0, rsa_keys)


def parse_send_response(body: Any) -> dict[str, str]:
    """``uid`` -> ``referenceNumber`` for every packet the system took."""
    result = _object(body, "invoice answer").get("result")
    if not isinstance(result, list):
        raise _protocol("invoice answer without result")
    accepted: dict[str, str] = {}
    for entry in result:
        entry_obj = _object(entry, "invoice result")
        accepted[_str(entry_obj, "uid")] = _str(entry_obj, "referenceNumber")
    return accepted


def _inquiry_entry(entry: dict[str, Any]) -> InquiryResult:
    raw = _str(entry, "status")
    try:
        status = InquiryStatus(raw.upper())
    except ValueError:
        status = InquiryStatus.UNKNOWN
    data = entry.get("data")
    data = data if isinstance(data, dict) else {}
    return InquiryResult(
        uid=_opt_str(entry, "uid"),
        reference_number=_opt_str(entry, "referenceNumber"),
        status=status,
        raw_status=raw,
        errors=_messages(data.get("error"), "ERROR"),
        warnings=_messages(data.get("warning"), "WARNING"),
        tax_id=_opt_str(entry, "taxId") or _opt_str(data, "taxId"),
    )


def parse_inquiry(body: Any) -> list[InquiryResult]:
    """Read an inquiry answer (a list; a ``{"result": [...]}`` wrapper is tolerated)."""
    if isinstance(body, dict) and isinstance(body.get("result"), list):
        body = body["result"]
    if not isinstance(body, list):
        raise _protocol("inquiry answer is not a list")
    return [_inquiry_entry(_object(entry, "inquiry result")) for entry in body]


def read_answer(status: int, content: bytes, headers: Mapping[str, str]) -> Any:
    """The JSON body of a 2xx answer, or the matching :class:`TaxError` for any other.

    429 -> :class:`TaxRateLimitedError`, 408 -> :class:`TaxTimeoutError`, 5xx ->
    :class:`TaxServerError` (transient); 401/403 -> :class:`TaxAuthError`, other 4xx
    -> :class:`TaxRejectedError` (permanent), each with the envelope's ``errors``.
    """
    try:
        body = decode_json(content) if content else None
    except ValueError:
        body = None
    if 200 <= status < 300:
        if body is None:
            raise _protocol(f"HTTP {status} without a JSON body")
        return body
    errors = parse_error_envelope(body)
    if status == 429:
        retry_after = headers.get("Retry-After", "")
        raise TaxRateLimitedError(float(retry_after) if retry_after.isdigit() else None)
    if status == 408:
        raise TaxTimeoutError(
            "the tax system timed out (HTTP 408)", "مهلت سامانه مودیان سر آمد (HTTP 408)"
        )
    if status >= 500:
        raise TaxServerError(status, errors)
    if status in (401, 403):
        raise TaxAuthError(status, errors)
    raise TaxRejectedError(status, errors)
