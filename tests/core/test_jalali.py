"""Jalali arithmetic against jdatetime, for every day of 1300-1500 AP, on both interpreters."""

from __future__ import annotations

import datetime as dt
import json

import jdatetime
import pytest

from edge.core import dates, jalali
from edge.core.errors import DateError
from tests.conftest import run_py

FIRST = jalali.to_days(1300, 1, 1)
LAST = jalali.to_days(1500, 12, 29) + (1 if jalali.is_leap(1500) else 0)
EPOCH = dt.date(1970, 1, 1)


def _reference_lines() -> list[str]:
    out = []
    for day in range(FIRST, LAST + 1):
        g = EPOCH + dt.timedelta(days=day)
        j = jdatetime.date.fromgregorian(date=g)
        out.append(f"{day} {j.year}-{j.month}-{j.day} {day} {g.isoformat()}")
    return out


def test_range_covers_1300_to_1500() -> None:
    assert jalali.from_days(FIRST) == (1300, 1, 1)
    assert jalali.from_days(LAST)[0] == 1500
    assert jalali.from_days(LAST + 1) == (1501, 1, 1)
    assert LAST - FIRST + 1 > 201 * 365


@pytest.mark.parametrize("interp", ["cpython", "micropython"])
def test_every_day_matches_jdatetime(interp: str) -> None:
    req = json.dumps({"fn": "jalali_range", "from": FIRST, "to": LAST + 1}) + "\n"
    res = run_py(interp, ["tests/core/mp_harness.py"], req.encode())
    assert res.returncode == 0, res.stderr.decode()
    ours = json.loads(res.stdout)
    ref = _reference_lines()
    assert len(ours) == len(ref)
    mismatches = [(a, b) for a, b in zip(ours, ref, strict=True) if a != b]
    assert mismatches == []


def test_leap_years_match_jdatetime() -> None:
    for y in range(1300, 1501):
        assert jalali.is_leap(y) == jdatetime.date(y, 1, 1).isleap(), y
        assert jalali.month_days(y, 12) == (30 if jdatetime.date(y, 1, 1).isleap() else 29)


def test_known_dates() -> None:
    # Nowruz 1405 is 21 March 2026; 1403 was a leap year (30 Esfand 1403 = 20 March 2025).
    assert jalali.to_days(1405, 1, 1) == dates.days_from_civil(2026, 3, 21)
    assert jalali.to_days(1403, 12, 30) == dates.days_from_civil(2025, 3, 20)
    assert jalali.from_gregorian(2026, 3, 20) == (1404, 12, 29)
    assert jalali.format_date(dates.days_from_civil(2026, 3, 21), digits_fa=True) == "۱۴۰۵/۰۱/۰۱"


@pytest.mark.parametrize(
    "bad", [(1404, 12, 30), (1405, 7, 31), (1405, 13, 1), (1405, 0, 1), (0, 1, 1)]
)
def test_impossible_dates_refused(bad: tuple[int, int, int]) -> None:
    with pytest.raises(DateError, match="no such Jalali date"):
        jalali.to_days(*bad)


def test_leap_day_birthday_falls_back_in_common_years() -> None:
    assert jalali.anniversary(1375, 12, 30, 1403) == jalali.to_days(1403, 12, 30)
    assert jalali.anniversary(1375, 12, 30, 1404) == jalali.to_days(1404, 12, 29)


def test_gregorian_round_trip_and_weekday() -> None:
    for day in range(-719_000, 800_000, 997):
        y, m, d = dates.civil_from_days(day)
        assert dates.days_from_civil(y, m, d) == day
        assert dates.iso_weekday(day) == (EPOCH + dt.timedelta(days=day)).isoweekday()
