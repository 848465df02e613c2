"""A Checkout in this process, on a real SQLite outbox, with a bank terminal of the test's
choosing: for the checkout's own logic without an agent process around it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.checkout import Checkout
from edge.clock import Clock
from edge.core.ruleset import RuleBook
from edge.drivers.base import PaymentResult
from edge.ledger_cache.outbox import Identity, Limits, Outbox
from edge.ledger_cache.payments import Payments
from edge.members import Members
from edge.protocol.record import Sealer
from edge.refunds import Refunds
from edge.settlement import Settlement
from tests.helpers.store import rules_doc


class FakeBank:
    """A bank terminal that approves at once, or does what ``script`` says: each entry is a
    PaymentResult to return or an exception to raise.  ``last`` is what Repeat Receipt
    reports.  Every approval carries the terminal's date and time (``clock``: MMDD, HHMMSS)."""

    def __init__(self, terminal_id: str = "29001006") -> None:
        self.terminal_id = terminal_id
        self.trace = 0
        self.script: list[PaymentResult | Exception] = []
        self.last: PaymentResult | None = None
        self.charged: list[int] = []  # money in (negative: money back to the card)
        self.calls: list[str] = []  # what the agent asked, e.g. "reverse 3 6900000"
        self.clock: tuple[str, str] | None = None  # (MMDD, HHMMSS); None: now, in Tehran

    def approve(self, amount: int) -> PaymentResult:
        self.trace += 1
        date, time_ = self.clock or tehran_now()
        return PaymentResult(
            True,
            amount,
            0,
            "ok",
            "ok",
            self.terminal_id,
            self.trace,
            self.trace,
            date=date,
            time=time_,
        )

    def _run(self, amount: int, sign: int) -> PaymentResult:
        step = self.script.pop(0) if self.script else self.approve(amount)
        if isinstance(step, Exception):
            raise step
        if step.approved:
            self.charged.append(sign * step.amount)
        self.last = step
        return step

    def authorize(
        self, amount: int, on_status: Callable[[str], None] | None = None, timeout: float = 0
    ) -> PaymentResult:
        self.calls.append(f"authorize {amount}")
        return self._run(amount, 1)

    def refund(
        self, amount: int, on_status: Callable[[str], None] | None = None, timeout: float = 0
    ) -> PaymentResult:
        self.calls.append(f"refund {amount}")
        return self._run(amount, -1)

    def reverse(
        self,
        receipt: int,
        amount: int,
        on_status: Callable[[str], None] | None = None,
        timeout: float = 0,
    ) -> PaymentResult:
        self.calls.append(f"reverse {receipt} {amount}")
        return self._run(amount, -1)

    def last_result(self, timeout: float = 15.0) -> PaymentResult | None:
        return self.last

    def close(self) -> None:
        pass


def tehran_now(delta_s: float = 0) -> tuple[str, str]:
    """The bank terminal's clock (Tehran time) as it reports it: (MMDD, HHMMSS)."""
    t = datetime.now(timezone(timedelta(minutes=210))) + timedelta(seconds=delta_s)
    return t.strftime("%m%d"), t.strftime("%H%M%S")


def make_checkout(
    tmp: Path,
    bank: Any = None,
    *,
    enroll: bool = False,
    limits: Limits | None = None,
    wall: Callable[[], float] = time.time,
) -> Checkout:
    """A checkout on ``tmp/edge.db``; ``wall`` is the terminal's wall clock (seconds)."""
    key = Ed25519PrivateKey.generate()
    ident = Identity("hypershahr", "s1", "pos-1")
    clock = Clock(210, wall=wall)
    outbox = Outbox(tmp / "edge.db", ident, Sealer(key, "pos-1"), clock, limits)
    payments = Payments(outbox.conn, lambda: clock.now().wall_ms)
    settlement = Settlement(payments, bank, utc_offset_min=210)
    co = Checkout(
        outbox,
        Members(outbox.conn, "pos-1"),
        RuleBook(rules_doc()),
        clock,
        settlement,
        online=lambda: True,
        notify=lambda: None,
        enroll_new_phones=enroll,
    )
    co.refunds = Refunds(co)  # type: ignore[attr-defined]
    return co
