"""Attacks: three stores check out continuously while an attacker on the broker publishes
forged, tampered, replayed, conflicting, misrouted, revoked, chain-breaking and malformed
records, and a rules bundle signed with the wrong key.  Every attack is refused with its
reason code (and a security event where it is one); the good stores do not notice: each of
their records is applied exactly once, the bank's charges match the ledger, the ledger
checks and every outbox drains."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_broker.local_broker import LocalMosquitto
from cloud_broker.registry import devices as registry
from edge.core import record as R
from edge.errors import ProtocolError
from edge.protocol import bundles, cbor, cose, topics
from edge.protocol.mqtt import BrokerConfig, connect, new_client
from edge.protocol.record import Sealer, parse, record_hash
from tests.chaos.test_chaos import Till, World
from tests.cloud.test_service import Listener, serve, uplink
from tests.helpers.headoffice import HO
from tests.helpers.store import Store, rules_doc
from tests.helpers.terminal import Terminal
from tests.helpers.wait import until

ALI = "+989121234567"
LULL = 0.4  # seconds of good traffic alone between attacks
Row = tuple[str, str | None, int | None]  # (code, device, seq)


def wait(cond: Callable[[], Any], timeout: float = 15.0) -> bool:
    return until(cond, timeout)


def reseal(raw: bytes, key: Ed25519PrivateKey, **changes: Any) -> bytes:
    """The payload of ``raw`` with ``changes`` (payload key -> value), signed by ``key``."""
    payload = dict(parse(raw).payload)
    for name, value in changes.items():
        payload[getattr(R, f"K_{name.upper()}")] = value
    return Sealer(key, str(payload[R.K_DEVICE])).seal(payload).raw


def rtopic(st: Store) -> str:
    return topics.records(st.tenant, st.store, st.device)


def refused_rules(st: Store) -> bool:
    return "signature" in (st.status()["rules_error"] or "")


def drained(st: Store) -> bool:
    s = st.status()
    return bool(s["payments_unknown"] == 0 and s["outbox"]["depth"] == 0)


def flip_bit(raw: bytes, at: int = -1) -> bytes:
    b = bytearray(raw)
    b[at] ^= 0x01
    return bytes(b)


class Sniffer:
    """Every genuine record of the good stores seen on the wire: verified with the store's
    key and on the store's own topic (the first one per (device, seq) is kept)."""

    def __init__(self, url: str, stores: list[Store]) -> None:
        self.keys = {st.device: st.key.public_key() for st in stores}
        self.topic = {st.device: topics.records(st.tenant, st.store, st.device) for st in stores}
        self.seen: dict[tuple[str, int], bytes] = {}
        self.lock = threading.Lock()
        cfg = BrokerConfig.from_url(url)
        self.c = new_client(cfg, "sniffer")
        self.c.on_message = self._on_message
        self.c.on_connect = lambda c, *_a: c.subscribe(topics.records_all("+"), qos=1)
        self.subscribed = threading.Event()
        self.c.on_subscribe = lambda *_a: self.subscribed.set()
        connect(self.c, cfg)
        self.c.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("the sniffer's subscription was not confirmed")

    def _on_message(self, _c: mqtt.Client, _u: Any, m: mqtt.MQTTMessage) -> None:
        raw = bytes(m.payload)
        try:
            u = parse(raw)
            key = self.keys.get(u.device)
            if key is None or self.topic[u.device] != m.topic:
                return
            u.verify(key)
        except ProtocolError:
            return
        with self.lock:
            self.seen.setdefault((u.device, u.seq), raw)

    def get(self, device: str, seq: int) -> bytes | None:
        with self.lock:
            return self.seen.get((device, seq))

    def of(self, device: str) -> dict[int, bytes]:
        with self.lock:
            return {s: r for (d, s), r in self.seen.items() if d == device}

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class Attacker:
    """A client of the broker like any other, publishing whatever it likes."""

    def __init__(self, url: str) -> None:
        cfg = BrokerConfig.from_url(url)
        self.c = new_client(cfg, "attacker")
        connect(self.c, cfg)
        self.c.loop_start()
        self.sent: list[bytes] = []

    def publish(self, topic: str, raw: bytes, retain: bool = False) -> None:
        self.c.publish(topic, raw, qos=1, retain=retain).wait_for_publish(5)
        self.sent.append(raw)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.mark.timeout(180)
