"""The automated messages: what the ledger says happened, turned into rows of the outbox.

From the ledger's journals (the reconciled truth, read in order from a cursor):

* ``welcome`` when a member joins (their ``enroll`` journal);
* ``thanks`` after a purchase: the points it earned, the balance and tier now, the store;
  not for a purchase older than ``stale_hours`` (a store back after a long outage sends
  its sales late: a thank-you two days later reads as spam);
* ``tier_up`` when a purchase lifts a member to a higher tier (the tier last greeted is
  kept in ``sms_member_tiers``).

Once a day (run as often as one likes: every row has its dedupe key):

* ``expiring``: members whose points expire ``expiry_notice_days`` from today;
* ``birthday`` and ``anniversary`` on the Jalali calendar (30 Esfand on 29 Esfand in common
  years);
* occasions: Nowruz, Yalda, Mother's Day (a lunar date; the operator may set a year's
  date by hand) and the operator's own, to every member.

A trigger whose template is off queues nothing.  Greetings of the day wait for 10:00
Tehran time and expire at the day's end; the rules (quiet hours, opt-out, the cap) are the
sender's (policy.py).
"""

from __future__ import annotations

import logging
from typing import Any

import jdatetime  # type: ignore[import-untyped]  # ships no type information

from cloud_broker.ledger.db import Database, Tx
from cloud_broker.messages.occasions import OccasionCalendar, member_days_on
from cloud_broker.messaging import outbox, settings
from edge.core import jalali
from edge.core import record as R
from edge.core.ruleset import RuleSet
from edge.protocol.record import parse

log = logging.getLogger("cloud_broker.messaging")
OFFSET_MS = 210 * 60_000
DAY_MS = 86_400_000
GREETING_HOUR = 10


def local_day(now_ms: int) -> int:
    return (now_ms + OFFSET_MS) // DAY_MS


def day_start_ms(day: int) -> int:
    return day * DAY_MS - OFFSET_MS


def _mark(tx: Tx, name: str) -> int:
    row = tx.one("SELECT value FROM sms_marks WHERE name = ?", (name,))
    return int(row[0]) if row else 0


def _set_mark(tx: Tx, name: str, value: int) -> None:
    tx.execute(
        "INSERT INTO sms_marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
        "value = excluded.value",
        (name, value),
    )


def _enabled(tx: Tx) -> set[str]:
    return {str(r[0]) for r in tx.all("SELECT key FROM sms_templates WHERE enabled = 1")}


def scan(db: Database, rs: RuleSet, now_ms: int, limit: int = 2000) -> int:
    """Journals booked since the last scan -> welcome, thanks and tier messages; how many
    journals were read."""
    conf = settings.read(db)
    ranks = {t.id: i for i, t in enumerate(sorted(rs.tiers, key=lambda t: t.min_spend))}

    def step(tx: Tx) -> int:
        on = _enabled(tx)
        cursor = _mark(tx, "journals")
        rows = tx.all(
            "SELECT j.id, j.kind, j.member, r.raw, m.tier FROM journals j JOIN members m ON "
            "m.member = j.member LEFT JOIN records r ON r.device = j.device AND r.seq = j.seq "
            "AND r.journal_id = j.id WHERE j.id > ? AND j.kind IN ('enroll', 'sale') AND "
            "j.member LIKE '+%' ORDER BY j.id LIMIT ?",
            (cursor, limit),
        )
        stale = conf["stale_hours"] * 3_600_000
        for jid_, kind, member_, raw, tier in rows:
            jid, member = int(jid_), str(member_)
            expires = now_ms + stale
            if kind == "enroll":
                if "welcome" in on:
                    outbox.enqueue(tx, member, "welcome", f"welcome:{member}", expires_at=expires)
                continue
            p = parse(bytes(raw)).payload if raw is not None else None
            if p is None or now_ms - int(p[R.K_TIME][R.T_WALL]) > stale:
                continue  # booked long after it happened: no thank-you, no fanfare
            if "thanks" in on:
                outbox.enqueue(
                    tx, member, "thanks", f"thanks:{jid}", expires_at=expires,
                    params={"earned": int(p[R.K_POINTS][R.P_EARNED]), "store": p[R.K_STORE]},
                )  # fmt: skip
            _tier(tx, member, str(tier), ranks, jid, "tier_up" in on, expires)
        if rows:
            _set_mark(tx, "journals", int(rows[-1][0]))
        return len(rows)

    return db.run(step)


