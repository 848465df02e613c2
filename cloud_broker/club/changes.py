"""Changes people make to members: points and wallet adjustments, a card linked to a phone
(two members made one), the profile.

Each is one ledger transaction holding the change, its audit entry and, with the caller's
idempotency key, a ``changes`` row: the same key again (a form submitted twice, an API call
retried) returns the first result and changes nothing.  A change tills must learn queues
the member for the reconciler service to publish in its next snapshot.

Adjustments are journals like a till's records (double entry, point lots with expiry,
``S:{tenant}:points_adjusted`` / ``wallet_adjusted`` as the other side), and cannot take a
balance below zero unless the rules bundle's ``policy.adjust_overdraft`` is 1.

Linking a card to a phone: a card nobody holds is simply the phone member's card from now
on.  A card that is a member of its own (``card:UID``, with points, lots, history) is
merged into the phone member exactly once (``member_merges`` is keyed by the card
member): its lots move with their expiry, its balances move by a ``merge`` journal, its
spend and visits add up, its coupons and history follow, and the card maps to the phone
member at every till after the next snapshot.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.members import set_profile
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit, referrals
from cloud_broker.ledger.books import IRR, PTS, Books, m_acct, queue_snapshots, s_acct
from cloud_broker.ledger.db import Database, Tx
from edge.core import jalali
from edge.core.errors import CoreError
from edge.core.phone import normalise
from edge.core.ruleset import MAX_AMOUNT, MAX_POINTS, RuleSet
from edge.sanitize import clean, is_clean


@dataclass(frozen=True, slots=True)
class Done:
    action: str
    member: str
    journal: int | None
    audit: int
    repeated: bool = False


def _now() -> int:
    return int(time.time() * 1000)


def _today() -> int:
    return int((time.time() + 210 * 60) // 86400)


def _reason(reason: str) -> str:
    text = clean(reason, 500).strip()
    if not text:
        raise ClubError(
            "no_reason", "say why: a reason is kept with every change", "علت تغییر را بنویسید."
        )
    return text


def _repeat(tx: Tx, idem: str | None, action: str) -> Done | None:
    if idem is None:
        return None
    row = tx.one(
        "SELECT c.action, c.journal_id, c.audit_id, a.target FROM changes c JOIN audit_log a "
        "ON a.id = c.audit_id WHERE c.idem = ?",
        (idem,),
    )
    if row is None:
        return None
    if row[0] != action:
        raise ClubError(
            "key_reused",
            "this form was already used for something else: reload the page",
            "این فرم پیش‌تر برای کار دیگری به کار رفته است؛ صفحه را دوباره باز کنید.",
        )
    target = str(row[3] or "")
    member = target.split(":", 1)[1] if target.startswith("member:") else target
    return Done(action, member, row[1], int(row[2]), repeated=True)


def _done(
    tx: Tx,
    actor: Operator,
    action: str,
    member: str,
    detail: dict[str, Any],
    reason: str | None,
    idem: str | None,
    journal: int | None,
) -> Done:
    aid = audit.record(tx, actor.username, action, f"member:{member}", detail, reason)
    if idem is not None:
        tx.execute(
            "INSERT INTO changes (idem, action, journal_id, audit_id, at) VALUES (?, ?, ?, ?, ?)",
            (idem, action, journal, aid, _now()),
        )
    queue_snapshots(tx, [member], _now())
    return Done(action, member, journal, aid)


def _member_row(tx: Tx, member: str) -> tuple[str, int, int]:
    row = tx.one(
        "SELECT tenant, points, wallet, merged_into FROM members WHERE member = ?", (member,)
    )
    if row is None:
        raise ClubError("unknown_member", "no such member", "چنین عضوی در باشگاه نیست.")
    if row[3] is not None:
        raise ClubError(
            "merged",
            f"this member was merged into {clean(str(row[3]), 40)}: change that one",
            "این عضو با عضو دیگری یکی شده است؛ آن عضو را تغییر دهید.",
        )
    return str(row[0]), int(row[1]), int(row[2])


def adjust(
    db: Database,
    rs: RuleSet,
    actor: Operator,
    member: str,
    points: int,
    wallet: int,
    reason: str,
    idem: str | None = None,
) -> Done:
    """Grant (positive) or remove (negative) points and wallet credit, with a reason."""
    actor.require("adjust")
    why = _reason(reason)
    if type(points) is not int or type(wallet) is not int or (points == 0 and wallet == 0):
        raise ClubError(
            "nothing",
            "give the points or the wallet Rials to add or remove",
            "مقدار تغییر را وارد کنید.",
        )
    if abs(points) > MAX_POINTS or abs(wallet) > MAX_AMOUNT:
        raise ClubError("too_large", "the amount is too large", "مقدار بیش از حد بزرگ است.")
    may_overdraw = bool(rs.policy.get("adjust_overdraft", 0))

    def step(tx: Tx) -> Done:
        first = _repeat(tx, idem, "member.adjust")
        if first is not None:
            return first
        tenant, held_points, held_wallet = _member_row(tx, member)
        if not may_overdraw and (held_points + points < 0 or held_wallet + wallet < 0):
            raise ClubError(
                "overdraw",
                f"that would take the balance below zero (points {held_points:,}, wallet "
                f"{held_wallet:,} Rials)",
                "این تغییر موجودی عضو را منفی می‌کند.",
            )
        today = _today()
        books = Books(tx, rs, _now())
        books.ensure_members(tenant, [member])
        ms = books.member(member)
        jid = books.journal(tenant, "adjustment", None, None, member, today)
        if points > 0:
            books.earn(
                jid, ms, points, today, None, None, s_acct(tenant, "points_adjusted"), kind="adjust"
            )
        elif points < 0:
            books.spend(jid, ms, -points, today, s_acct(tenant, "points_adjusted"), None, None)
        books.wallet(jid, ms, wallet, s_acct(tenant, "wallet_adjusted"), None, None)
        ms.dirty = True
        books.flush(today)
        return _done(
            tx, actor, "member.adjust", member, {"points": points, "wallet": wallet}, why, idem, jid
        )

    return db.run(step)


def card_id(text: str) -> str:
    """A card id as typed or scanned (``card:`` and the app's ``LC1:`` prefixes dropped)."""
    uid = text.strip()
    for prefix in ("card:", "LC1:", "lc1:"):
        if uid.startswith(prefix):
            uid = uid[len(prefix) :]
    if not uid or not is_clean(uid, 59) or " " in uid:
        raise ClubError("bad_card", "that is not a card id", "شناسه کارت نامعتبر است.")
    return uid


def phone_member(text: str) -> str:
    try:
        return normalise(text)
    except CoreError as e:
        raise ClubError("bad_phone", e.en, e.fa) from e


def link_card(
    db: Database,
    rs: RuleSet,
    actor: Operator,
    card: str,
    phone: str,
    reason: str,
    idem: str | None = None,
) -> Done:
    """Make the card ``card`` the phone member's (merging the card's own member into it,
    see the module docstring)."""
    actor.require("link_card")
    why = _reason(reason)
    uid, target = card_id(card), phone_member(phone)
    source = f"card:{uid}"

    def step(tx: Tx) -> Done:
        first = _repeat(tx, idem, "member.link_card")
        if first is not None:
            return first
        holder = tx.one("SELECT member FROM member_cards WHERE card = ?", (uid,))
        if holder is not None and str(holder[0]) not in (target, source):
            raise ClubError(
                "card_taken",
                f"this card belongs to {clean(str(holder[0]), 20)} already",
                "این کارت متعلق به عضو دیگری است.",
            )
        src = tx.one(
            "SELECT tenant, points, wallet, visits, birthday, merged_into FROM members "
            "WHERE member = ?",
            (source,),
        )
        tgt = tx.one("SELECT tenant, merged_into FROM members WHERE member = ?", (target,))
        tenant = str(src[0]) if src else (str(tgt[0]) if tgt else _tenant(tx))
        if tgt is not None and tgt[1] is not None:
            raise ClubError(
                "merged", "that phone's member was merged into another", "این عضو ادغام شده است."
            )
        books = Books(tx, rs, _now())
        books.ensure_members(tenant, [target])  # a phone not seen yet becomes a member
        jid = None
        detail: dict[str, Any] = {"card": uid, "into": target}
        if src is not None and src[5] is None:
            jid = _merge(tx, tenant, source, target, src, actor.username, why)
            detail.update(points=int(src[1]), wallet=int(src[2]), merged=source)
        tx.execute(
            "INSERT INTO member_cards (card, member) VALUES (?, ?) ON CONFLICT (card) "
            "DO UPDATE SET member = excluded.member",
            (uid, target),
        )
        books = Books(tx, rs, _now())  # fresh: the rows moved under it
        books.ensure_members(tenant, [target])
        books.member(target).dirty = True  # the tier from the spend added, a new version
        books.flush(_today())
        return _done(tx, actor, "member.link_card", target, detail, why, idem, jid)

    return db.run(step)


def _tenant(tx: Tx) -> str:
    row = tx.one("SELECT tenant FROM devices LIMIT 1")
    if row is None:
        raise ClubError("no_tenant", "no device is registered yet", "هنوز دستگاهی ثبت نشده است.")
    return str(row[0])


def _merge(tx: Tx, tenant: str, source: str, target: str, src: Any, actor: str, reason: str) -> int:
    """Move everything of member ``source`` (its row ``src``: tenant, points, wallet,
    visits, birthday) to ``target``; the merge journal's id."""
    points, wallet, visits, birthday = int(src[1]), int(src[2]), int(src[3]), src[4]
    now, today = _now(), _today()
    jid = tx.next_id("journals")
    tx.execute(
        "INSERT INTO journals (id, tenant, kind, device, seq, member, day, at) VALUES "
        "(?, ?, 'merge', NULL, NULL, ?, ?, ?)",
        (jid, tenant, target, today, now),
    )
    entries = []
    for unit, amount in ((PTS, points), (IRR, wallet)):
        if amount:
            entries += [
                (jid, m_acct(target, unit), unit, amount, now),
                (jid, m_acct(source, unit), unit, -amount, now),
            ]
    tx.executemany(
        "INSERT INTO entries (journal_id, account, unit, amount, at) VALUES (?, ?, ?, ?, ?)",
        entries,
    )
    tx.execute("UPDATE lots SET member = ? WHERE member = ?", (target, source))
    for day, amount in tx.all("SELECT day, amount FROM member_spend WHERE member = ?", (source,)):
        tx.execute(
            "INSERT INTO member_spend (member, day, amount) VALUES (?, ?, ?) ON CONFLICT "
            "(member, day) DO UPDATE SET amount = member_spend.amount + excluded.amount",
            (target, day, amount),
        )
    tx.execute("DELETE FROM member_spend WHERE member = ?", (source,))
    tx.execute("UPDATE coupon_uses SET member = ? WHERE member = ?", (target, source))
    tx.execute("UPDATE member_cards SET member = ? WHERE member = ?", (target, source))
    tx.execute(
        "UPDATE members SET points = points + ?, wallet = wallet + ?, visits = visits + ?, "
        "birthday = COALESCE(birthday, ?) WHERE member = ?",
        (points, wallet, visits, birthday, target),
    )
    tx.execute(
        "UPDATE members SET points = 0, wallet = 0, merged_into = ?, version = version + 1 "
        "WHERE member = ?",
        (target, source),
    )
    tx.execute(
        "INSERT INTO member_merges (from_member, into_member, journal_id, at, actor, reason) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (source, target, jid, now, actor, reason),
    )
    return jid


def _jalali(text: str, what_en: str, what_fa: str) -> str | None:
    """A Jalali date typed as YYYY/MM/DD or YYYY-MM-DD (Persian digits too), or None."""
    t = text.strip().translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789"))
    if not t:
        return None
    try:
        y, m, d = (int(x) for x in t.replace("/", "-").split("-"))
        jalali.to_days(y, m, d)
    except (ValueError, CoreError):
        raise ClubError(
            "bad_date",
            f"{what_en}: a Jalali date like 1370/05/23",
            f"{what_fa}: تاریخی مانند ۱۳۷۰/۰۵/۲۳",
        ) from None
    return f"{y:04d}-{m:02d}-{d:02d}"


def edit_profile(
    db: Database,
    actor: Operator,
    member: str,
    name: str,
    birthday: str,
    anniversary: str,
    sms_opt_out: bool,
    idem: str | None = None,
) -> Done:
    """Name, birthday and wedding anniversary (Jalali), and the SMS opt-out."""
    actor.require("member_edit")
    name = clean(name, 64).strip()
    fields = {
        "name": name or None,
        "birthday": _jalali(birthday, "birthday", "تاریخ تولد"),
        "anniversary": _jalali(anniversary, "wedding anniversary", "سالگرد ازدواج"),
        "sms_opt_out": int(bool(sms_opt_out)),
    }

    def step(tx: Tx) -> Done:
        first = _repeat(tx, idem, "member.edit")
        if first is not None:
            return first
        _member_row(tx, member)
        old = set_profile(tx, member, fields)
        detail = {k: {"from": old[k], "to": fields[k]} for k in old}
        return _done(
            tx, actor, "member.edit", member, json.loads(json.dumps(detail)), None, idem, None
        )

    return db.run(step)


def set_referrer(
    db: Database, actor: Operator, member: str, code: str, idem: str | None = None
) -> Done:
    """The member (new: no purchase yet) was referred by the owner of ``code``; both get
    the programme's referral points with the member's first sale."""
    actor.require("member_edit")

    def step(tx: Tx) -> Done:
        first = _repeat(tx, idem, "member.referrer")
        if first is not None:
            return first
        _member_row(tx, member)
        why = referrals.remember(tx, member, code)
        if why is not None:
            raise ClubError("referral_refused", why[0], why[1])
        return _done(tx, actor, "member.referrer", member, {"code": referrals.normal(code)},
                     None, idem, None)  # fmt: skip

    return db.run(step)
