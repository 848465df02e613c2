"""The sender against the local fake gateways, on SQLite and PostgreSQL: the rules every
message obeys (quiet hours, opt-out, the cap, expiry), retries and pauses, exactly once,
costs and delivery reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloud_broker.club import changes
from cloud_broker.club.operators import Operator
from cloud_broker.messages.gateway import Gateway
from cloud_broker.messaging import outbox, sender, settings
from tests.console.conftest import ALI, CARD, seed
from tests.helpers.headoffice import HO
from tests.messages.fakes import FakeIPPanel, FakeKavenegar

REZA = "+989351112233"
MINA = Operator(1, "mina", "Mina", "marketing")
# 2026-12-04 12:00 Tehran (08:30 UTC), and 23:30 Tehran the same day
NOON = 1_796_373_000_000
NIGHT = NOON + 11 * 3_600_000 + 30 * 60_000


class Clock:
    def __init__(self, t_ms: int) -> None:
        self.t = t_ms / 1000

    def __call__(self) -> float:
        return self.t


def _sender(ho: HO, gw: Gateway, clock: Clock) -> sender.Sender:
    return sender.Sender(ho.db, gw, lambda: ho.rs, "test", clock)


def _queue(ho: HO, member: str, key: str, kind: str = "welcome", **kw: Any) -> bool:
    kw.setdefault("not_before", NOON)
    return bool(ho.db.run(lambda tx: outbox.enqueue(tx, member, kind, key, **kw)))


def _state(ho: HO, key: str) -> tuple[str, str | None]:
    row = ho.q("SELECT state, reason FROM sms_outbox WHERE dedupe = ?", (key,))[0]
    return str(row[0]), row[1]


@pytest.fixture
def club(ho: HO, tmp_path: Path) -> HO:
    seed(ho, tmp_path)
    changes.edit_profile(ho.db, Operator(9, "s", "S", "support"), ALI, "علی", "", "", False)
    settings.save_template(ho.db, MINA, "welcome", "{name} عزیز، {points} امتیاز دارید.", True)
    settings.save(ho.db, MINA, {"send_rate_per_min": 6000, "cap_count": 2})
    return ho


def test_a_message_once_with_its_values_cost_and_report(
    club: HO, kn: Gateway, kn_fake: FakeKavenegar
) -> None:
    assert _queue(club, ALI, "welcome:a") and not _queue(club, ALI, "welcome:a")  # once
    assert not _queue(club, f"card:{CARD}", "welcome:card")  # no number: nothing queued
    s = _sender(club, kn, Clock(NOON))
    assert s.step() == 1
    sent = list(kn_fake.messages.values())
    assert len(sent) == 1 and sent[0].to == "09121234567"
    assert sent[0].text == "علی عزیز، ۳۰۰ امتیاز دارید.\nلغو۱۱"  # Persian digits, opt-out footer
    row = club.q("SELECT state, parts, cost_rials, provider, provider_id FROM sms_outbox")[0]
    assert row[:4] == ("sent", 1, kn_fake.price_per_part, "kavenegar")
    kn_fake.deliver(row[4])
    assert s.poll_reports() == 1
    assert _state(club, "welcome:a")[0] == "delivered"
    assert s.step() == 0 and len(kn_fake.messages) == 1


def test_quiet_hours_hold_and_opt_out_and_the_cap(
    club: HO, kn: Gateway, kn_fake: FakeKavenegar
) -> None:
    _queue(club, ALI, "night", not_before=NIGHT)
    night = Clock(NIGHT)
    s = _sender(club, kn, night)
    s.step()
    assert _state(club, "night") == ("queued", "quiet_hours") and not kn_fake.messages
    held_until = club.one("SELECT not_before FROM sms_outbox WHERE dedupe = 'night'")
    assert (held_until + 210 * 60_000) % 86_400_000 == 8 * 3_600_000  # 08:00 Tehran
    night.t = held_until / 1000
    s.step()
    assert _state(club, "night")[0] == "sent"
    # opted out: nothing but what the law requires
    changes.edit_profile(club.db, Operator(9, "s", "S", "support"), REZA, "رضا", "", "", True)
    _queue(club, REZA, "promo", not_before=held_until)
    _queue(club, REZA, "otp", not_before=held_until, transactional=True)
    s.step()
    assert _state(club, "promo") == ("skipped", "opted_out")
    assert _state(club, "otp")[0] == "sent"
    # the cap: two marketing messages a week (the night one counts), the third is skipped
    for k in ("c1", "c2"):
        _queue(club, ALI, k, not_before=held_until)
    s.step()
    assert [_state(club, k)[0] for k in ("c1", "c2")] == ["sent", "skipped"]
    assert _state(club, "c2")[1] == "capped"
    # a message past its time is dropped, not late
    _queue(club, ALI, "late", not_before=held_until, expires_at=held_until - 1)
    s.step()
    assert _state(club, "late") == ("skipped", "expired")


def test_retries_failures_and_pauses(club: HO, kn: Gateway, kn_fake: FakeKavenegar) -> None:
    clock = Clock(NOON)
    s = _sender(club, kn, clock)
    _queue(club, ALI, "r1")
    kn_fake.fail_next("rate_limited")
    s.step()
    state, reason = _state(club, "r1")
    assert state == "queued" and "rate_limited" in str(reason)
    wait = club.one("SELECT not_before FROM sms_outbox WHERE dedupe = 'r1'") - NOON
    assert wait == 30_000  # the gateway's Retry-After
    clock.t += 31
    s.step()
    assert _state(club, "r1")[0] == "sent"
    _queue(club, REZA, "bad", not_before=NOON)
    kn_fake.fail_next("invalid_number")
    s.step()
    assert _state(club, "bad")[0] == "failed"  # permanent: not tried again
    _queue(club, ALI, "nocredit", not_before=NOON)
    kn_fake.fail_next("no_credit")
    clock.t += 1
    s.step()
    assert _state(club, "nocredit")[0] == "queued" and s.paused_until > clock.t
    assert club.one("SELECT kind FROM alerts WHERE kind = 'sms_paused'") == "sms_paused"
    assert s.step() == 0  # paused
    clock.t = s.paused_until + 1
    s.step()
    assert _state(club, "nocredit")[0] == "sent"
    assert "Zq7Kx2Lm9Pw4Rt6" not in str(club.q("SELECT reason FROM sms_outbox"))  # no key


def test_a_lost_answer_is_sent_again_only_where_the_gateway_drops_repeats(
    club: HO, kn: Gateway, kn_fake: FakeKavenegar, ip: Gateway, ip_fake: FakeIPPanel
) -> None:
    clock = Clock(NOON)
    _queue(club, ALI, "t1")
    kn_fake.fail_next("timeout")  # the request arrived; the answer never came
    s = _sender(club, kn, clock)
    s.step()
    assert _state(club, "t1")[0] == "queued"  # Kavenegar drops a repeated localid
    clock.t += 3600
    s.step()
    assert _state(club, "t1")[0] == "sent" and len(kn_fake.messages) == 1
    _queue(club, REZA, "t2", not_before=NOON)
    ip_fake.fail_next("timeout")
    s2 = _sender(club, ip, clock)
    s2.step()
    assert _state(club, "t2")[0] == "ambiguous"  # IPPanel has no reference: never twice
    clock.t += 3600
    assert s2.step() == 0


def test_a_sender_that_died_holding_messages(club: HO, kn: Gateway, ip: Gateway) -> None:
    for k in ("d1", "d2"):
        _queue(club, ALI, k, not_before=NOON)
    assert len(outbox.claim(club.db, "dead", NOON, 10)) == 2  # claimed, then the process died
    assert outbox.claim(club.db, "other", NOON, 10) == []  # nobody else takes them
    assert outbox.recover(club.db, sender.LEASE_MS, True, now=NOON + 1000) == 0  # still leased
    assert outbox.recover(club.db, sender.LEASE_MS, True, now=NOON + sender.LEASE_MS + 1) == 2
    assert [_state(club, k)[0] for k in ("d1", "d2")] == ["queued", "queued"]
    later = NOON + sender.LEASE_MS + 1
    assert len(outbox.claim(club.db, "dead", later, 10)) == 2  # and that one died too
    assert outbox.recover(club.db, sender.LEASE_MS, False, now=later + sender.LEASE_MS + 1) == 2
    assert _state(club, "d1")[0] == "ambiguous"


def test_a_blocked_number_opts_the_member_out(
    club: HO, kn: Gateway, kn_fake: FakeKavenegar
) -> None:
    _queue(club, ALI, "b1")
    s = _sender(club, kn, Clock(NOON))
    s.step()
    kn_fake.deliver(club.one("SELECT provider_id FROM sms_outbox"), status=14)  # blacklisted
    s.poll_reports()
    assert _state(club, "b1")[0] == "blocked"
    assert club.one("SELECT sms_opt_out FROM members WHERE member = ?", (ALI,)) == 1
    assert club.one("SELECT actor FROM audit_log WHERE action = 'member.sms_opt_out'") == "system"
