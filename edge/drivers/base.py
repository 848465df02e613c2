"""The small interfaces the agent programs against; one module per device protocol
implements them (``edge.drivers.registry`` maps configuration names to them).

    CardReader     a tap, a swipe or a scan: ``read(timeout) -> CardRead | None``
    PhoneEntry     digits typed on a keypad or kiosk: ``read_phone(timeout) -> E.164 | None``
    BankTerminal   charge an amount: ``authorize(amount) -> PaymentResult``; give money
                   back: ``refund(amount)``, ``reverse(receipt, amount)``; the last
                   transaction, for recovery: ``last_result()``

Every driver opens only the port its configuration names (``edge.drivers.serialport``)
and raises :class:`~edge.errors.DeviceError` with a clear message when the device does not
answer or answers nonsense.  Strings that come from a device are cleaned
(``edge.sanitize``) before they reach a log or a screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CardRead:
    """One identification: ``kind`` is ``nfc``, ``rfid`` or ``qr``; ``uid`` is the card's
    id in upper-case hex (NFC, RFID) or the scanned code (QR)."""

    kind: str
    uid: str
    raw: bytes = b""


class CardReader(Protocol):
    def read(self, timeout: float) -> CardRead | None:
        """The next card presented within ``timeout`` seconds, or None."""

    def close(self) -> None: ...


class PhoneEntry(Protocol):
    def read_phone(self, timeout: float) -> str | None:
        """The next number typed and confirmed, in E.164; PhoneError if it is not a
        valid Iranian mobile number; None if nothing was typed in time."""

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """What the bank terminal said about one authorisation."""

    approved: bool
    amount: int  # Rials, as charged (0 when declined)
    result_code: int  # the terminal's result code (0 = approved)
    en: str  # for the cashier
    fa: str
    terminal_id: str = ""
    trace: int = 0
    receipt: int = 0
    date: str = ""  # MMDD as the terminal reports it
    time: str = ""  # HHMMSS
    card_type: str = ""
    auth_code: str = ""
    receipt_lines: tuple[str, ...] = field(default_factory=tuple)

    def reference(self) -> dict[str, object]:
        """The bank reference kept with the payment: the transaction record's fields
        (edge.core.record.bank_field) plus the terminal's date and time, which tell a
        transaction apart from an older one with the same trace number."""
        return {
            "terminal_id": self.terminal_id,
            "trace": self.trace,
            "receipt": self.receipt,
            "amount": self.amount,
            "card_type": self.card_type,
            "auth_code": self.auth_code,
            "result": f"{self.result_code:02d}",
            "date": self.date,
            "time": self.time,
        }


StatusCallback = Callable[[str], None]


class BankTerminal(Protocol):
    def register(self) -> None:
        """Log on to the terminal (configure it for this cash register)."""

    def authorize(
        self, amount: int, *, on_status: StatusCallback | None = None, timeout: float = 120.0
    ) -> PaymentResult:
        """Charge ``amount`` Rials; intermediate status texts go to ``on_status``.
        A declined or aborted payment is a PaymentResult with approved=False; DeviceError
        when the terminal cannot be reached or breaks the protocol."""

    def refund(
        self, amount: int, *, on_status: StatusCallback | None = None, timeout: float = 120.0
    ) -> PaymentResult:
        """Pay ``amount`` Rials back to the customer's card (a credit, any day)."""

    def reverse(
        self,
        receipt: int,
        amount: int,
        *,
        on_status: StatusCallback | None = None,
        timeout: float = 120.0,
    ) -> PaymentResult:
        """Cancel the payment with this receipt number before the terminal's end of day
        (the whole amount goes back and it never reaches the customer's statement)."""

    def last_result(self, timeout: float = 15.0) -> PaymentResult | None:
        """The terminal's last transaction as it remembers it (for recovering a payment
        whose answer a failure lost); None if it has none or will not say."""

    def abort(self) -> None:
        """Ask the terminal to abort the payment in progress."""

    def close(self) -> None: ...
