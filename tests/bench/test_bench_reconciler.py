"""Head office throughput: publish -> verify -> ledger commit -> ack, next to raw MQTT."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from cloud_broker.local_broker import LocalMosquitto
from edge.protocol import messages, topics
from edge.protocol.mqtt import BrokerConfig, connect, new_client
from tests.conftest import ROOT
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal

DEVICES = 20
PER_DEVICE = 500  # the console benchmark's live records
THROUGHPUT_PER_DEVICE = 1500  # 30,000 records: long enough for a steady rate
N = DEVICES * PER_DEVICE
MEMBERS = [f"+98912{i:07d}" for i in range(2000)]
STARTUP: list[float] = []  # head office's start-up in backlog runs (from the command)


def _records(
    tmp: Path, per_device: int = PER_DEVICE
) -> tuple[list[Terminal], list[tuple[str, bytes]]]:
    terms = [Terminal(tmp, f"pos-{i:02d}", f"s{i % 5}") for i in range(DEVICES)]
    msgs = []
    for i in range(per_device):
        for k, t in enumerate(terms):
            if i == 0:
                t.outbox._conn.execute("PRAGMA synchronous=OFF")  # fast set-up only
            m = MEMBERS[(i * DEVICES + k) % len(MEMBERS)]
            r = t.sale(
                m,
                subtotal=1_000_000 + i,
                earned=100,
                cashback=1000,
                redeemed=50 if i % 4 == 3 else 0,
                discount=50_000 if i % 4 == 3 else 0,
            )
            msgs.append((t.topic, r.raw))
    return terms, msgs


def _publish_all(url: str, msgs: list[tuple[str, bytes]], client_id: str) -> mqtt.Client:
    cfg = BrokerConfig.from_url(url)
    c = new_client(cfg, client_id)
    c.max_inflight_messages_set(1000)
    connect(c, cfg)
    c.loop_start()
    for topic, raw in msgs:
        c.publish(topic, raw, qos=1)
    return c


def raw_subscriber_rate(broker: LocalMosquitto, msgs: list[tuple[str, bytes]]) -> float:
    cfg = BrokerConfig.from_url(broker.url)
    got = [0]
    done = threading.Event()
    first: list[float] = []

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        if not first:
            first.append(time.perf_counter())
        got[0] += 1
        if got[0] == len(msgs):
            done.set()

    sub = new_client(cfg, "raw-sub")
    sub.on_message = on_message
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_a: subscribed.set()
    connect(sub, cfg)
    sub.subscribe("rawbench/#", qos=1)
    sub.loop_start()
    assert subscribed.wait(10)
    t0 = time.perf_counter()
    pub = _publish_all(broker.url, [(f"rawbench/{t}", r) for t, r in msgs], "raw-pub")
    assert done.wait(300)
    dt = time.perf_counter() - t0
    pub.loop_stop()
    sub.loop_stop()
    return len(msgs) / dt


def raw_backlog_rate(broker: LocalMosquitto, msgs: list[tuple[str, bytes]]) -> float:
    """A plain paho subscriber draining the same backlog from its persistent session."""
    cfg = BrokerConfig.from_url(broker.url)
    got = [0]
    done = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        got[0] += 1
        if got[0] == len(msgs):
            done.set()

    def client() -> mqtt.Client:
        c = new_client(cfg, "raw-backlog")
        c.on_message = on_message
        return c

    sub = client()
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_a: subscribed.set()
    connect(sub, cfg)
    sub.subscribe("rawbacklog/#", qos=1)
    sub.loop_start()
    assert subscribed.wait(10)
    sub.disconnect()
    sub.loop_stop()
    pub = _publish_all(broker.url, [(f"rawbacklog/{t}", r) for t, r in msgs], "raw-pub2")
    time.sleep(0.5)
    pub.loop_stop()
    sub = client()
    t0 = time.perf_counter()
    connect(sub, cfg)
    sub.loop_start()
    assert done.wait(300)
    dt = time.perf_counter() - t0
    sub.loop_stop()
    return len(msgs) / dt


def verify_rates(
    msgs: list[tuple[str, bytes]], terms: list[Terminal], n: int = 5000
) -> tuple[float, float]:
    """Ed25519 verifications per second on one core of the same records' signatures: as
    screening does them (libsodium, through edge.protocol.cose) and with OpenSSL."""
    from edge.protocol import cose
    from edge.protocol.record import parse

    keys = {t.device: t.key.public_key() for t in terms}
    items = [(keys[parse(raw).device], cose.parse(raw)) for _t, raw in msgs[:n]]
    t0 = time.perf_counter()
    for key, s in items:
        s.verify(key)
    ours = len(items) / (time.perf_counter() - t0)
    plain = [(k, s.signature, cose.sig_structure(s.protected, s.payload)) for k, s in items]
    t0 = time.perf_counter()
    for key, sig, data in plain:
        key.verify(sig, data)
    return ours, len(items) / (time.perf_counter() - t0)


def serve(url: str, broker: LocalMosquitto, log: Path) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(
        [sys.executable, "-m", "cloud_broker", "--ledger", url, "serve", "--broker", broker.url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log.open("ab"),
    )
    assert p.stdout is not None and p.stdout.readline().strip() == b"serving"
    return p


def reconcile(
    run: Path,
    url: str,
    terms: list[Terminal],
    msgs: list[tuple[str, bytes]],
    mode: str,
    beside: Callable[[LocalMosquitto], Callable[[], None]] | None = None,
) -> tuple[float, LocalMosquitto]:
    """Seconds from the first publish (live) or head office's restart (backlog) to the last
    device's ack, on a fresh ledger at ``url``; ``beside`` starts something next to head
    office once it serves and returns how to stop it.  The broker is left running."""
    broker = LocalMosquitto(run / "mosquitto")
    broker.start()
    ho = HO(url)
    ho.register(*terms)
    ho.close()
    proc = serve(url, broker, run / "serve.log")
    stop_beside = beside(broker) if beside is not None else None
    acked: dict[str, int] = {}
    done = threading.Event()
    per_device = len(msgs) // len(terms)

    def on_ack(_c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        acked[m.topic.rsplit("/", 1)[1]] = messages.decode_ack(bytes(m.payload))[0]
        if len(acked) == len(terms) and min(acked.values()) == per_device:
            done.set()

    cfg = BrokerConfig.from_url(broker.url)
    watcher = new_client(cfg, "ack-watcher")
    watcher.on_message = on_ack
    connect(watcher, cfg)
    subscribed = threading.Event()
    watcher.on_subscribe = lambda *_a: subscribed.set()
    watcher.subscribe(topics.ack("+", "+"), qos=1)
    watcher.loop_start()
    assert subscribed.wait(10), "the ack watcher's subscription was not confirmed"
    if mode == "backlog":  # head office is down while the stores send everything
        proc.terminate()
        proc.wait(30)
        pub = _publish_all(broker.url, msgs, "bench-pub")
        while pub.want_write() or len(pub._out_messages):
            time.sleep(0.05)
        pub.loop_stop()
        t_start = time.perf_counter()
        proc = serve(url, broker, run / "serve.log")
        t0 = time.perf_counter()  # head office is up: its start-up is not throughput
        STARTUP.append(t0 - t_start)
    else:
        t0 = time.perf_counter()
        pub = _publish_all(broker.url, msgs, "bench-pub")
    ok = done.wait(600)
    dt = time.perf_counter() - t0
    pub.loop_stop()
    watcher.loop_stop()
    if stop_beside is not None:
        stop_beside()
    proc.terminate()
    proc.wait(30)
    assert ok, (run / "serve.log").read_text()[-2000:]
    ho = HO(url)
    assert ho.check() == []
    assert ho.one("SELECT COUNT(*) FROM records") == len(msgs)
    ho.close()
    return dt, broker


def ledger_for(backend: str, run: Path, request: pytest.FixtureRequest) -> str:
    from tests.cloud.conftest import _PG_PROBLEM

    if backend == "sqlite":
        return f"sqlite:///{run}/ledger.db"
    if _PG_PROBLEM:
        pytest.skip(f"PostgreSQL not reachable: {_PG_PROBLEM}")
    return str(request.getfixturevalue("pg_url_factory")())


@pytest.mark.parametrize("mode", ["live", "backlog"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_reconciler_throughput(
    benchmark: Any, tmp_path: Path, backend: str, mode: str, request: pytest.FixtureRequest
) -> None:
    """live: devices publish while head office reconciles; backlog: head office comes
    back to 30,000 records queued for it in the broker."""
    (tmp_path / "t").mkdir()
    terms, msgs = _records(tmp_path / "t", THROUGHPUT_PER_DEVICE)
    results: dict[str, float] = {}

    def run_once() -> float:
        run = tmp_path / "run"
        run.mkdir()
        dt, broker = reconcile(run, ledger_for(backend, run, request), terms, msgs, mode)
        results["reconciled_per_s"] = len(msgs) / dt
        results["raw_sub_per_s"] = (
            raw_subscriber_rate(broker, msgs) if mode == "live" else raw_backlog_rate(broker, msgs)
        )
        broker.stop()
        results["verify_per_s"], results["openssl_per_s"] = verify_rates(msgs, terms)
        return dt

    benchmark.pedantic(run_once, rounds=1, iterations=1)

    benchmark.extra_info.update(
        {
            "records": len(msgs),
            "devices": DEVICES,
            "backend": backend,
            "mode": mode,
            "reconciled_per_s": round(results["reconciled_per_s"]),
            "raw_paho_subscriber_per_s": round(results["raw_sub_per_s"]),
            "ho_startup_s": round(STARTUP[-1], 2) if mode == "backlog" else None,
            "ed25519_verify_per_s_one_core": round(results["verify_per_s"]),
            "openssl_verify_per_s_one_core": round(results["openssl_per_s"]),
            "goal": ">= 5,000/s on SQLite, >= 3,000/s on PostgreSQL",
        }
    )
