"""The unique tax id (شماره منحصر به فرد مالیاتی) of an electronic invoice.

Twenty-two characters, four fixed-width parts::

    DEF5GH 0481F 000000000C 2
    │      │     │          └─ check digit: Verhoeff over the decimal form (below)
    │      │     └─ serial of the invoice in the fiscal memory, hex, 10 characters
    │      └─ the invoice's day: days since 1970-01-01, hex, 5 characters
    └─ fiscal memory id (شناسه یکتای حافظه مالیاتی), 6 characters A-Z 0-9

The check digit is computed over a decimal string: the memory id with each digit kept
and each letter replaced by its ASCII code (``D`` -> ``68``), then the day number in
decimal padded to 6 digits, then the serial in decimal padded to 12 digits.  For
``DEF5GH``, 2020-07-20 (day 18463) and serial 12 that is
``68697057172`` + ``018463`` + ``000000000012``, whose Verhoeff digit is 2.

Which day?  :func:`tax_day` answers with the seller's local calendar day (Tehran for
our stores).  A sale at 01:10 Tehran on 1 Farvardin is 21:40 UTC the day before: the
receipt, the Jalali date people see, and the invoice date the tax system shows for
``indatim`` (the sale instant) all say 1 Farvardin, so the tax id says it too.  Taking
the UTC day instead (as some public clients do, ``floor(unix / 86400)``) would give a
tax id dated the day before its own receipt for every sale between 00:00 and 03:30.
See docs/tax-invoices.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from cloud_broker.tax.errors import InvalidTaxIdError, TaxValidationError

__all__ = [
    "MAX_DAY_NUMBER",
    "MAX_SERIAL",
    "TaxIdParts",
    "day_number",
    "decimal_form",
    "is_valid_tax_id",
    "make_tax_id",
    "parse_tax_id",
    "tax_day",
    "tax_id_for_sale",
    "validate_memory_id",
    "verhoeff_check_digit",
    "verhoeff_is_valid",
]

EPOCH = date(1970, 1, 1)
MS_PER_DAY = 86_400_000
#: the decimal form pads the serial to 12 digits, so larger serials are refused even
#: though 10 hex characters could hold them
MAX_SERIAL = 999_999_999_999
#: the decimal form pads the day to 6 digits (year 4707); 5 hex characters hold more
MAX_DAY_NUMBER = 999_999
_MAX_OFFSET_MIN = 14 * 60

_MEMORY_ID = re.compile(r"[A-Z0-9]{6}")
_TAX_ID = re.compile(r"[A-Z0-9]{6}[0-9A-F]{15}[0-9]")

# Verhoeff's tables: multiplication in the dihedral group D5, the position permutation
# (row i is the base permutation applied i times) and the inverse.
_D = (
    "0123456789",
    "1234067895",
    "2340178956",
    "3401289567",
    "4012395678",
    "5987604321",
    "6598710432",
    "7659821043",
    "8765932104",
    "9876543210",
)
_P1 = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def _permutations() -> tuple[tuple[int, ...], ...]:
    rows = [tuple(range(10))]
    for _ in range(7):
        rows.append(tuple(_P1[x] for x in rows[-1]))
    return tuple(rows)


_P = _permutations()


def _verhoeff_fold(digits: str, shift: int) -> int:
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"Verhoeff needs a non-empty string of ASCII digits, got {digits!r}")
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = int(_D[check][_P[(i + shift) % 8][ord(ch) - 48]])
    return check


def verhoeff_check_digit(digits: str) -> int:
    """The Verhoeff check digit to append to ``digits`` (``"236"`` -> 3)."""
    return _INV[_verhoeff_fold(digits, 1)]


def verhoeff_is_valid(digits: str) -> bool:
    """Whether ``digits`` ends in its correct Verhoeff check digit (``"2363"`` -> True)."""
    return _verhoeff_fold(digits, 0) == 0


def validate_memory_id(memory_id: str) -> str:
    """Return ``memory_id`` if it is 6 characters of A-Z and 0-9, else raise."""
    if not _MEMORY_ID.fullmatch(memory_id):
        raise TaxValidationError(
            "memory_id",
            f"{memory_id!r} is not a fiscal memory id (6 characters, A-Z and 0-9)",
            f"«{memory_id}» شناسه یکتای حافظه مالیاتی نیست (۶ نویسه از A-Z و 0-9)",
        )
    return memory_id


def day_number(day: date) -> int:
    """Days from 1970-01-01 to ``day`` (the tax id's date part)."""
    return (day - EPOCH).days


def tax_day(device_time_ms: int, utc_offset_min: int) -> date:
    """The calendar day a sale counts for: the seller's local day at the sale instant.

    ``device_time_ms`` is the sale instant (Unix milliseconds, the invoice's
    ``indatim``); ``utc_offset_min`` the store's UTC offset then (Tehran: +210).  A sale
    at 00:00-03:29 Tehran belongs to that Tehran day, the day the receipt shows, not to
    the UTC day (the day before).  Integer arithmetic only.
    """
    if type(device_time_ms) is not int or type(utc_offset_min) is not int:
        raise TypeError("device_time_ms and utc_offset_min must be int")
    if not -_MAX_OFFSET_MIN <= utc_offset_min <= _MAX_OFFSET_MIN:
        raise TaxValidationError(
            "utc_offset_min",
            f"{utc_offset_min} minutes is not a UTC offset",
            f"{utc_offset_min} دقیقه اختلاف ساعت معتبر نیست",
        )
    local_days = (device_time_ms + utc_offset_min * 60_000) // MS_PER_DAY
    return EPOCH + timedelta(days=local_days)


def decimal_form(memory_id: str, days: int, serial: int) -> str:
    """The decimal string the check digit is computed over (see the module docstring)."""
    coded = "".join(ch if ch.isdigit() else str(ord(ch)) for ch in memory_id)
    return f"{coded}{days:06d}{serial:012d}"


def make_tax_id(memory_id: str, day: date, serial: int) -> str:
    """Build the 22-character tax id for the invoice ``serial`` of ``memory_id`` on ``day``."""
    validate_memory_id(memory_id)
    days = day_number(day)
    if not 0 <= days <= MAX_DAY_NUMBER:
        raise TaxValidationError(
            "day",
            f"{day.isoformat()} is outside the tax id's range (1970-01-01 onwards)",
            f"تاریخ {day.isoformat()} خارج از بازه شماره مالیاتی است",
        )
    if type(serial) is not int or not 0 <= serial <= MAX_SERIAL:
        raise TaxValidationError(
            "serial",
            f"serial {serial!r} must be an integer from 0 to {MAX_SERIAL}",
            f"سریال {serial!r} باید عددی صحیح از ۰ تا {MAX_SERIAL} باشد",
        )
    check = verhoeff_check_digit(decimal_form(memory_id, days, serial))
    return f"{memory_id}{days:05X}{serial:010X}{check}"


def tax_id_for_sale(memory_id: str, serial: int, device_time_ms: int, utc_offset_min: int) -> str:
    """The tax id of a sale made at ``device_time_ms`` (local day per :func:`tax_day`)."""
    return make_tax_id(memory_id, tax_day(device_time_ms, utc_offset_min), serial)


@dataclass(frozen=True)
class TaxIdParts:
    """A tax id taken apart: memory id, day, serial and check digit."""

    memory_id: str
    day: date
    serial: int
    check_digit: int

    @property
    def tax_id(self) -> str:
        """The tax id these parts make (upper case)."""
        return f"{self.memory_id}{day_number(self.day):05X}{self.serial:010X}{self.check_digit}"


def parse_tax_id(tax_id: str) -> TaxIdParts:
    """Check a tax id's format and check digit and take it apart.

    Hex letters may be lower case (the system's own pattern allows them); the parts are
    returned upper case.  Raises :class:`InvalidTaxIdError`.
    """
    if not isinstance(tax_id, str) or len(tax_id) != 22:
        raise InvalidTaxIdError(
            str(tax_id), "a tax id has exactly 22 characters", "شماره مالیاتی دقیقاً ۲۲ نویسه دارد"
        )
    upper = tax_id.upper()
    if not upper.isascii() or not _TAX_ID.fullmatch(upper):
        raise InvalidTaxIdError(
            tax_id,
            "expected 6 memory id characters, 15 hex digits and a decimal check digit",
            "قالب درست: ۶ نویسه شناسه حافظه، ۱۵ رقم مبنای ۱۶ و یک رقم کنترلی",
        )
    memory_id = upper[:6]
    days = int(upper[6:11], 16)
    serial = int(upper[11:21], 16)
    if days > MAX_DAY_NUMBER or serial > MAX_SERIAL:
        raise InvalidTaxIdError(
            tax_id,
            "the day or serial is too large for the decimal check form",
            "تاریخ یا سریال برای محاسبه رقم کنترلی بیش از حد بزرگ است",
        )
    check = int(upper[21])
    if not verhoeff_is_valid(decimal_form(memory_id, days, serial) + upper[21]):
        raise InvalidTaxIdError(
            tax_id,
            f"wrong check digit {check} (Verhoeff)",
            f"رقم کنترلی {check} نادرست است (الگوریتم Verhoeff)",
        )
    return TaxIdParts(memory_id, EPOCH + timedelta(days=days), serial, check)


def is_valid_tax_id(tax_id: str) -> bool:
    """Whether ``tax_id`` passes :func:`parse_tax_id`."""
    try:
        parse_tax_id(tax_id)
    except InvalidTaxIdError:
        return False
    return True
