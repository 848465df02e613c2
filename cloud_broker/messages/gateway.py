"""What a message sender needs from an SMS gateway, whichever company runs it.

A :class:`Gateway` sends one text to one number and reports delivery later::

    gw = from_config("kavenegar", api_key_file=Path("/etc/loyalty/sms.key"), sender="10004346")
    result = gw.send("+989121234567", text, sender=None, ref="msg-8812")
    ...
    gw.status([result.provider_id])  # {'8792343': DeliveryStatus.DELIVERED}

``ref`` is the sender's own idempotency key (its outbox row).  Adapters pass it to
gateways that de-duplicate on it (Kavenegar's ``localid``), so a send retried after an
ambiguous timeout is not charged twice there.  Adapters never retry by themselves: the
durable sender owns retries, back-off and the "pause on no credit" decision, using

    GatewayError              .transient  .pauses  .ambiguous  .code  .en / .fa
     ├── InvalidNumberError   permanent: the number cannot receive (fail the message)
     ├── InvalidRequestError  permanent: template, sender line or text refused
     ├── AuthError            pauses: key, account or IP refused (keep the message)
     ├── NoCreditError        pauses: top up the account, then resume (keep the message)
     ├── RateLimitedError     transient; .retry_after seconds when the gateway says
     ├── ServerError          transient: 5xx, the gateway said "try later", garbled reply
     ├── NetworkError         transient: the connection failed
     └── GatewayTimeoutError  transient: no answer in time

``pauses`` marks account-level refusals: every message would fail the same way, so the
sender stops the queue and tells an operator instead of failing messages one by one.
``ambiguous`` is True when the gateway may have accepted the message although we got no
answer: retry with the same ``ref`` and check ``status`` before sending again by other means.

Secrets: API keys come from a file of mode 0600 (or stricter) or from an environment
variable, never from the database.  No exception text, ``repr`` or log line contains a
key: adapters keep it in a :class:`Secret` and redact it from anything a gateway echoes.
"""

from __future__ import annotations

import importlib
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol, cast, runtime_checkable

from edge.errors import ConfigError, LoyaltyError

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
    "check_e164",
    "from_config",
    "load_api_key",
    "mask_number",
]

_E164 = re.compile(r"\+[1-9][0-9]{7,14}")


class DeliveryStatus(StrEnum):
    """Where a message is, as the gateway last reported it."""

    QUEUED = "queued"  # accepted by the gateway, not yet handed to the operator
    SENT = "sent"  # handed to the mobile operator; no delivery report yet
    DELIVERED = "delivered"  # the handset received it
    UNDELIVERED = "undelivered"  # the operator gave up (phone off too long, no such line)
    BLOCKED = "blocked"  # the member opted out or is on the operators' advertising blacklist
    FAILED = "failed"  # the gateway could not send it (refused, no credit after acceptance)
    CANCELLED = "cancelled"  # cancelled before sending (scheduled sends)
    UNKNOWN = "unknown"  # the gateway does not know this id (expired, archived, not ours)

    @property
    def final(self) -> bool:
        """No later report will change this status."""
        return self not in (DeliveryStatus.QUEUED, DeliveryStatus.SENT)


@dataclass(frozen=True, slots=True)
class SendResult:
    """A gateway accepted a message: its id there, its first status, what it cost."""

    provider_id: str
    status: DeliveryStatus
    cost_rials: int | None  # None when the gateway does not say at send time


class GatewayError(LoyaltyError):
    """A gateway refused a request or could not be reached; ``en``/``fa`` for people."""

    code: ClassVar[str] = "gateway_error"
    transient: ClassVar[bool] = False
    pauses: ClassVar[bool] = False

    def __init__(
        self,
        en: str,
        fa: str,
        *,
        provider: str,
        provider_code: str | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(f"{provider}: {en}", fa=f"{provider}: {fa}")
        self.provider = provider
        self.provider_code = provider_code
        self.ambiguous = ambiguous

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, code={self.code!r}, "
            f"provider_code={self.provider_code!r}, transient={self.transient}, "
            f"pauses={self.pauses}, ambiguous={self.ambiguous}, en={self.en!r})"
        )


class InvalidNumberError(GatewayError):
    """The number cannot receive this message: fail the message, keep sending others."""

    code = "invalid_number"


class InvalidRequestError(GatewayError):
    """The gateway refused what we asked (template, sender line, text): fix, do not retry."""

    code = "invalid_request"


class AuthError(GatewayError):
    """Key, account or source IP refused: pause the queue and tell an operator."""

    code = "auth"
    pauses = True


class NoCreditError(GatewayError):
    """The account is out of credit: pause the queue until it is topped up."""

    code = "no_credit"
    pauses = True


class RateLimitedError(GatewayError):
    """Too many requests: slow down; ``retry_after`` seconds when the gateway said."""

    code = "rate_limited"
    transient = True

    def __init__(
        self,
        en: str,
        fa: str,
        *,
        provider: str,
        provider_code: str | None = None,
        ambiguous: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            en, fa, provider=provider, provider_code=provider_code, ambiguous=ambiguous
        )
        self.retry_after = retry_after


class ServerError(GatewayError):
    """The gateway failed or asked us to come back later."""

    code = "server_error"
    transient = True


class NetworkError(GatewayError):
    """The connection failed (``ambiguous`` once the request may have been sent)."""

    code = "network"
    transient = True


