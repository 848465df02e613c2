"""The digital membership card: a QR code the member panel shows and the till's scanner reads.

    LQ2.<payload>.<signature>        (both base64url without padding)

``payload`` is compact JSON ``{"t": tenant, "m": member phone, "e": expiry (unix seconds)}``;
the signature is Ed25519 over ``b"loyalty-member-qr-v2\\0" + payload`` by head office's rules
key in force (the domain prefix keeps it from ever being read as a bundle signature).  A till
verifies it with the rules keys it already trusts (its key ring), so it works offline, and
refuses it once expired: the panel shows a new one every minute, valid five, so a
screenshot stops working within minutes.  Older ``LC1:<card id>`` codes are plain card ids
and are read as such by the checkout.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable

from edge.errors import LoyaltyError
from edge.protocol import ed25519

PREFIX = "LQ2."
DOMAIN = b"loyalty-member-qr-v2\x00"
LIFETIME_S = 300
SKEW_S = 60  # a till's clock a minute behind still reads a fresh code
MAX_LEN = 400


class QrError(LoyaltyError):
    """A membership QR code that cannot be used: ``code`` is ``bad_qr`` (not ours, garbled
    or forged) or ``expired_qr``."""

    def __init__(self, code: str, en: str, fa: str) -> None:
        super().__init__(en, fa=fa)
        self.code = code


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_member_qr(code: str) -> bool:
    return code.startswith(PREFIX)


def make(key: ed25519.PrivateKey, tenant: str, member: str, now_s: int,
         lifetime_s: int = LIFETIME_S) -> str:  # fmt: skip
    payload = json.dumps({"t": tenant, "m": member, "e": now_s + lifetime_s},
                         separators=(",", ":")).encode()  # fmt: skip
    return f"{PREFIX}{_b64(payload)}.{_b64(key.sign(DOMAIN + payload))}"


def read(code: str, keys: Iterable[ed25519.PublicKey], tenant: str, now_s: int) -> str:
    """The member phone ``code`` names, once its signature verifies with one of ``keys`` and
    it is for ``tenant`` and not expired; QrError otherwise."""
    bad = QrError("bad_qr", "this is not a valid membership QR code of this club",
                  "این کد QR کارت عضویت معتبر این باشگاه نیست.")  # fmt: skip
    if not is_member_qr(code) or len(code) > MAX_LEN:
        raise bad
    try:
        p64, s64 = code[len(PREFIX) :].split(".")
        payload, sig = _unb64(p64), _unb64(s64)
        body = json.loads(payload)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if not any(ed25519.verifies(k, sig, DOMAIN + payload) for k in keys):
        raise bad
    if (not isinstance(body, dict) or body.get("t") != tenant
            or not isinstance(body.get("m"), str) or type(body.get("e")) is not int):  # fmt: skip
        raise bad
    if now_s > body["e"] + SKEW_S:
        raise QrError("expired_qr", "this membership QR code has expired: the member shows "
                      "the new one in the club app", "کد QR عضویت منقضی شده است؛ کد تازه را "
                      "در برنامه باشگاه نشان دهید.")  # fmt: skip
    return str(body["m"])
