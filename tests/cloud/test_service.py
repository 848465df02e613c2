"""The reconciler as a service on a real Mosquitto, killed and restarted mid-stream."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.local_broker import LocalMosquitto
from edge.ledger_cache.outbox import OutboxView
from edge.protocol import messages, snapshots, topics
from edge.protocol.mqtt import BrokerConfig, connect, new_client
from edge.protocol.uplink import Uplink, UplinkConfig
from tests.conftest import ROOT
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal
from tests.helpers.wait import until

ALI = "+989121234567"


def serve(
    broker: LocalMosquitto, ledger_url: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    f = log.open("ab")
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud_broker",
            "--ledger",
            ledger_url,
            "serve",
            "--broker",
            broker.url,
            "--batch",
            "200",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=f,
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == b"serving", log.read_text()
    return p


def uplink(t: Terminal, broker: LocalMosquitto) -> Uplink:
    up = Uplink(
        UplinkConfig(BrokerConfig.from_url(broker.url, keepalive=5), resend_after=2.0),
        partial(OutboxView, t.db),
        t.identity,
    )
    up.start()
    return up


def wait(cond: Callable[[], Any], timeout: float = 60.0) -> bool:
    return until(cond, timeout)


class Listener:
    def __init__(self, broker: LocalMosquitto, topic: str) -> None:
        self.got: list[bytes] = []
        cfg = BrokerConfig.from_url(broker.url)
        self.c = new_client(cfg, f"listener-{topic.replace('/', '-')}")
        self.c.on_message = lambda _c, _u, m: self.got.append(bytes(m.payload))
        connect(self.c, cfg)
        self.c.subscribe(topic, qos=1)
        self.c.loop_start()

    def stop(self) -> None:
        self.c.loop_stop()


def test_end_to_end_with_stream_and_snapshots(
    tmp_path: Path, broker: LocalMosquitto, ledger_url: str
) -> None:
    ho = HO(ledger_url)
    terms = [Terminal(tmp_path, f"pos-{i}", f"s{i}") for i in range(3)]
    ho.register(*terms)
    stream = Listener(broker, "loyalty/v1/hypershahr/reconciled/+")
    snaps = Listener(broker, topics.snapshot("hypershahr"))
    progress = Listener(broker, topics.progress("hypershahr"))
    proc = serve(broker, ledger_url, tmp_path / "serve.log")
    ups = [uplink(t, broker) for t in terms]
    try:
        for i in range(30):
            for t in terms:
                t.sale(ALI, earned=10, cashback=1000, subtotal=100_000 + i)
                ups[terms.index(t)].notify()
        assert wait(lambda: all(t.outbox.status()["depth"] == 0 for t in terms)), (
            tmp_path / "serve.log"
        ).read_text()[-3000:]
        assert ho.member(ALI)[:2] == (900, 90_000)
        assert ho.check() == []

        def entries() -> list[dict[str, Any]]:
            return [e for b in list(stream.got) for e in json.loads(b)["entries"]]

        assert wait(lambda: len(entries()) >= 90)
        bodies = entries()
        assert {(b["device"], b["seq"]) for b in bodies} == {
            (t.device, s) for t in terms for s in range(1, 31)
        }
        assert bodies[-1]["balances"]["points"] > 0 and bodies[-1]["member"] == ALI
        # what the broker has acknowledged leaves the table: it holds only what is on its way
        assert wait(lambda: ho.one("SELECT COUNT(*) FROM stream") == 0)
        assert wait(lambda: any(s.points == 900 for m in snaps.got for s in snapshots.decode(m)[0]))
        # head office's heartbeat while it worked through the terminals' records
        assert wait(lambda: any(messages.decode_progress(m)[1] > 0 for m in progress.got))
    finally:
        for u in ups:
            u.stop()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        stream.stop()
        snaps.stop()
        progress.stop()
        ho.close()


def test_reconciler_sigkilled_mid_batch_loses_nothing_applies_nothing_twice(
    tmp_path: Path, broker: LocalMosquitto, ledger_url: str
) -> None:
    ho = HO(ledger_url)
    terms = [Terminal(tmp_path, f"pos-{i}", "s1") for i in range(4)]
    ho.register(*terms)
    log = tmp_path / "serve.log"
    proc = serve(broker, ledger_url, log)
    ups = [uplink(t, broker) for t in terms]
    stop = threading.Event()
    kills = 0
    failed: list[str] = []

    def applied() -> int:
        return int(ho.one("SELECT COUNT(*) FROM records"))

    def applying() -> bool:
        """The service is applying the terminals' records (20 more), or the test is over."""
        mark = applied()
        return wait(lambda: stop.is_set() or applied() >= mark + 20)

    def chaos() -> None:
        nonlocal proc, kills
        while not stop.is_set():
            if not applying():  # mid-batch: the (restarted) service is at work
                failed.append(f"the service applied nothing new after {kills} kills")
                return
            if stop.is_set():
                return
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            time.sleep(0.2)  # down for a moment while the tills keep selling: a simulated outage
            proc = serve(broker, ledger_url, log)

    th = threading.Thread(target=chaos)
    th.start()
    written = 0
    try:
        t_end = time.monotonic() + 90.0  # a loaded machine starts the service slowly
        while kills < 3 and not failed and time.monotonic() < t_end:
            for t, u in zip(terms, ups, strict=True):
                t.sale(ALI, earned=1, cashback=10)
                u.notify()
                written += 1
            time.sleep(0.005)  # the tills' pace between sales, not a wait for an event
        stop.set()
        th.join()
        assert failed == []
        assert kills >= 3
        assert wait(lambda: all(t.outbox.status()["depth"] == 0 for t in terms), 90), [
            t.outbox.status() for t in terms
        ]
        assert ho.one("SELECT COUNT(*) FROM records") == written
        assert ho.member(ALI)[:2] == (written, 10 * written)
        assert ho.check() == []
    finally:
        stop.set()
        for u in ups:
            u.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        ho.close()


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_attacks_on_the_wire_are_quarantined_while_good_traffic_flows(
    tmp_path: Path, broker: LocalMosquitto, ledger_url: str
) -> None:
    ho = HO(ledger_url)
    good, other = Terminal(tmp_path, "pos-1"), Terminal(tmp_path, "pos-2")
    ho.register(good, other)
    (tmp_path / "x").mkdir()
    mallory = Terminal(tmp_path / "x", "pos-1")  # same id, its own key
    proc = serve(broker, ledger_url, tmp_path / "serve.log")
    cfg = BrokerConfig.from_url(broker.url)
    attacker = new_client(cfg, "attacker")
    connect(attacker, cfg)
    attacker.loop_start()
    up = uplink(good, broker)
    try:
        for i in range(20):
            good.sale(ALI, earned=5)
            if i == 10:
                for payload, topic in (
                    (mallory.sale(ALI, earned=10**6).raw, good.topic),
                    (other.sale(ALI, earned=10**6).raw, good.topic),
                    (b"\x00\x01garbage", good.topic),
                ):
                    attacker.publish(topic, payload, qos=1).wait_for_publish(5)
            up.notify()
        assert wait(lambda: good.outbox.status()["depth"] == 0)
        assert wait(lambda: ho.one("SELECT COUNT(*) FROM quarantine") == 3)
        # b"\x00\x01...": a complete CBOR 0 followed by junk
        assert sorted(ho.codes()) == ["bad_signature", "topic_mismatch", "trailing_bytes"]
        assert ho.member(ALI)[0] == 100
        assert ho.check() == []
    finally:
        up.stop()
        attacker.loop_stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        ho.close()


