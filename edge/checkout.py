"""One checkout at the till, durable at every step.

    open(basket) -> identify(phone | card | qr) -> quote -> pay -> receipt
                                                         \\-> cancel
    refund(seq, lines | all) / void(seq)

``pay`` is the only step that touches money, and it is ordered so that a crash (a power
cut) at any instant leaves neither a paid sale unrecorded nor an unpaid sale recorded:

1. the outbox must have room (``check_capacity``), else the cashier is told before any
   charge;
2. a **payment intent** is committed (state ``intent``, amount, the quote), then marked
   ``charging`` just before the bank terminal is asked;
3. the bank terminal charges the payable amount;
4. declined / aborted / timed out: the intent becomes ``declined``, nothing else changes;
5. approved: one transaction commits the sale record (with the bank's reference), the
   member's balance delta, the intent as ``committed`` and the sale kept for refunds;
6. receipt lines are returned and the uplink is told.

On start, an intent left ``intent`` was never sent to the bank (closed as not paid); one
left ``charging`` (the agent died during the charge or between approval and commit) is
resolved by asking the bank terminal for its last transaction:
approved for that amount (terminal id and trace not already booked) -> the sale is
recorded now; otherwise the intent is closed as not paid.  If the terminal cannot tell, or
a later payment has reached it since (its "last transaction" is then that one), the intent
stays ``unknown`` and the status says so.  An approval whose sale could not be committed
(a disk error) is kept as ``approved`` and recorded by the next ``recover``.  A session
whose payment is unknown can never be paid again (its state is ``unknown``); the POS opens
a new basket once the cashier has checked the terminal's receipt.  ``LOYALTY_CRASH_AT``
(tests only) kills the process at a named step: before_charge, after_approval,
after_commit.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge import receipt
from edge.clock import Clock
from edge.core import record as R
from edge.core.dates import parse_timestamp
from edge.core.engine import quote
from edge.core.errors import CoreError
from edge.core.phone import normalise
from edge.core.refund import refund as refund_quote
from edge.core.ruleset import RuleBook
from edge.drivers.base import BankTerminal, PaymentResult
from edge.errors import DeviceError, LoyaltyError, OutboxFullError
from edge.ledger_cache.outbox import MemberDelta, Outbox
from edge.members import Members
from edge.protocol.record import Record
from edge.sanitize import clean, is_clean

log = logging.getLogger("edge.checkout")

SESSION_TTL = 3600.0  # an open checkout
DONE_TTL = 600.0  # a paid, declined or cancelled one, for the POS to read back
MAX_SESSIONS = 32  # a till serves one customer at a time; a few parked baskets at most


class CheckoutError(LoyaltyError):
    """A checkout step that cannot be done; ``code`` for the POS, fa/en for the cashier."""

    def __init__(self, code: str, en: str, fa: str, status: int = 409) -> None:
        super().__init__(en, fa=fa)
        self.code = code
        self.status = status


@dataclass
class Session:
    id: str
    basket: dict[str, Any]
    created: float
    member: str | None = None
    ident: str | None = None  # phone | card | qr
    enrolled: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    quote: dict[str, Any] | None = None
    state: str = "open"  # open, paid, declined, cancelled, unknown (ask the bank terminal)
    result: dict[str, Any] | None = None
    finished: float | None = None  # when it left "open": a finished one is kept DONE_TTL

    def finish(self, state: str) -> None:
        self.state = state
        self.finished = time.monotonic()

    def view(self) -> dict[str, Any]:
        return {
            "session": self.id,
            "state": self.state,
            "member": self.member,
            "identified_by": self.ident,
            "enrolled": self.enrolled,
            "quote": self.quote,
            "result": self.result,
        }


def _crash(step: str) -> None:
    if os.environ.get("LOYALTY_CRASH_AT") == step:
        log.critical("LOYALTY_CRASH_AT=%s: killing the agent now (test fault injection)", step)
        os.kill(os.getpid(), signal.SIGKILL)


class Checkout:
    def __init__(
        self,
        outbox: Outbox,
        members: Members,
        rules: RuleBook,
        clock: Clock,
        bank: BankTerminal | None,
        *,
        online: Callable[[], bool],
        notify: Callable[[], None],
        enroll_new_phones: bool = True,
        bank_timeout: float = 120.0,
    ) -> None:
        self.outbox = outbox
        self.members = members
        self.rules = rules
        self.clock = clock
        self.bank = bank
        self.online = online
        self.notify = notify
        self.enroll_new_phones = enroll_new_phones
        self.bank_timeout = bank_timeout
        self.ident = outbox.identity
        self.sessions: dict[str, Session] = {}
        self.on_status: Callable[[str, str], None] | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        return self.outbox.conn

    # -- sessions -----------------------------------------------------------------------

    def _session(self, sid: str) -> Session:
        s = self.sessions.get(sid)
        if s is None:
            raise CheckoutError(
                "unknown_session", f"no open checkout {sid}", f"خرید {sid} پیدا نشد.", 404
            )
        return s

    def _open_only(self, s: Session) -> None:
        if s.state != "open":
            raise CheckoutError(
                "not_open", f"checkout {s.id} is {s.state}", "این خرید دیگر باز نیست."
            )

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [
            k
            for k, s in self.sessions.items()
            if (
                now - s.created > SESSION_TTL if s.finished is None else now - s.finished > DONE_TTL
            )
        ]:
            del self.sessions[sid]
        while len(self.sessions) >= MAX_SESSIONS:  # a POS that never finishes its baskets
            del self.sessions[next(iter(self.sessions))]

    def open(self, basket: dict[str, Any]) -> Session:
        self._expire()
        if not isinstance(basket, dict):
            raise CheckoutError(
                "bad_basket", "the basket must be a JSON object", "سبد خرید نامعتبر است.", 400
            )
        basket = dict(basket)
        basket.setdefault("store", self.ident.store)
        bid = basket.get("id")
        if bid is not None and not (isinstance(bid, str) and bid and is_clean(bid, 64)):
            raise CheckoutError(
                "bad_basket",
                "basket.id: a text of 1 to 64 printable characters",
                "شناسه سبد خرید نامعتبر است.",
                400,
            )
        s = Session(uuid.uuid4().hex[:16], basket, time.monotonic())
        s.quote = self._quote(basket, {}, None)  # validates the basket
        self.sessions[s.id] = s
        return s

    def cancel(self, sid: str) -> Session:
        s = self._session(sid)
        self._open_only(s)
        s.finish("cancelled")
        return s

    # -- identification -------------------------------------------------------------------

    def identify(
        self, sid: str, *, phone: str | None = None, card: str | None = None, kind: str = "card"
    ) -> Session:
        s = self._session(sid)
        self._open_only(s)
        enrolled = False
        if phone is not None:
            try:
                member = normalise(phone)
            except CoreError as e:
                raise CheckoutError("bad_phone", e.en, e.fa, 400) from e
            ident = "phone"
            if not self.members.known(member) and self.enroll_new_phones:
                self._enroll(member)
                enrolled = True
        elif card is not None:
            uid = card.strip()
            if uid.upper().startswith("LC1:"):
                uid = uid[4:]  # the club app's QR membership card
            # the member reference "card:" + uid is at most 64 characters, as the engine wants
            if not uid or not is_clean(uid, 64 - len("card:")):
                raise CheckoutError(
                    "bad_card", "unreadable card id", "شناسه کارت نامعتبر است.", 400
                )
            member, ident = self.members.by_card(uid), kind
        else:
            raise CheckoutError(
                "bad_request",
                "give a phone number or a card",
                "شماره موبایل یا کارت لازم است.",
                400,
            )
        # the session changes only once the quote for this member stands
        s.quote = self._quote(s.basket, s.options, member)
        s.member, s.ident, s.enrolled = member, ident, s.enrolled or enrolled
        return s

    def _enroll(self, member: str) -> Record:
        self._capacity()
        now = self.clock.now()
        rec = self.outbox.commit(
            "enroll",
            {R.K_EXTRA: {0: "phone", 1: member}},
            member=R.member_field("phone", member),
            offline=not self.online(),
            delta=MemberDelta(member, now.iso()[:10]),
        )
        log.info("enrolled %s at the till (record %d)", member[:7] + "***", rec.seq)
        self.notify()
        return rec

    # -- quoting --------------------------------------------------------------------------

    def set_options(self, sid: str, options: dict[str, Any]) -> Session:
        s = self._session(sid)
        self._open_only(s)
        allowed = {"redeem_points", "use_wallet", "coupons"}
        bad = set(options) - allowed
        if bad:
            raise CheckoutError(
                "bad_request", f"unknown options {sorted(bad)}", "گزینه نامعتبر.", 400
            )
        merged = {**s.options, **options}
        s.quote = self._quote(s.basket, merged, s.member)  # a refused option is not kept
        s.options = merged
        return s

    def _quote(
        self, basket: dict[str, Any], options: dict[str, Any], member: str | None
    ) -> dict[str, Any]:
        rs = self.rules.current
        if rs is None:
            raise CheckoutError(
                "no_rules",
                "no signed rules bundle yet: club offers are "
                "unavailable until head office sends one",
                "قوانین باشگاه هنوز دریافت نشده است.",
                503,
            )
        t = parse_timestamp(self.clock.now().iso())  # once: the engine takes it parsed
        member_doc = None
        if member is not None:
            member_doc = self.members.estimate(member, t["day"], self.online(), rs.policy).engine
        try:
            q: dict[str, Any] = quote(rs, {**basket, **options}, member_doc, t)
        except CoreError as e:
            raise CheckoutError("bad_basket", e.en, e.fa, 400) from e
        return q

    # -- paying ---------------------------------------------------------------------------

    def _capacity(self) -> None:
        try:
            self.outbox.check_capacity()
        except OutboxFullError as e:
            raise CheckoutError("outbox_full", e.en, e.fa, 507) from e

    def pay(self, sid: str) -> dict[str, Any]:
        s = self._session(sid)
        self._open_only(s)
        self._capacity()
        q = s.quote = self._quote(s.basket, s.options, s.member)
        qjson = json.dumps(q)  # once, for the payment and the sale
        amount = int(q["payable"])
        if amount > 0 and self.bank is None:
            raise CheckoutError(
                "no_bank", "no bank terminal is configured", "پایانه بانکی تعریف نشده است.", 503
            )
        pid = self._intent(s, q, qjson)
        _crash("before_charge")
        self._set_state(pid, "charging")
        try:
            res = self._charge(pid, amount)
        except CheckoutError:
            s.finish("unknown")  # never charged again from this session: ask the terminal
            raise
        finally:
            self._status_text("")
        if not res.approved:
            self._set_state(pid, "declined", res)
            s.finish("declined")
            s.result = {
                "status": "declined",
                "en": res.en,
                "fa": res.fa,
                "result_code": res.result_code,
            }
            return s.result
        _crash("after_approval")
        try:
            rec = self._commit_sale(pid, s.basket.get("id"), s.member, s.ident, q, qjson, res)
        except BaseException:
            # the money is taken: keep the approval for recover() to record, and never
            # let this session charge again
            self._set_state(pid, "approved", res)
            s.finish("unknown")
            raise
        _crash("after_commit")
        s.finish("paid")
        s.result = {
            "status": "approved",
            "record": {"seq": rec.seq, "hash": rec.hash.hex()},
            "bank": res.reference(),
            "quote": q,
            "receipt": receipt.sale(q, self.ident.store, rec.seq, s.enrolled),
            "bank_receipt": list(res.receipt_lines),
            "en": res.en,
            "fa": res.fa,
        }
        self.notify()
        return s.result

    def _charge(self, pid: int, amount: int) -> PaymentResult:
        """The bank terminal's answer for payment ``pid``; CheckoutError bank_unknown when
        the terminal failed and its last transaction does not settle what happened."""
        if amount == 0:
            return PaymentResult(True, 0, 0, "Nothing to charge", "پرداختی لازم نیست")
        assert self.bank is not None
        try:
            return self.bank.authorize(
                amount, on_status=self._status_text, timeout=self.bank_timeout
            )
        except Exception as e:  # a driver bug after the charge is as unknown as a cut cable
            log.error("bank terminal failed during the payment: %s", clean(str(e), 200))
            known = self._resolve_unknown(pid, amount)
            if known is not None:
                return known
            self._set_state(pid, "unknown")
            en = e.en if isinstance(e, LoyaltyError) else "the bank terminal failed"
            fa = e.fa if isinstance(e, LoyaltyError) else "پایانه بانکی دچار خطا شد"
            raise CheckoutError(
                "bank_unknown",
                f"{en}; the payment's result is unknown: check the bank terminal's receipt",
                f"{fa}؛ نتیجه پرداخت معلوم نیست، رسید پایانه را بررسی کنید.",
                502,
            ) from e

    def _status_text(self, text: str) -> None:
        if self.on_status is not None:
            self.on_status("bank", text)

    def _intent(self, s: Session, q: dict[str, Any], qjson: str) -> int:
        now = int(time.time() * 1000)
        cur = self.conn.execute(
            "INSERT INTO payments (session, basket, member, amount, state, quote, ident, "
            "created_ms, updated_ms) VALUES (?, ?, ?, ?, 'intent', ?, ?, ?, ?)",
            (s.id, s.basket.get("id"), s.member, q["payable"], qjson, s.ident, now, now),
        )
        return int(cur.lastrowid or 0)

    def _set_state(self, pid: int, state: str, res: PaymentResult | None = None) -> None:
        self.conn.execute(
            "UPDATE payments SET state = ?, bank = ?, updated_ms = ? WHERE id = ?",
            (state, json.dumps(res.reference()) if res else None, int(time.time() * 1000), pid),
        )

    def _commit_sale(
        self,
        pid: int,
        basket_id: str | None,
        member: str | None,
        ident: str | None,
        q: dict[str, Any],
        qjson: str,
        res: PaymentResult,
    ) -> Record:
        now = self.clock.now()

        def book(conn: sqlite3.Connection, rec: Record) -> None:
            conn.execute(
                "UPDATE payments SET state = 'committed', seq = ?, bank = ?, "
                "updated_ms = ? WHERE id = ?",
                (rec.seq, json.dumps(res.reference()), now.wall_ms, pid),
            )
            conn.execute(
                "INSERT INTO sales (seq, hash, basket, member, quote, created_ms) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (rec.seq, rec.hash, basket_id, member, qjson, now.wall_ms),
            )

        return self.outbox.commit(
            "sale",
            R.sale_body(q),
            member=member_field(member, ident),
            bank=R.bank_field(res.reference()) if res.amount else None,
            offline=not self.online(),
            basket=basket_id,
            delta=sale_delta(member, q) if member is not None else None,
            charged=True,
            also=book,
        )

    # -- recovery ---------------------------------------------------------------------------

    def _resolve_unknown(self, pid: int, amount: int) -> PaymentResult | None:
        """What became of payment ``pid``, from the bank terminal's last transaction; None
        when that cannot settle it (a person checks the terminal's receipts)."""
        last = getattr(self.bank, "last_result", None)
        if last is None or self._later_payment(pid):
            # once a later payment reached the terminal, its "last transaction" speaks
            # for that one, not for this
            return None
        try:
            res: PaymentResult | None = last()
        except DeviceError as e:
            log.error("cannot ask the bank terminal for its last transaction: %s", e)
            return None
        if res is None:
            return None
        used = self.conn.execute(
            "SELECT 1 FROM payments WHERE state = 'committed' AND id != ? AND "
            "json_extract(bank, '$.terminal_id') = ? AND json_extract(bank, '$.trace') = ?",
            (pid, res.terminal_id, res.trace),
        ).fetchone()
        if used is not None or not res.approved:
            # The terminal's last transaction is one already booked, or it
            # was declined or reversed: this payment never took money.
            return PaymentResult(
                False, 0, res.result_code, "The payment did not go through", "پرداخت انجام نشد"
            )
        if res.amount == amount:
            return res
        log.warning(
            "bank terminal's last approval (trace %s) is for %d, not %d: left unknown",
            res.trace,
            res.amount,
            amount,
        )
        return None

    def _later_payment(self, pid: int) -> bool:
        return (
            self.conn.execute(
                "SELECT 1 FROM payments WHERE id > ? AND amount > 0 AND "
                "state NOT IN ('intent', 'cancelled') LIMIT 1",
                (pid,),
            ).fetchone()
            is not None
        )

    def recover(self) -> list[str]:
        """Resolve payments a crash left open; returns what changed, for the log.  A payment
        still unknown after asking again is not reported again."""
        done = []
        rows = self.conn.execute(
            "SELECT id, basket, member, amount, quote, ident, state, bank FROM payments "
            "WHERE state IN ('intent', 'charging', 'unknown', 'approved') ORDER BY id"
        ).fetchall()
        for pid, basket, member, amount, qjson, ident, state, bank in rows:
            if state == "intent":  # the bank was never asked
                self._set_state(pid, "cancelled")
                done.append(f"payment {pid} of {amount} Rials never reached the bank: closed")
                continue
            if state == "approved":  # approved, then the sale's commit failed
                res: PaymentResult | None = _approved(json.loads(bank))
            elif amount == 0:
                res = PaymentResult(True, 0, 0, "", "")
            else:
                res = self._resolve_unknown(pid, amount) if self.bank else None
            if res is None:
                if state != "unknown":
                    self._set_state(pid, "unknown")
                    done.append(f"payment {pid} of {amount} Rials: result unknown (ask the bank)")
            elif res.approved:
                rec = self._commit_sale(pid, basket, member, ident, json.loads(qjson), qjson, res)
                done.append(
                    f"payment {pid} of {amount} Rials was approved: recorded as record {rec.seq}"
                )
            else:
                self._set_state(pid, "declined", res)
                done.append(f"payment {pid} of {amount} Rials was not paid: closed")
        if done:
            self.notify()
        return done

    # -- refunds ------------------------------------------------------------------------------

    def refund(self, seq: int, request: dict[str, Any], kind: str = "refund") -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT hash, member, quote, refunded FROM sales WHERE seq = ?", (seq,)
        ).fetchone()
        if row is None:
            raise CheckoutError(
                "unknown_sale",
                f"no sale with record {seq} on this terminal",
                f"فاکتور {seq} در این پایانه نیست.",
                404,
            )
        h, member, qjson, refunded = row
        q = json.loads(qjson)
        prior = json.loads(refunded)
        try:
            r = refund_quote(q, request, prior, kind)
        except CoreError as e:
            raise CheckoutError("bad_refund", e.en, e.fa, 400) from e
        now = self.clock.now()
        delta = None
        if member:
            delta = MemberDelta(
                member,
                now.iso()[:10],
                points=r["points_returned"] - r["points_reversed"],
                wallet=r["wallet_returned"] - r["wallet_reversed"],
                spend=-r["refund_amount"],
                info={"points_spent": -r["points_returned"], "wallet_spent": -r["wallet_returned"]},
            )
        done = prior + [{"line": p["line"], "qty": p["qty"]} for p in r["lines"]]

        def book(conn: sqlite3.Connection, _rec: Record) -> None:
            conn.execute("UPDATE sales SET refunded = ? WHERE seq = ?", (json.dumps(done), seq))

        rec = self.outbox.commit(
            kind,
            R.refund_body(r, self.ident.device, seq, bytes(h)),
            member=member_field((q.get("member") or {}).get("ref"), None),
            offline=not self.online(),
            delta=delta,
            charged=True,
            also=book,
        )
        self.notify()
        return {
            "status": kind,
            "record": {"seq": rec.seq, "hash": rec.hash.hex()},
            "refund": r,
            "receipt": receipt.refund(r, self.ident.store, rec.seq, seq),
        }


