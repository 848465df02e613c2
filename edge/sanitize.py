"""Strings from devices are hostile: clean them before they reach a log or a screen.

Control characters (including ANSI escapes and bidi overrides that could reorder what an
operator reads) are dropped, length is capped with an ellipsis.  Printable Persian text
passes through.
"""

from __future__ import annotations

import unicodedata

# Cc controls (ANSI escapes), Cs/Co/Cn surrogates, private use, unassigned, and Cf
# format characters: the bidi overrides and isolates (U+202A..202E, U+2066..2069) are Cf
_DROP = frozenset(("Cc", "Cs", "Co", "Cn", "Cf"))
_ZWNJ = "\u200c"  # Cf, but Persian words need it


def clean(value: object, maxlen: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    s = "".join(ch for ch in text if ch == _ZWNJ or unicodedata.category(ch) not in _DROP)
    return s if len(s) <= maxlen else s[: maxlen - 1] + "…"


def is_clean(text: str, maxlen: int = 80) -> bool:
    """True when ``clean`` would leave ``text`` as it is: nothing to hide from a log, a
    screen or a signed record.  For refusing identifiers rather than repairing them."""
    return clean(text, maxlen) == text


def clean_bytes(data: bytes, maxlen: int = 64) -> str:
    """Bytes from a device as text if they are printable, hex otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data[: maxlen // 2].hex() + ("…" if len(data) > maxlen // 2 else "")
    return clean(text, maxlen)
