"""What the HTTP adapters share: one httpx client, transport errors mapped, the key hidden.

Some gateways (Kavenegar) take the API key as a segment of the URL path.  httpx logs
every request URL at INFO, and exceptions carry the request, so the client only ever sees
the placeholder ``***``: :class:`KeyInPathTransport` puts the key into the copy of the
request it hands to the network and nowhere else.
"""

from __future__ import annotations

import functools
import json
import ssl
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import httpx

from cloud_broker.messages.gateway import (
    DeliveryStatus,
    GatewayError,
    GatewayTimeoutError,
    InvalidRequestError,
    NetworkError,
    RateLimitedError,
    Secret,
    SendResult,
    ServerError,
)
from edge.sanitize import clean

KEY_PLACEHOLDER = "***"
_AMBIGUOUS_HTTP = (502, 504)  # a proxy answered; the gateway behind it may have acted


class KeyInPathTransport(httpx.BaseTransport):
    """Replaces the path segment ``/***/`` by the key, in the request sent on the wire only."""

    def __init__(self, inner: httpx.BaseTransport, key: Secret) -> None:
        self._inner = inner
        self._key = key

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        marker = f"/{KEY_PLACEHOLDER}/".encode()
        raw = request.url.raw_path
        if marker in raw:
            real = raw.replace(marker, f"/{self._key.reveal()}/".encode(), 1)
            request = httpx.Request(
                request.method,
                request.url.copy_with(raw_path=real),
                headers=request.headers,
                stream=request.stream,
                extensions=request.extensions,
            )
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class HttpGateway:
    """Base of the HTTP adapters: construction, ``_request``, closing, a safe ``repr``."""

    name: str = "http"
    supports_templates: bool = True
    refs_deduplicated: bool = False
    DEFAULT_BASE_URL: ClassVar[str] = ""

    def __init__(
        self,
        api_key: Secret,
        *,
        base_url: str | None = None,
        sender: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not isinstance(api_key, Secret):
            raise TypeError("api_key must be a Secret (see load_api_key)")
        self._check_key(api_key)
        self._key = api_key
        self.base_url = (base_url or self.DEFAULT_BASE_URL).rstrip("/")
        self.sender = sender
        self.timeout = timeout
        inner = transport if transport is not None else httpx.HTTPTransport(verify=_tls())
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=KeyInPathTransport(inner, api_key),
            headers={"Accept": "application/json", **self._auth_headers()},
            follow_redirects=False,
        )

    def _auth_headers(self) -> Mapping[str, str]:
        return {}

    def _check_key(self, key: Secret) -> None:
        """Refuse a key this gateway cannot carry (ConfigError)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, sender={self.sender!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange; transport failures become GatewayTimeoutError or NetworkError."""
        try:
            return self._client.request(method, url, **kwargs)
        except httpx.TimeoutException as e:
            # A connect or pool timeout means nothing left this host; a read or write
            # timeout means the gateway may have the message.
            sent = not isinstance(e, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise GatewayTimeoutError(
                f"no answer within {self.timeout:g} s ({self._safe(e)})",
                f"پاسخی در {self.timeout:g} ثانیه نرسید",
                provider=self.name,
                ambiguous=sent,
            ) from None
        except httpx.TransportError as e:
            sent = not isinstance(e, httpx.ConnectError | httpx.UnsupportedProtocol)
            raise NetworkError(
                f"cannot reach {self.base_url} ({self._safe(e)})",
                f"اتصال به درگاه پیامک برقرار نشد ({self._safe(e)})",
                provider=self.name,
                ambiguous=sent,
            ) from None

    def _safe(self, value: object, maxlen: int = 200) -> str:
        """Text from an exception or a gateway reply, fit for an error message or a log."""
        text = f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else value
        return clean(self._key.redact(str(text)), maxlen)

    def _http_error(self, resp: httpx.Response, detail: str = "") -> GatewayError:
        """An error from the HTTP status alone (no envelope the adapter understood)."""
        code = str(resp.status_code)
        what = f"HTTP {resp.status_code}" + (f": {detail}" if detail else "")
        if resp.status_code == 429:
            return RateLimitedError(
                f"rate limited ({what})",
                "تعداد درخواست‌ها بیش از حد مجاز است",
                provider=self.name,
                provider_code=code,
                retry_after=retry_after(resp),
            )
        if resp.status_code >= 500:
            return ServerError(
                f"gateway error ({what})",
                "خطای سرور درگاه پیامک؛ بعداً دوباره تلاش می‌شود",
                provider=self.name,
                provider_code=code,
                ambiguous=resp.status_code in _AMBIGUOUS_HTTP,
            )
        return InvalidRequestError(
            f"request refused ({what})",
            "درگاه پیامک درخواست را نپذیرفت",
            provider=self.name,
            provider_code=code,
        )

    def _garbled(self, resp: httpx.Response) -> ServerError:
        # A 2xx we cannot read: the gateway may well have queued the message.
        return ServerError(
            f"unreadable reply (HTTP {resp.status_code})",
            "پاسخ درگاه پیامک قابل خواندن نبود",
            provider=self.name,
            ambiguous=True,
        )


@functools.cache
def _tls() -> ssl.SSLContext:
    # httpx's default verification (certifi's roots), built once: it costs ~50 ms a client
    return httpx.create_ssl_context()


def json_body(resp: httpx.Response) -> Any:
    """The JSON body, or None when there is none."""
    try:
        return json.loads(resp.content)
    except ValueError:
        return None


def retry_after(resp: httpx.Response) -> float | None:
    """The Retry-After header in seconds (the delta-seconds form), if any."""
    value = resp.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    return None


def as_int(value: object) -> int | None:
    """A number from a JSON reply (int, float or numeric string) as an int."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value)
    if isinstance(value, str):
        try:
            return round(float(value))
        except ValueError:
            return None
    return None


def result(provider_id: object, status: DeliveryStatus, cost: object = None) -> SendResult:
    return SendResult(provider_id=str(provider_id), status=status, cost_rials=as_int(cost))
