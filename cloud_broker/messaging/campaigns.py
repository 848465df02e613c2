"""Campaigns: one message to a segment of the members or to a list, counted and priced before
it is sent, sent when scheduled, at the pace asked, followed to delivery.

An audience is ``{"all": true}``, conditions (``tiers``, ``min_points``, ``active_days``:
bought in the last N days, ``joined_days``: joined in the last N days), a saved segment of
the reports (``segment``: its definition copied in when the campaign is made), or a list of
phone numbers (kept in ``sms_campaign_list``).  A share of the audience can be held out as
a control group (``control_bp``, in ``sms_campaign_control``) for the campaign's results.
The count leaves out members who opted out, card members (no number) and the control
group; the price is the template's worst case in SMS parts times the price of a part.

When a campaign is due it is planned: counted, and fixed to the members who were members
then.  Its outbox rows are then queued in chunks of a couple of thousand, in member order,
a little ahead of what the sender sends (:func:`feed`): a million rows queued at once would
cost a database tens of seconds and the sender would take hours to send them anyway, and a
cancelled campaign leaves nothing to clean.  Each chunk and the cursor that records how far
it got are one transaction, each row has the dedupe key ``campaign:{id}:{member}``: two
feeders, or one killed between chunks, never queue a member twice.  Each row is written in
its template when it is sent, with the member's values then.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.messages.text import Template, TemplateError
from cloud_broker.messaging import outbox, settings
from cloud_broker.programme.coupons import recipients
from cloud_broker.reports import segments
from edge.core.ruleset import RuleSet
from edge.sanitize import clean


@dataclass(frozen=True, slots=True)
class Estimate:
    recipients: int
    parts: int  # per message, at worst
    cost_rials: int


def _now() -> int:
    return int(time.time() * 1000)


def audience_sql(audience: dict[str, Any], campaign_id: int | None) -> tuple[str, tuple[Any, ...]]:
    """The WHERE on ``members m`` selecting ``audience`` (built from code constants; every
    value a parameter)."""
    if audience.get("list"):
        return ("m.member IN (SELECT member FROM sms_campaign_list WHERE campaign_id = ?)",
                (campaign_id,))  # fmt: skip
    if audience.get("segment"):
        where, seg_args = segments.where(audience.get("definition") or {})
        return where, tuple(seg_args)
    parts: list[str] = []
    args: list[Any] = []
    tiers = audience.get("tiers") or []
    if tiers:
        parts.append(f"m.tier IN ({', '.join('?' * len(tiers))})")
        args += [str(t) for t in tiers]
    if audience.get("min_points"):
        parts.append("m.points >= ?")
        args.append(int(audience["min_points"]))
    today = int((time.time() + 210 * 60) // 86400)
    if audience.get("active_days"):
        parts.append(
            "EXISTS (SELECT 1 FROM member_spend s WHERE s.member = m.member AND s.day >= ?)"
        )
        args.append(today - int(audience["active_days"]))
    if audience.get("joined_days"):
        parts.append("m.created_at >= ?")
        args.append(_now() - int(audience["joined_days"]) * 86_400_000)
    return (" AND ".join(parts) or "1 = 1"), tuple(args)


def _check(name: str, text: str, audience: dict[str, Any], rs: RuleSet) -> Template:
    if not clean(name, 80).strip():
        raise ClubError("no_name", "name the campaign", "برای کمپین نامی بنویسید.")
    try:
        tmpl = Template.compile(text)
    except TemplateError as e:
        raise ClubError("bad_template", e.en, e.fa) from e
    known = {t.id for t in rs.tiers}
    bad = [t for t in audience.get("tiers") or [] if t not in known]
    if bad:
        raise ClubError("bad_tier", f"no tier {clean(bad[0], 20)}", "چنین سطحی نیست.")
    for k in ("min_points", "active_days", "joined_days"):
        v = audience.get(k)
        if v is not None and (type(v) is not int or v < 0):
            raise ClubError("bad_audience", f"{k}: a whole number", "مقدار مخاطبان نامعتبر است.")
    return tmpl


def create(
    db: Database, rs: RuleSet, actor: Operator, name: str, text: str, audience: dict[str, Any],
    coupon: str = "", rate_per_min: int = 600, phones: str = "", control_bp: int = 0,
) -> int:  # fmt: skip
    """A campaign in ``draft``; its id.  ``phones``: the list audience, one per line.
    ``audience`` ``{"segment": id}`` takes a saved segment's definition as it is now.
    ``control_bp``: the share of the audience held out as a control group (basis points;
    they get nothing, and the campaign's results compare the recipients with them)."""
    actor.require("messages")
    if audience.get("segment"):
        seg = segments.get(db, int(audience["segment"]))
        audience = {"segment": seg["id"], "segment_name": seg["name"],
                    "definition": seg["definition"]}  # fmt: skip
    tmpl = _check(name, text, audience, rs)
    if not 0 <= control_bp <= 5_000:
        raise ClubError("bad_control", "a control group of 0 to 50% of the audience",
                        "گروه کنترل باید بین ۰ تا ۵۰٪ مخاطبان باشد.")  # fmt: skip
    members: list[str] = []
    if phones.strip():
        members, bad = recipients(phones)
        if bad:
            lines = ", ".join(f"{n}: {t}" for n, t in bad[:5])
            raise ClubError("bad_recipients", f"{len(bad)} lines are no phone number ({lines})",
                            f"{len(bad)} سطر شماره موبایل معتبر نیست ({lines}).")  # fmt: skip
        audience = {"list": True}
    if not 1 <= rate_per_min <= 100_000:
        raise ClubError("bad_rate", "a pace of 1 to 100,000 a minute", "سرعت نامعتبر است.")
    del tmpl

    def step(tx: Tx) -> int:
        cid = tx.next_id("sms_campaigns")
        tx.execute(
            "INSERT INTO sms_campaigns (id, name, text, audience, coupon, state, rate_per_min, "
            "created_by, created_at, control_bp) VALUES (?, ?, ?, ?, ?, 'draft', ?, ?, ?, ?)",
            (cid, clean(name, 80), text, json.dumps(audience), clean(coupon, 24) or None,
             rate_per_min, actor.username, _now(), control_bp),
        )  # fmt: skip
        tx.executemany(
            "INSERT INTO sms_campaign_list (campaign_id, member) VALUES (?, ?) ON CONFLICT DO "
            "NOTHING",
            [(cid, m) for m in members],
        )
        audit.record(tx, actor.username, "campaign.create", f"campaign:{cid}",
                     {"name": name, "audience": audience, "list": len(members),
                      "control_bp": control_bp})  # fmt: skip
        return cid

    return db.run(step)


def get(db: Database, campaign_id: int) -> dict[str, Any]:
    rows = db.read(
        "SELECT id, name, text, audience, coupon, state, rate_per_min, scheduled_at, planned, "
        "estimated_parts, estimated_cost, created_by, created_at, planned_at, finished_at, "
        "control_bp FROM sms_campaigns WHERE id = ?",
        (campaign_id,),
    )
    if not rows:
        raise ClubError("no_campaign", "no such campaign", "چنین کمپینی نیست.")
    keys = ("id", "name", "text", "audience", "coupon", "state", "rate_per_min",
            "scheduled_at", "planned", "estimated_parts", "estimated_cost", "created_by",
            "created_at", "planned_at", "finished_at", "control_bp")  # fmt: skip
    out = dict(zip(keys, rows[0], strict=True))
    out["audience"] = json.loads(out["audience"])
    return out


def listing(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    rows = db.read(
        "SELECT id, name, state, scheduled_at, planned, estimated_cost, created_by FROM "
        "sms_campaigns ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    keys = ("id", "name", "state", "scheduled_at", "planned", "estimated_cost", "created_by")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def estimate(db: Database, campaign_id: int) -> Estimate:
    """How many members would get it now, in how many parts, for how much."""
    c = get(db, campaign_id)
    where, args = audience_sql(c["audience"], campaign_id)
    conf = settings.read(db)

    def count(tx: Tx) -> int:
        return int(tx.one(
            "SELECT COUNT(*) FROM members m WHERE m.member LIKE '+%' AND m.merged_into IS NULL "
            f"AND m.sms_opt_out = 0 AND ({where})",
            args,
        )[0])  # fmt: skip

    n = db.run(count, write=False)
    n -= n * int(c["control_bp"]) // 10_000  # about that many are held out as the control
    parts = Template.compile(str(c["text"])).worst_case().parts
    return Estimate(n, parts, n * parts * conf["part_price_rials"])


def schedule(db: Database, actor: Operator, campaign_id: int, at_ms: int | None) -> Estimate:
    """Send at ``at_ms`` (None: now); the estimate is kept with it."""
    actor.require("messages")
    est = estimate(db, campaign_id)

    def step(tx: Tx) -> None:
        n = tx.execute(
            "UPDATE sms_campaigns SET state = 'scheduled', scheduled_at = ?, estimated_parts = ?, "
            "estimated_cost = ? WHERE id = ? AND state = 'draft'",
            (at_ms or _now(), est.parts, est.cost_rials, campaign_id),
        ).rowcount
        if n != 1:
            raise ClubError("not_draft", "only a draft can be scheduled",
                            "فقط پیش‌نویس زمان‌بندی می‌شود.")  # fmt: skip
        detail = {"at": at_ms, "recipients": est.recipients, "cost": est.cost_rials}
        audit.record(tx, actor.username, "campaign.schedule", f"campaign:{campaign_id}", detail)

    db.run(step)
    return est


def cancel(db: Database, actor: Operator, campaign_id: int) -> int:
    """Stop: nothing more of it is sent; how many queued messages were cancelled."""
    actor.require("messages")

    def step(tx: Tx) -> int:
        n = tx.execute(
            "UPDATE sms_campaigns SET state = 'cancelled', finished_at = ? WHERE id = ? AND "
            "state IN ('draft', 'scheduled', 'sending')",
            (_now(), campaign_id),
        ).rowcount
        if n != 1:
            raise ClubError("finished", "the campaign is over", "کمپین پایان یافته است.")
        left = tx.execute(
            "UPDATE sms_outbox SET state = 'cancelled', reason = 'campaign cancelled' WHERE "
            "campaign_id = ? AND state = 'queued'",
            (campaign_id,),
        ).rowcount
        audit.record(tx, actor.username, "campaign.cancel", f"campaign:{campaign_id}",
                     {"cancelled": left})  # fmt: skip
        return int(left)

    return db.run(step)


def due(db: Database, now_ms: int) -> int:
    """Plan the campaigns whose time has come, and close those fully settled; how many
    messages were planned."""
    planned = 0
    for cid, audience in db.read(
        "SELECT id, audience FROM sms_campaigns WHERE state = 'scheduled' AND scheduled_at <= ?",
        (now_ms,),
    ):
        planned += plan(db, int(cid), json.loads(audience), now_ms)
    for (cid,) in db.read(
        "SELECT id FROM sms_campaigns WHERE state = 'sending' AND cursor IS NULL"
    ):
        left = db.read(
            "SELECT COUNT(*) FROM sms_outbox WHERE campaign_id = ? AND state IN ('queued', "
            "'sending')",
            (cid,),
        )[0][0]
        if int(left) == 0:
            db.run(partial(_done, campaign_id=int(cid)))
    return planned


def _done(tx: Tx, campaign_id: int) -> None:
    tx.execute(
        "UPDATE sms_campaigns SET state = 'done', finished_at = ? WHERE id = ? AND state = "
        "'sending'",
        (_now(), campaign_id),
    )


def plan(db: Database, campaign_id: int, audience: dict[str, Any], now_ms: int) -> int:
    """The campaign starts: how many members it will reach (see the module docstring)."""
    where, args = audience_sql(audience, campaign_id)

    def step(tx: Tx) -> int:
        n = tx.execute(
            "UPDATE sms_campaigns SET state = 'sending', planned_at = ?, cursor = '' WHERE id = ? "
            "AND state = 'scheduled'",
            (now_ms, campaign_id),
        ).rowcount
        if n != 1:
            return 0  # another process planned it
        count = int(tx.one(
            "SELECT COUNT(*) FROM members m WHERE m.member LIKE '+%' AND m.merged_into IS NULL "
            f"AND m.sms_opt_out = 0 AND m.created_at <= ? AND ({where})",
            (now_ms, *args),
        )[0])  # fmt: skip
        tx.execute("UPDATE sms_campaigns SET planned = ? WHERE id = ?", (count, campaign_id))
        return count

    return db.run(step)


CHUNK = 2000


def feed(db: Database, ahead: int = CHUNK) -> int:
    """Queue the next members of every campaign being sent that has fewer than ``ahead``
    messages waiting; how many were queued."""
    queued = 0
    for cid, audience, cursor, planned_at, control_bp in db.read(
        "SELECT id, audience, cursor, planned_at, control_bp FROM sms_campaigns WHERE "
        "state = 'sending' "
        "AND cursor IS NOT NULL"
    ):
        waiting = int(db.read(
            "SELECT COUNT(*) FROM sms_outbox WHERE campaign_id = ? AND state = 'queued'", (cid,)
        )[0][0])  # fmt: skip
        if waiting < ahead:
            queued += _chunk(
                db, int(cid), json.loads(audience), str(cursor), int(planned_at), int(control_bp)
            )
    return queued


def in_control(campaign_id: int, member: str, control_bp: int) -> bool:
    """Whether ``member`` is held out of the campaign: a hash of the two, so the same member
    is in or out however often a chunk is fed, and the draw is independent per campaign."""
    if control_bp <= 0:
        return False
    h = hashlib.blake2b(f"{campaign_id}:{member}".encode(), digest_size=4).digest()
    return int.from_bytes(h, "big") % 10_000 < control_bp


def _chunk(db: Database, campaign_id: int, audience: dict[str, Any], cursor: str,
           planned_at: int, control_bp: int = 0) -> int:  # fmt: skip
    where, args = audience_sql(audience, campaign_id)

    def step(tx: Tx) -> int:
        members = [str(r[0]) for r in tx.all(
            "SELECT m.member FROM members m WHERE m.member > ? AND m.member LIKE '+%' AND "
            "m.merged_into IS NULL AND m.sms_opt_out = 0 AND m.created_at <= ? AND "
            f"({where}) ORDER BY m.member LIMIT ?",
            (cursor, planned_at, *args, CHUNK),
        )]  # fmt: skip
        done = len(members) < CHUNK
        moved = tx.execute(
            "UPDATE sms_campaigns SET cursor = ? WHERE id = ? AND cursor = ?",
            (None if done else members[-1], campaign_id, cursor),
        ).rowcount
        if moved != 1:
            return 0  # another feeder took this chunk
        now = _now()
        held = [m for m in members if in_control(campaign_id, m, control_bp)]
        sent = [m for m in members if not in_control(campaign_id, m, control_bp)]
        tx.executemany(
            "INSERT INTO sms_outbox (dedupe, member, phone, kind, campaign_id, transactional, "
            "state, created_at, not_before) VALUES (?, ?, ?, 'campaign', ?, 0, 'queued', ?, ?) "
            "ON CONFLICT (dedupe) DO NOTHING",
            [(f"campaign:{campaign_id}:{m}", m, m, campaign_id, now, planned_at)
             for m in sent],
        )  # fmt: skip
        tx.executemany(
            "INSERT INTO sms_campaign_control (campaign_id, member) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING",
            [(campaign_id, m) for m in held],
        )
        return len(sent)

    return db.run(step)


def progress(db: Database, campaign_id: int) -> dict[str, int]:
    """Messages of the campaign by state, and what they cost so far."""
    out = outbox.counts(db, campaign_id)
    cost = db.read(
        "SELECT COALESCE(SUM(cost_rials), 0) FROM sms_outbox WHERE campaign_id = ?",
        (campaign_id,),
    )[0][0]
    out["cost_rials"] = int(cost)
    return out
