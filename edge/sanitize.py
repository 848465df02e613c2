"""Strings from devices are hostile: clean them before they reach a log or a screen.

Control characters (including ANSI escapes and bidi overrides that could reorder what an
operator reads) are dropped, length is capped with an ellipsis.  Printable Persian text
passes through.
"""

from __future__ import annotations

import unicodedata

_BIDI_CONTROLS = {
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
}


def clean(value: object, maxlen: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    out = []
    for ch in text:
        if ch in _BIDI_CONTROLS:
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Co", "Cn") and ch not in " ":
            continue
        if ch == "\u200c" or cat != "Cf":  # keep ZWNJ, which Persian words need
            out.append(ch)
    s = "".join(out)
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
