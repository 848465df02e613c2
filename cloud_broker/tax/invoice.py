"""What the tax system needs to know about a sale, and its packet (header/body/payments).

Our invoices are retail ones: type 2 (صورتحساب الکترونیکی نوع دوم, ``inty`` 2: the
seller and the goods in full, the buyer optional), sales pattern 1 (الگوی فروش,
``inp`` 1), subject 1 (original, اصلی) or 4 (return, برگشت از فروش, which names the
original invoice in ``irtaxid``).

Money is integer Rials; quantities, VAT and its truncation are described in
:mod:`cloud_broker.tax.lines`.  The header's totals are the exact sums over the lines
(``tprdis``, ``tdis``, ``tadis``, ``tvam``, ``tbill`` = Σ ``tsstam``), so they can
never disagree with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from cloud_broker.tax.errors import InvalidTaxIdError, TaxValidationError
from cloud_broker.tax.lines import (
    UNIT_PIECE,
    InvoiceLine,
    InvoiceTotals,
    parse_quantity,
    require_int,
)
from cloud_broker.tax.taxid import parse_tax_id, tax_day, tax_id_for_sale, validate_memory_id

__all__ = [
    "UNIT_PIECE",
    "Buyer",
    "BuyerType",
    "Invoice",
    "InvoiceLine",
    "InvoiceSubject",
    "InvoiceTotals",
    "Payment",
    "Seller",
    "Settlement",
    "parse_quantity",
    "to_packet",
]

INVOICE_TYPE_RETAIL = 2  # inty: نوع دوم
SALES_PATTERN = 1  # inp: الگوی فروش
_DIGITS = re.compile(r"[0-9]+")


def _bad(field_name: str, en: str, fa: str) -> TaxValidationError:
    return TaxValidationError(field_name, en, fa)


class InvoiceSubject(IntEnum):
    """``ins``: why the invoice is issued."""

    ORIGINAL = 1  # اصلی
    RETURN = 4  # برگشت از فروش


class Settlement(IntEnum):
    """``setm``: how the buyer settles."""

    CASH = 1  # نقدی
    CREDIT = 2  # نسیه
    MIXED = 3  # نقدی/نسیه


class BuyerType(IntEnum):
    """``tob``: who the buyer is."""

    PERSON = 1  # حقیقی
    COMPANY = 2  # حقوقی
    CIVIL_PARTNERSHIP = 3  # مشارکت مدنی
    FOREIGNER = 4  # اتباع غیر ایرانی
    FINAL_CONSUMER = 5  # مصرف کننده نهایی


@dataclass(frozen=True)
class Seller:
    """The store's taxpayer: fiscal memory id and economic code (``tins``)."""

    memory_id: str
    economic_code: str
    branch_code: str | None = None  # sbc

    def __post_init__(self) -> None:
        validate_memory_id(self.memory_id)
        if not _DIGITS.fullmatch(self.economic_code) or not 10 <= len(self.economic_code) <= 14:
            raise _bad(
                "tins",
                f"economic code {self.economic_code!r} must be 10 to 14 digits",
                f"شماره اقتصادی «{self.economic_code}» باید ۱۰ تا ۱۴ رقم باشد",
            )


@dataclass(frozen=True)
class Buyer:
    """An identified buyer (optional on a type 2 invoice)."""

    buyer_type: BuyerType
    national_id: str | None = None  # bid
    economic_code: str | None = None  # tinb
    postal_code: str | None = None  # bpc

    def __post_init__(self) -> None:
        for name, value in (
            ("bid", self.national_id),
            ("tinb", self.economic_code),
            ("bpc", self.postal_code),
        ):
            if value is not None and not _DIGITS.fullmatch(value):
                raise _bad(name, f"{value!r} must be digits", f"«{value}» باید فقط رقم باشد")


@dataclass(frozen=True)
class Payment:
    """One payment of the invoice (``payments``), e.g. a card payment on the terminal."""

    amount: int  # pv
    paid_at_ms: int  # pdt
    method: int | None = None  # pmt
    trace_no: str | None = None  # trn
    terminal_no: str | None = None  # trmn
    switch_no: str | None = None  # iinn
    acceptor_no: str | None = None  # acn
    card_no: str | None = None  # pcn (masked)

    def __post_init__(self) -> None:
        require_int("pv", self.amount, 1)
        require_int("pdt", self.paid_at_ms, 1)

    def to_wire(self) -> dict[str, Any]:
        """The payment's fields as the API names them (absent ones left out)."""
        wire: dict[str, Any] = {
            "iinn": self.switch_no,
            "acn": self.acceptor_no,
            "trmn": self.terminal_no,
            "pmt": self.method,
            "trn": self.trace_no,
            "pcn": self.card_no,
            "pdt": self.paid_at_ms,
            "pv": self.amount,
        }
        return {k: v for k, v in wire.items() if v is not None}


