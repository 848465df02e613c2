"""Moving money through the bank terminal without ever losing or doubling it: the one step
that sales (money in) and refunds and voids (money back to the card) share.

    begin   intent committed (kind, amount, what it is for), then ``charging``
    move    the bank terminal charges, refunds or reverses
    finish  declined: nothing else changes;
            approved: the record is committed together with the payment's ``committed``
            state and the answer the POS is given (kept for a repeat of the request)

A failure at each point, and what follows:

* the intent cannot be written (the disk is full): nothing was asked of the bank;
* the bank terminal fails mid-way: its last transaction is asked for (:meth:`resolve`);
  if that settles nothing the payment is ``unknown`` and asked about again and again;
* the approval's record cannot be committed (the disk filled while the bank approved,
  after the reserve was spent): the approval is kept **in memory** at once
  (:attr:`unrecorded`, in the status straight away) and, if the disk allows, as
  ``approved`` on disk; :meth:`recover` records it as soon as it can.  The session that
  paid can never be paid again, whatever the disk did;
* the process dies: on the next start an ``intent`` is closed (never sent), a
  ``charging`` or ``unknown`` one is resolved from the bank terminal's last transaction,
  an ``approved`` one is recorded.

Telling the terminal's last transaction apart (:meth:`resolve`): it settles a payment only
when no later payment reached the terminal, and then

* approved and booked with exactly that reference (terminal id, trace, receipt number,
  amount, date and time all equal): this payment never reached the terminal, nothing
  moved;
* approved, for the payment's amount, booked under no other payment, and (when the
  terminal reports its date and time) not older than the intent: it is this payment's
  approval;
* declined or aborted: nothing moved;
* anything else (another amount, an older transaction, a reference without date and
  time that matches a booked one on the rest): **unknown**, never "not paid".  Trace
  and receipt numbers repeat when a terminal is reset or replaced and wrap at 999999,
  so they alone never decide.

``LOYALTY_CRASH_AT`` (tests only) kills the process at a named step: before_charge,
after_approval, after_commit.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge.drivers.base import BankTerminal, PaymentResult
from edge.errors import DeviceError, DiskFullError, LoyaltyError, StorageError
from edge.ledger_cache.payments import Payment, Payments
from edge.sanitize import clean, is_clean

log = logging.getLogger("edge.settlement")

# How far the bank terminal's clock may be behind the agent's before its last transaction
# is taken for an older one.
CLOCK_SKEW_S = 15 * 60

# Writes the record of an approved (or zero-amount) payment in one transaction with the
# payment's committed state, and returns the answer for the POS.
Committer = Callable[[Payment, PaymentResult], dict[str, Any]]


class CheckoutError(LoyaltyError):
    """A checkout, payment or refund step that cannot be done.  ``code`` is for the POS
    (docs/pos-api.md lists them; the POS API maps each to its HTTP status), ``en`` and
    ``fa`` are for the cashier."""

    def __init__(self, code: str, en: str, fa: str) -> None:
        super().__init__(en, fa=fa)
        self.code = code


def idempotency_key(scope: str, key: object) -> str | None:
    """The POS's idempotency key, scoped (``pay:``, ``refund:``); None if it gave none."""
    if key is None:
        return None
    if not isinstance(key, str) or not key or not is_clean(key, 64):
        raise CheckoutError(
            "bad_request",
            "the idempotency key is a text of 1 to 64 printable characters",
            "شناسه تکرار درخواست نامعتبر است.",
        )
    return f"{scope}:{key}"


def crash(step: str) -> None:
    if os.environ.get("LOYALTY_CRASH_AT") == step:
        log.critical("LOYALTY_CRASH_AT=%s: killing the agent now (test fault injection)", step)
        os.kill(os.getpid(), signal.SIGKILL)


def disk_full(e: DiskFullError) -> CheckoutError:
    return CheckoutError(
        "disk_full",
        f"{e.en} Nothing was charged.",
        f"{e.fa} مبلغی دریافت نشد.",
    )


@dataclass(slots=True)
class Unrecorded:
    """An approval whose record is not written yet (kept in memory until it is)."""

    payment: Payment
    result: PaymentResult
    answer: dict[str, Any]


