"""The checkout's critical path without the bank terminal, agent start-up and memory."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.checkout import Checkout
from edge.clock import Clock
from edge.core.ruleset import RuleBook
from edge.drivers.base import PaymentResult
from edge.ledger_cache.outbox import Identity, Outbox
from edge.members import Members
from edge.protocol.record import Sealer
from tests.bench.conftest import percentile
from tests.helpers.store import Store, rules_doc

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
    """identify (phone) -> quote -> payment intent -> sign -> durable commit (fsync)."""
    key = Ed25519PrivateKey.generate()
    ident = Identity("hypershahr", "s1", "pos-1")
    outbox = Outbox(tmp_path / "edge.db", ident, Sealer(key, "pos-1"), Clock(210))
    book = RuleBook(rules_doc())
    co = Checkout(
        outbox,
        Members(outbox.conn, "pos-1"),
        book,
        Clock(210),
        None,
        online=lambda: True,
        notify=lambda: None,
        enroll_new_phones=False,
    )
    approved = PaymentResult(True, 0, 0, "ok", "ok", "T1", 1, 1)
    phones = [f"0912{i:07d}" for i in range(2000)]
    n = [0]

    def checkout() -> int:
        s = co.open(BASKET)
        co.identify(s.id, phone=phones[n[0] % len(phones)])
        n[0] += 1
        q = co._quote(s)
        pid = co._intent(s, q)
        rec = co._commit_sale(pid, None, s.member, "phone", q, approved)
        del co.sessions[s.id]
        return rec.seq

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
