"""Kavenegar (کاوه‌نگار) REST API v1, as documented at https://kavenegar.com/rest.html.

Every call is ``POST https://api.kavenegar.com/v1/{API-KEY}/{scope}/{method}.json`` with a
form-encoded body; every reply is the envelope::

    {"return": {"status": 200, "message": "تایید شد"}, "entries": [...]}

``return.status`` 200 is success; anything else is one of the documented codes below
(the official Go client reads the envelope from any non-200 HTTP reply, the official
Python client from every reply; we accept both).  The key is part of the URL path, so it
goes through :class:`~cloud_broker.messages._http.KeyInPathTransport` and never reaches a
log line or an exception.

Methods used:

* ``sms/send``: ``receptor``, ``message``, ``sender`` (optional: the account's default
  line), ``localid`` (our ``ref``, whose documented purpose is to prevent duplicate
  sends, so a retry after an ambiguous timeout is not sent twice; use the outbox row id).
  Entry: ``messageid``, ``status``, ``cost`` (Rials).  The reply to a repeated localid
  is not documented; the fake answers with the first message, which is the assumption.
* ``sms/status``: ``messageid`` comma-separated, at most 500 per call.  Status codes:
  1 queued, 2 scheduled, 4/5 sent to the operator, 6 failed, 10 delivered,
  11 undelivered, 13 cancelled, 14 blocked (advertising blacklist), 100 unknown id.
* ``verify/lookup``: ``receptor``, ``template``, ``token`` (+ ``token2``, ``token3``,
  ``token10``, ``token20``), ``type=sms``: a template approved in the Kavenegar panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from cloud_broker.messages._http import (
    KEY_PLACEHOLDER,
    HttpGateway,
    as_int,
    json_body,
    result,
    retry_after,
)
from cloud_broker.messages.gateway import (
    AuthError,
    DeliveryStatus,
    Gateway,
    GatewayError,
    InvalidNumberError,
    InvalidRequestError,
    NoCreditError,
    RateLimitedError,
    Secret,
    SendResult,
    ServerError,
    check_e164,
)
from edge.errors import ConfigError

# return.status -> (error class, English, Persian), from the documented table.
_ERRORS: dict[int, tuple[type[GatewayError], str, str]] = {
    400: (InvalidRequestError, "parameters are incomplete", "پارامترها ناقص هستند"),
    401: (AuthError, "the account is deactivated", "حساب کاربری غیرفعال شده است"),
    402: (ServerError, "the operation failed", "عملیات ناموفق بود"),
    403: (AuthError, "the API key is not valid", "کلید API معتبر نیست"),
    404: (InvalidRequestError, "unknown method", "متد نامشخص است"),
    405: (InvalidRequestError, "wrong HTTP method", "متد GET/POST اشتباه است"),
    406: (InvalidRequestError, "a required parameter is empty", "پارامتر اجباری خالی است"),
    407: (
        AuthError,
        "access denied: register this server's IP in the panel",
        "دسترسی مجاز نیست؛ IP سرور را در پنل ثبت کنید",
    ),
    409: (ServerError, "the server cannot answer now", "سرور قادر به پاسخگویی نیست"),
    411: (InvalidNumberError, "the receptor is not valid", "شماره گیرنده نامعتبر است"),
    412: (InvalidRequestError, "the sender line is not valid", "شماره فرستنده نامعتبر است"),
    413: (
        InvalidRequestError,
        "the message is empty or too long",
        "متن پیام خالی یا بیش از حد طولانی است",
    ),
    414: (InvalidRequestError, "too many items in one request", "حجم درخواست بیش از حد مجاز است"),
    415: (InvalidRequestError, "start index beyond the count", "اندیس شروع بزرگ‌تر از تعداد کل است"),
    416: (AuthError, "the source IP does not match the panel", "IP مبدا با تنظیمات مطابقت ندارد"),
    417: (InvalidRequestError, "the send date is not valid", "تاریخ ارسال اشتباه است"),
    418: (NoCreditError, "the account has no credit left", "اعتبار حساب کافی نیست"),
    419: (InvalidRequestError, "array lengths differ", "طول آرایه‌ها برابر نیست"),
    420: (
        InvalidRequestError,
        "links are not allowed on this line",
        "ارسال لینک در این خط محدود شده است",
    ),
    422: (InvalidRequestError, "the text has characters it refuses", "متن کاراکتر غیرمجاز دارد"),
    424: (InvalidRequestError, "template not found or not approved", "الگوی مورد نظر پیدا نشد"),
    426: (
        InvalidRequestError,
        "this needs the advanced service",
        "این متد نیازمند سرویس پیشرفته است",
    ),
    427: (
        InvalidRequestError,
        "this line needs special access",
        "این خط نیازمند سطح دسترسی ویژه است",
    ),
    428: (InvalidRequestError, "this code cannot be sent by a call", "ارسال کد با تماس ممکن نیست"),
    429: (AuthError, "this IP is restricted", "IP محدود شده است"),
    431: (InvalidRequestError, "the code is malformed", "ساختار کد صحیح نیست"),
    432: (InvalidRequestError, "the template has no code parameter", "پارامتر کد در متن الگو نیست"),
    451: (
        RateLimitedError,
        "too many calls; the IP is held back",
        "فراخوانی بیش از حد در بازه زمانی",
    ),
    501: (
        AuthError,
        "test account: it may only send to the owner's number",
        "فقط ارسال پیام آزمایشی به شماره صاحب حساب ممکن است",
    ),
    607: (InvalidRequestError, "the tag name is not valid", "نام برچسب معتبر نیست"),
}

_STATUS: dict[int, DeliveryStatus] = {
    1: DeliveryStatus.QUEUED,
    2: DeliveryStatus.QUEUED,  # scheduled
    4: DeliveryStatus.SENT,
    5: DeliveryStatus.SENT,
    6: DeliveryStatus.FAILED,
    10: DeliveryStatus.DELIVERED,
    11: DeliveryStatus.UNDELIVERED,
    13: DeliveryStatus.CANCELLED,
    14: DeliveryStatus.BLOCKED,
    100: DeliveryStatus.UNKNOWN,
}
STATUS_BATCH = 500  # ids per sms/status call (414 beyond)
TOKENS = ("token", "token2", "token3", "token10", "token20")


def receptor(e164: str) -> str:
    """The documented receptor form: 09121234567 for Iran, 00<country><number> otherwise."""
    if e164.startswith("+98"):
        return "0" + e164[3:]
    return "00" + e164[1:]


class Kavenegar(HttpGateway):
    name = "kavenegar"
    refs_deduplicated = True  # localid: its documented purpose
    DEFAULT_BASE_URL = "https://api.kavenegar.com"

    def _check_key(self, key: Secret) -> None:
        if any(c in key.reveal() for c in "/?#%\\") or not key.reveal().isascii():
            raise ConfigError("kavenegar api key", "the key cannot be a URL path segment")

    def send(self, to: str, text: str, *, sender: str | None = None, ref: str) -> SendResult:
        data = {"receptor": receptor(check_e164(to, provider=self.name)), "message": text}
        line = sender or self.sender
        if line:
            data["sender"] = line
        if ref:
            data["localid"] = ref
        return self._entry(self._call("sms", "send", data))

    def send_template(
        self, to: str, template: str, params: Mapping[str, str], *, ref: str
    ) -> SendResult:
        unknown = sorted(set(params) - set(TOKENS))
        if unknown or "token" not in params:
            raise InvalidRequestError(
                f"a Kavenegar template takes {', '.join(TOKENS)} (token required), not {unknown}",
                "الگوی کاوه‌نگار فقط token تا token20 می‌پذیرد و token الزامی است",
                provider=self.name,
            )
        data = {
            "receptor": receptor(check_e164(to, provider=self.name)),
            "template": template,
            "type": "sms",
            **{k: str(v) for k, v in params.items()},
        }
        return self._entry(self._call("verify", "lookup", data))

    def status(self, provider_ids: Sequence[str]) -> dict[str, DeliveryStatus]:
        out = dict.fromkeys(provider_ids, DeliveryStatus.UNKNOWN)
        ids = list(out)
        for i in range(0, len(ids), STATUS_BATCH):
            entries = self._call(
                "sms", "status", {"messageid": ",".join(ids[i : i + STATUS_BATCH])}
            )
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and str(entry.get("messageid")) in out:
                    code = as_int(entry.get("status"))
                    out[str(entry["messageid"])] = _STATUS.get(
                        code if code is not None else -1, DeliveryStatus.UNKNOWN
                    )
        return out

    # ------------------------------------------------------------------ plumbing

    def _call(self, scope: str, method: str, data: Mapping[str, str]) -> Any:
        url = f"{self.base_url}/v1/{KEY_PLACEHOLDER}/{scope}/{method}.json"
        resp = self._request("POST", url, data=data)
        body = json_body(resp)
        ret = body.get("return") if isinstance(body, dict) else None
        if not isinstance(ret, dict) or (code := as_int(ret.get("status"))) is None:
            raise self._garbled(resp) if resp.is_success else self._http_error(resp)
        if code == 200 and resp.is_success:
            return body.get("entries")
        if code == 200:
            raise self._http_error(resp)
        raise self._error(code, self._safe(ret.get("message") or ""), resp)

    def _error(self, code: int, message: str, resp: httpx.Response) -> GatewayError:
        cls, en, fa = _ERRORS.get(
            code,
            (ServerError, "gateway error", "خطای درگاه")
            if code >= 500
            else (InvalidRequestError, "request refused", "درخواست پذیرفته نشد"),
        )
        en = f"{en} (Kavenegar {code})"
        fa = f"{message or fa} (کد {code})"
        if cls is RateLimitedError:
            return RateLimitedError(
                en, fa, provider=self.name, provider_code=str(code), retry_after=retry_after(resp)
            )
        return cls(en, fa, provider=self.name, provider_code=str(code))

    def _entry(self, entries: Any) -> SendResult:
        entry = entries[0] if isinstance(entries, list) and entries else entries
        if not isinstance(entry, dict) or entry.get("messageid") is None:
            raise ServerError(
                "the reply has no message id",
                "پاسخ درگاه شناسه پیام ندارد",
                provider=self.name,
                ambiguous=True,
            )
        code = as_int(entry.get("status"))
        status = _STATUS.get(code if code is not None else -1, DeliveryStatus.QUEUED)
        return result(entry["messageid"], status, entry.get("cost"))


if TYPE_CHECKING:  # mypy checks that the adapter implements the interface
    _implements: type[Gateway] = Kavenegar
