"""IPPanel (FarazSMS) "Edge" REST API, as documented at
https://ippanelcom.github.io/Edge-Document (source: github.com/ippanelcom/Edge-Document).

Base URL ``https://edge.ippanel.com/v1``; the API key goes in the ``Authorization``
header; bodies are JSON; every reply is the envelope::

    {"data": ..., "meta": {"status": true, "message": "انجام شد", "message_code": "200-1"}}

Documented errors: HTTP 401 with ``message_code`` "400-1" (key or token not valid) and
HTTP 422 with "400-2" and ``meta.errors`` naming the refused fields.  The documentation
gives no code for "no credit" at send time: it reports it afterwards as the state
(``state_id`` 8) of the accepted message, which :meth:`IPPanel.status` maps to FAILED.
Assumed from HTTP conventions, not from IPPanel's pages: 402 means no credit, 429 (with
``Retry-After``) rate limiting, 403 an account refused.

Methods used:

* ``POST /api/send`` with ``sending_type`` "webservice", ``from_number``, ``message``,
  ``params.recipients``: ``data.message_outbox_ids[0]`` is the id.  No cost is returned,
  and there is no client reference field, so a retry after an ambiguous timeout can
  send twice: the sender should check ``status`` first.
* ``POST /api/send`` with ``sending_type`` "pattern", ``code``, ``recipients``,
  ``params``: a pattern (template) approved in the panel.
* ``GET /api/report/recipients?bulk_id=ID``: per-recipient ``message_status`` once final
  (0 sent to the operator, 1 the operator took it, 2 delivered, 3 not delivered,
  4 blacklisted); until then ``POST /api/report/by_bulk/ID`` gives the message's
  ``state_id`` (0-2, 5 in progress, 6 sent, 3 rejected by review, 4 invalid recipients,
  7 cancelled, 8 no credit, 9 system error).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from cloud_broker.messages._http import HttpGateway, as_int, json_body, result, retry_after
from cloud_broker.messages.gateway import (
    AuthError,
    DeliveryStatus,
    Gateway,
    GatewayError,
    InvalidNumberError,
    InvalidRequestError,
    NoCreditError,
    RateLimitedError,
    SendResult,
    ServerError,
    check_e164,
)

_RECIPIENT_STATUS: dict[int, DeliveryStatus] = {
    0: DeliveryStatus.SENT,
    1: DeliveryStatus.SENT,
    2: DeliveryStatus.DELIVERED,
    3: DeliveryStatus.UNDELIVERED,
    4: DeliveryStatus.BLOCKED,
}
_BULK_STATE: dict[int, DeliveryStatus] = {
    0: DeliveryStatus.QUEUED,
    1: DeliveryStatus.QUEUED,
    2: DeliveryStatus.QUEUED,
    5: DeliveryStatus.QUEUED,
    6: DeliveryStatus.SENT,
    3: DeliveryStatus.FAILED,  # rejected by IPPanel's content review
    4: DeliveryStatus.FAILED,  # recipients invalid
    7: DeliveryStatus.CANCELLED,
    8: DeliveryStatus.FAILED,  # insufficient credit
    9: DeliveryStatus.FAILED,  # system error
}


class IPPanel(HttpGateway):
    name = "ippanel"
    DEFAULT_BASE_URL = "https://edge.ippanel.com/v1"

    def _auth_headers(self) -> Mapping[str, str]:
        return {"Authorization": self._key.reveal()}

    def send(self, to: str, text: str, *, sender: str | None = None, ref: str) -> SendResult:
        body = {
            "sending_type": "webservice",
            "from_number": self._line(sender),
            "message": text,
            "params": {"recipients": [check_e164(to, provider=self.name)]},
        }
        return self._outbox_id(self._call("POST", "/api/send", json=body))

    def send_template(
        self, to: str, template: str, params: Mapping[str, str], *, ref: str
    ) -> SendResult:
        body = {
            "sending_type": "pattern",
            "from_number": self._line(None),
            "code": template,
            "recipients": [check_e164(to, provider=self.name)],
            "params": dict(params),
        }
        return self._outbox_id(self._call("POST", "/api/send", json=body))

    def status(self, provider_ids: Sequence[str]) -> dict[str, DeliveryStatus]:
        return {pid: self._status_one(pid) for pid in dict.fromkeys(provider_ids)}

    def _status_one(self, pid: str) -> DeliveryStatus:
        if not pid.isdigit():
            return DeliveryStatus.UNKNOWN
        query = {"bulk_id": pid, "page": 1, "per_page": 1}
        rows = self._call("GET", "/api/report/recipients", params=query, missing_ok=True)
        row = rows[0] if isinstance(rows, list) and rows else {}
        code = as_int(row.get("message_status")) if isinstance(row, dict) else None
        if code is not None:
            return _RECIPIENT_STATUS.get(code, DeliveryStatus.UNKNOWN)
        page = {"page": 1, "limit": 1}
        bulk = self._call("POST", f"/api/report/by_bulk/{pid}", json=page, missing_ok=True)
        state = as_int(bulk.get("state_id")) if isinstance(bulk, dict) else None
        return _BULK_STATE.get(state if state is not None else -1, DeliveryStatus.UNKNOWN)

    # ------------------------------------------------------------------ plumbing

    def _line(self, sender: str | None) -> str:
        line = sender or self.sender
        if not line:
            raise InvalidRequestError(
                "IPPanel needs a sender line (from_number); none given or configured",
                "خط ارسال (from_number) برای IPPanel تعیین نشده است",
                provider=self.name,
            )
        return line

    def _call(self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        """``data`` of a successful reply; None for a 404 when ``missing_ok``."""
        resp = self._request(method, self.base_url + path, **kwargs)
        if missing_ok and resp.status_code == 404:
            return None
        body = json_body(resp)
        meta = body.get("meta") if isinstance(body, dict) else None
        if resp.is_success and isinstance(meta, dict) and meta.get("status") is True:
            return body.get("data")
        if resp.is_success and not isinstance(meta, dict):
            raise self._garbled(resp)
        raise self._error(resp, meta if isinstance(meta, dict) else {})

    def _error(self, resp: httpx.Response, meta: Mapping[str, Any]) -> GatewayError:
        status = resp.status_code
        code = str(meta.get("message_code") or status)
        message = self._safe(meta.get("message") or "")
        fields = " ".join(str(k) for k in meta.get("errors") or {})
        en_detail = f" (IPPanel HTTP {status}, {code}{'; fields: ' + fields if fields else ''})"
        fa = f"{message} (کد {code})" if message else f"کد {code}"
        kw: dict[str, Any] = {"provider": self.name, "provider_code": code}
        if status in {401, 403}:
            return AuthError("the API key or account was refused" + en_detail, fa, **kw)
        if status == 402:
            return NoCreditError("the account has no credit left" + en_detail, fa, **kw)
        if status == 429:
            return RateLimitedError(
                "rate limited" + en_detail, fa, retry_after=retry_after(resp), **kw
            )
        if status == 422 and "recipient" in fields:
            return InvalidNumberError("the recipient is not valid" + en_detail, fa, **kw)
        if 400 <= status < 500 or (resp.is_success and meta.get("status") is False):
            return InvalidRequestError("request refused" + en_detail, fa, **kw)
        return self._http_error(resp, message)

    def _outbox_id(self, data: Any) -> SendResult:
        ids = data.get("message_outbox_ids") if isinstance(data, dict) else None
        if not isinstance(ids, list) or not ids:
            raise ServerError(
                "the reply has no message_outbox_ids",
                "پاسخ درگاه شناسه پیام ندارد",
                provider=self.name,
                ambiguous=True,
            )
        return result(ids[0], DeliveryStatus.QUEUED)


if TYPE_CHECKING:  # mypy checks that the adapter implements the interface
    _implements: type[Gateway] = IPPanel
