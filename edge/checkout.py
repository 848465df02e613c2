"""One checkout at the till, durable at every step.

    open(basket) -> identify(phone | card | qr) -> quote -> pay -> receipt
                                                         \\-> cancel

``pay`` is the only step here that touches money; edge.settlement does the durable part
(intent, bank terminal, record, recovery) that sales share with refunds (edge.refunds).
What this module adds around it:

* a basket is for this terminal's store only;
* before anything is charged the terminal must be able to record the sale (the outbox
  not full, the disk not full, the device's chain not behind head office's); when it
  cannot, ``pay`` says why and the POS may take the card payment **without the club**
  (``loyalty=False``): the basket's subtotal is charged and nothing is recorded;
* the POS's idempotency key (``key``, the basket id by default): a second ``pay`` with a
  key already paid returns the first answer and charges nothing, across restarts;
* a session leaves ``open`` the moment its payment starts, in memory, before anything is
  written: whatever the disk or the bank terminal does next, it can never be paid again.

Sessions: ``open`` -> ``paying`` -> ``paid`` | ``declined`` | ``unknown`` (ask the bank
terminal), or ``cancelled``.
"""

from __future__ import annotations

import json
import logging
import threading
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
from edge.core.ruleset import RuleBook
from edge.drivers.base import PaymentResult
from edge.errors import ChainConflictError, DiskFullError, OutboxFullError
from edge.ledger_cache.outbox import MemberDelta, Outbox
from edge.ledger_cache.payments import Payment, Payments
from edge.members import Members
from edge.protocol import ed25519, memberqr
from edge.protocol.record import Record
from edge.sanitize import clean, is_clean
from edge.settlement import CheckoutError, Settlement, disk_full, idempotency_key

log = logging.getLogger("edge.checkout")

SESSION_TTL = 3600.0  # an open checkout
DONE_TTL = 600.0  # a paid, declined or cancelled one, for the POS to read back
MAX_SESSIONS = 32  # a till serves one customer at a time; a few parked baskets at most

WITHOUT_CLUB_EN = " The card payment can still be taken without the club (pay with loyalty false)."
WITHOUT_CLUB_FA = " پرداخت کارتی بدون باشگاه مشتریان همچنان ممکن است."

__all__ = ["Checkout", "CheckoutError", "Session", "member_field", "sale_delta"]


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
    state: str = "open"  # open, paying, paid, declined, cancelled, unknown
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