def test_attacks_are_refused_while_good_traffic_is_unaffected(tmp_path: Path, world: World) -> None:
    ho = world.ho
    s0, s1, s2 = world.stores
    tenant = s0.tenant
    sniffer = Sniffer(world.broker.url, world.stores)
    attacker = Attacker(world.broker.url)
    stop = threading.Event()
    tills = [Till(st, i, stop) for i, st in enumerate(world.stores)]
    expect_q: list[Row] = []  # quarantine rows the attacks must leave
    expect_sec: list[Row] = []  # ... and the security events among them
    evidence: list[bytes] = []  # the raw bytes quarantine must keep

    def applied(device: str) -> int:
        return int(ho.one("SELECT applied_through FROM devices WHERE device = ?", (device,)))

    def quarantined(code: str, device: str | None, seq: int | None) -> int:
        rows = ho.q("SELECT code, device, seq FROM quarantine")
        return sum(1 for r in rows if r == (code, device, seq))

    def attack(
        topic: str, raw: bytes, code: str, device: str | None, seq: int | None, security: bool
    ) -> None:
        """Publish one bad message and wait until head office has quarantined it."""
        before = quarantined(code, device, seq)
        attacker.publish(topic, raw)
        expect_q.append((code, device, seq))
        evidence.append(raw)
        if security:
            expect_sec.append((code, device, seq))
        assert wait(lambda: quarantined(code, device, seq) > before), (
            code,
            device,
            seq,
            ho.q("SELECT code, device, seq, reason FROM quarantine"),
        )

    def genuine(st: Store, seq: int) -> bytes:
        raw = sniffer.get(st.device, seq)
        assert raw is not None, (st.device, seq)
        assert applied(st.device) >= seq
        return raw

    try:
        for t in tills:
            t.start()
        # good traffic flows before the attacks start
        assert wait(
            lambda: all(
                applied(st.device) >= 6 and sniffer.get(st.device, 6) is not None
                for st in world.stores
            ),
            30,
        ), [applied(st.device) for st in world.stores]

        # 1. forgery: a genuine payload signed by a key head office never registered, a
        # genuine record with one signature bit flipped, and a device nobody registered
        mallory = Ed25519PrivateKey.generate()
        attack(rtopic(s0), reseal(genuine(s0, 2), mallory), "bad_signature", s0.device, 2, True)
        attack(rtopic(s1), flip_bit(genuine(s1, 3)), "bad_signature", s1.device, 3, True)
        (tmp_path / "ghost").mkdir()
        ghost = Terminal(tmp_path / "ghost", "pos-ghost", "s0")
        attack(
            ghost.topic, ghost.sale(ALI, earned=10**6).raw, "unknown_device", ghost.device, 1, False
        )

        time.sleep(LULL)
        # 2. replay: every genuine record applied so far, again (harmless duplicates);
        # then a cloned key signs another record under an applied (device, seq)
        replayed = 0
        for st in world.stores:
            top = applied(st.device)
            for seq, raw in sorted(sniffer.of(st.device).items()):
                if seq <= top:
                    attacker.publish(rtopic(st), raw)
                    replayed += 1
        assert replayed >= 3 * 6
        p2 = parse(genuine(s2, 2)).payload
        later = {**p2[R.K_TIME], 0: p2[R.K_TIME][0] + 1}
        attack(
            rtopic(s2), reseal(genuine(s2, 2), s2.key, time=later), "conflict", s2.device, 2, True
        )

        time.sleep(LULL)
        # 3. misrouting: A's genuine record on B's topic; B's own key claiming A's store
        attack(rtopic(s1), genuine(s0, 4), "topic_mismatch", s0.device, 4, True)
        moved = reseal(genuine(s1, 5), s1.key, store=s0.store)
        attack(
            topics.records(tenant, s0.store, s1.device),
            moved,
            "device_mismatch",
            s1.device,
            5,
            True,
        )

        time.sleep(LULL)
        # 4. a revoked device: what it signed up to after_seq applies, the rest is refused
        (tmp_path / "rev").mkdir()
        rev = Terminal(tmp_path / "rev", "pos-rev", "s-rev")
        registry.register(ho.db, rev.device, tenant, "s-rev", rev.public_key)
        rrecs = [rev.sale(ALI, earned=10, subtotal=100_000 + i) for i in range(6)]
        for r in rrecs[:3]:
            attacker.publish(rev.topic, r.raw)
        assert wait(lambda: applied(rev.device) == 3)
        assert registry.revoke(ho.db, rev.device, "stolen from the store", after_seq=4) == 4
        attacker.publish(rev.topic, rrecs[3].raw)  # seq 4: signed before the revocation
        for r in rrecs[4:]:
            attack(rev.topic, r.raw, "revoked", rev.device, r.seq, True)
        assert wait(lambda: applied(rev.device) == 4)
        attacker.publish(rev.topic, rrecs[1].raw)  # a replay of an accepted one: a duplicate

        time.sleep(LULL)
        # 5. a broken hash chain, signed with the device's real key: right after the last
        # applied record, and held behind a gap (it must leave `held` once judged)
        (tmp_path / "chain").mkdir()
        ch = Terminal(tmp_path / "chain", "pos-chain", "s-chain")
        registry.register(ho.db, ch.device, tenant, "s-chain", ch.public_key)
        crecs = [ch.sale(ALI, earned=1, subtotal=200_000 + i) for i in range(7)]
        for r in crecs[:3]:
            attacker.publish(ch.topic, r.raw)
        assert wait(lambda: applied(ch.device) == 3)
        bogus = bytes(range(32))
        attack(
            ch.topic, reseal(crecs[3].raw, ch.key, prev=bogus), "broken_chain", ch.device, 4, True
        )
        assert applied(ch.device) == 3
        attacker.publish(ch.topic, crecs[3].raw)
        assert wait(lambda: applied(ch.device) == 4)
        held6 = reseal(crecs[5].raw, ch.key, prev=bogus)
        attacker.publish(ch.topic, held6)
        assert wait(
            lambda: (
                ho.one("SELECT COUNT(*) FROM held WHERE device = ? AND seq = 6", (ch.device,)) == 1
            )
        )
        # seq 5 closes the gap: 5 applies, the held 6 is judged and quarantined
        before = quarantined("broken_chain", ch.device, 6)
        attacker.publish(ch.topic, crecs[4].raw)
        expect_q.append(("broken_chain", ch.device, 6))
        expect_sec.append(("broken_chain", ch.device, 6))
        evidence.append(held6)
        assert wait(lambda: quarantined("broken_chain", ch.device, 6) > before)
        assert applied(ch.device) == 5
        assert ho.one("SELECT COUNT(*) FROM held WHERE device = ?", (ch.device,)) == 0
        for r in crecs[5:]:
            attacker.publish(ch.topic, r.raw)
        assert wait(lambda: applied(ch.device) == 7)

        time.sleep(LULL)
        # 6. malformed bytes on a good store's records topic
        structurally_cose = cose.sign1(cbor.encode({0: 1}), mallory, s0.device.encode())
        for raw, code in (
            (b"", "truncated"),
            (b"\x00\x01garbage", "trailing_bytes"),
            (b"\xff\xfe\xfd\xfc", "malformed"),
            (b"\x9f\x01\xff", "indefinite"),
            (b"\x81" * 40 + b"\x00", "too_deep"),
            (cbor.encode({"records": 1}), "not_cose_sign1"),
            (genuine(s0, 5)[:60], "truncated"),
            (structurally_cose, "missing_field"),
        ):
            attack(rtopic(s0), raw, code, None, None, False)

        time.sleep(LULL)
        # 7. a rules bundle signed with a key no terminal pins, to the running agents
        approved = [t.approved for t in tills]
        assert [st.status()["rules_version"] for st in world.stores] == [1, 1, 1]
        evil = bundles.sign(rules_doc(99), Ed25519PrivateKey.generate())
        attacker.publish(topics.rules(tenant), evil, retain=True)
        for st in world.stores:
            assert wait(partial(refused_rules, st))
            assert st.status()["rules_version"] == 1
            assert "refused a rules bundle from head office" in st.log.read_text()
        # ... and they keep checking out under the rules in force
        assert wait(lambda: all(t.approved > a + 2 for t, a in zip(tills, approved, strict=True)))
        stop.set()
        for t in tills:
            t.join(30)
        assert all(not t.is_alive() for t in tills)

        # everything good drains, nothing bad was applied
        for st in world.stores:
            assert wait(partial(drained, st), 30), st.status()
        for i, st in enumerate(world.stores):
            last = st.status()["outbox"]["last_seq"]
            assert applied(st.device) == last
            assert ho.q(
                "SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM records "
                "WHERE device = ?",
                (st.device,),
            ) == [(last, last, 1, last)]
            n, total = world.recorded(st.device)
            assert n > 0 and total == world.charged(i), (st.device, n, total, world.charged(i))
            # what head office applied is what the store signed, and under rules v1
            stored = dict(ho.q("SELECT seq, hash FROM records WHERE device = ?", (st.device,)))
            seen = sniffer.of(st.device)
            assert len(seen) > last // 2
            assert {s: bytes(stored[s]) for s in seen} == {
                s: record_hash(r) for s, r in seen.items()
            }
            for (raw,) in ho.q(
                "SELECT raw FROM records WHERE device = ? AND type = 'sale'", (st.device,)
            ):
                assert parse(bytes(raw)).payload[R.K_RULES] == 1
        assert ho.q("SELECT seq FROM records WHERE device = ? ORDER BY seq", (rev.device,)) == [
            (1,),
            (2,),
            (3,),
            (4,),
        ]
        assert ho.q(
            "SELECT seq, hash FROM records WHERE device = ? ORDER BY seq", (ch.device,)
        ) == [(r.seq, r.hash) for r in crecs]
        assert ho.one("SELECT COUNT(*) FROM records WHERE device = ?", (ghost.device,)) == 0
        assert ho.one("SELECT COUNT(*) FROM held") == 0

        # the quarantine holds exactly the attacks, with their reasons and their bytes
        rows = ho.q("SELECT code, device, seq FROM quarantine")
        assert sorted(rows, key=repr) == sorted(expect_q, key=repr)
        assert sorted(bytes(r[0]) for r in ho.q("SELECT raw FROM quarantine")) == sorted(evidence)
        events = ho.q("SELECT kind, device, seq FROM security_events")
        assert sorted(events, key=repr) == sorted(expect_sec, key=repr)
        # every conflict raised an alert; ledger check names each validly signed refusal
        # until an operator resolves it, and is clean after
        conflicts = sorted((d, s) for c, d, s in expect_q if c == "conflict")
        alerted = ho.q("SELECT device, seq FROM alerts WHERE kind = 'chain_conflict'")
        assert conflicts and sorted(alerted) == conflicts
        ho.check_refused()
        print(
            f"attacks: approved per till {[t.approved for t in tills]}; "
            f"records {ho.one('SELECT COUNT(*) FROM records')}; "
            f"attacker messages {len(attacker.sent)}; quarantined {len(rows)}; "
            f"security events {len(events)}"
        )
    finally:
        stop.set()
        attacker.close()
        sniffer.close()


