"""Calendar arithmetic on day numbers (MicroPython subset).

A *day number* is the count of days since 1970-01-01 (proleptic Gregorian), so
comparing dates is comparing integers.  Timestamps are ISO 8601 with an explicit
UTC offset; the offset is the store's wall clock, and rules are evaluated on that
wall clock (see docs/rules.md).
"""

from edge.core.errors import DateError

_MDAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Weekday names as used in rules, indexed by ISO weekday - 1 (Monday=1 .. Sunday=7).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def is_leap(y):
    return (y % 4 == 0 and y % 100 != 0) or y % 400 == 0


def month_days(y, m):
    if m == 2 and is_leap(y):
        return 29
    return _MDAYS[m - 1]


def days_from_civil(y, m, d):
    """Day number of a Gregorian date (H. Hinnant's integer algorithm)."""
    if m < 1 or m > 12 or d < 1 or d > month_days(y, m):
        raise DateError("no such date %d-%02d-%02d" % (y, m, d))
    y = y - 1 if m <= 2 else y
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z):
    """(year, month, day) of a day number."""
    z = z + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    return (y, m, d)


def iso_weekday(day):
    """ISO weekday of a day number: Monday=1 .. Sunday=7."""
    return (day + 3) % 7 + 1


def _int(text, what):
    if len(text) == 0:
        raise DateError("empty %s" % what)
    for c in text:
        if c < "0" or c > "9":
            raise DateError("%s is not a number: %s" % (what, text))
    return int(text)


def parse_date(text):
    """'YYYY-MM-DD' -> (y, m, d), validated as a Gregorian date."""
    y, m, d = split_ymd(text)
    days_from_civil(y, m, d)
    return (y, m, d)


def split_ymd(text):
    """'YYYY-MM-DD' -> (y, m, d) without checking the calendar."""
    if type(text) is not str or len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise DateError("expected a date YYYY-MM-DD, got %r" % (text,))
    return (_int(text[0:4], "year"), _int(text[5:7], "month"), _int(text[8:10], "day"))


def parse_hhmm(text):
    """'HH:MM' -> minute of the day (0..1439)."""
    if type(text) is not str or len(text) != 5 or text[2] != ":":
        raise DateError("expected a time HH:MM, got %r" % (text,))
    h = _int(text[0:2], "hour")
    mi = _int(text[3:5], "minute")
    if h > 23 or mi > 59:
        raise DateError("no such time %s" % text)
    return h * 60 + mi


def parse_timestamp(text):
    """Parse 'YYYY-MM-DDTHH:MM[:SS[.fff]](Z|+HH:MM|-HH:MM)'.

    Returns a dict: ``day`` (local day number), ``minute`` (local minute of day),
    ``second``, ``offset`` (minutes east of UTC), ``epoch`` (UTC seconds) and ``iso``
    (normalised text).  A timestamp without an offset is refused: a terminal's
    local time is meaningless without it.
    """
    if type(text) is not str or len(text) < 17 or text[10] != "T":
        raise DateError(
            "expected an ISO timestamp like 2026-03-20T10:00:00+03:30, got %r" % (text,)
        )
    y, m, d = parse_date(text[0:10])
    rest = text[11:]
    if len(rest) < 5 or rest[2] != ":":
        raise DateError("bad time in %r" % (text,))
    hh = _int(rest[0:2], "hour")
    mi = _int(rest[3:5], "minute")
    i = 5
    ss = 0
    if i < len(rest) and rest[i] == ":":
        ss = _int(rest[i + 1 : i + 3], "second")
        i += 3
        if i < len(rest) and rest[i] == ".":
            j = i + 1
            while j < len(rest) and "0" <= rest[j] <= "9":
                j += 1
            if j == i + 1:
                raise DateError("bad fraction in %r" % (text,))
            i = j
    if hh > 23 or mi > 59 or ss > 59:
        raise DateError("no such time in %r" % (text,))
    tz = rest[i:]
    if tz == "Z":
        off = 0
    elif len(tz) == 6 and (tz[0] == "+" or tz[0] == "-") and tz[3] == ":":
        oh = _int(tz[1:3], "offset hours")
        om = _int(tz[4:6], "offset minutes")
        if oh > 14 or om > 59:
            raise DateError("bad UTC offset in %r" % (text,))
        off = oh * 60 + om
        if tz[0] == "-":
            off = -off
    else:
        raise DateError("timestamp needs a UTC offset (Z or +HH:MM): %r" % (text,))
    day = days_from_civil(y, m, d)
    minute = hh * 60 + mi
    epoch = day * 86400 + minute * 60 + ss - off * 60
    return {
        "day": day,
        "minute": minute,
        "second": ss,
        "offset": off,
        "epoch": epoch,
        "iso": format_timestamp(epoch, off),
    }


def format_date(day):
    y, m, d = civil_from_days(day)
    return "%04d-%02d-%02d" % (y, m, d)


def format_timestamp(epoch, offset_minutes):
    """UTC seconds + offset -> 'YYYY-MM-DDTHH:MM:SS+HH:MM' (local wall clock)."""
    local = epoch + offset_minutes * 60
    day = local // 86400
    sec = local - day * 86400
    off = offset_minutes
    sign = "+"
    if off < 0:
        sign = "-"
        off = -off
    return "%sT%02d:%02d:%02d%s%02d:%02d" % (
        format_date(day),
        sec // 3600,
        (sec // 60) % 60,
        sec % 60,
        sign,
        off // 60,
        off % 60,
    )
