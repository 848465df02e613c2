"""A Checkout in this process, on a real SQLite outbox, with a bank terminal of the test's
choosing: for the checkout's own logic without an agent process around it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.checkout import Checkout
from edge.clock import Clock
from edge.core.ruleset import RuleBook
from edge.drivers.base import PaymentResult
from edge.ledger_cache.outbox import Identity, Outbox
from edge.members import Members
from edge.protocol.record import Sealer
from tests.helpers.store import rules_doc


class FakeBank:
    """A bank terminal that approves at once, or does what ``script`` says: each entry is a
    PaymentResult to return or an exception to raise.  ``last`` is what Repeat Receipt
    reports."""

    def __init__(self, terminal_id: str = "29001006") -> None:
        self.terminal_id = terminal_id
        self.trace = 0
        self.script: list[PaymentResult | Exception] = []
        self.last: PaymentResult | None = None
        self.charged: list[int] = []

    def approve(self, amount: int) -> PaymentResult:
        self.trace += 1
        return PaymentResult(True, amount, 0, "ok", "ok", self.terminal_id, self.trace, self.trace)

    def authorize(
        self, amount: int, on_status: Callable[[str], None] | None = None, timeout: float = 0
    ) -> PaymentResult:
        step = self.script.pop(0) if self.script else self.approve(amount)
        if isinstance(step, Exception):
            raise step
        if step.approved:
            self.charged.append(step.amount)
            self.last = step
        return step

    def last_result(self, timeout: float = 15.0) -> PaymentResult | None:
        return self.last

    def close(self) -> None:
        pass


def make_checkout(tmp: Path, bank: Any = None, *, enroll: bool = False) -> Checkout:
    key = Ed25519PrivateKey.generate()
    ident = Identity("hypershahr", "s1", "pos-1")
    outbox = Outbox(tmp / "edge.db", ident, Sealer(key, "pos-1"), Clock(210))
    return Checkout(
        outbox,
        Members(outbox.conn, "pos-1"),
        RuleBook(rules_doc()),
        Clock(210),
        bank,
        online=lambda: True,
        notify=lambda: None,
        enroll_new_phones=enroll,
    )
