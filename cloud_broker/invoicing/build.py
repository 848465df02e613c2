"""A reconciled sale or refund as the tax system's invoice, to the Rial of the ledger.

Shelf prices in Iran include VAT; the records hold what the customer paid.  Each line is
written ex-VAT so that the system's own arithmetic gives back what was paid:

    P       = qty x unit price - discount - wallet credit spent on the line  (the ledger's)
    adis    = the largest a with a + floor(a x rate) <= P                    (ex-VAT)
    vam     = floor(adis x rate)                     the system's truncation (tax.lines)
    fee     = ceil(unit price / (1 + rate))         so that fee x qty >= adis
    dis     = fee x qty - adis                      the discount, ex-VAT

``adis + vam`` equals ``P`` except where truncation skips a value (at 10 %, one amount in
eleven); that Rial is carried to the next line's target, and a Rial still left after the
last line goes to the first line that can take it, or a line of several units is written as
two lines of the same goods whose totals can.  ``tbill`` then equals the ledger's revenue of
the sale exactly.  Only a sale whose every line is a single unit at an amount truncation
cannot reach (about one single-line, single-unit sale in eleven at 10 %) is written one Rial
short; the queue records that Rial (``short``) and the console shows it.

Wallet credit spent is the store's own cashback: a discount on the invoice.  A refund or
void is a return invoice (subject 4) naming the sale's tax id, for what was given back
(money and wallet credit) of the lines returned."""

from __future__ import annotations

from typing import Any

from cloud_broker.invoicing.mapping import product_for
from cloud_broker.tax.errors import TaxValidationError
from cloud_broker.tax.invoice import Invoice, InvoiceSubject, Payment, Seller, Settlement
from cloud_broker.tax.lines import InvoiceLine
from edge.core import record as R

Products = dict[tuple[str, str], tuple[str, str | None, int | None]]


def _f(a: int, rate_bp: int) -> int:
    return a + a * rate_bp // 10_000


def ex_vat(p: int, rate_bp: int) -> int:
    """The largest ``a`` with ``a + floor(a x rate) <= p``."""
    a = p * 10_000 // (10_000 + rate_bp)
    while _f(a + 1, rate_bp) <= p:
        a += 1
    while a > 0 and _f(a, rate_bp) > p:
        a -= 1
    return a


def _line(sstid: str, text: str, qty: int, unit_incl: int, rate_bp: int, adis: int) -> InvoiceLine:
    fee = -(-unit_incl * 10_000 // (10_000 + rate_bp))  # ceil
    if fee * qty < adis:
        fee = -(-adis // qty)
    return InvoiceLine(
        sstid=sstid,
        description=text,
        qty_milli=qty * 1000,
        unit_price=fee,
        vat_rate_bp=rate_bp,
        discount=fee * qty - adis,
    )


class UnmappedProductError(TaxValidationError):
    """A line whose SKU and product group have no product id yet."""

    def __init__(self, sku: str, category: str) -> None:
        super().__init__(
            "sstid",
            f"SKU {sku} (group {category}) has no product id: set it on the tax page",
            f"کالای {sku} (گروه {category}) شناسه کالای مالیاتی ندارد؛ در صفحه مالیات ثبت کنید",
        )


def _reachable(t: int, rate_bp: int) -> int | None:
    a = ex_vat(t, rate_bp)
    return a if _f(a, rate_bp) == t else None


def lines(p: dict[int, Any], table: Products) -> tuple[list[InvoiceLine], int]:
    """The invoice lines of a sale or refund record, and the Rials (0 or 1) by which their
    total falls short of what was paid (a sale) or given back (a refund)."""
    refund = p[R.K_TYPE] != "sale"
    plan = []
    for ln in p[R.K_LINES]:
        sku, cat = str(ln[R.L_SKU]), str(ln[R.L_CATEGORY])
        found = product_for(table, sku, cat)
        if found is None:
            raise UnmappedProductError(sku, cat)
        qty = int(ln[R.L_QTY])
        target = int(ln[R.L_PAID]) + (int(ln[R.L_WALLET]) if refund else 0)
        unit = int(ln[R.L_UNIT_PRICE]) if R.L_UNIT_PRICE in ln else -(-target // qty)
        plan.append((found, qty, unit, target))
    parts: list[tuple[tuple[str, str, int], int, int, int]] = []  # (product, qty, unit, adis)
    carry = 0
    for found, qty, unit, target in plan:
        a = ex_vat(target + carry, found[2])
        carry = target + carry - _f(a, found[2])
        parts.append((found, qty, unit, a))
    if carry:  # the last Rial: to the first line whose total can be one more
        for i, (found, qty, unit, a) in enumerate(parts):
            more = _reachable(_f(a, found[2]) + carry, found[2])
            if more is not None:
                parts[i], carry = (found, qty, unit, more), 0
                break
    if carry:  # or split a line of several units in two (the same goods, two lines)
        for i, (found, qty, unit, a) in enumerate(parts):
            if qty < 2:
                continue
            total = _f(a, found[2]) + carry
            one = total // qty
            for t2 in range(max(0, one - 3), one + 4):
                a1, a2 = _reachable(total - t2, found[2]), _reachable(t2, found[2])
                if a1 is not None and a2 is not None:
                    parts[i : i + 1] = [(found, qty - 1, unit, a1), (found, 1, unit, a2)]
                    carry = 0
                    break
            if not carry:
                break
    out = [_line(found[0], found[1], qty, unit, found[2], a) for found, qty, unit, a in parts]
    return out, carry


def invoice(
    seller: Seller,
    serial: int,
    p: dict[int, Any],
    table: Products,
    original_tax_id: str | None = None,
) -> Invoice:
    """The invoice of record payload ``p`` (a sale; or a refund or void with the tax id of
    the sale it returns)."""
    t = p[R.K_TIME]
    at_ms, offset = int(t[R.T_WALL]), int(t[R.T_OFFSET])
    items, _ = lines(p, table)
    bank = p.get(R.K_BANK) or {}
    paid = int(p[R.K_AMOUNTS][R.A_PAID])
    payments: tuple[Payment, ...] = ()
    if bank and paid > 0 and p[R.K_TYPE] == "sale":
        payments = (
            Payment(
                amount=paid,
                paid_at_ms=at_ms,
                method=2,
                trace_no=str(bank.get(R.B_TRACE) or "")[:20] or None,
                terminal_no=str(bank.get(R.B_TERMINAL) or "")[:20] or None,
            ),
        )
    subject = InvoiceSubject.ORIGINAL if p[R.K_TYPE] == "sale" else InvoiceSubject.RETURN
    return Invoice.create(
        seller,
        serial,
        at_ms,
        items,
        utc_offset_min=offset,
        subject=subject,
        original_tax_id=original_tax_id,
        settlement=Settlement.CASH,
        payments=payments,
    )
