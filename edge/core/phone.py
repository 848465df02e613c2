"""Iranian mobile numbers as typed at a till (MicroPython subset).

Accepts Persian (۰-۹), Arabic-Indic (٠-٩) and Latin digits, mixed freely, with
spaces, dashes, dots and parentheses as the customer or a keypad produces them, in
the forms ``09121234567``, ``9121234567``, ``+989121234567``, ``00989121234567``
and ``989121234567``, also with the trunk 0 kept after the country code
(``+9809121234567``).  Returns E.164 (``+989121234567``).

Validity follows the mobile ranges of libphonenumber's metadata for IR (version
9.0.43); the tests compare every prefix against the ``phonenumbers`` package.
"""

from edge.core.errors import PhoneError
from edge.core.text import fa_digits

# National significant numbers (10 digits) that are mobile numbers start with one
# of these prefixes.  Expanded from libphonenumber's IR mobile pattern:
#   9(?:(?:0[0-5]|[13]\d|2[0-3])\d\d|9(?:[0-46]\d\d|5(?:10|5\d)|
#     8(?:[12]\d|3[0-2]|88)|9(?:[0-359]\d|69|77|8[7-9])))\d{5}
# fmt: off
_MOBILE_PREFIXES = (
    "900", "901", "902", "903", "904", "905",
    "91", "93",
    "920", "921", "922", "923",
    "990", "991", "992", "993", "994", "996",
    "99510", "9955",
    "9981", "9982", "99830", "99831", "99832", "99888",
    "9990", "9991", "9992", "9993", "9995", "9999",
    "99969", "99977", "99987", "99988", "99989",
)
# fmt: on

_SEPARATORS = " -.()\t\u200c\u200f\u200e\u00a0"

_MSG_EMPTY = ("Enter a mobile number.", "شماره موبایل را وارد کنید.")
_MSG_CHARS = (
    "A mobile number has only digits.",
    "شماره موبایل فقط شامل رقم است.",
)
_MSG_LENGTH = (
    "An Iranian mobile number has 11 digits and starts with 09.",
    "شماره موبایل ایران ۱۱ رقم است و با ۰۹ شروع می‌شود.",
)
_MSG_RANGE = (
    "This is not an Iranian mobile number.",
    "این شماره، شماره موبایل معتبر ایران نیست.",
)


def _fail(msg):
    return PhoneError(msg[0], msg[1])


def ascii_digits(text):
    """Map Persian and Arabic-Indic digits to ASCII; other characters unchanged."""
    out = []
    for c in text:
        o = ord(c)
        if 0x06F0 <= o <= 0x06F9:
            out.append(chr(o - 0x06F0 + 48))
        elif 0x0660 <= o <= 0x0669:
            out.append(chr(o - 0x0660 + 48))
        else:
            out.append(c)
    return "".join(out)


def national_number(text):
    """The 10-digit national significant number of a typed mobile number."""
    if type(text) is not str:
        raise _fail(_MSG_EMPTY)
    # blanks around the number (a newline from a scanner or a paste) are not part of it
    raw = ascii_digits(text.strip())
    digits = []
    plus = False
    for i in range(len(raw)):
        c = raw[i]
        if "0" <= c <= "9":
            digits.append(c)
        elif c == "+" and not digits and not plus:
            plus = True
        elif c in _SEPARATORS:
            continue
        else:
            raise _fail(_MSG_CHARS)
    s = "".join(digits)
    if not s:
        raise _fail(_MSG_EMPTY)
    if plus:
        if s[:2] != "98":
            raise _fail(_MSG_RANGE)
        s = s[2:]
    elif s[:4] == "0098":
        s = s[4:]
    elif s[:2] == "98" and (len(s) == 12 or (len(s) == 13 and s[2] == "0")):
        s = s[2:]
    # the trunk 0, also when typed after the country code ("+98 0912 ...")
    if len(s) == 11 and s[0] == "0":
        s = s[1:]
    if len(s) != 10:
        raise _fail(_MSG_LENGTH)
    if s[0] != "9":
        raise _fail(_MSG_RANGE)
    for p in _MOBILE_PREFIXES:
        if s[: len(p)] == p:
            return s
    raise _fail(_MSG_RANGE)


def normalise(text):
    """Typed mobile number -> E.164 ('+989121234567'); PhoneError if invalid."""
    return "+98" + national_number(text)


def is_mobile(text):
    try:
        national_number(text)
    except PhoneError:
        return False
    return True


def display(e164, fa=False):
    """'+989121234567' -> '0912 123 4567' (Persian digits when asked)."""
    n = "0" + e164[3:]
    text = n[0:4] + " " + n[4:7] + " " + n[7:]
    if fa:
        return fa_digits(text)
    return text


def mask(e164):
    """For receipts and logs: '+989121234567' -> '0912***4567'."""
    n = "0" + e164[3:]
    return n[0:4] + "***" + n[-4:]
