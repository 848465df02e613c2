"""Formatting numbers for people (MicroPython subset).

Persian text uses Persian digits (۰-۹), the Arabic thousands separator (٬, U+066C)
and the Persian percent sign (٪).  English text uses Latin digits and commas.
"""

_FA_DIGITS = "۰۱۲۳۴۵۶۷۸۹"


if hasattr(str, "maketrans"):  # CPython: one C call
    _FA_TABLE = str.maketrans("0123456789", _FA_DIGITS)

    def fa_digits(text):
        return text.translate(_FA_TABLE)

else:  # MicroPython has no str.translate: ten replace calls, still in C

    def fa_digits(text):
        for i in range(10):
            text = text.replace(chr(48 + i), _FA_DIGITS[i])
        return text


def _join(n, tri, sep):
    # n with its thousands joined by sep; tri(r) spells 0 <= r < 1000 in three digits
    sign = ""
    if n < 0:
        sign = "-"
        n = -n
    parts = []
    while n >= 1000:
        n, r = divmod(n, 1000)
        parts.append(tri(r))
    head = tri(n)
    if n < 10:
        head = head[2:]
    elif n < 100:
        head = head[1:]
    parts.append(head)
    parts.reverse()
    return sign + sep.join(parts)


def _tri_en(r):
    return "%03d" % r


# Three Persian digits per entry, so a number is formatted a group at a time
# (five times faster than mapping digits on MicroPython).
_TRI = tuple(
    _FA_DIGITS[i // 100] + _FA_DIGITS[(i // 10) % 10] + _FA_DIGITS[i % 10] for i in range(1000)
)


def _tri_fa(r):
    return _TRI[r]


def group(n):
    """1234567 -> '1,234,567' (integers only; negative numbers keep their sign)."""
    return _join(n, _tri_en, ",")


def rials_en(n):
    return group(n) + " IRR"


def num_fa(n):
    """1234567 -> '۱٬۲۳۴٬۵۶۷'."""
    return _join(n, _tri_fa, "٬")


def rials_fa(n):
    return num_fa(n) + " ریال"


def pct_text(bp):
    """Basis points -> '12.5' / '10' (no trailing zeros)."""
    whole = bp // 100
    frac = bp % 100
    if frac == 0:
        return str(whole)
    if frac % 10 == 0:
        return "%d.%d" % (whole, frac // 10)
    return "%d.%02d" % (whole, frac)


def pct_en(bp):
    return pct_text(bp) + "%"


def pct_fa(bp):
    return fa_digits(pct_text(bp).replace(".", "٫")) + "٪"
