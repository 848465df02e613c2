"""The national outage: many stores' terminals come back at once with days of sales.

``blackout``: 200 terminals in 50 stores (four per store), each with a three-day backlog
of 300 sales a day, run as the real uplink in five processes behind a per-store link of
1 Mbit/s with 40 ms round trip, reconnecting at random moments within two minutes, into
``python -m cloud_broker serve`` on SQLite and PostgreSQL; and head office back 30 s after
the stores, with and without terminals following its progress heartbeat.
``broker_restart``: 50 terminals selling twice a second each through a broker restart;
time from head office being back to every terminal caught up."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization

from cloud_broker.ledger.db import Database
from cloud_broker.ledger.schema import MIGRATIONS
from cloud_broker.local_broker import LocalMosquitto
from cloud_broker.registry import devices as registry
from edge.protocol import messages, topics
from edge.protocol.mqtt import BrokerConfig, connect, new_client
from tests.bench.blackout_fleet import peak_rss_mb
from tests.bench.test_bench_reconciler import ledger_for, serve
from tests.conftest import ROOT
from tests.helpers.terminal import Terminal

pytestmark = pytest.mark.timeout(3600)

VERSION = 1  # bump when the generated backlogs change
# BLACKOUT_STORES / BLACKOUT_SPREAD_S: a smaller run for a quick look (docs give 50 / 120)
STORES = int(os.environ.get("BLACKOUT_STORES", "50"))
PER_STORE = 4
PER_DAY = 300
DAYS = 3
LINK = 125_000  # 1 Mbit/s per store
SPREAD = float(os.environ.get("BLACKOUT_SPREAD_S", "120"))
HO_LATE = 30.0  # head office back this long after the stores (the queued case)
CACHE = ROOT / "var" / "bench" / f"blackout-v{VERSION}"
TENANT = "hypershahr"


def _gen(args: tuple[int, int, str]) -> dict[str, Any]:
    store, k, out = args
    t = Terminal(Path(out), f"pos-{store:02d}-{k}", f"s{store:02d}", TENANT)
    t.outbox._conn.execute("PRAGMA synchronous=OFF")  # set-up speed only
    for day in range(DAYS):
        t.time.to_day(t.time.t // 86400 + (1 if day else 0))
        for i in range(PER_DAY):
            t.time.t += 150
            m = f"+98912{(store * 1000 + k * 300 + i) % 40_000:07d}" if i % 2 else None
            t.sale(m, subtotal=1_000_000 + i, earned=10, cashback=100)
    t.outbox.close()
    raw = t.key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return {"device": t.device, "store": t.identity.store, "tenant": TENANT,
            "db": str(t.db), "key": raw.hex(), "pub": t.public_key.hex()}  # fmt: skip


def backlogs(stores: int, per_store: int) -> list[dict[str, Any]]:
    """The terminals' databases, generated once (in parallel) and kept in var/bench."""
    index = CACHE / "devices.json"
    if index.exists():
        devs = json.loads(index.read_text())
    else:
        shutil.rmtree(CACHE, ignore_errors=True)
        CACHE.mkdir(parents=True)
        jobs = [(s, k, str(CACHE)) for s in range(50) for k in range(PER_STORE)]
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            devs = pool.map(_gen, jobs)
        index.write_text(json.dumps(devs))
    keep = {f"pos-{s:02d}-{k}" for s in range(stores) for k in range(per_store)}
    return [d for d in devs if d["device"] in keep]


def _copy(devs: list[dict[str, Any]], run: Path) -> list[dict[str, Any]]:
    (run / "terms").mkdir(parents=True)
    out = []
    for d in devs:
        dst = run / "terms" / Path(d["db"]).name
        shutil.copy(d["db"], dst)
        out.append(dict(d, db=str(dst)))
    return out


