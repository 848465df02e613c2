"""SMS to club members: gateways, text rules and the occasions calendar.

The library part only; the durable outbox and sender live on the ledger database.

* :mod:`~cloud_broker.messages.gateway`: the :class:`Gateway` interface, its errors,
  API keys (file of mode 0600 or environment) and :func:`from_config`;
* adapters, imported when asked for: :mod:`~cloud_broker.messages.kavenegar`,
  :mod:`~cloud_broker.messages.ippanel` and the development :mod:`~cloud_broker.messages.log`;
* :mod:`~cloud_broker.messages.text`: GSM-7 / UCS-2 length and parts, Persian digits,
  member templates and the «لغو۱۱» opt-out footer;
* :mod:`~cloud_broker.messages.occasions`: Nowruz, Yalda, Mother's Day (lunar), member
  birthdays and anniversaries on the Jalali calendar, and quiet hours in Tehran time.

Importing this package loads neither httpx nor the calendar libraries.
"""

from cloud_broker.messages.gateway import (
    AuthError,
    DeliveryStatus,
    Gateway,
    GatewayError,
    GatewayTimeoutError,
    InvalidNumberError,
    InvalidRequestError,
    NetworkError,
    NoCreditError,
    RateLimitedError,
    Secret,
    SendResult,
    ServerError,
    from_config,
    load_api_key,
    mask_number,
)

__all__ = [
    "AuthError",
    "DeliveryStatus",
    "Gateway",
    "GatewayError",
    "GatewayTimeoutError",
    "InvalidNumberError",
    "InvalidRequestError",
    "NetworkError",
    "NoCreditError",
    "RateLimitedError",
    "Secret",
    "SendResult",
    "ServerError",
    "from_config",
    "load_api_key",
    "mask_number",
]
