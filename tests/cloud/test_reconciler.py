"""Exactly once, in order, refusing what must be refused; on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.registry import devices as registry
from edge.core import record as R
from edge.protocol import cbor, cose, topics
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal

ALI = "+989121234567"


def test_in_order_records_apply_once_and_are_acked(ho: HO, pos: Terminal) -> None:
    recs = [pos.enroll(ALI)] + [pos.sale(ALI, earned=100) for _ in range(5)]
    out = ho.feed(pos, recs)
    assert (out.applied, out.duplicates, out.held, out.quarantined) == (6, 0, 0, 0)
    assert out.acks[pos.device] == (6, recs[-1].hash)
    assert ho.member(ALI)[0] == 500
    # re-delivery: acked again, not applied
    out = ho.feed(pos, recs[2:4] + recs)
    assert (out.applied, out.duplicates) == (0, 8)
    assert out.acks[pos.device] == (6, recs[-1].hash)
    assert ho.member(ALI)[0] == 500
    assert ho.one("SELECT COUNT(*) FROM records") == 6
    assert ho.check() == []


def test_out_of_order_is_held_gap_requested_then_applied(ho: HO, pos: Terminal) -> None:
    recs = [pos.sale(ALI, earned=10 * (i + 1)) for i in range(10)]
    order = recs[5:] + recs[:2]
    out = ho.feed(pos, order)
    assert (out.applied, out.held) == (2, 5)
    assert out.gaps[pos.device] == (3, 5)
    assert out.acks[pos.device][0] == 2
    out = ho.feed(pos, [recs[3], recs[4]])  # still missing 3
    assert out.gaps[pos.device] == (3, 3) and out.applied == 0
    out = ho.feed(pos, [recs[2]])
    assert out.applied == 8 and pos.device not in out.gaps
    assert out.acks[pos.device] == (10, recs[-1].hash)
    assert ho.member(ALI)[0] == sum(10 * (i + 1) for i in range(10))
    assert ho.one("SELECT COUNT(*) FROM held") == 0
    assert ho.check() == []


def test_random_delivery_order_with_duplicates_gives_the_same_ledger(ho: HO, pos: Terminal) -> None:
    recs = [pos.enroll(ALI)] + [
        pos.sale(ALI, earned=7, cashback=100, subtotal=50_000 + i) for i in range(40)
    ]
    rng = random.Random(5)
    deliveries = recs * 2
    rng.shuffle(deliveries)
    for i in range(0, len(deliveries), 9):
        ho.feed(pos, deliveries[i : i + 9])
    assert ho.one("SELECT applied_through FROM devices") == 41
    assert ho.member(ALI)[:2] == (280, 4000)
    assert ho.check() == []


def test_forged_signature_is_quarantined_and_good_records_flow(
    ho: HO, pos: Terminal, tmp_path: Path
) -> None:
    (tmp_path / "m").mkdir()
    mallory = Terminal(tmp_path / "m", device=pos.device)  # same id, another key
    good = pos.sale(ALI, earned=100)
    forged = mallory.sale(ALI, earned=99_999)
    out = ho.feed(pos, [forged, good])
    assert out.quarantined == 1 and out.applied == 1
    assert ho.codes() == ["bad_signature"]
    assert ho.one("SELECT kind FROM security_events") == "bad_signature"
    assert ho.member(ALI)[0] == 100


def test_replay_and_conflicting_record_for_a_used_seq(ho: HO, pos: Terminal) -> None:
    first = pos.sale(ALI, earned=100)
    ho.feed(pos, [first])
    assert ho.feed(pos, [first]).duplicates == 1  # a replay is only acked again
    # the same (device, seq) with different content, validly signed: a cloned key
    p = copy.deepcopy(first.payload)
    p[R.K_POINTS][0] = 5000
    p[R.K_LINES][0][7] = 5000
    clone = cose.sign1(cbor.encode(p), pos.key, pos.device.encode())
    out = ho.raw(pos.topic, clone)
    assert out.quarantined == 1
    assert ho.codes() == ["conflict"]
    assert ho.member(ALI)[0] == 100
    assert ho.one("SELECT kind FROM security_events") == "conflict"


def test_unknown_revoked_and_misrouted_devices(ho: HO, pos: Terminal, tmp_path: Path) -> None:
    stranger = Terminal(tmp_path, device="pos-9")
    ho.feed(stranger, [stranger.sale(ALI, earned=10)])
    other = Terminal(tmp_path, device="pos-2")
    ho.register(other)
    # pos-1's record published on pos-2's topic
    ho.feed(pos, [pos.sale(ALI, earned=10)], topic=other.topic)
    # a device registered to another store
    wrong_store = Terminal(tmp_path, device="pos-3", store="s9")
    registry.register(ho.db, "pos-3", "hypershahr", "s1", wrong_store.public_key)
    ho.feed(wrong_store, [wrong_store.sale(ALI, earned=10)])
    assert ho.codes() == ["unknown_device", "topic_mismatch", "device_mismatch"]
    # revocation: records up to the cut-off still apply, later ones are refused
    recs = [other.sale(ALI, earned=1) for _ in range(4)]
    ho.feed(other, recs[:2])
    registry.revoke(ho.db, "pos-2", "stolen", after_seq=3)
    out = ho.feed(other, recs[2:])
    assert (out.applied, out.quarantined) == (1, 1)
    assert ho.codes()[-1] == "revoked"
    assert ho.member(ALI)[0] == 3
    ho.check_refused()


def test_broken_chain_is_refused_and_stops_the_device(ho: HO, pos: Terminal) -> None:
    a = pos.sale(ALI, earned=1)
    b = pos.sale(ALI, earned=2)
    ho.feed(pos, [a])
    p = copy.deepcopy(b.payload)
    p[R.K_PREV] = b"\x42" * 32  # someone deleted or rewrote history
    bad = cose.sign1(cbor.encode(p), pos.key, pos.device.encode())
    out = ho.raw(pos.topic, bad)
    assert out.quarantined == 1 and ho.codes() == ["broken_chain"]
    assert ho.one("SELECT applied_through FROM devices") == 1
    assert ho.one("SELECT kind FROM security_events") == "broken_chain"
    # the genuine record still applies
    assert ho.feed(pos, [b]).applied == 1
    ho.check_refused()


def test_held_record_with_broken_chain_leaves_held_once_quarantined(ho: HO, pos: Terminal) -> None:
    a, b, c = (pos.sale(ALI, earned=i + 1) for i in range(3))
    p = copy.deepcopy(c.payload)
    p[R.K_PREV] = b"\x42" * 32
    bad = cose.sign1(cbor.encode(p), pos.key, pos.device.encode())
    ho.feed(pos, [a])
    assert ho.raw(pos.topic, bad).held == 1  # seq 3 arrives before seq 2: held
    out = ho.feed(pos, [b])  # the gap closes; the held seq 3 fails its chain check
    assert (out.applied, out.quarantined) == (1, 1)
    assert ho.one("SELECT COUNT(*) FROM held") == 0
    assert pos.device not in out.gaps
    # the next batch neither retries nor re-quarantines it
    assert ho.feed(pos, [b]).quarantined == 0
    assert ho.codes() == ["broken_chain"]
    # the genuine seq 3 still applies
    assert ho.feed(pos, [c]).applied == 1
    ho.check_refused()


def test_records_after_a_broken_chain_in_the_same_batch_are_held_not_dropped(
    ho: HO, pos: Terminal
) -> None:
    a, b, c = (pos.sale(ALI, earned=i + 1) for i in range(3))
    ho.feed(pos, [a])
    p = copy.deepcopy(b.payload)
    p[R.K_PREV] = b"\x42" * 32
    forged = cose.sign1(cbor.encode(p), pos.key, pos.device.encode())
    out = ho.rc.process([*_incoming_raw(pos.topic, forged), *_incoming(pos, [c])])
    assert (out.applied, out.quarantined, out.held) == (0, 1, 1)
    assert out.gaps[pos.device] == (2, 2)
    out = ho.feed(pos, [b])  # the genuine seq 2 applies and drains the held seq 3
    assert out.applied == 2 and ho.one("SELECT applied_through FROM devices") == 3
    ho.check_refused()


@pytest.mark.parametrize(
    "junk", [b"", b"\xff" * 10, b"\xd2\x84\x40\xa0\x40\x40", cbor.encode({1: 2})]
)
def test_garbage_is_quarantined_without_blocking_the_batch(
    ho: HO, pos: Terminal, junk: bytes
) -> None:
    good = [pos.sale(ALI, earned=5) for _ in range(3)]
    out = ho.rc.process(
        [*_incoming(pos, good[:1]), *_incoming_raw(pos.topic, junk), *_incoming(pos, good[1:])]
    )
    assert (out.applied, out.quarantined) == (3, 1)
    raw = ho.q("SELECT raw, reason FROM quarantine")[0]
    assert bytes(raw[0]) == junk and raw[1]


def _incoming(t: Terminal, recs: list) -> list:  # type: ignore[type-arg]
    from cloud_broker.reconcile.reconciler import Incoming

    return [Incoming(t.topic, r.raw) for r in recs]


def _incoming_raw(topic: str, data: bytes) -> list:  # type: ignore[type-arg]
    from cloud_broker.reconcile.reconciler import Incoming

    return [Incoming(topic, data)]


def test_topics_helper_round_trip() -> None:
    assert topics.parse_records(topics.records("t", "s", "d")) == ("t", "s", "d")
    assert topics.parse_records("loyalty/v1/t/ack/d") is None


@pytest.mark.parametrize("after_seq", [4, 6])
def test_a_revoked_devices_held_records_never_apply(ho: HO, pos: Terminal, after_seq: int) -> None:
    recs = [pos.sale(ALI, earned=1) for _ in range(9)]
    ho.feed(pos, recs[:3])
    assert ho.feed(pos, recs[4:]).held == 5  # 5..9 wait behind the missing seq 4
    registry.revoke(ho.db, pos.device, "stolen", after_seq=after_seq)
    out = ho.feed(pos, [recs[3]])  # the genuine seq 4, signed before the cut-off
    late = list(range(after_seq + 1, 10))
    assert (out.applied, out.quarantined) == (after_seq - 3, len(late))
    assert out.acks[pos.device][0] == after_seq and pos.device not in out.gaps
    assert ho.one("SELECT applied_through FROM devices") == after_seq
    assert ho.q("SELECT code, seq FROM quarantine ORDER BY seq") == [("revoked", s) for s in late]
    assert ho.q("SELECT kind, seq FROM security_events ORDER BY seq") == [
        ("revoked", s) for s in late
    ]
    assert ho.one("SELECT COUNT(*) FROM held") == 0
    assert ho.member(ALI)[0] == after_seq
    ho.check_refused()


def test_held_records_are_read_only_when_the_batch_can_close_the_gap(
    ho: HO, pos: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud_broker.reconcile import reconciler

    recs = [pos.sale(ALI, earned=1) for _ in range(12)]
    ho.feed(pos, [recs[0], *recs[2:10]])  # seq 1 applied, 3..10 held
    parsed: list[bytes] = []
    real = reconciler.parse

    def counting(raw: bytes) -> Any:
        parsed.append(raw)
        return real(raw)

    screened = ho.rc.screen(_incoming(pos, [recs[11]]))
    monkeypatch.setattr(reconciler, "parse", counting)
    out = ho.rc.apply(screened)  # seq 12 cannot close the gap at 2
    assert (out.held, parsed) == (1, [])
    monkeypatch.setattr(reconciler, "parse", real)
    screened = ho.rc.screen(_incoming(pos, [recs[1]]))
    monkeypatch.setattr(reconciler, "parse", counting)
    out = ho.rc.apply(screened)  # seq 2 closes it: 3..10 are read, 12 is not
    assert out.applied == 9 and out.gaps[pos.device] == (11, 11)
    assert sorted(parsed) == sorted(r.raw for r in recs[2:10])
    assert ho.check() == []


def test_a_held_record_the_schema_now_refuses_is_quarantined_not_fatal(
    ho: HO, pos: Terminal
) -> None:
    from edge.protocol.record import record_hash

    a, b, c, d = (pos.sale(ALI, earned=1) for _ in range(4))
    ho.feed(pos, [a, d])  # seq 4 held
    # seq 3 held by an older, laxer head office: a sale with an `extra` map
    p = copy.deepcopy(c.payload)
    p[R.K_EXTRA] = {0: 1}
    lax = cose.sign1(cbor.encode(p), pos.key, pos.device.encode())
    ho.db.run(
        lambda tx: tx.execute(
            "INSERT INTO held (device, seq, hash, received_at, raw) VALUES (?, ?, ?, ?, ?)",
            (pos.device, 3, record_hash(lax), 0, lax),
        )
    )
    out = ho.feed(pos, [b])
    assert (out.applied, out.quarantined) == (1, 1)
    assert ho.codes() == ["unknown_key"]
    assert out.gaps[pos.device] == (3, 3)
    assert ho.feed(pos, [c]).applied == 2  # the genuine seq 3, then the held seq 4
    assert ho.check() == []


def test_records_that_overflow_a_bigint_are_refused_not_fatal(ho: HO, pos: Terminal) -> None:
    sale = pos.sale(ALI, earned=1)
    ho.feed(pos, [sale])
    late = copy.deepcopy(pos.sale(ALI, earned=1).payload)
    late[R.K_TIME][0] = 2**63  # wall clock ms
    refund = copy.deepcopy(
        pos.refund(ALI, sale, gross=1_000_000, refunded=1_000_000, reversed_=1).payload
    )
    refund[R.K_ORIG][1] = 2**63
    adjust = copy.deepcopy(pos.adjust(ALI, points=5).payload)
    adjust[R.K_EXTRA][1] = "5"
    for p in (late, refund, adjust):
        out = ho.raw(pos.topic, cose.sign1(cbor.encode(p), pos.key, pos.device.encode()))
        assert out.quarantined == 1
    assert ho.codes() == ["bad_field"] * 3
    assert ho.check() == []


def test_one_tenant_per_ledger(ho: HO, pos: Terminal, tmp_path: Path) -> None:
    from edge.errors import ConfigError

    other = Terminal(tmp_path, "pos-o", "s1", tenant="otherchain")
    with pytest.raises(ConfigError) as info:
        ho.register(other)
    assert "serves tenant hypershahr" in str(info.value)
    assert ho.one("SELECT COUNT(*) FROM devices WHERE tenant = 'otherchain'") == 0
    ho.register(Terminal(tmp_path, "pos-2", "s2"))  # the same tenant: fine
    assert ho.one("SELECT COUNT(*) FROM devices") == 2
    # no enrolment token is issued for a tenant this ledger cannot serve
    from cloud_broker.registry.enrollment import issue_token

    with pytest.raises(ConfigError, match="serves tenant hypershahr"):
        issue_token(ho.db, "otherchain", "s1")
    assert issue_token(ho.db, "hypershahr", "s3")[0]


def test_last_accepted_seq_of_a_device() -> None:
    assert registry.last_accepted("active", None) is None
    assert registry.last_accepted("active", 7) is None
    assert registry.last_accepted("revoked", 7) == 7
    assert registry.last_accepted("revoked", None) == -1
