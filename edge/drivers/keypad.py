"""Phone entry from a serial keypad or a kiosk's input line.

Keys arrive as characters: digits in Latin, Persian (۰-۹) or Arabic-Indic (٠-٩) form (UTF-8),
``+``, spaces; backspace (0x08 or 0x7F) deletes, ``*`` or ESC clears, ``#``, CR or LF confirms.
On confirmation the number goes through the engine's normaliser (edge.core.phone): the result
is E.164, or a PhoneError with the bilingual message the customer display shows.
"""

from __future__ import annotations

import codecs
import time

from edge.core.phone import normalise
from edge.drivers.serialport import open_port, read_available

ENTER = {"#", "\r", "\n"}
CLEAR = {"*", "\x1b"}
BACKSPACE = {"\x08", "\x7f"}
MAX_TYPED = 32


class KeyBuffer:
    """What the customer has typed so far."""

    def __init__(self) -> None:
        self.text = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> list[str]:
        """Typed keys; returns the lines confirmed (not yet normalised)."""
        done = []
        for ch in self._decoder.decode(data):
            if ch in ENTER:
                if self.text:
                    done.append(self.text)
                self.text = ""
            elif ch in CLEAR:
                self.text = ""
            elif ch in BACKSPACE:
                self.text = self.text[:-1]
            elif ch.isprintable() and len(self.text) < MAX_TYPED:
                self.text += ch
        return done


class Keypad:
    """PhoneEntry from a keypad on ``port``."""

    def __init__(self, port: str, baudrate: int = 9600) -> None:
        self.port_url = port
        self._port = open_port(port, baudrate=baudrate, timeout=0.05)
        self._keys = KeyBuffer()
        self._lines: list[str] = []

    @property
    def typed(self) -> str:
        """The digits on the display right now."""
        return self._keys.text

    def read_phone(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while not self._lines:
            self._lines += self._keys.feed(read_available(self._port))
            if not self._lines and time.monotonic() >= deadline:
                return None
        return normalise(self._lines.pop(0))  # PhoneError carries the message to show

    def close(self) -> None:
        self._port.close()