class AckWatch:
    """Every device's acknowledged seq as head office publishes it."""

    def __init__(self, broker: LocalMosquitto) -> None:
        self.acked: dict[str, int] = {}
        self.first_after: float | None = None
        self.mark = float("inf")
        cfg = BrokerConfig.from_url(broker.url)
        self.c = new_client(cfg, "ack-watch")
        self.c.on_message = self._on
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *_a: subscribed.set()
        self.c.on_connect = lambda c, *_a: c.subscribe(topics.ack("+", "+"), qos=1)
        self.c.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        connect(self.c, cfg)
        self.c.loop_start()
        assert subscribed.wait(10)

    def _on(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        self.acked[m.topic.rsplit("/", 1)[1]] = messages.decode_ack(bytes(m.payload))[0]
        # a retained ack replayed to this watcher on its own reconnect is not head office
        if not m.retain and self.first_after is None and time.monotonic() > self.mark:
            self.first_after = time.monotonic()

    def done(self, targets: dict[str, int]) -> bool:
        return all(self.acked.get(d, 0) >= n for d, n in targets.items())

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _fleet(run: Path, name: str, broker: LocalMosquitto, devs: list[dict[str, Any]],
           **spec: Any) -> subprocess.Popen[str]:  # fmt: skip
    path = run / f"{name}.json"
    path.write_text(json.dumps({
        "broker": ["127.0.0.1", broker.port], "link_bytes_per_s": LINK, "rtt_ms": 40.0,
        "spread_s": SPREAD, "seed": hash(name) & 0xFFFF, "resend_after": 20.0,
        "devices": devs, **spec,
    }))  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bench.blackout_fleet", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(run / f"{name}.log").open("w"),
        text=True,
    )


def _ho_peak_mb(proc: subprocess.Popen[bytes]) -> float:
    """Peak resident memory of head office: the service and its screening workers."""
    pids = [proc.pid]
    kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    if kids.exists():
        pids += [int(p) for p in kids.read_text().split()]
    return sum(peak_rss_mb(p) for p in pids if Path(f"/proc/{p}").exists())


def _register(url: str, devs: list[dict[str, Any]]) -> None:
    db = Database(url)
    db.migrate(MIGRATIONS)
    for d in devs:
        registry.register(db, d["device"], d["tenant"], d["store"], bytes.fromhex(d["pub"]))
    db.close()


