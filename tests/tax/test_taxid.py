"""The tax id: published vectors, Verhoeff, round trips, and which day a sale counts for."""

from __future__ import annotations

from datetime import UTC, date, datetime

import jdatetime
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_broker.tax.errors import InvalidTaxIdError, TaxValidationError
from cloud_broker.tax.taxid import (
    MAX_SERIAL,
    TaxIdParts,
    decimal_form,
    is_valid_tax_id,
    make_tax_id,
    parse_tax_id,
    tax_day,
    tax_id_for_sale,
    verhoeff_check_digit,
    verhoeff_is_valid,
)

# ------------------------------------------------------------------ vectors


@pytest.mark.parametrize(
    ("serial", "expected"),
    [
        # the format document's examples (memory id DEF5GH, 2020-07-20)
        (12, "DEF5GH0481F000000000C2"),
        (8173, "DEF5GH0481F0000001FED8"),
        # the same algorithm's third case as public clients test it
        (2572613409, "DEF5GH0481F009956F7211"),
    ],
)
def test_published_vectors(serial: int, expected: str) -> None:
    assert make_tax_id("DEF5GH", date(2020, 7, 20), serial) == expected
    assert parse_tax_id(expected) == TaxIdParts(
        "DEF5GH", date(2020, 7, 20), serial, int(expected[-1])
    )


@pytest.mark.parametrize(
    "tax_id",
    # tax ids issued by the real system, quoted in public integration notes
    ["A1121604C220002F095011", "A1112K04D1271489087018", "A111DW04E8300004349008"],
)
def test_real_tax_ids_pass_our_check(tax_id: str) -> None:
    assert is_valid_tax_id(tax_id)
    assert parse_tax_id(tax_id).tax_id == tax_id


def test_decimal_form_spells_letters_as_ascii_codes() -> None:
    # D=68 E=69 F=70 5 G=71 H=72 | day 18463 -> 018463 | serial 12 -> 000000000012
    assert decimal_form("DEF5GH", 18463, 12) == "68697057172" + "018463" + "000000000012"
    assert verhoeff_check_digit(decimal_form("DEF5GH", 18463, 12)) == 2


# ------------------------------------------------------------------ Verhoeff


@pytest.mark.parametrize(("digits", "check"), [("236", 3), ("12345", 1), ("142857", 0)])
def test_verhoeff_published_values(digits: str, check: int) -> None:
    assert verhoeff_check_digit(digits) == check
    assert verhoeff_is_valid(digits + str(check))


def test_verhoeff_rejects_a_wrong_check_digit() -> None:
    assert verhoeff_is_valid("2363")
    assert not verhoeff_is_valid("2364")
    with pytest.raises(ValueError, match="ASCII digits"):
        verhoeff_check_digit("12a")


digit_strings = st.text(alphabet="0123456789", min_size=2, max_size=30)


@given(digit_strings, st.data())
def test_verhoeff_catches_every_single_digit_error(digits: str, data: st.DataObject) -> None:
    full = digits + str(verhoeff_check_digit(digits))
    at = data.draw(st.integers(0, len(full) - 1))
    other = data.draw(st.sampled_from([d for d in "0123456789" if d != full[at]]))
    assert not verhoeff_is_valid(full[:at] + other + full[at + 1 :])


@given(digit_strings, st.data())
def test_verhoeff_catches_adjacent_transpositions(digits: str, data: st.DataObject) -> None:
    full = digits + str(verhoeff_check_digit(digits))
    at = data.draw(st.integers(0, len(full) - 2))
    swapped = full[:at] + full[at + 1] + full[at] + full[at + 2 :]
    assert verhoeff_is_valid(swapped) == (swapped == full)


# ------------------------------------------------------------------ round trips

memory_ids = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=6, max_size=6)
days = st.dates(min_value=date(1970, 1, 1), max_value=date(2999, 12, 31))
serials = st.integers(0, MAX_SERIAL)


@given(memory_ids, days, serials)
def test_make_then_parse_round_trips(memory_id: str, day: date, serial: int) -> None:
    tax_id = make_tax_id(memory_id, day, serial)
    assert len(tax_id) == 22
    parts = parse_tax_id(tax_id)
    assert (parts.memory_id, parts.day, parts.serial) == (memory_id, day, serial)
    assert parts.tax_id == tax_id
    assert parse_tax_id(tax_id.lower().replace(memory_id.lower(), memory_id, 1)) == parts


