"""One member, looked up by phone or card and summed up in a few indexed reads: what the
public API and the member panel answer (the console's page, cloud_broker.club.members,
tells the whole story)."""

from __future__ import annotations

import time
from typing import Any

from cloud_broker.club.changes import card_id, phone_member
from cloud_broker.club.errors import ClubError
from cloud_broker.club.members import tier_progress
from cloud_broker.ledger.db import Database, Tx
from edge.core.ruleset import RuleSet

OFFSET_MIN = 210
NO_MEMBER = ("unknown_member", "no such member", "چنین عضوی در باشگاه نیست.")


def key_of(tx: Tx, phone: str | None = None, card: str | None = None) -> str | None:
    """The member a phone number (any form) or a card id names, following merges."""
    if phone:
        key = phone_member(phone)
    elif card:
        uid = card_id(card)
        row = tx.one("SELECT member FROM member_cards WHERE card = ?", (uid,))
        key = str(row[0]) if row else f"card:{uid}"
    else:
        raise ClubError("no_query", "give a phone or a card", "شماره موبایل یا کارت را بدهید.")
    for _ in range(8):  # a merged member points at the one it became
        row = tx.one("SELECT merged_into FROM members WHERE member = ?", (key,))
        if row is None:
            return None
        if row[0] is None:
            return key
        key = str(row[0])
    return key


def summary(db: Database, rs: RuleSet, phone: str | None = None, card: str | None = None,
            member: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Balance, tier and what is left to the next, visits, name; ClubError
    ``unknown_member`` when there is no such member."""
    today = int((time.time() + OFFSET_MIN * 60) // 86400)

    def run(tx: Tx) -> dict[str, Any]:
        key = member or key_of(tx, phone, card)
        row = key and tx.one(
            "SELECT member, name, points, wallet, visits, created_at, referral_code FROM "
            "members WHERE member = ? AND merged_into IS NULL",
            (key,),
        )
        if not row:
            raise ClubError(*NO_MEMBER)
        spend = tx.one(
            "SELECT COALESCE(SUM(amount), 0) FROM member_spend WHERE member = ? AND day > ? "
            "AND day <= ?",
            (row[0], today - rs.window_days, today),
        )
        soon = tx.one(
            "SELECT COALESCE(SUM(remaining), 0), MIN(expires_day) FROM lots WHERE member = ? "
            "AND kind != 'overdraft' AND remaining > 0 AND expires_day IS NOT NULL AND "
            "expires_day <= ?",
            (row[0], today + 30),
        )
        return {
            "member": str(row[0]), "name": row[1], "points": int(row[2]),
            "wallet": int(row[3]), "visits": int(row[4]), "joined_at": int(row[5]),
            "referral_code": row[6], "progress": tier_progress(rs, max(0, int(spend[0]))),
            "expiring": {"points": int(soon[0]), "first_day": soon[1]},
        }  # fmt: skip

    return db.run(run, write=False)