class Settlement:
    def __init__(
        self,
        payments: Payments,
        bank: BankTerminal | None,
        *,
        utc_offset_min: int,
        timeout: float = 120.0,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        self.payments = payments
        self.bank = bank
        self.utc_offset_min = utc_offset_min
        self.timeout = timeout
        self.on_status = on_status
        self.committers: dict[str, Committer] = {}
        self.unrecorded: dict[int, Unrecorded] = {}
        # the one piece of state another thread reads: which session's money is moving now,
        # so that a cancel from the POS can abort it (``abort``)
        self._moving_lock = threading.Lock()
        self._moving: str | None = None

    # -- the POS's idempotency key --------------------------------------------------------

    def repeat(self, idem: str | None) -> dict[str, Any] | None:
        """The answer already given for ``idem``, or None if no live payment holds it;
        CheckoutError when one holds it but is not settled yet."""
        if idem is None:
            return None
        for u in self.unrecorded.values():
            if u.payment.idem == idem:
                return {**u.answer, "repeated": True}
        p = self.payments.by_key(idem)
        if p is None:
            return None
        if p.result is not None and p.state in ("committed", "approved"):
            return {**p.result, "repeated": True}
        raise CheckoutError(
            "payment_pending",
            f"a payment for {clean(idem, 80)} is already under way or its result is unknown: "
            "check the bank terminal's receipt; it will not be charged again",
            "پرداخت دیگری برای این سبد در جریان است یا نتیجه‌اش معلوم نیست؛ رسید پایانه را "
            "بررسی کنید. دوباره دریافت نمی‌شود.",
        )

    # -- one payment ---------------------------------------------------------------------

    def begin(self, kind: str, session: str, amount: int, quote: str, **meta: Any) -> int:
        """Commit the intent and mark it ``charging``; nothing has moved yet."""
        try:
            pid = self.payments.intent(kind, session, amount, quote, **meta)
        except DiskFullError as e:
            raise disk_full(e) from e
        except sqlite3.IntegrityError as e:  # another live payment holds the key
            raise CheckoutError(
                "payment_pending",
                "a payment with this idempotency key is already under way",
                "پرداخت دیگری با همین شناسه در جریان است.",
            ) from e
        crash("before_charge")
        try:
            self.payments.set_state(pid, "charging")
        except DiskFullError as e:  # left as an intent: closed as never sent
            raise disk_full(e) from e
        return pid

    def move(
        self, pid: int, amount: int, op: Callable[[], PaymentResult], session: str | None = None
    ) -> PaymentResult:
        """Run the bank terminal's operation for ``session``; CheckoutError bank_unknown
        when it failed and its last transaction does not settle what happened."""
        if amount == 0:
            return PaymentResult(True, 0, 0, "Nothing to pay", "پرداختی لازم نیست")
        with self._moving_lock:
            self._moving = session
        try:
            return op()
        except Exception as e:  # a driver bug after the charge is as unknown as a cut cable
            log.error("bank terminal failed during payment %d: %s", pid, clean(str(e), 200))
            p = self.payments.get(pid)
            known = self.resolve(p) if p is not None else None
            if known is not None:
                return known
            self._try_state(pid, "unknown")
            en = e.en if isinstance(e, LoyaltyError) else "the bank terminal failed"
            fa = e.fa if isinstance(e, LoyaltyError) else "پایانه بانکی دچار خطا شد"
            raise CheckoutError(
                "bank_unknown",
                f"{en}; the payment's result is unknown: check the bank terminal's receipt",
                f"{fa}؛ نتیجه پرداخت معلوم نیست، رسید پایانه را بررسی کنید.",
            ) from e
        finally:
            with self._moving_lock:
                self._moving = None
            self.status("")

    def abort(self, session: str) -> bool:
        """Ask the bank terminal to abort the payment of ``session`` if it is the one in
        progress (safe from any thread: the cashier cancelled while the customer had not
        paid yet).  The payment then ends as not approved, by the usual path."""
        with self._moving_lock:
            if self._moving != session or self.bank is None:
                return False
            abort = getattr(self.bank, "abort", None)
            if abort is None:
                return False
            log.info("aborting the payment of session %s at the cashier's request", session)
            abort()
            return True

    def finish(
        self, pid: int, res: PaymentResult, unrecorded_answer: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Settle payment ``pid`` with the bank's answer.  Declined: None.  Approved: the
        committer's answer, or ``unrecorded_answer`` when the record cannot be written
        yet (the approval is then kept in memory and on disk if possible)."""
        if not res.approved:
            self._try_state(pid, "declined", res.reference())
            return None
        crash("after_approval")
        p = self.payments.get(pid)
        assert p is not None, "a payment being settled has its row"
        try:
            answer = self.committers[p.kind](p, res)
        except (StorageError, sqlite3.Error) as e:
            log.critical(
                "payment %d of %d Rials was approved but its record cannot be written yet "
                "(%s): kept, and recorded as soon as possible",
                pid,
                p.amount,
                clean(str(e), 200),
            )
            self.unrecorded[pid] = Unrecorded(p, res, unrecorded_answer)
            self._try_state(pid, "approved", res.reference(), unrecorded_answer)
            return unrecorded_answer
        crash("after_commit")
        return answer

    def _try_state(
        self,
        pid: int,
        state: str,
        bank: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        """A state change that may fail on a full disk: the row keeps its previous state,
        which recovery resolves the same way."""
        try:
            self.payments.set_state(pid, state, bank, result)
        except (StorageError, sqlite3.Error) as e:
            log.error("payment %d stays as it was (not %s): %s", pid, state, clean(str(e), 200))

    def status(self, text: str) -> None:
        if self.on_status is not None:
            self.on_status(text)

    # -- what the bank terminal remembers ----------------------------------------------------

    def resolve(self, p: Payment) -> PaymentResult | None:
        """What became of payment ``p`` (see the module docstring); None when it cannot be
        told."""
        last = getattr(self.bank, "last_result", None)
        if last is None or self.payments.later_payment(p.id):
            return None
        try:
            res: PaymentResult | None = last()
        except DeviceError as e:
            log.error("cannot ask the bank terminal for its last transaction: %s", e)
            return None
        if res is None:
            return None
        if not res.approved:
            return _not_moved(res.result_code)
        return self._judge(p, res)

    def _judge(self, p: Payment, res: PaymentResult) -> PaymentResult | None:
        """An approval the terminal remembers: ``p``'s, an older one, or cannot be told."""
        match = self.payments.booked(res.reference(), but=p.id)
        if match == "same":
            return _not_moved(res.result_code)  # an older transaction, already recorded
        why = None
        when = self._terminal_time(res, p.created_ms)
        if match == "similar":
            why = "looks like one already recorded but reports no date and time"
        elif res.amount != p.amount:
            why = f"is for {res.amount} Rials, not {p.amount}"
        elif when is not None and when < p.created_ms - CLOCK_SKEW_S * 1000:
            why = f"is older than the payment ({clean(res.date, 8)} {clean(res.time, 8)})"
        if why is not None:
            log.warning(
                "bank terminal's last approval (trace %s) %s: payment %d left unknown",
                res.trace,
                why,
                p.id,
            )
            return None
        return res

    def _terminal_time(self, res: PaymentResult, near_ms: int) -> int | None:
        """The transaction's time (ms since the epoch) from the terminal's MMDD and
        HHMMSS, in the year that puts it closest to ``near_ms``; None if not reported."""
        d, t = res.date, res.time
        if not (len(d) == 4 and d.isdigit() and len(t) == 6 and t.isdigit()):
            return None
        local = time.gmtime(near_ms // 1000 + self.utc_offset_min * 60)
        best: int | None = None
        for year in (local.tm_year - 1, local.tm_year, local.tm_year + 1):
            try:
                tm = time.strptime(f"{year}{d}{t}", "%Y%m%d%H%M%S")
            except ValueError:
                continue
            ms = (_timegm(tm) - self.utc_offset_min * 60) * 1000
            if best is None or abs(ms - near_ms) < abs(best - near_ms):
                best = ms
        return best

    # -- after a failure ---------------------------------------------------------------------

    def pending(self) -> int:
        """Payments that moved or may have moved money and are not recorded yet."""
        return len(set(self.payments.unsettled()) | set(self.unrecorded))

    def recover(self) -> list[str]:
        """Settle what failures left open; returns what changed, for the log.  A payment
        still unknown after asking again is not reported again."""
        done: list[str] = []
        for pid, u in list(self.unrecorded.items()):
            try:
                self.committers[u.payment.kind](u.payment, u.result)
            except (StorageError, sqlite3.Error) as e:
                log.debug("payment %d still cannot be recorded: %s", pid, e)
                continue
            del self.unrecorded[pid]
            done.append(f"{_what(u.payment)} was approved: recorded now")
        for p in self.payments.open():
            if p.id not in self.unrecorded:
                line = self._recover_one(p)
                if line is not None:
                    done.append(line)
        return done

    def _recover_one(self, p: Payment) -> str | None:
        if p.state == "intent":  # the bank was never asked
            self._try_state(p.id, "cancelled")
            return f"{_what(p)} never reached the bank: closed"
        res: PaymentResult | None
        if p.state == "approved" and p.bank is not None:
            res = _approved(p.bank)
        elif p.amount == 0:
            res = PaymentResult(True, 0, 0, "", "")
        else:
            res = self.resolve(p) if self.bank is not None else None
        if res is None:
            if p.state == "unknown":
                return None  # asked again, still unknown: not reported again
            self._try_state(p.id, "unknown")
            return f"{_what(p)}: result unknown (ask the bank)"
        if not res.approved:
            self._try_state(p.id, "declined", res.reference())
            return f"{_what(p)} did not go through: closed"
        try:
            self.committers[p.kind](p, res)
        except (StorageError, sqlite3.Error) as e:
            log.error("%s was approved; recording it failed: %s", _what(p), e)
            self._try_state(p.id, "approved", res.reference())
            return None
        return f"{_what(p)} was approved: recorded"


def _what(p: Payment) -> str:
    noun = {"sale": "payment", "plain": "payment without the club"}.get(p.kind, p.kind)
    return f"{noun} {p.id} of {p.amount} Rials"


def _not_moved(code: int) -> PaymentResult:
    return PaymentResult(False, 0, code, "The payment did not go through", "پرداخت انجام نشد")


def _timegm(tm: time.struct_time) -> int:
    import calendar  # noqa: PLC0415 - used only when recovering

    return calendar.timegm(tm)


def _approved(ref: dict[str, Any]) -> PaymentResult:
    """An approval from the bank reference stored with the payment."""
    return PaymentResult(
        True,
        int(ref["amount"]),
        0,
        "",
        "",
        terminal_id=str(ref.get("terminal_id", "")),
        trace=int(ref.get("trace", 0)),
        receipt=int(ref.get("receipt", 0)),
        date=str(ref.get("date", "")),
        time=str(ref.get("time", "")),
        card_type=str(ref.get("card_type", "")),
        auth_code=str(ref.get("auth_code", "")),
    )