def _tier(tx: Tx, member: str, tier: str, ranks: dict[str, int], jid: int, on: bool,
          expires: int) -> None:  # fmt: skip
    row = tx.one("SELECT tier FROM sms_member_tiers WHERE member = ?", (member,))
    before = ranks.get(str(row[0]), 0) if row else 0
    if row is not None and str(row[0]) == tier:
        return
    tx.execute(
        "INSERT INTO sms_member_tiers (member, tier) VALUES (?, ?) ON CONFLICT (member) DO "
        "UPDATE SET tier = excluded.tier",
        (member, tier),
    )
    if on and ranks.get(tier, 0) > before:
        outbox.enqueue(tx, member, "tier_up", f"tier_up:{member}:{tier}:{jid}", expires_at=expires)


def daily(db: Database, rs: RuleSet, now_ms: int) -> dict[str, int]:
    """Today's messages (see the module docstring); how many of each were queued."""
    conf = settings.read(db)
    today = local_day(now_ms)
    y, m, d = jalali.from_days(today)
    greet = max(now_ms, day_start_ms(today) + GREETING_HOUR * 3_600_000)
    end = day_start_ms(today + 1)
    out: dict[str, int] = {}

    def step(tx: Tx) -> None:
        on = _enabled(tx)
        jdate = jdatetime.date(y, m, d)
        pairs = [f"{mm:02d}-{dd:02d}" for mm, dd in member_days_on(jdate)]
        q = ", ".join("?" * len(pairs))
        for key, column in (("birthday", "birthday"), ("anniversary", "anniversary")):
            if key not in on:
                continue
            n = 0
            for (member,) in tx.all(
                f"SELECT member FROM members WHERE substr({column}, 6) IN ({q}) AND member LIKE "
                "'+%' AND merged_into IS NULL",
                pairs,
            ):
                n += outbox.enqueue(tx, str(member), key, f"{key}:{member}:{y}",
                                    not_before=greet, expires_at=end)  # fmt: skip
            out[key] = n
        if "expiring" in on:
            when = today + conf["expiry_notice_days"]
            n = 0
            for member, points in tx.all(
                "SELECT member, SUM(remaining) FROM lots WHERE expires_day = ? AND remaining > 0 "
                "AND kind != 'overdraft' AND member LIKE '+%' GROUP BY member",
                (when,),
            ):
                n += outbox.enqueue(
                    tx, str(member), "expiring", f"expiring:{member}:{when}", not_before=greet,
                    expires_at=end, params={"expiring": int(points), "expires_day": when},
                )  # fmt: skip
            out["expiring"] = n
        for key in _occasions_today(tx, jdate):
            if f"occasion:{key}" in on:
                out[f"occasion:{key}"] = outbox.enqueue_many(
                    tx, "1 = 1", (), f"occasion:{key}", f"occasion:{key}:{y}:", None, greet, end
                )

    db.run(step)
    if any(out.values()):
        log.info("today's messages queued: %s", out)
    return out


def _occasions_today(tx: Tx, date: Any) -> list[str]:
    overrides: dict[tuple[Any, int], Any] = {
        (key, year): jdatetime.date(*jalali.from_days(day))
        for (key, year), day in settings.date_overrides(tx).items()
    }
    cal = OccasionCalendar(overrides=overrides)
    keys = [o.key for o in cal.occasions_on(date)]
    for key, month, day, year in tx.all("SELECT key, month, day, year FROM sms_occasions"):
        if int(month) == date.month and int(day) == date.day and year in (None, date.year):
            overridden = overrides.get((str(key), date.year))
            if overridden is None or overridden == date:
                keys.append(str(key))
        elif overrides.get((str(key), date.year)) == date:
            keys.append(str(key))
    return keys
