"""One line of an invoice and the invoice's totals, in integer Rials.

A quantity is an integer number of thousandths (``qty_milli``: 2 pieces = 2000,
1.5 kg = 1500) and a VAT rate an integer number of basis points (10 % = 1000), so
nothing here is ever a float.  Per line, in this order:

=========  ===============================================  ========================
``prdis``  ``fee × qty_milli ÷ 1000``, truncated to a Rial   before discount
``dis``    the line's discount                                given
``adis``   ``prdis − dis``                                    after discount
``vam``    ``adis × vat_rate_bp ÷ 10000``, truncated           VAT
``tsstam`` ``adis + vam``                                     line total
=========  ===============================================  ========================

Truncation (not rounding half-up) follows the general rule of the e-invoice standard
(RC_IITP, «قاعده کلی»: fractions of a Rial are dropped).  The invoice's totals are
the exact sums over its lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cloud_broker.tax.errors import TaxValidationError

__all__ = ["UNIT_PIECE", "InvoiceLine", "InvoiceTotals", "parse_quantity", "require_int"]

#: measurement unit «عدد» (piece), the code public examples use for counted goods
UNIT_PIECE = "1627"

_SSTID = re.compile(r"[0-9]{13}")
_QTY = re.compile(r"([0-9]+)(?:\.([0-9]{1,3}))?")


def _bad(field_name: str, en: str, fa: str) -> TaxValidationError:
    return TaxValidationError(field_name, en, fa)


def require_int(field_name: str, value: object, minimum: int = 0) -> int:
    """``value`` if it is an ``int`` (not a bool or float) of at least ``minimum``."""
    if type(value) is not int or value < minimum:
        raise _bad(
            field_name,
            f"must be an integer of at least {minimum}, got {value!r}",
            f"باید عددی صحیح و دست‌کم {minimum} باشد، نه {value!r}",
        )
    return value


def parse_quantity(text: str) -> int:
    """``"2"`` -> 2000, ``"1.5"`` -> 1500, ``"0.125"`` -> 125 (thousandths; no floats)."""
    match = _QTY.fullmatch(text.strip())
    if match is None:
        raise _bad(
            "qty",
            f"{text!r} is not a quantity with at most 3 decimals",
            f"«{text}» مقدار معتبری با حداکثر ۳ رقم اعشار نیست",
        )
    whole, frac = match.group(1), (match.group(2) or "").ljust(3, "0")
    return int(whole) * 1000 + int(frac)


@dataclass(frozen=True)
class InvoiceLine:
    """One line: a product or service (``sstid``, 13 digits) sold in some quantity."""

    sstid: str
    description: str
    qty_milli: int
    unit_price: int  # fee, Rials per unit
    vat_rate_bp: int
    discount: int = 0
    unit_code: str = UNIT_PIECE  # mu

    def __post_init__(self) -> None:
        if not _SSTID.fullmatch(self.sstid):
            raise _bad(
                "sstid",
                f"product/service id {self.sstid!r} must be 13 digits",
                f"شناسه کالا/خدمت «{self.sstid}» باید ۱۳ رقم باشد",
            )
        if not self.description.strip() or len(self.description) > 400:
            raise _bad(
                "sstt", "description must be 1-400 characters", "شرح کالا باید ۱ تا ۴۰۰ نویسه باشد"
            )
        require_int("am", self.qty_milli, 1)
        require_int("fee", self.unit_price, 0)
        require_int("dis", self.discount, 0)
        if require_int("vra", self.vat_rate_bp, 0) > 10_000:
            raise _bad("vra", "VAT rate above 100 %", "نرخ مالیات بر ارزش افزوده بیش از ۱۰۰٪ است")
        if self.discount > self.before_discount:
            raise _bad(
                "dis",
                f"discount {self.discount} exceeds the line amount {self.before_discount}",
                f"تخفیف {self.discount} از مبلغ ردیف {self.before_discount} بیشتر است",
            )

    @property
    def before_discount(self) -> int:
        """``prdis``: unit price × quantity, fractions of a Rial dropped."""
        return self.unit_price * self.qty_milli // 1000

    @property
    def after_discount(self) -> int:
        """``adis``."""
        return self.before_discount - self.discount

    @property
    def vat(self) -> int:
        """``vam``: VAT on the amount after discount, fractions of a Rial dropped."""
        return self.after_discount * self.vat_rate_bp // 10_000

    @property
    def total(self) -> int:
        """``tsstam``: after discount plus VAT."""
        return self.after_discount + self.vat

    def to_wire(self) -> dict[str, Any]:
        """The line as the API's body entry."""
        qty: int | Decimal = (
            self.qty_milli // 1000 if self.qty_milli % 1000 == 0 else Decimal(self.qty_milli) / 1000
        )
        rate: int | Decimal = (
            self.vat_rate_bp // 100
            if self.vat_rate_bp % 100 == 0
            else Decimal(self.vat_rate_bp) / 100
        )
        return {
            "sstid": self.sstid,
            "sstt": self.description,
            "am": qty,
            "mu": self.unit_code,
            "fee": self.unit_price,
            "prdis": self.before_discount,
            "dis": self.discount,
            "adis": self.after_discount,
            "vra": rate,
            "vam": self.vat,
            "tsstam": self.total,
        }


@dataclass(frozen=True)
class InvoiceTotals:
    """The header's totals, each the exact sum over the lines."""

    before_discount: int  # tprdis
    discount: int  # tdis
    after_discount: int  # tadis
    vat: int  # tvam
    total: int  # tbill

    @classmethod
    def of(cls, lines: tuple[InvoiceLine, ...]) -> InvoiceTotals:
        """Sum the lines."""
        return cls(
            sum(x.before_discount for x in lines),
            sum(x.discount for x in lines),
            sum(x.after_discount for x in lines),
            sum(x.vat for x in lines),
            sum(x.total for x in lines),
        )
