"""Device overheads through a pseudo-terminal: tap to UID, and a ZVT authorisation."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.drivers.pn532 import PN532Reader
from edge.drivers.rdm6300 import RDM6300Reader
from edge.drivers.zvt import ZVTTerminal
from hw_sim.pn532 import PN532Sim
from hw_sim.rdm6300 import RDM6300Sim
from hw_sim.transport import PtyServer
from hw_sim.zvt import ZVTSim
from tests.bench.conftest import percentile


def _ms(benchmark: Any) -> dict[str, float]:
    data = benchmark.stats.stats.data
    return {
        "p50_ms": round(percentile(data, 50) * 1e3, 2),
        "p99_ms": round(percentile(data, 99) * 1e3, 2),
    }


def _time_taps(
    benchmark: Any, tap: Callable[[], str], lift: Callable[[], None], *close: Callable[[], None]
) -> None:
    """100 taps, each after an untimed ``lift`` of the previous card."""
    try:
        benchmark.pedantic(tap, setup=lift, rounds=100, iterations=1, warmup_rounds=3)
    finally:
        for c in close:
            c()
    benchmark.extra_info.update(_ms(benchmark))


def test_pn532_tap_to_uid(benchmark: Any, tmp_path: Path) -> None:
    """From the card entering the field to the driver returning its UID (PN532 over HSU
    at 115200 baud on a pty, polling every 20 ms; each new UID is confirmed by a second
    poll, which guards against UIDs forged by line noise)."""
    sim = PN532Sim()
    srv = PtyServer(sim, tmp_path / "ttyNFC").start()
    reader = PN532Reader(str(tmp_path / "ttyNFC"), poll_interval=0.02)
    cards = [f"04{i:012X}" for i in range(1, 1000)]
    n = [0]

    def tap() -> str:
        card = cards[n[0] % len(cards)]
        n[0] += 1
        sim.event("tap", card=card)
        got = reader.read(5)
        assert got is not None and got.uid == card
        return got.uid

    def lift() -> None:  # untimed: the previous card leaves the field
        sim.event("remove")
        time.sleep(0.02)

    _time_taps(benchmark, tap, lift, reader.close, srv.stop)


def test_rdm6300_tap_to_uid(benchmark: Any, tmp_path: Path) -> None:
    """From the card entering the field to its UID (9600 baud, a 14-byte frame)."""
    sim = RDM6300Sim(interval=0.05)
    srv = PtyServer(sim, tmp_path / "ttyRFID").start()
    reader = RDM6300Reader(str(tmp_path / "ttyRFID"), release=0.01)
    n = [0]

    def tap() -> str:
        card = f"{n[0] + 1:010X}"
        n[0] += 1
        sim.tap(card)
        got = reader.read(5)
        assert got is not None and got.uid == card
        return got.uid

    def lift() -> None:  # untimed: the previous card leaves the field
        sim.remove()
        time.sleep(0.02)

    _time_taps(benchmark, tap, lift, reader.close, srv.stop)


def test_zvt_authorisation_round_trip(benchmark: Any, tmp_path: Path) -> None:
    """A whole approved authorisation over serial ZVT (DLE framing, ACK per frame) on a
    pty, with a terminal that answers without pauses: the protocol's own overhead."""
    sim = ZVTSim(step=0.0, receipts=False)
    srv = PtyServer(sim, tmp_path / "ttyZVT").start()
    term = ZVTTerminal(str(tmp_path / "ttyZVT"))
    term.register()

    def pay() -> int:
        r = term.authorize(1_250_000, timeout=10)
        assert r.approved
        return r.trace

    try:
        benchmark.pedantic(pay, rounds=200, iterations=1, warmup_rounds=5)
    finally:
        term.close()
        srv.stop()
    benchmark.extra_info.update(_ms(benchmark))
