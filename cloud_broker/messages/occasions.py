"""When to greet members: occasions on the Jalali calendar, and quiet hours.

Occasions.  Nowruz is 1 Farvardin; Yalda is the night of 30 Azar (the greeting goes out
on 30 Azar); Mother's Day in Iran is the birthday of Fatimah, 20 Jumada al-Thani of the
lunar Hijri calendar, so it moves about eleven days earlier every Jalali year.  We
convert with ``hijridate`` (the Umm al-Qura tables, 1343-1500 AH).  Iran's official
calendar follows moon sighting and is often a day later than Umm al-Qura (Mother's Day
1402: 13 Dey, Umm al-Qura 12 Dey; 1403: 2 Dey against 1 Dey; 1404: both 20 Azar), so
the official date of a year can be fixed by hand::

    cal = OccasionCalendar(overrides={(MOTHERS_DAY, 1403): jdatetime.date(1403, 10, 2)})

A Jalali year usually holds one 20 Jumada al-Thani and, about once in 33 years, two;
:meth:`OccasionCalendar.dates_in_year` returns all of them (an override replaces them).

Member occasions (birthday, wedding anniversary) are each member's own Jalali month and
day.  30 Esfand exists only in leap years: in other years it is celebrated on 29 Esfand,
so a member born on a leap day is still greeted every year (:func:`member_date`,
:func:`member_days_on`; the same rule as ``edge.core.jalali.anniversary``).

Quiet hours.  Messages are held between 22:00 and 08:00 Tehran time by default.  Iran
stopped daylight saving time after the summer of 2022 (1401): Tehran is UTC+03:30 all
year, so a fixed offset of 210 minutes is exact for every date we schedule.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

import jdatetime  # type: ignore[import-untyped]  # ships no type information
from hijridate import Gregorian, Hijri

from edge.errors import LoyaltyError

JalaliDate = Any  # jdatetime.date: the package has no types, so mypy sees Any

TEHRAN_UTC_OFFSET_MIN = 210
_DAY_MS = 86_400_000
_EPOCH = datetime.date(1970, 1, 1)
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class OccasionError(LoyaltyError, ValueError):
    def __init__(self, en: str, fa: str) -> None:
        super().__init__(en, fa=fa)


class Rule(StrEnum):
    JALALI = "jalali"  # every year on a Jalali month and day
    HIJRI = "hijri"  # every year on a lunar Hijri month and day
    DATED = "dated"  # once, on one Jalali date
    MEMBER = "member"  # every year on each member's own Jalali month and day


@dataclass(frozen=True, slots=True)
class Occasion:
    key: str
    en: str
    fa: str
    rule: Rule
    month: int = 0
    day: int = 0
    year: int = 0  # DATED only

    @classmethod
    def yearly(cls, key: str, en: str, fa: str, month: int, day: int) -> Occasion:
        """An operator's yearly occasion on a Jalali month and day (30 Esfand: 29 in
        common years)."""
        _check_month_day(month, day)
        return cls(key, en, fa, Rule.JALALI, month, day)

    @classmethod
    def lunar(cls, key: str, en: str, fa: str, month: int, day: int) -> Occasion:
        """A yearly occasion on a lunar Hijri month and day (30th: 29th in short months)."""
        if not (1 <= month <= 12 and 1 <= day <= 30):
            raise OccasionError(f"no Hijri day {month}/{day}", f"روز قمری {month}/{day} وجود ندارد")
        return cls(key, en, fa, Rule.HIJRI, month, day)

    @classmethod
    def dated(cls, key: str, en: str, fa: str, date: JalaliDate) -> Occasion:
        """A one-off occasion (a store opening, a campaign day) on a Jalali date."""
        return cls(key, en, fa, Rule.DATED, date.month, date.day, date.year)


NOWRUZ = Occasion("nowruz", "Nowruz", "نوروز", Rule.JALALI, 1, 1)
YALDA = Occasion("yalda", "Yalda night", "شب یلدا", Rule.JALALI, 9, 30)
MOTHERS_DAY = Occasion("mothers_day", "Mother's Day", "روز مادر", Rule.HIJRI, 6, 20)
BIRTHDAY = Occasion("birthday", "Birthday", "تولد", Rule.MEMBER)
WEDDING_ANNIVERSARY = Occasion(
    "wedding_anniversary", "Wedding anniversary", "سالگرد ازدواج", Rule.MEMBER
)
CALENDAR_OCCASIONS = (NOWRUZ, YALDA, MOTHERS_DAY)


def _check_month_day(month: int, day: int) -> None:
    if not (1 <= month <= 12 and 1 <= day <= (31 if month <= 6 else 30)):
        raise OccasionError(f"no Jalali day {month}/{day}", f"روز {day} ماه {month} وجود ندارد")


def member_date(month: int, day: int, jalali_year: int) -> JalaliDate:
    """The date a member's (month, day) falls on in ``jalali_year``; 30 Esfand -> 29
    Esfand when the year is not leap."""
    _check_month_day(month, day)
    if month == 12 and day == 30 and not jdatetime.date(jalali_year, 1, 1).isleap():
        day = 29
    return jdatetime.date(jalali_year, month, day)


def member_days_on(date: JalaliDate) -> list[tuple[int, int]]:
    """The member (month, day) pairs to greet on ``date``: usually one, and on 29 Esfand of
    a common year also (12, 30).  For a query such as ``(birth_month, birth_day) IN ...``."""
    days = [(date.month, date.day)]
    if date.month == 12 and date.day == 29 and not date.isleap():
        days.append((12, 30))
    return days


@lru_cache(maxsize=256)
def _hijri_in_year(month: int, day: int, jalali_year: int) -> tuple[Any, ...]:
    # Every date of a lunar (month, day) inside the Jalali year.  The year spans at most
    # three Hijri years, starting with the one its 1 Farvardin is in.
    first = jdatetime.date(jalali_year, 1, 1).togregorian()
    last = jdatetime.date(jalali_year + 1, 1, 1).togregorian()
    try:
        start = Gregorian(first.year, first.month, first.day).to_hijri().year
        found = []
        for hy in (start, start + 1, start + 2):
            hd = Hijri(hy, month, min(day, Hijri(hy, month, 1).month_length()))
            g = hd.to_gregorian()
            gd = datetime.date(g.year, g.month, g.day)
            if first <= gd < last:
                found.append(jdatetime.date.fromgregorian(date=gd))
    except (OverflowError, ValueError):
        raise OccasionError(
            f"lunar dates are known for 1343-1500 AH only, not in Jalali {jalali_year}",
            f"تاریخ قمری سال {jalali_year} خارج از بازهٔ جدول‌های تقویم است",
        ) from None
    return tuple(found)


class OccasionCalendar:
    """The club's calendar occasions, with hand-set dates where the official calendar
    differs from the arithmetic (``overrides={(occasion or key, jalali_year): date}``)."""

    def __init__(
        self,
        occasions: Iterable[Occasion] = CALENDAR_OCCASIONS,
        overrides: Mapping[tuple[Occasion | str, int], JalaliDate] | None = None,
    ) -> None:
        self.occasions: tuple[Occasion, ...] = tuple(occasions)
        keys = [o.key for o in self.occasions]
        if len(set(keys)) != len(keys):
            raise OccasionError("two occasions share a key", "دو مناسبت کلید یکسان دارند")
        for o in self.occasions:
            if o.rule is Rule.MEMBER:
                raise OccasionError(
                    f"{o.key} is a member occasion: use member_date()",
                    f"{o.fa} مناسبت هر عضو است و در تقویم عمومی نمی‌آید",
                )
        self._overrides: dict[tuple[str, int], JalaliDate] = {}
        for (occasion, year), date in (overrides or {}).items():
            key = occasion.key if isinstance(occasion, Occasion) else occasion
            if date.year != year:
                raise OccasionError(
                    f"override for {key} {year} is dated {date}, in another year",
                    f"تاریخ جایگزین {key} برای سال {year} در سال دیگری است",
                )
            self._overrides[(key, year)] = date

    def dates_in_year(self, occasion: Occasion, jalali_year: int) -> list[JalaliDate]:
        """Every date ``occasion`` falls on in ``jalali_year`` (usually exactly one)."""
        override = self._overrides.get((occasion.key, jalali_year))
        if override is not None:
            return [override]
        if occasion.rule is Rule.JALALI:
            return [member_date(occasion.month, occasion.day, jalali_year)]
        if occasion.rule is Rule.HIJRI:
            return list(_hijri_in_year(occasion.month, occasion.day, jalali_year))
        if occasion.rule is Rule.DATED:
            if occasion.year != jalali_year:
                return []
            return [jdatetime.date(occasion.year, occasion.month, occasion.day)]
        raise OccasionError(
            f"{occasion.key} is a member occasion: use member_date()",
            f"{occasion.fa} مناسبت هر عضو است",
        )

    def occasions_on(self, date: JalaliDate) -> list[Occasion]:
        """The calendar occasions that fall on ``date``."""
        return [o for o in self.occasions if date in self.dates_in_year(o, date.year)]

    def next_date(self, occasion: Occasion, after: JalaliDate) -> JalaliDate | None:
        """The first date strictly after ``after`` (None: a one-off already past)."""
        for year in range(after.year, after.year + 3):
            for d in sorted(self.dates_in_year(occasion, year)):
                if d > after:
                    return d
        return None


# --------------------------------------------------------------------------- quiet hours


def _minutes(hhmm: str) -> int:
    m = _HHMM.fullmatch(hhmm)
    if m is None:
        raise OccasionError(f"{hhmm!r} is not a time like 22:00", f"«{hhmm}» ساعت معتبر نیست")
    return int(m.group(1)) * 60 + int(m.group(2))


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No messages from ``start`` to ``end`` local time (``end`` may be the next day)."""

    start: str = "22:00"
    end: str = "08:00"
    offset_min: int = TEHRAN_UTC_OFFSET_MIN

    def __post_init__(self) -> None:
        _minutes(self.start)
        _minutes(self.end)

    def _local_ms(self, now_utc_ms: int) -> int:
        return (now_utc_ms + self.offset_min * 60_000) % _DAY_MS

    def quiet(self, now_utc_ms: int) -> bool:
        t = self._local_ms(now_utc_ms)
        start, end = _minutes(self.start) * 60_000, _minutes(self.end) * 60_000
        if start == end:
            return False
        if start < end:
            return start <= t < end
        return t >= start or t < end

    def next_allowed(self, now_utc_ms: int) -> int:
        """``now_utc_ms`` itself outside quiet hours, else the UTC ms when they end."""
        if not self.quiet(now_utc_ms):
            return now_utc_ms
        end = _minutes(self.end) * 60_000
        return now_utc_ms + (end - self._local_ms(now_utc_ms)) % _DAY_MS


def quiet(
    now_utc_ms: int,
    start: str = "22:00",
    end: str = "08:00",
    offset_min: int = TEHRAN_UTC_OFFSET_MIN,
) -> bool:
    """True when ``now_utc_ms`` is inside quiet hours (Tehran time by default)."""
    return QuietHours(start, end, offset_min).quiet(now_utc_ms)


def next_allowed(
    now_utc_ms: int,
    start: str = "22:00",
    end: str = "08:00",
    offset_min: int = TEHRAN_UTC_OFFSET_MIN,
) -> int:
    """When a message held at ``now_utc_ms`` may go out (UTC milliseconds)."""
    return QuietHours(start, end, offset_min).next_allowed(now_utc_ms)


def jalali_today(now_utc_ms: int, offset_min: int = TEHRAN_UTC_OFFSET_MIN) -> JalaliDate:
    """The local Jalali date at ``now_utc_ms`` (for :meth:`OccasionCalendar.occasions_on`)."""
    days = (now_utc_ms + offset_min * 60_000) // _DAY_MS
    return jdatetime.date.fromgregorian(date=_EPOCH + datetime.timedelta(days=days))