class GatewayTimeoutError(GatewayError):
    """No answer in time (``ambiguous`` unless it was the connection that timed out)."""

    code = "timeout"
    transient = True


class Secret:
    """An API key that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value or any(c.isspace() or not c.isprintable() for c in value):
            raise ConfigError("api key", "the API key is empty or has spaces or line breaks")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced by ``***``."""
        return text.replace(self._value, "***")

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not picklable")


def check_e164(number: str, *, provider: str) -> str:
    """``number`` if it is an E.164 number (``+989121234567``), else InvalidNumberError."""
    if not isinstance(number, str) or _E164.fullmatch(number) is None:
        raise InvalidNumberError(
            "the number is not in international E.164 form (+989121234567)",
            "شماره در قالب بین‌المللی ‎+989121234567‎ نیست",
            provider=provider,
        )
    return number


def mask_number(number: str) -> str:
    """For logs: ``+989121234567`` -> ``+98912***4567``."""
    if len(number) < 10:
        return "***"
    return number[:6] + "***" + number[-4:]


@runtime_checkable
class Gateway(Protocol):
    """One SMS gateway account.  Implementations are thread-safe for ``send``/``status``."""

    name: str
    supports_templates: bool
    # the gateway drops a second send with the same ``ref`` (so a send whose answer was lost
    # may be tried again without reaching the member twice)
    refs_deduplicated: bool

    def send(self, to: str, text: str, *, sender: str | None = None, ref: str) -> SendResult:
        """Send ``text`` to ``to`` (E.164).  ``sender``: a line of the account, or the
        configured default.  Raises a :class:`GatewayError`."""
        ...

    def status(self, provider_ids: Sequence[str]) -> dict[str, DeliveryStatus]:
        """The latest status of each id (ids the gateway does not know: UNKNOWN)."""
        ...

    def send_template(
        self, to: str, template: str, params: Mapping[str, str], *, ref: str
    ) -> SendResult:
        """Send a template approved at the gateway (OTP, service messages); InvalidRequestError
        where the gateway has no templates."""
        ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- secrets


def load_api_key(
    *,
    key_file: Path | None = None,
    env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Secret:
    """The API key from ``key_file`` (mode 0600 or stricter, owner-only) or from the
    environment variable ``env``.  Keys never come from the database."""
    if key_file is not None:
        try:
            st = key_file.stat()
        except OSError as e:
            raise _config("sms key file", f"cannot read {key_file}: {e.strerror or e}") from None
        if not stat.S_ISREG(st.st_mode):
            raise _config("sms key file", f"{key_file} is not a regular file")
        if st.st_mode & 0o077:
            raise _config(
                "sms key file",
                f"{key_file} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"run: chmod 600 {key_file}",
                fa=f"فایل کلید {key_file} برای دیگران قابل خواندن است؛ دستور chmod 600 را بزنید",
            )
        try:
            return Secret(key_file.read_text("utf-8").strip())
        except OSError as e:
            raise _config("sms key file", f"cannot read {key_file}: {e.strerror or e}") from None
    if env is not None:
        value = (os.environ if environ is None else environ).get(env, "").strip()
        if not value:
            raise _config("sms key", f"the environment variable {env} is not set")
        return Secret(value)
    raise _config("sms key", "give the API key in a file (mode 0600) or an environment variable")


def _config(setting: str, en: str, fa: str | None = None) -> ConfigError:
    e = ConfigError(setting, en)
    if fa is not None:
        e.fa = fa
    return e


# --------------------------------------------------------------------------- factory

# name -> (module, class): imported only when asked for, so the log gateway needs no httpx.
GATEWAYS: dict[str, tuple[str, str]] = {
    "kavenegar": ("cloud_broker.messages.kavenegar", "Kavenegar"),
    "ippanel": ("cloud_broker.messages.ippanel", "IPPanel"),
    "log": ("cloud_broker.messages.log", "LogGateway"),
}
DEFAULT_KEY_ENV = "LOYALTY_SMS_API_KEY"


def from_config(
    name: str,
    *,
    base_url: str | None = None,
    api_key_file: Path | None = None,
    api_key_env: str | None = None,
    sender: str | None = None,
    timeout: float = 10.0,
    environ: Mapping[str, str] | None = None,
) -> Gateway:
    """The gateway called ``name`` ("kavenegar", "ippanel", "log").

    The key is read from ``api_key_file`` when given, else from ``api_key_env``
    (default ``LOYALTY_SMS_API_KEY``).  ``base_url`` points an adapter at another host
    (a test server, a proxy); ``sender`` is the default line.  The log gateway needs no key.
    """
    try:
        module_name, class_name = GATEWAYS[name]
    except KeyError:
        raise _config(
            "sms gateway", f"unknown gateway {name!r}; one of {sorted(GATEWAYS)}"
        ) from None
    cls = getattr(importlib.import_module(module_name), class_name)
    if name == "log":
        return cast(Gateway, cls(sender=sender))
    key = load_api_key(key_file=api_key_file, env=api_key_env or DEFAULT_KEY_ENV, environ=environ)
    kwargs: dict[str, Any] = {"sender": sender, "timeout": timeout}
    if base_url is not None:
        kwargs["base_url"] = base_url
    return cast(Gateway, cls(key, **kwargs))
