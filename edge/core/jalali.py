"""Jalali (Solar Hijri) calendar arithmetic (MicroPython subset).

Leap years follow the arithmetic 33-year cycle: year y is leap when
``y % 33`` is one of 1, 5, 9, 13, 17, 22, 26, 30.  This matches the observed
(astronomical) calendar for the years a loyalty club meets (it is checked against
``jdatetime`` for every day of 1300-1500 AP in the tests) and needs no tables.

Months 1-6 have 31 days, 7-11 have 30, Esfand (12) has 29, or 30 in a leap year.
Conversions go through day numbers (days since 1970-01-01, see edge.core.dates).
"""

from edge.core.dates import days_from_civil, split_ymd
from edge.core.errors import DateError
from edge.core.text import fa_digits

_LEAP_REMAINDERS = (1, 5, 9, 13, 17, 22, 26, 30)
_CYCLE_DAYS = 33 * 365 + 8  # 12053


def is_leap(y):
    return (y % 33) in _LEAP_REMAINDERS


def month_days(y, m):
    if m <= 6:
        return 31
    if m <= 11:
        return 30
    return 30 if is_leap(y) else 29


def _leaps_before(y):
    # Leap years among 1 .. y-1: eight per full 33-year cycle, plus the remainder.
    n = y - 1
    count = (n // 33) * 8
    rem = n % 33
    for r in _LEAP_REMAINDERS:
        if r <= rem:
            count += 1
    return count


def _year_start(y):
    # Day number of 1 Farvardin y, anchored on 1 Farvardin 1400 = 2021-03-21.
    return _EPOCH + 365 * (y - 1) + _leaps_before(y)


_EPOCH = 0
_EPOCH = days_from_civil(2021, 3, 21) - _year_start(1400)


def _day_of_year(m, d):
    if m <= 7:
        return (m - 1) * 31 + d - 1
    return 186 + (m - 7) * 30 + d - 1


def to_days(y, m, d):
    """Day number of a Jalali date; refuses dates that do not exist."""
    if y < 1 or m < 1 or m > 12 or d < 1 or d > month_days(y, m):
        raise DateError("no such Jalali date %d/%02d/%02d" % (y, m, d))
    return _year_start(y) + _day_of_year(m, d)


def from_days(day):
    """(year, month, day) in the Jalali calendar of a day number."""
    y = ((day - _EPOCH) * 33) // _CYCLE_DAYS + 1
    while _year_start(y + 1) <= day:
        y += 1
    while _year_start(y) > day:
        y -= 1
    doy = day - _year_start(y)
    if doy < 186:
        return (y, doy // 31 + 1, doy % 31 + 1)
    doy -= 186
    return (y, doy // 30 + 7, doy % 30 + 1)


def from_gregorian(y, m, d):
    return from_days(days_from_civil(y, m, d))


def parse(text):
    """'YYYY-MM-DD' (Jalali) -> (y, m, d), validated."""
    y, m, d = split_ymd(text)
    to_days(y, m, d)
    return (y, m, d)


def format_date(day, digits_fa=False):
    """Day number -> '1405/01/01' (Persian digits when asked)."""
    y, m, d = from_days(day)
    text = "%04d/%02d/%02d" % (y, m, d)
    if digits_fa:
        return fa_digits(text)
    return text


def anniversary(y, m, d, year):
    """Day number of the (m, d) anniversary in Jalali ``year``.

    30 Esfand falls back to 29 Esfand in common years, so a member born on a leap
    day still has a birthday every year.
    """
    if m == 12 and d == 30 and not is_leap(year):
        d = 29
    return to_days(year, m, d)