def test_a_killed_service_leaves_no_screening_workers(
    tmp_path: Path, broker: LocalMosquitto, ledger_url: str
) -> None:
    import os

    proc = serve(broker, ledger_url, tmp_path / "serve.log")

    def children() -> list[int]:
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(stat[1]) == proc.pid:
                    out.append(int(d.name))
        return out

    assert wait(lambda: len(children()) >= 1, 10)  # the spawned screening worker
    kids = children()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)

    def gone() -> bool:
        for pid in kids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            st = Path(f"/proc/{pid}/stat")
            if st.exists() and st.read_text().rsplit(")", 1)[1].split()[0] != "Z":
                return False
        return True

    assert wait(gone, 10), kids


def _service(ledger_url: str, workers: int = 0) -> Any:
    """A service that is never connected: its batches are handed to it directly."""
    from cloud_broker.reconcile.service import Service, ServiceConfig

    h = HO(ledger_url)
    rs = h.rs
    h.close()
    cfg = ServiceConfig(BrokerConfig.from_url("mqtt://127.0.0.1:9"), ledger_url)
    return Service(replace(cfg, screen_workers=workers, snapshots=False), rs)


def _close(svc: Any) -> None:
    if svc.screener is not None:
        svc.screener.close()
    svc.reconciler.close()
    svc.db.close()


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_record_the_apply_step_cannot_handle_is_quarantined_at_once(
    tmp_path: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud_broker.reconcile import reconciler
    from cloud_broker.reconcile.reconciler import Incoming

    ho = HO(ledger_url)
    pos = Terminal(tmp_path)
    ho.register(pos)
    recs = [pos.sale(ALI, earned=1) for _ in range(3)]
    real = reconciler._Apply.sale

    def sale(self: Any, jid: int, p: dict[int, Any], *a: Any) -> None:
        if p[5] == 2:  # seq 2: a bug, not the database
            raise TypeError("unsupported operand")
        real(self, jid, p, *a)

    monkeypatch.setattr(reconciler._Apply, "sale", sale)
    svc = _service(ledger_url)
    try:
        t0 = time.monotonic()
        svc._handle([Incoming(pos.topic, r.raw) for r in recs])
        assert time.monotonic() - t0 < 1.5  # no back-off: retrying a bug does not help
        assert ho.q("SELECT code, device, seq FROM quarantine") == [
            ("internal_error", pos.device, 2)
        ]
        assert ho.one("SELECT applied_through FROM devices") == 1
        assert ho.one("SELECT seq FROM held") == 3  # behind the gap, for the genuine seq 2
        assert svc.stats["quarantined"] == 0 and svc.stats["applied"] == 1
    finally:
        _close(svc)
        ho.close()


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_dead_screening_workers_are_replaced(tmp_path: Path, ledger_url: str) -> None:
    import os

    from cloud_broker.reconcile.reconciler import Incoming

    ho = HO(ledger_url)
    pos = Terminal(tmp_path)
    ho.register(pos)
    svc = _service(ledger_url, workers=1)
    try:
        old = svc.screener
        for pid in list(old.pool._processes):
            os.kill(pid, signal.SIGKILL)  # the OOM killer, say
        assert wait(lambda: old.pool._broken, 10)
        batch = [Incoming(pos.topic, pos.sale(ALI, earned=1).raw) for _ in range(2)]
        fut = svc._submit(batch)
        assert fut is not None and svc.screener is not old
        svc._handle(batch, fut)
        assert ho.one("SELECT applied_through FROM devices") == 2
    finally:
        _close(svc)
        ho.close()


@pytest.mark.parametrize("n", [2, 3])
def test_reconcilers_sharing_the_records_one_sigkilled_apply_each_once(
    tmp_path: Path, broker: LocalMosquitto, ledger_url: str, n: int
) -> None:
    """``n`` reconcilers on one PostgreSQL ledger share the records through an MQTT shared
    subscription; one of them is SIGKILLed mid-run, twice, and started again.  Every record
    is applied exactly once, every outbox drains and ``ledger check`` is clean."""
    if not ledger_url.startswith("postgresql"):
        pytest.skip("several reconcilers share one ledger on PostgreSQL")
    ho = HO(ledger_url)
    terms = [Terminal(tmp_path, f"pos-{i}", f"s{i % 3}") for i in range(6)]
    ho.register(*terms)
    logs = [tmp_path / f"serve{i}.log" for i in range(n)]

    def start(i: int) -> subprocess.Popen[bytes]:
        return serve(broker, ledger_url, logs[i], "--share-group", "rec", "--client-id", f"rec-{i}")

    procs = [start(i) for i in range(n)]
    ups = [uplink(t, broker) for t in terms]
    written = 0
    kills = 0
    try:
        for round_ in range(3):
            for _ in range(60):
                for t, u in zip(terms, ups, strict=True):
                    t.sale(ALI, earned=1, cashback=10)
                    u.notify()
                    written += 1
            if round_ < 2:  # the victim dies with whatever it held in flight
                victim = round_ % n
                procs[victim].send_signal(signal.SIGKILL)
                procs[victim].wait(10)
                kills += 1
                procs[victim] = start(victim)
        assert kills == 2
        assert wait(lambda: all(t.outbox.status()["depth"] == 0 for t in terms), 120), (
            [t.outbox.status() for t in terms],
            [lg.read_text()[-2000:] for lg in logs],
        )
        assert ho.one("SELECT COUNT(*) FROM records") == written
        assert ho.member(ALI)[:2] == (written, 10 * written)
        for t in terms:
            assert (
                ho.one("SELECT applied_through FROM devices WHERE device = ?", (t.device,))
                == (t.outbox.status()["last_seq"])
            )
        assert ho.check() == []
    finally:
        for u in ups:
            u.stop()
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(15)
        ho.close()