def member_field(member: str | None, ident: str | None) -> dict[int, str] | None:
    """The record's member field.  A phone member is sent as such whatever identified them;
    a card head office has not linked to a phone yet is sent as the card (or QR) it is."""
    if member is None:
        return None
    if member.startswith("card:"):
        return R.member_field("qr" if ident == "qr" else "card", member[5:])
    return R.member_field("phone", member)


def sale_delta(member: str, q: dict[str, Any]) -> MemberDelta:
    """What a sale changes in the terminal's estimate of the member (until head office's
    snapshot includes it)."""
    info: dict[str, Any] = {"points_spent": q["points_redeemed"], "wallet_spent": q["wallet_used"]}
    if q["coupons_used"]:
        info["coupons"] = q["coupons_used"]
    years = [a["birthday_year"] for a in q["applied"] if a.get("birthday_year")]
    if years:
        info["birthday_year"] = max(years)
    return MemberDelta(
        member,
        q["at"][:10],
        points=q["points_earned"] - q["points_redeemed"],
        wallet=q["wallet_earned"] - q["wallet_used"],
        spend=q["payable"],
        discount=q["promo_discount"],
        earned=q["points_earned"],
        visits=1,
        info=info,
    )


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
        card_type=str(ref.get("card_type", "")),
        auth_code=str(ref.get("auth_code", "")),
    )