def _last_line(p: subprocess.Popen[str]) -> dict[str, Any]:
    assert p.stdout is not None
    lines = [ln for ln in p.stdout.read().splitlines() if ln.strip()]
    return json.loads(lines[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("backend", "follow", "late"),
    [
        ("sqlite", True, 0.0),
        ("postgresql", True, 0.0),
        ("sqlite", True, HO_LATE),
        ("sqlite", False, HO_LATE),
    ],
    ids=["sqlite", "postgresql", "sqlite-ho-late", "sqlite-ho-late-terminals-ignore-progress"],
)
def test_blackout(benchmark: Any, tmp_path: Path, backend: str, follow: bool, late: float,
                  request: pytest.FixtureRequest) -> None:  # fmt: skip
    """``ho-late``: head office comes back ``HO_LATE`` seconds after the stores (which
    reconnect within 10 s), so every terminal's first 512 records (``max_ahead``) wait
    queued in the broker and head office needs longer than the terminals' 20 s resend timer
    to reach the last of them; ``terminals-ignore-progress``: the same with terminals that
    do not follow head office's progress heartbeat (their timer alone), for comparison."""
    devs = backlogs(STORES, PER_STORE)
    records = len(devs) * PER_DAY * DAYS
    res: dict[str, Any] = {}

    def run_once() -> None:
        run = tmp_path / "run"
        mine = _copy(devs, run)
        url = ledger_for(backend, run, request)
        _register(url, mine)
        broker = LocalMosquitto(run / "mosquitto")
        broker.start()
        ho = serve(url, broker, run / "serve.log")
        if late:  # head office's session exists, so the broker queues records for it
            ho.terminate()
            ho.wait(30)
        watch = AckWatch(broker)
        # four processes of terminals, and one terminal alone (its memory is a terminal's)
        groups = [mine[i::4] for i in range(4)]
        alone = groups[3].pop()
        t0 = time.monotonic()
        follow_max = 900.0 if follow else 0.0
        spread = 10.0 if late else SPREAD
        procs = [
            _fleet(run, f"fleet{i}", broker, g, follow_max=follow_max, spread_s=spread)
            for i, g in enumerate(groups)
        ]
        procs.append(_fleet(run, "alone", broker, [alone], follow_max=follow_max, spread_s=spread))
        if late:  # the scenario: head office is back this much later than the stores
            time.sleep(late)
            t0 = time.monotonic()  # timed from head office's return
            ho = serve(url, broker, run / "serve.log")
        targets = {d["device"]: PER_DAY * DAYS for d in mine}
        peak = 0.0
        while not watch.done(targets):
            assert time.monotonic() - t0 < 1800, (run / "serve.log").read_text()[-2000:]
            peak = max(peak, _ho_peak_mb(ho))
            time.sleep(0.5)
        res["drain_s"] = time.monotonic() - t0
        res["ho_peak_mb"] = max(peak, _ho_peak_mb(ho))
        outs = [_last_line(p) for p in procs]
        res["published"] = sum(o["published"] for o in outs)
        res["fleet_peak_mb"] = max(o["peak_rss_mb"] for o in outs[:-1])
        res["terminal_peak_mb"] = outs[-1]["peak_rss_mb"]
        ho.send_signal(signal.SIGTERM)
        ho.wait(30)
        watch.close()
        broker.stop()

    benchmark.pedantic(run_once, rounds=1, iterations=1)
    benchmark.extra_info.update(
        {
            "backend": backend,
            "terminals_follow_progress": follow,
            "stores": STORES,
            "terminals": len(devs),
            "records": records,
            "reconnect_spread_s": 10.0 if late else SPREAD,
            "head_office_back_after_s": late,
            "link_kbit_s": LINK * 8 // 1000,
            "drain_s": round(res["drain_s"], 1),
            "records_per_s": round(records / res["drain_s"]),
            "publishes_per_record": round(res["published"] / records, 3),
            "duplicate_publishes_pct": round(100 * (res["published"] - records) / records, 2),
            "ho_peak_mb": round(res["ho_peak_mb"], 1),
            "terminal_peak_mb": res["terminal_peak_mb"],
            "fleet_process_peak_mb": res["fleet_peak_mb"],
            "goal": "publishes per record <= 1.05",
        }
    )


def test_broker_restart(benchmark: Any, tmp_path: Path) -> None:
    """50 terminals (caught up) keep selling, two sales a second each, while the broker
    restarts (its store saved) and stays down 3 s.  Timed from head office's first ack
    after the restart (head office back) and from the broker's start to every terminal
    having everything it recorded before the selling stopped acknowledged."""
    devs = backlogs(STORES, PER_STORE)[:50]
    res: dict[str, float] = {}

    def run_once() -> None:
        run = tmp_path / "run"
        mine = _copy(devs, run)
        url = f"sqlite:///{run}/ledger.db"
        _register(url, mine)
        broker = LocalMosquitto(run / "mosquitto")
        broker.start()
        ho = serve(url, broker, run / "serve.log")
        watch = AckWatch(broker)
        fleets = [
            _fleet(run, f"fleet{i}", broker, mine[i::2], spread_s=1.0, trickle_s=0.5)
            for i in range(2)
        ]
        for f in fleets:  # every terminal has started and sells
            assert f.stdout is not None
            while "trickling" not in f.stdout.readline():
                pass
        t0 = time.monotonic()
        while not watch.done({d["device"]: PER_DAY * DAYS for d in mine}):
            assert time.monotonic() - t0 < 600
            time.sleep(0.2)
        watch.mark = time.monotonic() + 1.0  # acks from here on come after the restart
        broker.stop()
        time.sleep(3.0)  # the outage itself: the tills go on selling
        watch.first_after = None
        broker.start()
        back = time.monotonic()
        for f in fleets:
            f.send_signal(signal.SIGUSR1)
        last: dict[str, int] = {}
        for f in fleets:
            assert f.stdout is not None
            line = f.stdout.readline()
            while '"last"' not in line:
                line = f.stdout.readline()
            last.update(json.loads(line)["last"])
        while not watch.done(last):
            assert time.monotonic() - back < 600, (run / "serve.log").read_text()[-2000:]
            time.sleep(0.05)
        done = time.monotonic()
        assert watch.first_after is not None
        res["from_head_office_back_s"] = done - watch.first_after
        res["from_broker_back_s"] = done - back
        outs = [_last_line(f) for f in fleets]
        res["published"] = sum(o["published"] for o in outs)
        res["records"] = sum(last.values())
        ho.send_signal(signal.SIGTERM)
        ho.wait(30)
        watch.close()
        broker.stop()

    benchmark.pedantic(run_once, rounds=1, iterations=1)
    benchmark.extra_info.update(
        {
            "terminals": 50,
            "catch_up_from_head_office_back_s": round(res["from_head_office_back_s"], 2),
            "catch_up_from_broker_back_s": round(res["from_broker_back_s"], 2),
            "extra_publishes": int(res["published"] - res["records"]),
            "goal": "catch-up <= 2 s from head office back",
        }
    )
