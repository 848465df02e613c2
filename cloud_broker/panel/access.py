"""How a member gets into their panel: a one-time code by SMS, then a session.

* A code is six digits, sent straight through the SMS gateway (never queued: the ledger
  would hold it) and kept only as an HMAC under the panel's secret; it expires after two
  minutes, allows five tries, and is used once.
* At most 3 codes per number and 10 per address in 10 minutes.  A number that is no member
  gets the same answer, after the same work, as one that is: nothing tells them apart
  (no code is sent to it, and no row says it was asked).
* A session is a random token in a cookie; the ledger keeps its SHA-256, the member, and a
  CSRF token for the forms.  It ends after 30 minutes idle, 7 days at most, or logging out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from cloud_broker.club.changes import phone_member
from cloud_broker.club.errors import ClubError
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.messages.gateway import Gateway, GatewayError, mask_number

CODE_TTL_MS = 120_000
TRIES = 5
WINDOW_MS = 600_000
PER_PHONE = 3
PER_ADDRESS = 10
IDLE_MS = 30 * 60_000
SESSION_MS = 7 * 86_400_000


@dataclass(frozen=True, slots=True)
class Session:
    member: str
    csrf: str


def _now() -> int:
    return int(time.time() * 1000)


def _code_hash(secret: bytes, phone: str, code: str) -> str:
    return hmac.new(secret, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def request_code(db: Database, gw: Gateway, secret: bytes, phone_text: str, address: str,
                 now: int | None = None) -> str:  # fmt: skip
    """Send a code to a member's phone; the (normalised) phone.  The caller answers the
    same whatever happened, but for a malformed number or a rate limit."""
    phone = phone_member(phone_text)
    t = _now() if now is None else now
    code = f"{secrets.randbelow(1_000_000):06d}"

    def run(tx: Tx) -> bool:
        by_phone = int(tx.one("SELECT COUNT(*) FROM panel_codes WHERE phone = ? AND "
                              "created_at > ?", (phone, t - WINDOW_MS))[0])  # fmt: skip
        by_address = int(tx.one("SELECT COUNT(*) FROM panel_codes WHERE address = ? AND "
                                "created_at > ?", (address, t - WINDOW_MS))[0])  # fmt: skip
        if by_phone >= PER_PHONE or by_address >= PER_ADDRESS:
            raise ClubError("too_many_codes", "too many codes asked for: try again in ten "
                            "minutes", "درخواست کد بیش از حد مجاز بود؛ ده دقیقه دیگر دوباره "
                            "تلاش کنید.")  # fmt: skip
        member = tx.one("SELECT 1 FROM members WHERE member = ? AND merged_into IS NULL",
                        (phone,)) is not None  # fmt: skip
        # a row for everyone asking (the rate limits count them), a usable one for members
        tx.execute(
            "INSERT INTO panel_codes (phone, code_hash, address, created_at, expires_at, "
            "used_at) VALUES (?, ?, ?, ?, ?, ?)",
            (phone, _code_hash(secret, phone, code) if member else "-", address, t,
             t + CODE_TTL_MS, None if member else t),
        )  # fmt: skip
        return member

    if db.run(run):
        try:
            gw.send(phone, f"کد ورود به باشگاه مشتریان: {code}\nاین کد را به کسی ندهید.",
                    ref=f"otp-{secrets.token_hex(6)}")  # fmt: skip
        except GatewayError as e:
            raise ClubError("sms_failed", f"the code could not be sent ({e.en}): try again",
                            "کد ارسال نشد؛ دوباره تلاش کنید.") from e  # fmt: skip
    else:
        _ = _code_hash(secret, phone, code)  # the same work for a number that is no member
    return phone


def sign_in(db: Database, secret: bytes, phone_text: str, code_text: str,
            now: int | None = None) -> tuple[str, Session]:  # fmt: skip
    """The session token (for the cookie) and the session, for the right code."""
    phone = phone_member(phone_text)
    code = "".join(c for c in code_text.translate(_DIGITS) if c.isdigit())
    t = _now() if now is None else now
    wrong = ClubError("bad_code", "that code is wrong or has expired: ask for a new one",
                      "کد نادرست است یا منقضی شده؛ کد تازه بگیرید.")  # fmt: skip

    def run(tx: Tx) -> tuple[str, Session]:
        row = tx.one(
            "SELECT id, code_hash, attempts FROM panel_codes WHERE phone = ? AND used_at IS "
            "NULL AND expires_at > ? ORDER BY id DESC LIMIT 1",
            (phone, t),
        )
        if row is None or int(row[2]) >= TRIES:
            raise wrong
        if not hmac.compare_digest(str(row[1]), _code_hash(secret, phone, code)):
            tx.execute("UPDATE panel_codes SET attempts = attempts + 1 WHERE id = ?", (row[0],))
            return ("", Session("", ""))
        tx.execute("UPDATE panel_codes SET used_at = ? WHERE id = ?", (t, row[0]))
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        tx.execute("INSERT INTO panel_sessions (token_hash, member, csrf, created_at, seen_at) "
                   "VALUES (?, ?, ?, ?, ?)", (_sha(token), phone, csrf, t, t))  # fmt: skip
        return token, Session(phone, csrf)

    token, session = db.run(run)
    if not token:
        raise wrong  # the failed try is counted (committed) before the refusal
    return token, session


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")


def session(db: Database, token: str, now: int | None = None) -> Session | None:
    """The live session of a cookie's token (seen now), or None."""
    if not token or len(token) > 100:
        return None
    t = _now() if now is None else now

    def run(tx: Tx) -> Session | None:
        row = tx.one("SELECT member, csrf, created_at, seen_at FROM panel_sessions WHERE "
                     "token_hash = ? AND ended_at IS NULL", (_sha(token),))  # fmt: skip
        if row is None or t - int(row[3]) > IDLE_MS or t - int(row[2]) > SESSION_MS:
            return None
        tx.execute("UPDATE panel_sessions SET seen_at = ? WHERE token_hash = ?", (t, _sha(token)))
        return Session(str(row[0]), str(row[1]))

    return db.run(run)


def sign_out(db: Database, token: str) -> None:
    db.run(lambda tx: tx.execute("UPDATE panel_sessions SET ended_at = ? WHERE token_hash = ?",
                                 (_now(), _sha(token))))  # fmt: skip


def masked(phone: str) -> str:
    return mask_number(phone)