@dataclass(frozen=True)
class Invoice:
    """A retail (type 2) invoice ready for the tax system; checked when built.

    Build it with :meth:`create`, which computes the tax id from the memory id, the
    serial and the local day of ``issued_at_ms``.
    """

    seller: Seller
    tax_id: str
    serial: int
    issued_at_ms: int  # indatim
    utc_offset_min: int
    lines: tuple[InvoiceLine, ...]
    subject: InvoiceSubject = InvoiceSubject.ORIGINAL
    original_tax_id: str | None = None  # irtaxid, for a return
    buyer: Buyer | None = None
    settlement: Settlement = Settlement.CASH
    cash_amount: int | None = None  # cap, only for a mixed settlement
    payments: tuple[Payment, ...] = ()
    created_at_ms: int | None = None  # indati2m; defaults to issued_at_ms
    totals: InvoiceTotals = field(init=False)

    @classmethod
    def create(
        cls,
        seller: Seller,
        serial: int,
        issued_at_ms: int,
        lines: tuple[InvoiceLine, ...] | list[InvoiceLine],
        *,
        utc_offset_min: int = 210,
        subject: InvoiceSubject = InvoiceSubject.ORIGINAL,
        original_tax_id: str | None = None,
        buyer: Buyer | None = None,
        settlement: Settlement = Settlement.CASH,
        cash_amount: int | None = None,
        payments: tuple[Payment, ...] = (),
    ) -> Invoice:
        """An invoice with its tax id computed (see :func:`taxid.tax_id_for_sale`)."""
        require_int("indatim", issued_at_ms, 1)
        tax_id = tax_id_for_sale(seller.memory_id, serial, issued_at_ms, utc_offset_min)
        return cls(
            seller,
            tax_id,
            serial,
            issued_at_ms,
            utc_offset_min,
            tuple(lines),
            subject,
            original_tax_id,
            buyer,
            settlement,
            cash_amount,
            payments,
        )

    def __post_init__(self) -> None:
        require_int("indatim", self.issued_at_ms, 1)
        if not self.lines:
            raise _bad(
                "body", "an invoice needs at least one line", "صورتحساب دست‌کم یک ردیف لازم دارد"
            )
        parts = parse_tax_id(self.tax_id)
        expected_day = tax_day(self.issued_at_ms, self.utc_offset_min)
        if (parts.memory_id, parts.serial, parts.day) != (
            self.seller.memory_id,
            self.serial,
            expected_day,
        ):
            raise InvalidTaxIdError(
                self.tax_id,
                f"does not match memory id {self.seller.memory_id}, serial {self.serial} "
                f"and day {expected_day.isoformat()}",
                f"با شناسه حافظه {self.seller.memory_id}، سریال {self.serial} و تاریخ "
                f"{expected_day.isoformat()} هم‌خوانی ندارد",
            )
        self._check_subject()
        object.__setattr__(self, "totals", InvoiceTotals.of(self.lines))
        self._check_settlement()

    def _check_subject(self) -> None:
        if self.subject == InvoiceSubject.RETURN:
            if self.original_tax_id is None:
                raise _bad(
                    "irtaxid",
                    "a return must name the original invoice's tax id",
                    "صورتحساب برگشت از فروش باید شماره مالیاتی صورتحساب اصلی را داشته باشد",
                )
            if parse_tax_id(self.original_tax_id).tax_id == self.tax_id:
                raise _bad(
                    "irtaxid", "a return cannot refer to itself", "برگشت نمی‌تواند به خودش ارجاع دهد"
                )
        elif self.original_tax_id is not None:
            raise _bad(
                "irtaxid",
                "only a return refers to an original invoice",
                "فقط صورتحساب برگشت از فروش به صورتحساب اصلی ارجاع می‌دهد",
            )

    def _check_settlement(self) -> None:
        mixed = self.settlement == Settlement.MIXED
        if mixed != (self.cash_amount is not None):
            raise _bad(
                "cap",
                "a cash amount is given exactly for a mixed settlement",
                "مبلغ نقدی فقط برای تسویه نقدی/نسیه داده می‌شود",
            )
        if mixed and not 0 < require_int("cap", self.cash_amount, 1) < self.totals.total:
            raise _bad(
                "cap",
                "the cash part of a mixed settlement must be between 0 and the total",
                "بخش نقدی تسویه نقدی/نسیه باید بین صفر و مبلغ کل باشد",
            )

    def _settlement_amounts(self) -> tuple[int, int]:
        total = self.totals.total
        if self.settlement == Settlement.CASH:
            return total, 0
        if self.settlement == Settlement.CREDIT:
            return 0, total
        cash = self.cash_amount or 0
        return cash, total - cash

    def to_packet(self) -> dict[str, Any]:
        """The invoice as the API's JSON (``header``, ``body``, ``payments``).

        Fields we do not use are left out rather than sent as null.
        """
        cash, credit = self._settlement_amounts()
        header: dict[str, Any] = {
            "taxid": parse_tax_id(self.tax_id).tax_id,
            "indatim": self.issued_at_ms,
            "indati2m": self.created_at_ms if self.created_at_ms is not None else self.issued_at_ms,
            "inty": INVOICE_TYPE_RETAIL,
            "inno": f"{self.serial:010X}",
            "irtaxid": self.original_tax_id.upper() if self.original_tax_id else None,
            "inp": SALES_PATTERN,
            "ins": int(self.subject),
            "tins": self.seller.economic_code,
            "sbc": self.seller.branch_code,
        }
        if self.buyer is not None:
            header["tob"] = int(self.buyer.buyer_type)
            header["bid"] = self.buyer.national_id
            header["tinb"] = self.buyer.economic_code
            header["bpc"] = self.buyer.postal_code
        t = self.totals
        header.update(
            tprdis=t.before_discount,
            tdis=t.discount,
            tadis=t.after_discount,
            tvam=t.vat,
            todam=0,
            tbill=t.total,
            setm=int(self.settlement),
            cap=cash,
            insp=credit,
        )
        return {
            "header": {k: v for k, v in header.items() if v is not None},
            "body": [line.to_wire() for line in self.lines],
            "payments": [p.to_wire() for p in self.payments],
        }


def to_packet(invoice: Invoice) -> dict[str, Any]:
    """Module-level alias of :meth:`Invoice.to_packet`."""
    return invoice.to_packet()
