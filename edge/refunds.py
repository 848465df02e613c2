"""Refunds and voids at the till: the money goes back the way it came, as durably as it came.

    refund(seq, {"lines": [...]} | {"all": true}, key=..., to="card" | "cash")
    void(seq)

The refund is quoted pro rata from the sale this terminal recorded (edge.core.refund),
adjusted to what the member still holds (``settle_member``: points and cashback already
spent are withheld from the money, or left as an overdraft, as the rules bundle says).
Then the money moves through edge.settlement like a sale's, with the same intent,
recovery and idempotency:

* the sale was paid by card and a bank terminal is configured: a **void** of the whole
  sale on the day it was made is a ZVT Reversal of its receipt number (it never reaches
  the customer's statement); anything else is a Refund (a credit to the card);
* ``to="cash"``, a sale paid without the card (points or wallet covered it all), or no
  bank terminal: the store hands the money back and the record says so.

Declined by the bank terminal: nothing is recorded and the cashier may refund in cash.
The POS's idempotency key (``key``, default the request's ``id``) makes a repeated request
return the first answer instead of paying back twice.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from edge import receipt
from edge.checkout import Checkout, member_field
from edge.core import record as R
from edge.core.dates import parse_timestamp
from edge.core.errors import CoreError
from edge.core.refund import refund as refund_quote
from edge.core.refund import settle_member
from edge.core.text import fa_digits
from edge.drivers.base import PaymentResult
from edge.ledger_cache.outbox import MemberDelta
from edge.ledger_cache.payments import Payment, Sale
from edge.settlement import CheckoutError, idempotency_key

log = logging.getLogger("edge.refunds")

METHODS = ("card", "cash")


class Refunds:
    def __init__(self, checkout: Checkout, refund_days: int = 30) -> None:
        self.co = checkout
        self.refund_days = refund_days  # how long the terminal keeps a sale (retention)
        self.payments = checkout.payments
        self.settlement = checkout.settlement
        self.settlement.committers["refund"] = self._commit
        self.settlement.committers["void"] = self._commit

    def refund(
        self,
        seq: int,
        request: dict[str, Any],
        kind: str = "refund",
        key: str | None = None,
    ) -> dict[str, Any]:
        self.co.mine()
        if not isinstance(request, dict):
            raise CheckoutError("bad_refund", "the request must be an object", "درخواست نامعتبر.")
        request = dict(request)
        to = request.pop("to", None)
        rid = request.pop("id", None)
        idem = idempotency_key("refund", key if key is not None else rid)
        first = self.settlement.repeat(idem)
        if first is not None:
            return first
        if to is not None and to not in METHODS:
            raise CheckoutError(
                "bad_refund", "to: card or cash", "روش بازپرداخت باید کارت یا نقد باشد."
            )
        sale = self.payments.sale(seq)
        if sale is None:
            raise CheckoutError(
                "unknown_sale",
                f"no sale with record {seq} on this terminal (a terminal keeps its sales "
                f"for the refund window, {self.refund_days} days; older ones are refunded "
                "by head office)",
                f"فاکتور {fa_digits(str(seq))} در این پایانه نیست (پایانه فاکتورها را تا "
                f"{fa_digits(str(self.refund_days))} "
                "روز نگه می‌دارد؛ مرجوعی فاکتورهای قدیمی‌تر با دفتر مرکزی است).",
            )
        if self.payments.refunds_open(seq):
            raise CheckoutError(
                "refund_pending",
                f"a refund of record {seq} is still being settled with the bank terminal",
                "مرجوعی دیگری از این فاکتور هنوز با پایانه بانکی تسویه نشده است.",
            )
        try:
            r = refund_quote(sale.quote, request, sale.refunded, kind)
        except CoreError as e:
            raise CheckoutError("bad_refund", e.en, e.fa) from e
        self._settle_member(r, sale)
        self.co.recordable()
        method = self._method(sale, r, kind, to)
        bank_amount = r["refund_amount"] if method in ("refund", "reversal") else 0
        pid = self.settlement.begin(
            kind,
            f"refund-{seq}",
            bank_amount,
            json.dumps(r),
            basket=sale.basket,
            member=sale.member,
            idem=idem,
            orig_seq=seq,
            request={
                "method": method,
                "lines": [{"line": ln["line"], "qty": ln["qty"]} for ln in r["lines"]],
            },
        )
        bank = self.settlement.bank
        s = self.settlement

        def op() -> PaymentResult:
            assert bank is not None
            if method == "reversal":
                receipt_no = int((sale.bank or {}).get("receipt", 0))
                return bank.reverse(receipt_no, bank_amount, on_status=s.status, timeout=s.timeout)
            return bank.refund(bank_amount, on_status=s.status, timeout=s.timeout)

        res = self.settlement.move(pid, bank_amount, op, f"refund-{seq}")
        answer = self.settlement.finish(pid, res, _unrecorded(kind, r, method, res))
        if answer is None:
            return {
                "status": "declined",
                "en": f"{res.en}; nothing was refunded (the money may be given back in cash)",
                "fa": f"{res.fa}؛ مبلغی برنگشت (می‌توان نقدی بازپرداخت کرد)",
                "result_code": res.result_code,
            }
        self.co.notify()
        return answer

    def _settle_member(self, r: dict[str, Any], sale: Sale) -> None:
        rs = self.co.rules.current
        if sale.member is None or rs is None:
            settle_member(r, 0, 0, {"refund_clawback": "overdraft"})  # the fields, zero
            return
        today = parse_timestamp(self.co.clock.now().iso())["day"]
        est = self.co.members.estimate(sale.member, today, self.co.online(), rs.policy)
        settle_member(r, est.points, est.wallet, rs.policy)
        r["points_after"] = est.points - r["points_reversed"] + r["points_returned"]
        r["wallet_after"] = est.wallet + r["wallet_returned"] - r["wallet_reversed"]

    def _method(self, sale: Sale, r: dict[str, Any], kind: str, to: str | None) -> str:
        """``reversal`` or ``refund`` through the bank terminal, or ``cash``."""
        paid_by_card = bool(sale.bank and int(sale.bank.get("amount", 0)) > 0)
        if to == "cash" or not paid_by_card or r["refund_amount"] == 0:
            return "cash"
        if self.settlement.bank is None:
            if to == "card":
                raise CheckoutError(
                    "no_bank",
                    "no bank terminal is configured: refund in cash",
                    "پایانه بانکی تعریف نشده است؛ نقدی بازپرداخت کنید.",
                )
            return "cash"
        assert sale.bank is not None
        same_day = self.co.clock.now().iso()[:10] == sale.quote.get("at", "")[:10]
        whole = r["refund_amount"] == int(sale.bank.get("amount", 0)) and not sale.refunded
        if kind == "void" and same_day and whole and int(sale.bank.get("receipt", 0)) > 0:
            return "reversal"
        return "refund"

    def _commit(self, p: Payment, res: PaymentResult) -> dict[str, Any]:
        """The refund's record, the sale's refunded units and the payment's committed
        state in one transaction; returns the answer for the POS."""
        seq = p.orig_seq
        assert seq is not None and p.request is not None
        sale = self.payments.sale(seq)
        assert sale is not None, "the sale a refund refers to is kept"
        r = json.loads(p.quote)
        kind = p.kind
        method = p.request["method"]
        now = self.co.clock.now()
        delta = None
        if sale.member:
            delta = MemberDelta(
                sale.member,
                now.iso()[:10],
                points=r["points_returned"] - r["points_reversed"],
                wallet=r["wallet_returned"] - r["wallet_reversed"],
                spend=-r["refund_amount"] - r.get("withheld", 0),
                info={"points_spent": -r["points_returned"], "wallet_spent": -r["wallet_returned"]},
            )
        done = sale.refunded + p.request["lines"]
        ref = res.reference() if method != "cash" else None
        answer: dict[str, Any] = {}
        store = self.co.ident.store

        def book(conn: Any, rec: Any) -> None:
            answer.update(
                {
                    "status": kind,
                    "recorded": True,
                    "record": {"seq": rec.seq, "hash": rec.hash.hex()},
                    "refund": r,
                    "money": {"method": method, "amount": r["refund_amount"], "bank": ref},
                    "bank_receipt": list(res.receipt_lines),
                    "receipt": receipt.refund(r, store, rec.seq, seq),
                }
            )
            self.payments.set_refunded(conn, seq, done)
            self.payments.committed(conn, p.id, rec.seq, ref, answer)

        self.co.outbox.commit(
            kind,
            R.refund_body(r, self.co.ident.device, seq, sale.hash),
            member=_member_field(sale),
            bank=R.bank_field(ref) if ref else None,
            offline=not self.co.online(),
            basket=sale.basket,
            delta=delta,
            charged=True,
            also=book,
        )
        return answer


def _member_field(sale: Sale) -> dict[int, str] | None:
    ref = (sale.quote.get("member") or {}).get("ref")
    return member_field(ref, None)


def _unrecorded(kind: str, r: dict[str, Any], method: str, res: PaymentResult) -> dict[str, Any]:
    return {
        "status": kind,
        "recorded": False,
        "record": None,
        "refund": r,
        "money": {"method": method, "amount": r["refund_amount"], "bank": res.reference()},
        "bank_receipt": list(res.receipt_lines),
        "en": "Money given back. The club could not record the refund yet (the terminal's "
        "storage failed); it is kept and recorded automatically. Do not refund again.",
        "fa": "مبلغ برگشت داده شد. باشگاه هنوز نتوانسته مرجوعی را ثبت کند؛ نگه داشته شده و "
        "خودکار ثبت می‌شود. دوباره مرجوع نکنید.",
    }
