"""The automated messages from the ledger, once each, on SQLite and PostgreSQL: welcome,
thank-you, a higher tier, points about to expire, birthdays, anniversaries, occasions."""

from __future__ import annotations

import time

from cloud_broker.club import changes
from cloud_broker.club.operators import Operator
from cloud_broker.messaging import settings, triggers
from edge.core import jalali
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal

ALI, REZA = "+989121234567", "+989351112233"
MINA = Operator(1, "mina", "Mina", "marketing")
SARA = Operator(2, "sara", "Sara", "support")


def _on(ho: HO, *keys: str) -> None:
    for k in keys:
        text = settings.TRIGGERS[k][2] if k in settings.TRIGGERS else "{name} عزیز، مبارک!"
        settings.save_template(ho.db, MINA, k, text, True)


def _queued(ho: HO) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1])) for r in ho.q("SELECT kind, dedupe FROM sms_outbox ORDER BY id")]


def test_welcome_thanks_and_a_higher_tier_once(ho: HO, pos: Terminal) -> None:
    _on(ho, "welcome", "thanks")  # tier_up off: nothing queued for it
    now = int(time.time() * 1000)
    pos.time.to_day(int((time.time() + 210 * 60) // 86400))  # today's sales
    ho.feed(pos, [pos.enroll(ALI), pos.sale(ALI, 1_000_000, earned=100)])
    assert triggers.scan(ho.db, ho.rs, now) == 2
    assert triggers.scan(ho.db, ho.rs, now) == 0  # the cursor moved on
    assert [k for k, _ in _queued(ho)] == ["welcome", "thanks"]
    params = ho.one("SELECT params FROM sms_outbox WHERE kind = 'thanks'")
    assert '"earned": 100' in params and '"store": "s1"' in params
    # a second scanner (another process, or the cursor lost) queues nothing twice
    ho.db.run(lambda tx: tx.execute("DELETE FROM sms_marks"))
    triggers.scan(ho.db, ho.rs, now)
    assert len(_queued(ho)) == 2
    _on(ho, "tier_up")
    ho.feed(pos, [pos.sale(ALI, 60_000_000, earned=6000)])  # past bronze's 50,000,000
    triggers.scan(ho.db, ho.rs, now)
    assert [k for k, _ in _queued(ho)][-2:] == ["thanks", "tier_up"]
    ho.feed(pos, [pos.sale(ALI, 1_000_000, earned=100)])  # still bronze: no tier message
    triggers.scan(ho.db, ho.rs, now)
    assert [k for k, _ in _queued(ho)].count("tier_up") == 1


def test_no_thanks_for_a_sale_booked_days_later(ho: HO, pos: Terminal) -> None:
    _on(ho, "thanks")
    pos.time.to_day(int((time.time() + 210 * 60) // 86400) - 3)  # a store back after 3 days
    ho.feed(pos, [pos.sale(ALI, 1_000_000, earned=100)])
    assert triggers.scan(ho.db, ho.rs, int(time.time() * 1000)) == 1
    assert _queued(ho) == []


def test_the_days_greetings_and_notices(ho: HO, pos: Terminal) -> None:
    _on(ho, "birthday", "anniversary", "expiring", "occasion:yalda", "occasion:openday")
    today = int((time.time() + 210 * 60) // 86400)
    y, m, d = jalali.from_days(today)
    ho.feed(pos, [pos.sale(ALI, 1_000_000, earned=100), pos.sale(REZA, 1_000_000, earned=50)])
    changes.edit_profile(ho.db, SARA, ALI, "علی", f"1370/{m:02d}/{d:02d}", "", False)
    changes.edit_profile(ho.db, SARA, REZA, "رضا", "", f"1395/{m:02d}/{d:02d}", False)
    # ALI's points expire a week from today
    ho.db.run(lambda tx: tx.execute("UPDATE lots SET expires_day = ? WHERE member = ?",
                                    (today + 7, ALI)))  # fmt: skip
    settings.add_occasion(ho.db, MINA, "openday", "روز افتتاح", "Opening day",
                          f"1400/{m:02d}/{d:02d}", every_year=True)  # fmt: skip
    settings.override_date(ho.db, MINA, "yalda", y, f"{y}/{m:02d}/{d:02d}")  # moved to today
    now = int(time.time() * 1000)
    done = triggers.daily(ho.db, ho.rs, now)
    assert done == {"birthday": 1, "anniversary": 1, "expiring": 1, "occasion:yalda": 2,
                    "occasion:openday": 2}  # fmt: skip
    again = triggers.daily(ho.db, ho.rs, now)  # run twice: nothing twice
    assert sum(again.values()) == 0
    rows = dict(ho.q("SELECT dedupe, not_before FROM sms_outbox"))
    assert f"birthday:{ALI}:{y}" in rows and f"anniversary:{REZA}:{y}" in rows
    greet = rows[f"birthday:{ALI}:{y}"]
    assert (greet + 210 * 60_000) % 86_400_000 >= 10 * 3_600_000  # not before 10:00 Tehran
    assert '"expiring": 100' in ho.one("SELECT params FROM sms_outbox WHERE kind = 'expiring'")
