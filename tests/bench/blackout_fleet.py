"""Terminals of several stores in one process, for the blackout benchmark.

    python -m tests.bench.blackout_fleet SPEC.json

SPEC: {"broker": [host, port], "link_bytes_per_s": int, "rtt_ms": float,
"spread_s": float, "seed": int, "resend_after": float, "follow_max": float,
"trickle_s": float | null,
"devices": [{"device", "store", "tenant", "db", "key"}]} (key: the raw private key, hex).

Each store gets one :class:`~tests.helpers.slowlink.SlowLink` its terminals share; each
terminal is the real uplink on its own outbox, started at a random moment within
``spread_s``.  With ``trickle_s`` each terminal also records a sale that often (the till
keeps selling) until SIGUSR1, after which it prints ``{"last": {device: seq}}``.  The
process ends when head office has acknowledged every record of every terminal and prints
one JSON line: publishes, resends and the process's peak memory."""

from __future__ import annotations

import json
import random
import signal
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.ledger_cache.outbox import Identity, OutboxView
from edge.protocol.mqtt import BrokerConfig
from edge.protocol.uplink import Uplink, UplinkConfig
from tests.helpers.slowlink import SlowLink


def peak_rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    rng = random.Random(spec["seed"])
    links: dict[str, SlowLink] = {}
    for d in spec["devices"]:
        if d["store"] not in links:
            links[d["store"]] = SlowLink(
                tuple(spec["broker"]), spec["link_bytes_per_s"], spec["rtt_ms"]
            )
    ups: list[tuple[dict[str, Any], Uplink, int]] = []
    start = time.monotonic()
    starts = sorted((rng.uniform(0, spec["spread_s"]), i) for i in range(len(spec["devices"])))
    trickle = spec.get("trickle_s")
    writers: dict[str, Any] = {}
    stop_trickle = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_a: stop_trickle.set())
    for at, i in starts:
        d = spec["devices"][i]
        time.sleep(max(0.0, start + at - time.monotonic()))
        view = OutboxView(d["db"])
        last, _ = view.counters()
        view.close()
        cfg = UplinkConfig(
            BrokerConfig.from_url(links[d["store"]].url, keepalive=30),
            resend_after=spec["resend_after"],
            follow_max=spec.get("follow_max", 900.0),
        )
        ident = Identity(d["tenant"], d["store"], d["device"])
        up = Uplink(cfg, partial(OutboxView, d["db"]), ident)
        up.start()
        ups.append((d, up, last))
        if trickle:
            writers[d["device"]] = (d, up)
    if trickle:
        _trickle(writers, trickle, stop_trickle, ups)
    print(json.dumps({"started": len(ups)}), flush=True)
    targets = {d["device"]: last for d, _, last in ups}
    while any(up.status()["applied_through"] < targets[d["device"]] for d, up, _ in ups):
        time.sleep(0.2)
    out = {
        "devices": len(ups),
        "records": sum(targets.values()),
        "published": sum(up.status()["published"] for _, up, _ in ups),
        "resent": sum(up.status()["resent"] for _, up, _ in ups),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    for _, up, _ in ups:
        up.stop(timeout=2)
    print(json.dumps(out), flush=True)


def _trickle(
    writers: dict[str, Any],
    every: float,
    stop: threading.Event,
    ups: list[tuple[dict[str, Any], Uplink, int]],
) -> None:
    """Each till keeps selling until SIGUSR1; the targets become the last seqs then."""
    from edge.clock import Clock
    from edge.ledger_cache.outbox import Outbox
    from edge.protocol.record import Sealer
    from tests.helpers.terminal import sale_body

    boxes = {}
    for dev, (d, _up) in writers.items():
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(d["key"]))
        ident = Identity(d["tenant"], d["store"], dev)
        boxes[dev] = Outbox(d["db"], ident, Sealer(key, dev), Clock(210))
    print(json.dumps({"trickling": len(boxes)}), flush=True)
    while not stop.wait(every):
        for dev, box in boxes.items():
            box.commit("sale", sale_body(1_000_000, earned=10), charged=True)
            writers[dev][1].notify()
    last = {dev: box.status()["last_seq"] for dev, box in boxes.items()}
    for i, (d, up, _) in enumerate(ups):
        ups[i] = (d, up, last[d["device"]])
    print(json.dumps({"last": last}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
