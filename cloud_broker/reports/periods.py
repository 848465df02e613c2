"""Periods of the reports on the Jalali calendar: a range of days, and the buckets a figure
is added up in (day; week, Saturday first; month; year).  Day numbers are days since
1970-01-01 in Tehran time, the ``day`` of ``sales_daily``."""

from __future__ import annotations

from dataclasses import dataclass

from cloud_broker.club.errors import ClubError
from edge.core import jalali
from edge.core.dates import iso_weekday
from edge.errors import DateError

GRAINS = ("day", "week", "month", "year")
MONTHS_FA = (
    "فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور",
    "مهر", "آبان", "آذر", "دی", "بهمن", "اسفند",
)  # fmt: skip
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
SATURDAY = 6  # ISO weekday


@dataclass(frozen=True)
class Period:
    """Days ``first`` to ``last``, both included."""

    first: int
    last: int

    @property
    def days(self) -> int:
        return self.last - self.first + 1

    def before(self) -> Period:
        """The period of the same length just before this one (for comparisons)."""
        return Period(self.first - self.days, self.first - 1)


def start(day: int, grain: str) -> int:
    """The first day of the bucket of ``grain`` holding ``day``."""
    if grain == "day":
        return day
    if grain == "week":
        return day - (iso_weekday(day) - SATURDAY) % 7
    y, m, _ = jalali.from_days(day)
    if grain == "month":
        return int(jalali.to_days(y, m, 1))
    if grain == "year":
        return int(jalali.to_days(y, 1, 1))
    raise ClubError("bad_grain", f"no such grain {grain!r}", "بازه‌ی گروه‌بندی نامعتبر است.")


def label(first: int, grain: str) -> str:
    """How a bucket is named on a chart and in an export (Latin digits; pages localise)."""
    y, m, d = jalali.from_days(first)
    if grain == "year":
        return f"{y}"
    if grain == "month":
        return f"{MONTHS_FA[m - 1]} {y}"
    return f"{y}/{m:02d}/{d:02d}"


def buckets(period: Period, grain: str) -> list[int]:
    """The first day of every bucket that meets ``period``, in order."""
    out: list[int] = []
    day = start(period.first, grain)
    while day <= period.last:
        out.append(day)
        day = _next(day, grain)
    return out


def month_end(first: int) -> int:
    """The last day of the Jalali month that starts on ``first``."""
    return _next(first, "month") - 1


def _next(day: int, grain: str) -> int:
    if grain == "day":
        return day + 1
    if grain == "week":
        return day + 7
    y, m, _ = jalali.from_days(day)
    if grain == "month":
        return int(jalali.to_days(y + (m == 12), m % 12 + 1, 1))
    return int(jalali.to_days(y + 1, 1, 1))


def parse_day(text: str, what_en: str, what_fa: str) -> int:
    """A Jalali date typed as 1405/09/13 or 1405-9-13, in Persian or Latin digits."""
    t = text.translate(_DIGITS).strip().replace("/", "-")
    parts = t.split("-")
    if len(parts) == 3 and all(x.isdigit() and len(x) <= 4 for x in parts):
        y_, m_, d_ = (int(x) for x in parts)
        t = f"{y_:04d}-{m_:02d}-{d_:02d}"  # 1405-9-3 as well
    try:
        y, m, d = jalali.parse(t)
    except (DateError, ValueError) as e:
        raise ClubError(
            "bad_date",
            f"{what_en}: a Jalali date like 1405/09/13",
            f"{what_fa}: تاریخ شمسی مانند ۱۴۰۵/۰۹/۱۳",
        ) from e
    return int(jalali.to_days(y, m, d))


def parse_period(first: str | None, last: str | None, today: int) -> Period:
    """The period a report was asked for; by default this Jalali month so far."""
    lo = parse_day(first, "from", "از") if first else start(today, "month")
    hi = parse_day(last, "to", "تا") if last else today
    if hi < lo:
        raise ClubError("bad_period", "the period ends before it starts",
                          "پایان بازه پیش از آغاز آن است.")  # fmt: skip
    if hi - lo > 3 * 366:
        raise ClubError("bad_period", "at most three years at a time",
                          "هر بار حداکثر سه سال.")  # fmt: skip
    return Period(lo, hi)


def show(day: int) -> str:
    """A day as the date fields show it: 1405/09/13."""
    return str(jalali.format_date(day))
