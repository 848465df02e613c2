"""Referrals: every member has a code to give friends; a new member who gives one at
enrolment (the till's enrol, the member panel) is remembered as referred, and when their
first sale is booked both get the points the programme says (``policy.referral_referrer_
points`` and ``referral_referee_points``), once (``referral_rewards`` is keyed by the new
member).

Codes are seven letters and digits from an alphabet without look-alikes (no 0/O, 1/I/L),
random, unique (an index), given to a member the first time their balances are written,
so they travel in the member's snapshot and the till prints them on the receipt.
"""

from __future__ import annotations

import secrets
from typing import Any

from cloud_broker.ledger.db import Tx

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 7


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normal(code: str) -> str:
    """A code as typed: upper case, without spaces or dashes, Persian digits as Latin."""
    t = code.translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789"))
    return "".join(c for c in t.upper() if c.isalnum())


def ensure_codes(tx: Tx, members: list[str]) -> None:
    """Give a code to each of ``members`` that has none yet (a batch's members together:
    one query for clashes, one statement to write them)."""
    for part in tx.parts(members):
        where, args = tx.among("member", part)
        todo = [
            str(r[0])
            for r in tx.all(
                f"SELECT member FROM members WHERE {where} AND "
                "referral_code IS NULL AND merged_into IS NULL",
                args,
            )
        ]
        codes = {m: new_code() for m in todo}
        for _ in range(8):  # a clash is one in billions: try another
            mine = list(codes.values())
            taken: set[str] = set()
            if mine:
                where, args = tx.among("referral_code", mine)
                rows = tx.all(f"SELECT referral_code FROM members WHERE {where}", args)
                taken = {str(r[0]) for r in rows}
            twice = {c for c in mine if mine.count(c) > 1}
            clash = [m for m, c in codes.items() if c in taken or c in twice]
            if not clash:
                break
            for m in clash:
                codes[m] = new_code()
        else:
            codes = {m: c for m, c in codes.items() if m not in clash}  # left for next time
        tx.update_by_key(
            "members", "member", [("referral_code", "text")], [(c, m) for m, c in codes.items()]
        )


def referrer(tx: Tx, code: str) -> str | None:
    """The member whose code ``code`` is (not one merged away)."""
    row = tx.one(
        "SELECT member FROM members WHERE referral_code = ? AND merged_into IS NULL",
        (normal(code),),
    )
    return None if row is None else str(row[0])


def remember(tx: Tx, member: str, code: str) -> tuple[str, str] | None:
    """``member`` (new: no purchase yet) was referred by ``code``'s owner; why it was not
    recorded (English, Persian), or None."""
    who = referrer(tx, code)
    if who is None:
        return (f"no member holds referral code {normal(code)[:12]}",
                "هیچ عضوی این کد معرف را ندارد.")  # fmt: skip
    if who == member:
        return "a member cannot refer themselves", "عضو نمی‌تواند معرف خودش باشد."
    row = tx.one("SELECT visits, referred_by FROM members WHERE member = ?", (member,))
    if row is None or int(row[0]) > 0 or row[1] is not None:
        return (
            "only a new member, before their first purchase, can name who referred them",
            "فقط عضو تازه، پیش از نخستین خرید، می‌تواند معرف داشته باشد.",
        )
    tx.execute("UPDATE members SET referred_by = ? WHERE member = ?", (who, member))
    return None


def due(tx: Tx, member: str, referred_by: str | None) -> str | None:
    """The referrer to reward with ``member``'s first sale, if any and not rewarded yet;
    ``referred_by``: the member's row's (read with the member)."""
    if referred_by is None:
        return None
    if tx.one("SELECT 1 FROM referral_rewards WHERE referee = ?", (member,)):
        return None
    who = referred_by
    for _ in range(4):  # a referrer merged into another member since: that one is rewarded
        into = tx.one("SELECT merged_into FROM members WHERE member = ?", (who,))
        if into is None or into[0] is None:
            break
        who = str(into[0])
    return who if who != member else None


def rewarded(tx: Tx, referee: str, referrer_: str, journal: int, now_ms: int) -> None:
    tx.execute(
        "INSERT INTO referral_rewards (referee, referrer, journal_id, at) VALUES (?, ?, ?, ?)",
        (referee, referrer_, journal, now_ms),
    )


def of(tx: Tx, member: str) -> dict[str, Any]:
    """A member's code, who referred them and whom they referred (for their page)."""
    row = tx.one("SELECT referral_code, referred_by FROM members WHERE member = ?", (member,))
    referred = [
        {"member": str(r[0]), "at": int(r[1]) if r[1] is not None else None}
        for r in tx.all(
            "SELECT m.member, w.at FROM members m LEFT JOIN referral_rewards w ON w.referee = "
            "m.member WHERE m.referred_by = ? ORDER BY m.created_at",
            (member,),
        )
    ]
    return {
        "code": row[0] if row else None,
        "referred_by": row[1] if row else None,
        "referred": referred,
    }