@given(memory_ids, days, serials, st.integers(1, 9))
def test_any_other_check_digit_is_refused(
    memory_id: str, day: date, serial: int, shift: int
) -> None:
    tax_id = make_tax_id(memory_id, day, serial)
    wrong = tax_id[:21] + str((int(tax_id[21]) + shift) % 10)
    with pytest.raises(InvalidTaxIdError, match="check digit"):
        parse_tax_id(wrong)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("tax_id", "reason"),
    [
        ("DEF5GH0481F000000000C", "22 characters"),
        ("DEF5GH0481F000000000C22", "22 characters"),
        ("DEF5GH0481G000000000C2", "hex digits"),
        ("DEF5GH0481F000000000CX", "hex digits"),
        ("DEF5G-0481F000000000C2", "hex digits"),
        ("DEF5GH0481F000000000C3", "check digit"),
    ],
)
def test_validator_refuses(tax_id: str, reason: str) -> None:
    with pytest.raises(InvalidTaxIdError, match=reason) as caught:
        parse_tax_id(tax_id)
    assert caught.value.tax_id == tax_id
    assert caught.value.fa and caught.value.en
    assert not caught.value.transient
    assert not is_valid_tax_id(tax_id)


def test_make_refuses_bad_parts() -> None:
    with pytest.raises(TaxValidationError, match="memory_id") as caught:
        make_tax_id("def5gh", date(2020, 7, 20), 1)
    assert "حافظه" in caught.value.fa
    with pytest.raises(TaxValidationError, match="serial"):
        make_tax_id("DEF5GH", date(2020, 7, 20), MAX_SERIAL + 1)
    with pytest.raises(TaxValidationError, match="day"):
        make_tax_id("DEF5GH", date(1969, 12, 31), 1)


# ------------------------------------------------------------------ the sale's day

TEHRAN = 210


def _ms(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("tehran_time", "utc_ms", "expected"),
    [
        # 1403-01-01 (Nowruz) begins at 2024-03-19 20:30 UTC
        ("1402-12-29 23:59", _ms(2024, 3, 19, 20, 29), date(2024, 3, 19)),
        ("1403-01-01 00:01", _ms(2024, 3, 19, 20, 31), date(2024, 3, 20)),
        ("1403-01-01 03:29", _ms(2024, 3, 19, 23, 59), date(2024, 3, 20)),
        ("1403-01-01 03:31", _ms(2024, 3, 20, 0, 1), date(2024, 3, 20)),
    ],
)
def test_tax_day_is_the_tehran_day(tehran_time: str, utc_ms: int, expected: date) -> None:
    day = tax_day(utc_ms, TEHRAN)
    assert day == expected
    # the day on the receipt, in the Jalali calendar people read
    assert jdatetime.date.fromgregorian(date=day).strftime("%Y-%m-%d") == tehran_time[:10]


def test_sales_either_side_of_tehran_midnight_get_different_days() -> None:
    before = tax_id_for_sale("DEF5GH", 7, _ms(2024, 3, 19, 20, 29), TEHRAN)
    after = tax_id_for_sale("DEF5GH", 7, _ms(2024, 3, 19, 20, 31), TEHRAN)
    assert int(after[6:11], 16) - int(before[6:11], 16) == 1
    assert parse_tax_id(after).day == date(2024, 3, 20)
    # 03:29 Tehran is still the previous UTC day; the tax id follows Tehran
    late = _ms(2024, 3, 19, 23, 59)
    assert datetime.fromtimestamp(late / 1000, UTC).date() == date(2024, 3, 19)
    assert parse_tax_id(tax_id_for_sale("DEF5GH", 8, late, TEHRAN)).day == date(2024, 3, 20)


def test_tax_day_validates_its_arguments() -> None:
    assert tax_day(0, 0) == date(1970, 1, 1)
    assert tax_day(-1, 0) == date(1969, 12, 31)
    with pytest.raises(TaxValidationError, match="utc_offset_min"):
        tax_day(0, 15 * 60)
    with pytest.raises(TypeError):
        tax_day(1.5, TEHRAN)  # type: ignore[arg-type]
