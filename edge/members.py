"""What the terminal knows about members: head office's snapshots plus its own activity.

The engine's member input is built from:

* the last snapshot head office published for the member (points, wallet, tier spend,
  visits, birthday and anniversary, cards, the coupons they hold and those used, their
  referral code, and the last seq of this device it included);
* this terminal's member deltas with a higher seq (sales and refunds head office had not
  applied when it made the snapshot).

Offline, spending is bounded: the points and wallet credit a member may spend are at most
the estimated balance and at most the bundle's ``offline_*_limit`` beyond what head office
last confirmed, counting what this terminal already let them spend since.  Online the
estimate is the bound.  New phone numbers become members at the till (an enrol record).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from edge.core.dates import format_date
from edge.ledger_cache import db
from edge.protocol.snapshots import MemberSnapshot


@dataclass(frozen=True, slots=True)
class Estimate:
    known: bool  # head office or this terminal has seen the member
    engine: dict[str, Any]  # the engine's member input (points and wallet: what may be spent)
    points: int = 0  # the balance itself (below zero after an overdraft)
    wallet: int = 0


class Members:
    def __init__(self, conn: sqlite3.Connection, device: str) -> None:
        self.conn = conn
        self.device = device

    # -- identity ---------------------------------------------------------------------

    def by_card(self, card: str) -> str:
        row = self.conn.execute("SELECT member FROM cards WHERE card = ?", (card,)).fetchone()
        return str(row[0]) if row else f"card:{card}"

    def link_card(self, card: str, member: str) -> None:
        self.conn.execute(
            "INSERT INTO cards (card, member) VALUES (?, ?) ON CONFLICT (card) "
            "DO UPDATE SET member = excluded.member",
            (card, member),
        )

    def _snapshot(self, member: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT doc FROM member_snapshot WHERE member = ?", (member,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def referral_code(self, member: str) -> str | None:
        """The member's referral code, for the receipt (head office gives it)."""
        code = (self._snapshot(member) or {}).get("referral_code")
        return str(code) if code else None

    def known(self, member: str) -> bool:
        if self._snapshot(member) is not None:
            return True
        row = self.conn.execute(
            "SELECT 1 FROM member_delta WHERE member = ? LIMIT 1", (member,)
        ).fetchone()
        return row is not None

    # -- the estimate -----------------------------------------------------------------

    def estimate(self, member: str, today: int, online: bool, policy: dict[str, Any]) -> Estimate:
        snap = self._snapshot(member) or {}
        since = int(snap.get("device_seqs", {}).get(self.device, 0))
        rows = self.conn.execute(
            "SELECT day, points, wallet, spend, discount, earned, visits, info FROM "
            "member_delta WHERE member = ? AND seq > ? ORDER BY seq",
            (member, since),
        ).fetchall()
        points = int(snap.get("points", 0))
        wallet = int(snap.get("wallet", 0))
        visits = int(snap.get("visits", 0))
        spend = [list(x) for x in snap.get("spend", [])]
        used_coupons = set(snap.get("used_coupons", []))
        claimed = int(snap.get("birthday_claimed", 0))
        claimed_anniversary = int(snap.get("anniversary_claimed", 0))
        today_s = format_date(today)
        today_discount = today_points = 0
        spent_points = spent_wallet = 0  # spent here since the snapshot
        for day, dp, dw, dspend, ddisc, dearned, dvisits, info in rows:
            points += dp
            wallet += dw
            visits += dvisits
            spend.append([day, dspend])
            if day == today_s:
                today_discount += ddisc
                today_points += dearned
            extra = json.loads(info) if info else {}
            used_coupons.update(extra.get("coupons", []))
            claimed = max(claimed, int(extra.get("birthday_year", 0)))
            claimed_anniversary = max(claimed_anniversary, int(extra.get("anniversary_year", 0)))
            spent_points += int(extra.get("points_spent", 0))
            spent_wallet += int(extra.get("wallet_spent", 0))
        sp_points, sp_wallet = max(points, 0), max(wallet, 0)
        if not online:
            confirmed_p = max(int(snap.get("points", 0)), 0)
            confirmed_w = max(int(snap.get("wallet", 0)), 0)
            sp_points = min(
                sp_points,
                max(0, confirmed_p + policy.get("offline_points_limit", 0) - spent_points),
            )
            sp_wallet = min(
                sp_wallet,
                max(0, confirmed_w + policy.get("offline_wallet_limit", 0) - spent_wallet),
            )
        engine: dict[str, Any] = {
            "ref": member,
            "points": sp_points,
            "wallet": sp_wallet,
            "visits": visits,
            "spend": [[d if isinstance(d, str) else format_date(int(d)), int(a)] for d, a in spend],
            "used_coupons": sorted(used_coupons),
            "birthday_claimed": claimed,
            "anniversary_claimed": claimed_anniversary,
            "coupons": sorted(snap.get("coupons", [])),  # held: issued by head office
            "today": {"date": today_s, "discount": today_discount, "points": today_points},
        }
        if snap.get("birthday"):
            engine["birthday"] = snap["birthday"]
        if snap.get("anniversary"):
            engine["anniversary"] = snap["anniversary"]
        known = bool(snap) or bool(rows)
        return Estimate(known, engine, points, wallet)

    # -- snapshots from head office ------------------------------------------------------

    def apply(self, snaps: list[MemberSnapshot], now_ms: int) -> int:
        """Store head office's snapshots; drop the local deltas they include."""
        # one transaction: with synchronous=FULL each statement on its own would be a
        # commit and an fsync, on the thread that serves the checkout
        n = 0
        with db.transaction(self.conn):
            for s in snaps:
                old = self._snapshot(s.member)
                if old is not None and int(old.get("version", 0)) >= s.version:
                    continue  # an older or repeated snapshot
                doc = {
                    "points": s.points,
                    "wallet": s.wallet,
                    "tier": s.tier,
                    "visits": s.visits,
                    "spend": [list(x) for x in s.spend],
                    "birthday": s.birthday,
                    "birthday_claimed": s.birthday_claimed,
                    "version": s.version,
                    "device_seqs": s.device_seqs,
                    "used_coupons": list(s.used_coupons),
                    "coupons": list(s.coupons),
                    "anniversary": s.anniversary,
                    "anniversary_claimed": s.anniversary_claimed,
                    "referral_code": s.referral_code,
                }
                self.conn.execute(
                    "INSERT INTO member_snapshot (member, doc, as_of_ms) VALUES "
                    "(?, ?, ?) ON CONFLICT (member) DO UPDATE SET doc = "
                    "excluded.doc, as_of_ms = excluded.as_of_ms",
                    (s.member, json.dumps(doc, sort_keys=True), now_ms),
                )
                for card in s.cards:
                    self.link_card(card, s.member)
                since = s.device_seqs.get(self.device, 0)
                self.conn.execute(
                    "DELETE FROM member_delta WHERE member = ? AND seq <= ?", (s.member, since)
                )
                n += 1
        return n