class Checkout:
    def __init__(
        self,
        outbox: Outbox,
        members: Members,
        rules: RuleBook,
        clock: Clock,
        settlement: Settlement,
        *,
        online: Callable[[], bool],
        notify: Callable[[], None],
        enroll_new_phones: bool = True,
        card_keys: Callable[[], list[ed25519.PublicKey]] | None = None,
        on_change: Callable[[Session], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.members = members
        self.rules = rules
        self.clock = clock
        self.settlement = settlement
        self.payments: Payments = settlement.payments
        self.online = online
        self.notify = notify
        self.enroll_new_phones = enroll_new_phones
        self.card_keys = card_keys  # the rules keys in force: they sign membership QR codes
        self.on_change = on_change  # the customer display: told of each step, nothing more
        self.ident = outbox.identity
        self.sessions: dict[str, Session] = {}
        # the agent thread that owns the checkout (set by the agent); every call from
        # another thread is a bug, refused loudly rather than racing on a session
        self.owner: int | None = None
        settlement.committers["sale"] = self._commit_sale
        settlement.committers["plain"] = self._commit_plain

    # -- sessions -----------------------------------------------------------------------

    def mine(self) -> None:
        """Refuse a call from a thread that does not own the checkout."""
        if self.owner is not None and threading.get_ident() != self.owner:
            raise RuntimeError(
                f"the checkout belongs to the agent thread, not {threading.current_thread().name}"
                ": route the call through Agent.call"
            )

    def session(self, sid: str) -> Session:
        self.mine()
        s = self.sessions.get(sid)
        if s is None:
            raise CheckoutError(
                "unknown_session",
                f"no such checkout session {clean(sid, 40)} (it expired or the agent restarted)",
                "این خرید پیدا نشد (زمانش گذشته یا پایانه دوباره راه‌اندازی شده است).",
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
            if s.state != "paying"
            and (
                now - s.created > SESSION_TTL if s.finished is None else now - s.finished > DONE_TTL
            )
        ]:
            del self.sessions[sid]
        while len(self.sessions) >= MAX_SESSIONS:  # a POS that never finishes its baskets
            del self.sessions[next(iter(self.sessions))]

    def open(self, basket: dict[str, Any]) -> Session:
        self.mine()
        self._expire()
        if not isinstance(basket, dict):
            raise CheckoutError(
                "bad_basket", "the basket must be a JSON object", "سبد خرید نامعتبر است."
            )
        basket = dict(basket)
        store = basket.setdefault("store", self.ident.store)
        if store != self.ident.store:
            raise CheckoutError(
                "wrong_store",
                f"this terminal belongs to store {self.ident.store}, not "
                f"{clean(str(store), 40)}: a basket is priced and booked for its own store only",
                f"این پایانه متعلق به فروشگاه {self.ident.store} است؛ سبد فروشگاه دیگری "
                "پذیرفته نمی‌شود.",
            )
        bid = basket.get("id")
        if bid is not None and not (isinstance(bid, str) and bid and is_clean(bid, 64)):
            raise CheckoutError(
                "bad_basket",
                "basket.id: a text of 1 to 64 printable characters",
                "شناسه سبد خرید نامعتبر است.",
            )
        s = Session(uuid.uuid4().hex[:16], basket, time.monotonic())
        s.quote = self._quote(basket, {}, None)  # validates the basket
        self.sessions[s.id] = s
        self._changed(s)
        return s

    def _changed(self, s: Session) -> None:
        if self.on_change is not None:
            self.on_change(s)

    def cancel(self, sid: str) -> Session:
        s = self.session(sid)
        self._open_only(s)
        s.finish("cancelled")
        self._changed(s)
        return s

    # -- identification -------------------------------------------------------------------

    def identify(
        self, sid: str, *, phone: str | None = None, card: str | None = None, kind: str = "card"
    ) -> Session:
        s = self.session(sid)
        self._open_only(s)
        enrolled = False
        if phone is not None:
            try:
                member = normalise(phone)
            except CoreError as e:
                raise CheckoutError("bad_phone", e.en, e.fa) from e
            ident = "phone"
            # a new number becomes a member with the first sale it pays for (the enrol
            # record is written with the sale), never by being typed: a mistyped number
            # on a cancelled basket enrols nobody
            enrolled = self.enroll_new_phones and not self.members.known(member)
        elif card is not None and memberqr.is_member_qr(card.strip()):
            keys = self.card_keys() if self.card_keys is not None else []
            try:  # the member panel's card: signed by head office, read offline
                member = memberqr.read(card.strip(), keys, self.ident.tenant,
                                       self.clock.now().wall_ms // 1000)  # fmt: skip
            except memberqr.QrError as e:
                raise CheckoutError(e.code, str(e), e.fa or str(e)) from e
            ident = "qr"
        elif card is not None:
            uid = card.strip()
            if uid.upper().startswith("LC1:"):
                uid = uid[4:]  # the club app's QR membership card
            # the member reference "card:" + uid is at most 64 characters, as the engine wants
            if not uid or not is_clean(uid, 64 - len("card:")):
                raise CheckoutError("bad_card", "unreadable card id", "شناسه کارت نامعتبر است.")
            member, ident = self.members.by_card(uid), kind
        else:
            raise CheckoutError(
                "bad_request", "give a phone number or a card", "شماره موبایل یا کارت لازم است."
            )
        # the session changes only once the quote for this member stands
        s.quote = self._quote(s.basket, s.options, member)
        s.member, s.ident, s.enrolled = member, ident, enrolled
        self._changed(s)
        return s

    def enroll(self, phone: str, referral: str | None = None) -> dict[str, Any]:
        """Enrol a phone number now, with the customer's consent (a kiosk, or the POS's own
        enrol button), and the referral code of the member who sent them if they give one
        (head office rewards both with the first sale); an existing member is simply
        reported as such."""
        self.mine()
        try:
            member = normalise(phone)
        except CoreError as e:
            raise CheckoutError("bad_phone", e.en, e.fa) from e
        code = None
        if referral is not None and referral.strip():
            code = "".join(c for c in referral.upper() if c.isalnum())
            if not 4 <= len(code) <= 12 or not code.isascii():
                raise CheckoutError(
                    "bad_referral", "a referral code is 4 to 12 letters and digits",
                    "کد معرف باید ۴ تا ۱۲ حرف و رقم لاتین باشد.",
                )  # fmt: skip
        if self.members.known(member):
            return {"member": member, "enrolled": False}
        self.recordable()
        self._enroll(member, charged=False, referral=code)
        return {"member": member, "enrolled": True}

    def _enroll(self, member: str, *, charged: bool, referral: str | None = None) -> Record:
        now = self.clock.now()
        extra: dict[int, Any] = {R.EN_HOW: "phone", R.EN_REF: member}
        if referral:
            extra[R.EN_REFERRAL] = referral
        rec = self.outbox.commit(
            "enroll",
            {R.K_EXTRA: extra},
            member=R.member_field("phone", member),
            offline=not self.online(),
            delta=MemberDelta(member, now.iso()[:10]),
            charged=charged,
        )
        log.info("enrolled %s at the till (record %d)", member[:7] + "***", rec.seq)
        self.notify()
        return rec

    # -- quoting --------------------------------------------------------------------------

    def set_options(self, sid: str, options: dict[str, Any]) -> Session:
        s = self.session(sid)
        self._open_only(s)
        allowed = {"redeem_points", "use_wallet", "coupons"}
        bad = set(options) - allowed
        if bad:
            raise CheckoutError(
                "bad_request", f"unknown options {sorted(bad)}", "گزینه نامعتبر است."
            )
        merged = {**s.options, **options}
        s.quote = self._quote(s.basket, merged, s.member)  # a refused option is not kept
        s.options = merged
        self._changed(s)
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
            )
        t = parse_timestamp(self.clock.now().iso())  # once: the engine takes it parsed
        member_doc = None
        if member is not None:
            member_doc = self.members.estimate(member, t["day"], self.online(), rs.policy).engine
        try:
            q: dict[str, Any] = quote(rs, {**basket, **options}, member_doc, t)
        except CoreError as e:
            raise CheckoutError("bad_basket", e.en, e.fa) from e
        return q

    # -- can the club record now? -------------------------------------------------------------

    def recordable(self) -> None:
        """CheckoutError if a club record cannot be written now (before anything is
        charged): the outbox or the disk is full, or the chain is behind head office's."""
        try:
            self.outbox.can_record()
        except OutboxFullError as e:
            raise CheckoutError(
                "outbox_full", e.en + WITHOUT_CLUB_EN, e.fa + WITHOUT_CLUB_FA
            ) from e
        except DiskFullError as e:
            raise disk_full(e) from e
        except ChainConflictError as e:
            raise CheckoutError(
                "chain_conflict", e.en + WITHOUT_CLUB_EN, e.fa + WITHOUT_CLUB_FA
            ) from e

    # -- paying ---------------------------------------------------------------------------

    def pay(self, sid: str, key: str | None = None, *, loyalty: bool = True) -> dict[str, Any]:
        """Charge the session's basket.  ``key`` is the POS's idempotency key (default: the
        basket id); ``loyalty=False`` takes the card payment without the club."""
        s = self.session(sid)
        idem = idempotency_key("pay", key if key is not None else s.basket.get("id"))
        first = self.settlement.repeat(idem)
        if first is not None:
            return first
        self._open_only(s)
        if loyalty:
            self.recordable()
            q = s.quote = self._quote(s.basket, s.options, s.member)
        else:
            q = self._quote(s.basket, {}, None)
        amount = int(q["payable"] if loyalty else q["subtotal"])
        bank = self.settlement.bank
        if amount > 0 and bank is None:
            raise CheckoutError(
                "no_bank", "no bank terminal is configured", "پایانه بانکی تعریف نشده است."
            )
        qjson = json.dumps(q)
        s.state = "paying"  # in memory first: nothing below can make it payable again
        try:
            pid = self.settlement.begin(
                "sale" if loyalty else "plain",
                s.id,
                amount,
                qjson,
                basket=s.basket.get("id"),
                member=s.member if loyalty else None,
                ident=s.ident if loyalty else None,
                idem=idem,
            )
        except CheckoutError:
            s.state = "open"  # nothing was asked of the bank terminal
            raise
        try:
            assert bank is not None or amount == 0
            res = self.settlement.move(
                pid,
                amount,
                lambda: bank.authorize(  # type: ignore[union-attr]
                    amount, on_status=self.settlement.status, timeout=self.settlement.timeout
                ),
                s.id,
            )
        except CheckoutError:
            s.finish("unknown")  # never charged again from this session: ask the terminal
            raise
        pending = _unrecorded(q, res, loyalty)
        answer = self.settlement.finish(pid, res, pending)
        if answer is None:
            s.finish("declined")
            self._changed(s)
            s.result = {
                "status": "declined",
                "en": res.en,
                "fa": res.fa,
                "result_code": res.result_code,
            }
            return s.result
        s.finish("paid")
        if answer.get("quote") == q:  # the committed quote, read back: keep one copy while
            answer["quote"] = q  # the session is kept (up to MAX_SESSIONS of them)
        s.result = answer
        self._changed(s)
        self.notify()
        return answer

    def _commit_sale(self, p: Payment, res: PaymentResult) -> dict[str, Any]:
        """The sale's record, the payment's committed state and the sale kept for refunds,
        in one transaction; returns the answer for the POS."""
        q = json.loads(p.quote)
        new_member = (
            p.member is not None
            and p.ident == "phone"
            and self.enroll_new_phones
            and not self.members.known(p.member)
        )
        if new_member:
            assert p.member is not None
            self._enroll(p.member, charged=True)  # known from now on: a retry skips it
        now = self.clock.now()
        ref = res.reference()
        answer: dict[str, Any] = {}

        def book(conn: Any, rec: Record) -> None:
            answer.update(
                {
                    "status": "approved",
                    "recorded": True,
                    "record": {"seq": rec.seq, "hash": rec.hash.hex()},
                    "bank": ref,
                    "quote": q,
                    "enrolled": new_member,
                    "receipt": receipt.sale(
                        q,
                        self.ident.store,
                        rec.seq,
                        enrolled=new_member,
                        referral=self.members.referral_code(p.member) if p.member else None,
                    ),
                    "bank_receipt": list(res.receipt_lines),
                    "en": res.en,
                    "fa": res.fa,
                }
            )
            self.payments.committed(conn, p.id, rec.seq, ref, answer)
            self.payments.add_sale(
                conn, rec.seq, rec.hash, p.basket, p.member, p.quote, ref, now.wall_ms
            )

        self.outbox.commit(
            "sale",
            R.sale_body(q),
            member=member_field(p.member, p.ident),
            bank=R.bank_field(ref) if res.amount else None,
            offline=not self.online(),
            basket=p.basket,
            delta=sale_delta(p.member, q) if p.member is not None else None,
            charged=True,
            also=book,
        )
        return answer

    def _commit_plain(self, p: Payment, res: PaymentResult) -> dict[str, Any]:
        """A card payment without the club: nothing to record but the payment itself."""
        answer = {
            "status": "approved",
            "recorded": False,
            "loyalty": False,
            "record": None,
            "bank": res.reference(),
            "bank_receipt": list(res.receipt_lines),
            "en": f"{res.en} (without the customer club)",
            "fa": f"{res.fa} (بدون باشگاه مشتریان)",
        }
        self.payments.set_state(p.id, "committed", res.reference(), answer)
        return answer


def _unrecorded(q: dict[str, Any], res: PaymentResult, loyalty: bool) -> dict[str, Any]:
    """The answer for an approval whose record cannot be written yet."""
    return {
        "status": "approved",
        "recorded": False,
        "loyalty": loyalty,
        "record": None,
        "bank": res.reference(),
        "quote": q if loyalty else None,
        "bank_receipt": list(res.receipt_lines),
        "en": "Paid. The club could not record this sale yet (the terminal's storage "
        "failed); it is kept and recorded automatically. Do not charge again.",
        "fa": "پرداخت انجام شد. باشگاه هنوز نتوانسته این خرید را ثبت کند (حافظه پایانه)؛ "
        "خرید نگه داشته شده و خودکار ثبت می‌شود. دوباره دریافت نکنید.",
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
    for occasion in ("birthday_year", "anniversary_year"):
        years = [a[occasion] for a in q["applied"] if a.get(occasion)]
        if years:
            info[occasion] = max(years)
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
