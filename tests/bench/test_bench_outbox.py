"""Sign + durable commit (SQLite WAL, synchronous=FULL): records/s and latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.core import record as R
from edge.protocol import cose
from edge.protocol.record import record_hash
from tests.bench.conftest import percentile
from tests.helpers.device import BANK, make_device, sample_quote


def test_sign_and_durable_commit(benchmark: Any, tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    q = sample_quote(1)
    body = R.sale_body(q)
    member = R.member_field("phone", "+989121234567")
    bank = R.bank_field(dict(BANK, amount=q["payable"]))

    def commit() -> Any:
        return dev.outbox.commit("sale", body, member=member, bank=bank, charged=True)

    rec = benchmark.pedantic(commit, rounds=1000, iterations=1, warmup_rounds=20)
    data = benchmark.stats.stats.data
    benchmark.extra_info.update(
        {
            "p50_us": percentile(data, 50) * 1e6,
            "p99_us": percentile(data, 99) * 1e6,
            "records_per_s": round(1 / benchmark.stats.stats.mean),
            "record_bytes": len(rec.raw),
        }
    )


def test_sign_only(benchmark: Any, tmp_path: Path) -> None:
    """The signature alone, to show how much of a commit is the disk."""
    dev = make_device(tmp_path)
    payload = dev.outbox.commit("sale", R.sale_body(sample_quote(1)), charged=True).payload
    from edge.protocol import cbor

    data = cbor.encode(payload)
    raw = benchmark(lambda: cose.sign1(data, dev.key, b"dev-1"))
    assert len(record_hash(raw)) == 32
    benchmark.extra_info["records_per_s"] = round(1 / benchmark.stats.stats.mean)