@pytest.mark.timeout(60)
def test_junk_on_another_tenants_topic_does_not_steer_a_devices_acks(
    tmp_path: Path, broker: LocalMosquitto
) -> None:
    """Junk that names pos-1 on another tenant's records topic is quarantined, and pos-1's
    acks still go to its own tenant's ack topic, so its outbox drains.

    Today the service publishes each device's cumulative ack to the tenant of the first
    message in the batch whose topic names the device (``Service._tenant_of``), refused
    ones included: under a flood of such junk, most acks land on the wrong tenant's topic
    and the device's outbox stops draining.  The ack should go to the device's registered
    tenant (the reconciler reads it from ``devices`` anyway)."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    ho = HO(url)
    t = Terminal(tmp_path, "pos-1", "s1")
    ho.register(t)
    stray = Listener(broker, topics.ack("other", t.device))  # where no ack of pos-1 belongs
    hq = serve(broker, url, tmp_path / "serve.log")
    attacker = Attacker(broker.url)
    stop = threading.Event()

    def flood() -> None:  # junk naming pos-1, on a topic of a tenant it does not belong to
        while not stop.wait(0.001):
            attacker.c.publish(topics.records("other", t.identity.store, t.device), b"\x00")

    th = threading.Thread(target=flood, daemon=True)
    th.start()
    up = uplink(t, broker)
    try:
        for _ in range(30):
            t.sale(ALI, earned=1)
            up.notify()
            time.sleep(0.02)
        wait(lambda: t.outbox.status()["depth"] == 0 or bool(stray.got), 10)
        stop.set()
        th.join(5)
        assert stray.got == []
        assert t.outbox.status()["depth"] == 0
        assert ho.one("SELECT applied_through FROM devices WHERE device = ?", (t.device,)) == 30
        assert set(ho.codes()) == {"not_cose_sign1"}
        assert ho.check() == []
    finally:
        stop.set()
        up.stop()
        attacker.close()
        stray.stop()
        hq.terminate()
        hq.wait(15)
        ho.close()
