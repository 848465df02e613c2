"""The programme's preview on a chain's month: 20 sample baskets quoted under the programme
in force and under a draft, and the 30-day estimate, on a ledger of 1,000,000 sales in the
last 30 days (tests/bench/ledger_gen.py)."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cloud_broker.ledger.db import Database
from cloud_broker.ledger.schema import MIGRATIONS
from cloud_broker.programme import preview
from edge.core.ruleset import compile_rules
from tests.bench import ledger_gen
from tests.conftest import ROOT
from tests.helpers.store import rules_doc

MEMBERS = int(os.environ.get("LOYALTY_BENCH_PREVIEW_MEMBERS", "200000"))
RECORDS = int(os.environ.get("LOYALTY_BENCH_PREVIEW_RECORDS", "1000000"))
pytestmark = pytest.mark.timeout(3600)


@pytest.fixture(params=["sqlite", "postgresql"])
def month(request: pytest.FixtureRequest) -> Iterator[str]:
    """A month of a chain's sales, made once and kept (var/bench/ or schema bench_month_*)."""
    if request.param == "sqlite":
        folder = ROOT / "var" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder}/month-{MEMBERS}-{RECORDS}.db"
        if not ledger_gen.ready(url, MEMBERS, RECORDS):
            for f in folder.glob(f"month-{MEMBERS}-{RECORDS}.db*"):
                f.unlink()
            ledger_gen.generate(url, MEMBERS, RECORDS, days=30)
        yield url
        return
    from tests.cloud.conftest import _PG_PROBLEM, PG_DSN

    if _PG_PROBLEM:
        pytest.skip(f"PostgreSQL not reachable: {_PG_PROBLEM}")
    import psycopg

    schema = f"bench_month_{MEMBERS}_{RECORDS}"
    url = f"{PG_DSN}?options=-csearch_path%3D{schema}"
    if not ledger_gen.ready(url, MEMBERS, RECORDS):
        with psycopg.connect(PG_DSN, autocommit=True) as c:
            c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            c.execute(f"CREATE SCHEMA {schema}")
        ledger_gen.generate(url, MEMBERS, RECORDS, days=30)
    yield url


def test_preview_of_20_baskets_and_the_30_day_estimate(benchmark: Any, month: str) -> None:
    doc = rules_doc(1, tenant=ledger_gen.TENANT)
    current = compile_rules(doc)
    draft_doc = copy.deepcopy(doc)
    draft_doc["version"] = 2
    for r in draft_doc["rules"]:
        if r["id"] == "base-earn":
            r["points"] = 150  # half as many points again
    draft = compile_rules(draft_doc)
    baskets = [
        {"lines": [{"sku": f"SKU-{k}-{j}", "category": ("dairy", "grocery", "nuts")[j % 3],
                    "qty": 1 + j % 3, "unit_price": 250_000 * (k + 1)} for j in range(1 + k % 8)]}
        for k in range(20)
    ]  # fmt: skip
    member = ledger_gen.member_key(1)
    db = Database(month)
    db.migrate(MIGRATIONS)  # a ledger made by an older generator run: today's schema
    figures: dict[str, Any] = {}

    def run() -> None:
        t0 = time.perf_counter()
        for b in baskets:
            now, then = preview.quote_side_by_side(db, current, draft, b, member)
            assert now.quote is not None and then.quote is not None
        t1 = time.perf_counter()
        est = preview.estimate(db, draft, seed=7)
        t2 = time.perf_counter()
        figures.update(baskets_s=t1 - t0, estimate_s=t2 - t1, total_s=t2 - t0, est=est)

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        db.close()
    est = figures["est"]
    assert est.sales >= RECORDS * 9 // 10 and est.sampled > 1500 and est.refused == 0
    assert est.draft["points_earned"] > est.given["points_earned"]
    benchmark.extra_info.update(
        {
            "backend": month.split(":", 1)[0],
            "sales_in_30_days": est.sales,
            "sampled": est.sampled,
            "baskets_s": round(figures["baskets_s"], 3),
            "estimate_s": round(figures["estimate_s"], 3),
            "total_s": round(figures["total_s"], 3),
            "points_given": est.given["points_earned"],
            "points_draft": est.draft["points_earned"],
            "margin": est.margin["points_earned"],
            "goal": "total <= 2 s",
        }
    )
