"""Members as head office's people look at them: finding one, and one member's whole story.

Search takes what a support agent types: a phone number in any form (Persian, Arabic-Indic
or Latin digits; ``09..``, ``+98..``, ``0098..``), a card id (what the card or the app's QR
says, with or without ``card:``), or the start of a name.  Every form is answered from an
index: the member's key, ``member_cards``, or ``members.name_key`` (the name folded:
lower case, Arabic ي/ك as Persian ی/ک, no zero-width joiners, single spaces), so search
stays fast on a chain's half a million members.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.ledger import referrals
from cloud_broker.ledger.books import IRR, PTS
from cloud_broker.ledger.db import Database, Tx, marks
from edge.core import record as R
from edge.core.errors import CoreError
from edge.core.phone import ascii_digits, normalise
from edge.core.ruleset import RuleSet
from edge.protocol.record import parse
from edge.sanitize import clean

PAGE = 50  # purchases on a member page; older ones by "before"
_SPACES = re.compile(r"\s+")


def name_key(name: str) -> str:
    """A name folded for prefix search (see the module docstring)."""
    text = name.replace("\u064a", "\u06cc").replace("\u0643", "\u06a9").replace("\u200c", " ")
    return _SPACES.sub(" ", text).strip().lower()


@dataclass(frozen=True, slots=True)
class Found:
    member: str
    name: str | None
    points: int
    wallet: int
    tier: str
    visits: int
    merged_into: str | None


def _found(r: Any) -> Found:
    return Found(str(r[0]), r[1], int(r[2]), int(r[3]), str(r[4]), int(r[5]), r[6])


_COLS = "member, name, points, wallet, tier, visits, merged_into"


def search(db: Database, query: str, limit: int = 20) -> list[Found]:
    """Members matching ``query`` (see the module docstring); [] for nothing found,
    ClubError for a query that is nothing at all."""
    q = clean(query, 100).strip()
    if not q:
        raise ClubError(
            "empty_query",
            "type a phone number, a card id or a name",
            "شماره موبایل، شناسه کارت یا نام را وارد کنید.",
        )

    def run(tx: Tx) -> list[Found]:
        try:
            phone = normalise(q)
        except CoreError:
            phone = None
        out: list[Found] = []
        if phone is not None:
            out += [
                _found(r) for r in tx.all(f"SELECT {_COLS} FROM members WHERE member = ?", (phone,))
            ]
        card = ascii_digits(q)
        card = card[5:] if card.lower().startswith("card:") else card
        card = card[4:] if card.upper().startswith("LC1:") else card
        if phone is None and card and " " not in card:
            row = tx.one(
                "SELECT member FROM member_cards WHERE card IN (?, ?)", (card, card.upper())
            )
            keys = [str(row[0])] if row else []
            keys += [f"card:{card}", f"card:{card.upper()}"]
            out += [
                _found(r)
                for r in tx.all(
                    f"SELECT {_COLS} FROM members WHERE member IN ({marks(len(keys))})", keys
                )
            ]
        if phone is None:
            key = name_key(q)
            out += [
                _found(r)
                for r in tx.all(
                    f"SELECT {_COLS} FROM members WHERE name_key >= ? AND name_key < ? "
                    "ORDER BY name_key, member LIMIT ?",
                    (key, key + "\uffff", limit),
                )
            ]
        seen: dict[str, Found] = {}
        for f in out:
            seen.setdefault(f.member, f)
        return list(seen.values())[:limit]

    return db.run(run, write=False)


def _today(utc_offset_min: int = 210) -> int:
    return int((time.time() + utc_offset_min * 60) // 86400)


def tier_progress(rs: RuleSet, rolling: int) -> dict[str, Any]:
    """The tier a rolling spend gives, and what is left to the next one."""
    tiers = sorted(rs.tiers, key=lambda t: t.min_spend)
    cur = rs.tier_for_spend(rolling) if tiers else None
    nxt = next((t for t in tiers if t.min_spend > rolling), None)
    return {
        "tier": cur.id if cur else "",
        "tier_fa": cur.fa if cur else "",
        "tier_en": cur.en if cur else "",
        "rolling_spend": rolling,
        "window_days": rs.window_days,
        "next": nxt.id if nxt else None,
        "next_fa": nxt.fa if nxt else None,
        "next_en": nxt.en if nxt else None,
        "left": (nxt.min_spend - rolling) if nxt else 0,
    }


def page(
    db: Database, rs: RuleSet, member: str, before: int | None = None, history: int = 20
) -> dict[str, Any]:
    """Everything about one member: profile, tier, points by lot, wallet, visits, every
    purchase and refund (lines, amounts, where, when), stores visited, merged members,
    changes made at head office and the last ``history`` movements of points and wallet.
    ClubError ``unknown_member`` if there is none."""

    def run(tx: Tx) -> dict[str, Any]:
        row = tx.one(
            "SELECT member, tenant, name, points, wallet, tier, visits, birthday, anniversary, "
            "sms_opt_out, merged_into, created_at, version FROM members WHERE member = ?",
            (member,),
        )
        if row is None:
            raise ClubError(
                "unknown_member",
                f"no member {clean(member, 40)}",
                "چنین عضوی در باشگاه نیست.",
            )
        keys = (
            "member",
            "tenant",
            "name",
            "points",
            "wallet",
            "tier",
            "visits",
            "birthday",
            "anniversary",
            "sms_opt_out",
            "merged_into",
            "created_at",
            "version",
        )
        out: dict[str, Any] = dict(zip(keys, row, strict=True))
        merged = [
            str(r[0])
            for r in tx.all(
                "SELECT from_member FROM member_merges WHERE into_member = ?", (member,)
            )
        ]
        out["merged_from"] = merged
        out["cards"] = [
            str(r[0])
            for r in tx.all(
                "SELECT card FROM member_cards WHERE member = ? ORDER BY card", (member,)
            )
        ]
        today = _today()
        spend = tx.one(
            "SELECT COALESCE(SUM(amount), 0) FROM member_spend WHERE member = ? AND day > ? "
            "AND day <= ?",
            (member, today - rs.window_days, today),
        )
        out["progress"] = tier_progress(rs, max(0, int(spend[0])))
        out["lots"] = [
            dict(
                zip(
                    (
                        "id",
                        "kind",
                        "earned",
                        "remaining",
                        "earned_day",
                        "expires_day",
                        "device",
                        "seq",
                    ),
                    r,
                    strict=True,
                )
            )
            for r in tx.all(
                "SELECT id, kind, earned, remaining, earned_day, expires_day, device, seq "
                "FROM lots WHERE member = ? AND remaining != 0 "
                "ORDER BY COALESCE(expires_day, 2147483647), id",
                (member,),
            )
        ]
        whose = [member, *merged]
        out["purchases"] = _purchases(tx, whose, before)
        out["stores"] = [
            {"store": str(r[0]), "visits": int(r[1]), "last_day": int(r[2])}
            for r in tx.all(
                f"SELECT r.store, COUNT(*), MAX(j.day) FROM journals j JOIN records r ON "
                f"r.device = j.device AND r.seq = j.seq WHERE j.member IN ({marks(len(whose))}) "
                "AND j.kind = 'sale' GROUP BY r.store ORDER BY COUNT(*) DESC",
                whose,
            )
        ]
        out["history"] = _history(tx, member, history)
        out["coupons"] = [
            dict(zip(("code", "rule", "valid_until", "issued_at", "used_at", "used_device",
                      "used_seq", "revoked_at"), r, strict=True))
            for r in tx.all(
                "SELECT code, rule, valid_until, issued_at, used_at, used_device, used_seq, "
                "revoked_at FROM member_coupons WHERE member = ? ORDER BY issued_at DESC",
                (member,),
            )
        ]  # fmt: skip
        out["referral"] = referrals.of(tx, member)
        targets = [f"member:{w}" for w in whose]
        out["changes"] = [
            {
                "at": int(r[0]),
                "actor": str(r[1]),
                "action": str(r[2]),
                "detail": json.loads(str(r[3])),
                "reason": r[4],
            }
            for r in tx.all(
                "SELECT at, actor, action, detail, reason FROM audit_log WHERE target IN "
                f"({marks(len(targets))}) ORDER BY id DESC LIMIT 20",
                targets,
            )
        ]
        return out

    return db.run(run, write=False)


def _purchases(tx: Tx, whose: list[str], before: int | None) -> list[dict[str, Any]]:
    sql = (
        "SELECT j.id, j.kind, j.day, COALESCE(r.raw, a.raw), COALESCE(r.store, a.store), "
        "j.device, j.seq FROM journals j LEFT JOIN records r ON r.device = j.device AND "
        "r.seq = j.seq AND r.journal_id = j.id LEFT JOIN admitted a ON a.journal_id = j.id "
        f"WHERE j.member IN ({marks(len(whose))}) AND j.kind IN ('sale', 'refund', 'void')"
    )
    params: list[Any] = list(whose)
    if before is not None:
        sql += " AND j.id < ?"
        params.append(before)
    out = []
    for jid, kind, day, raw, store, device, seq in tx.all(
        sql + " ORDER BY j.id DESC LIMIT ?", (*params, PAGE)
    ):
        item: dict[str, Any] = {
            "journal": int(jid),
            "kind": str(kind),
            "day": int(day),
            "store": store,
            "device": device,
            "seq": seq,
        }
        if raw is not None:
            item.update(purchase(bytes(raw)))
        out.append(item)
    return out


def _history(tx: Tx, member: str, limit: int) -> list[dict[str, Any]]:
    """The member's journals, newest first, each with what it did to the member's points
    and wallet (earned, spent, expired, adjusted, merged)."""
    journals = tx.all(
        "SELECT j.id, j.kind, j.device, j.seq, j.day, j.at, COALESCE(r.store, a.store), "
        "COALESCE(r.raw, a.raw) FROM journals j LEFT JOIN records r ON r.device = j.device "
        "AND r.seq = j.seq AND r.journal_id = j.id LEFT JOIN admitted a ON a.journal_id = j.id "
        "WHERE j.member = ? "
        "ORDER BY j.id DESC LIMIT ?",
        (member, limit),
    )
    out = []
    for jid, kind, device, seq, day, at, store, raw in journals:
        delta = {PTS: 0, IRR: 0}
        for unit, amount in tx.all(
            "SELECT unit, amount FROM entries WHERE journal_id = ? AND account LIKE ?",
            (jid, f"M:{member}:%"),
        ):
            delta[unit] += int(amount)
        item: dict[str, Any] = {
            "journal": int(jid),
            "kind": str(kind),
            "device": device,
            "seq": seq,
            "store": store,
            "day": int(day),
            "at": int(at),
            "points": delta[PTS],
            "wallet": delta[IRR],
        }
        if raw is not None:
            p = parse(bytes(raw)).payload
            t, a = p[R.K_TIME], p.get(R.K_AMOUNTS)
            item["wall_ms"], item["offset_min"] = int(t[R.T_WALL]), int(t[R.T_OFFSET])
            if a is not None:
                item["amount"] = int(a[R.A_PAID])
        out.append(item)
    return out


def purchase(raw: bytes) -> dict[str, Any]:
    """A sale, refund or void record as a receipt shows it."""
    p = parse(raw).payload
    t, a, pts, w = p[R.K_TIME], p[R.K_AMOUNTS], p[R.K_POINTS], p[R.K_WALLET]
    lines = [
        {
            "sku": ln[R.L_SKU],
            "category": ln.get(R.L_CATEGORY, ""),
            "qty": ln[R.L_QTY],
            "unit_price": ln.get(R.L_UNIT_PRICE),
            "discount": ln[R.L_DISCOUNT],
            "paid": ln[R.L_PAID],
            "points": ln[R.L_POINTS],
        }
        for ln in p[R.K_LINES]
    ]
    bank = p.get(R.K_BANK) or {}
    out: dict[str, Any] = {
        "wall_ms": t[R.T_WALL],
        "offset_min": t[R.T_OFFSET],
        "offline": p[R.K_OFFLINE],
        "basket": p.get(R.K_BASKET),
        "gross": a[R.A_GROSS],
        "discount": a[R.A_DISCOUNT],
        "wallet": a[R.A_WALLET],
        "paid": a[R.A_PAID],
        "withheld": a.get(R.A_WITHHELD, 0),
        "points_plus": pts[R.P_EARNED],
        "points_minus": pts[R.P_REDEEMED],
        "cashback": w[R.W_CASHBACK],
        "lines": lines,
        "bank": {k: bank[i] for i, k in enumerate(R.BANK_NAMES) if i in bank},
        "rules": [a_[R.AP_RULE] for a_ in p.get(R.K_APPLIED, ())],
    }
    o = p.get(R.K_ORIG)
    if o:
        out["orig"] = {"device": o[R.O_DEVICE], "seq": o[R.O_SEQ]}
    return out


def set_profile(tx: Tx, member: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Change name, birthday, wedding anniversary and the SMS opt-out (validated by the
    caller: club.changes.edit_profile); the old values, for the audit entry."""
    row = tx.one(
        "SELECT name, birthday, anniversary, sms_opt_out FROM members WHERE member = ?", (member,)
    )
    old = dict(zip(("name", "birthday", "anniversary", "sms_opt_out"), row, strict=True))
    sets = {k: v for k, v in fields.items() if old.get(k) != v}
    if "name" in sets:
        sets["name_key"] = name_key(sets["name"]) if sets["name"] else None
    if sets:
        tx.execute(
            f"UPDATE members SET {', '.join(f'{k} = ?' for k in sets)}, version = version + 1 "
            "WHERE member = ?",
            (*sets.values(), member),
        )
    return {k: old[k] for k in fields if k in old and old[k] != fields[k]}
