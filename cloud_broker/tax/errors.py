"""The tax hand-off's error tree.

Every error carries ``en`` and ``fa`` texts (for the operator's console) and
``transient``: True when the same request may succeed later unchanged (a timeout, a
dropped connection, HTTP 5xx, HTTP 429), False when retrying the same bytes cannot
help (a validation failure, a rejected packet, a bad key file, refused credentials).
The durable queue retries transient errors with back-off and parks permanent ones for
a person.

::

    LoyaltyError (edge.errors)
     └── TaxError                    .transient, .en, .fa, .accepted
          ├── TaxValidationError     our own checks refused an invoice or tax id   (permanent)
          │    └── InvalidTaxIdError a tax id with a bad format or check digit    (permanent)
          ├── KeyFileError           a key or certificate file is unusable        (permanent)
          ├── PacketError            a JWS/JWE could not be opened or verified     (permanent)
          ├── TaxRejectedError       the tax system refused the request (4xx)     (permanent)
          │    └── TaxAuthError      the token was refused (401/403) after a retry (permanent)
          ├── TaxUnavailableError    the tax system could not answer               (transient)
          │    ├── TaxTimeoutError   no answer within the client's time limit
          │    ├── TaxServerError    HTTP 5xx
          │    └── TaxRateLimitedError HTTP 429; .retry_after_s when the server said
          └── TaxProtocolError       an answer we cannot read                      (transient)

``accepted`` is filled by :meth:`MoadianClient.send` when a later chunk of a batch
fails: the results of the chunks the system had already accepted, so the caller can
record them before it retries the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge.errors import LoyaltyError

if TYPE_CHECKING:
    from cloud_broker.tax.responses import SendResult

__all__ = [
    "InvalidTaxIdError",
    "KeyFileError",
    "PacketError",
    "SystemMessage",
    "TaxAuthError",
    "TaxError",
    "TaxProtocolError",
    "TaxRateLimitedError",
    "TaxRejectedError",
    "TaxServerError",
    "TaxTimeoutError",
    "TaxUnavailableError",
    "TaxValidationError",
]


@dataclass(frozen=True)
class SystemMessage:
    """One error or warning as the tax system words it (``code`` and ``message``)."""

    code: str
    message: str
    kind: str = "ERROR"

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class TaxError(LoyaltyError):
    """Base of every error of the tax hand-off."""

    #: whether the same request may succeed later unchanged
    transient: bool = False

    def __init__(self, en: str, fa: str) -> None:
        super().__init__(en, fa=fa)
        self.accepted: tuple[SendResult, ...] = ()


class TaxValidationError(TaxError):
    """Our own checks refused an invoice, a line or an argument; ``field`` names it."""

    def __init__(self, field: str, en: str, fa: str) -> None:
        super().__init__(f"{field}: {en}", f"{field}: {fa}")
        self.field = field


class InvalidTaxIdError(TaxValidationError):
    """A tax id (شماره منحصر به فرد مالیاتی) with a bad format or check digit."""

    def __init__(self, tax_id: str, en: str, fa: str) -> None:
        super().__init__("taxid", f"{tax_id!r}: {en}", f"«{tax_id}»: {fa}")
        self.tax_id = tax_id


class KeyFileError(TaxError):
    """A private key or certificate file is missing, unreadable, malformed or too open."""

    def __init__(self, path: str, en: str, fa: str) -> None:
        super().__init__(f"{path}: {en}", f"{path}: {fa}")
        self.path = path


class PacketError(TaxError):
    """A JWS or JWE could not be opened or verified; ``code`` says which check failed."""

    def __init__(self, code: str, en: str, fa: str) -> None:
        super().__init__(f"{code}: {en}", f"{code}: {fa}")
        self.code = code


class TaxRejectedError(TaxError):
    """The tax system answered 4xx: the request itself is wrong and will stay wrong.

    ``errors`` holds the system's own codes and messages from the error envelope.
    """

    def __init__(
        self, status: int, errors: tuple[SystemMessage, ...], en: str = "", fa: str = ""
    ) -> None:
        listed = "; ".join(str(e) for e in errors) or "no details"
        super().__init__(
            en or f"the tax system refused the request (HTTP {status}): {listed}",
            fa or f"سامانه مودیان درخواست را نپذیرفت (HTTP {status}): {listed}",
        )
        self.status = status
        self.errors = errors

    @property
    def codes(self) -> tuple[str, ...]:
        """The system's error codes, in the order it gave them."""
        return tuple(e.code for e in self.errors)


class TaxAuthError(TaxRejectedError):
    """The token was refused even after a fresh nonce: wrong key, certificate or memory id."""


class TaxUnavailableError(TaxError):
    """The tax system could not answer now; the same request may succeed later."""

    transient = True


class TaxTimeoutError(TaxUnavailableError):
    """No answer within the client's time limit (the request may or may not have arrived)."""


class TaxServerError(TaxUnavailableError):
    """The tax system answered HTTP 5xx."""

    def __init__(self, status: int, errors: tuple[SystemMessage, ...] = ()) -> None:
        listed = "; ".join(str(e) for e in errors)
        tail = f": {listed}" if listed else ""
        super().__init__(
            f"the tax system failed (HTTP {status}){tail}",
            f"سامانه مودیان با خطای داخلی پاسخ داد (HTTP {status}){tail}",
        )
        self.status = status
        self.errors = errors


class TaxRateLimitedError(TaxUnavailableError):
    """The tax system answered 429; ``retry_after_s`` is its Retry-After, when given."""

    def __init__(self, retry_after_s: float | None) -> None:
        wait = f"; retry after {retry_after_s:g} s" if retry_after_s is not None else ""
        wait_fa = f"؛ {retry_after_s:g} ثانیه دیگر دوباره تلاش کنید" if retry_after_s else ""
        super().__init__(
            f"the tax system is limiting our requests (HTTP 429){wait}",
            f"سامانه مودیان تعداد درخواست‌ها را محدود کرده است (HTTP 429){wait_fa}",
        )
        self.retry_after_s = retry_after_s


class TaxProtocolError(TaxError):
    """An answer that is not what the documented API returns (HTML from a gateway, a
    truncated body, a missing field).  Transient: it is usually a proxy in between."""

    transient = True
