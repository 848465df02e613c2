"""The checkout's critical path without the bank terminal, agent start-up and memory."""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.bench.conftest import percentile
from tests.helpers.checkout import FakeBank, make_checkout
from tests.helpers.store import Store

BASKET = {
    "lines": [
        {
            "sku": f"SKU-{i}",
            "category": ["dairy", "nuts", "bakery"][i % 3],
            "qty": 1 + i % 3,
            "unit_price": 150_000 + 10_000 * i,
        }
        for i in range(12)
    ]
}


def test_checkout_critical_path(benchmark: Any, tmp_path: Path) -> None:
    """open -> identify (phone) -> pay: quote, payment intent, the charge (a bank terminal
    that approves at once), sign, durable commit (fsync)."""
    co = make_checkout(tmp_path, FakeBank())
    phones = [f"0912{i:07d}" for i in range(2000)]
    n = [0]

    def checkout() -> int:
        s = co.open(BASKET)
        co.identify(s.id, phone=phones[n[0] % len(phones)])
        n[0] += 1
        r = co.pay(s.id)
        del co.sessions[s.id]
        return int(r["record"]["seq"])

    benchmark.pedantic(checkout, rounds=1000, iterations=1, warmup_rounds=20)
    data = benchmark.stats.stats.data
    benchmark.extra_info.update(
        {
            "p50_ms": round(percentile(data, 50) * 1e3, 2),
            "p99_ms": round(percentile(data, 99) * 1e3, 2),
            "basket_lines": len(BASKET["lines"]),
            "goal": "p99 <= 10 ms",
        }
    )


def test_agent_startup(benchmark: Any, tmp_path: Path) -> None:
    """From `python -m edge run` to the POS API answering (no devices, no broker)."""
    stores: list[Store] = []

    def start() -> float:
        s = Store(tmp_path / f"s{len(stores)}")
        stores.append(s)
        t0 = time.perf_counter()
        s.start()
        assert s.status()["rules_version"] == 1
        dt = time.perf_counter() - t0
        s.stop()
        return dt

    benchmark.pedantic(start, rounds=3, iterations=1)
    benchmark.extra_info["median_s"] = round(benchmark.stats.stats.median, 2)


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("display", [False, True], ids=["display_off", "display_on"])
def test_agent_memory_after_10000_checkouts(benchmark: Any, tmp_path: Path, display: bool) -> None:
    """Resident memory of the agent process after 10,000 checkouts through the POS API,
    each identified by phone and paid through the simulated ZVT terminal; with the customer
    display on, a screen follows every step by server-sent events the whole time."""
    from cloud_broker.local_broker import free_port
    from hw_sim.zvt import ZVTSim

    port = free_port()
    s = Store(tmp_path, display={"listen": f"127.0.0.1:{port}"} if display else None)
    # a customer who pays instantly: no pauses between the terminal's messages
    s.add_sim("bank", "bank", "zvt", ZVTSim(step=0.0005, receipts=False))
    s.start()
    assert s.proc is not None
    screens = [0]
    if display:

        def follow() -> None:  # the customer's screen: reads every update
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/events", timeout=600) as r:
                for line in r:
                    if line.startswith(b"data:"):
                        screens[0] += 1

        threading.Thread(target=follow, daemon=True).start()
    rss: dict[str, int] = {"start": _rss_kb(s.proc.pid)}
    n = 10_000

    def run() -> float:
        t0 = time.perf_counter()
        for i in range(n):
            _, v = s.api("POST", "/v1/baskets", {"basket": BASKET})
            sid = v["session"]
            s.api("POST", f"/v1/sessions/{sid}/identify", {"phone": f"0912{i % 3000:07d}"})
            code, r = s.api("POST", f"/v1/sessions/{sid}/pay")
            assert code == 200 and r["status"] == "approved", r
            if i == 999:
                rss["after_1000"] = _rss_kb(s.proc.pid)  # type: ignore[union-attr]
        return time.perf_counter() - t0

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
        rss["after_10000"] = _rss_kb(s.proc.pid)
    finally:
        s.stop()
    benchmark.extra_info.update(
        {
            "checkouts": n,
            "rss_start_mb": round(rss["start"] / 1024, 1),
            "rss_after_1000_mb": round(rss["after_1000"] / 1024, 1),
            "rss_after_10000_mb": round(rss["after_10000"] / 1024, 1),
            "checkouts_per_s": round(n / benchmark.stats.stats.median, 1),
            "display": display,
            "screens_sent": screens[0],
            "goal": "RSS <= 40 MB",
        }
    )
