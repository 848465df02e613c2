"""Messages: planning a campaign to a million members, and the sender's throughput against
the local fake of Kavenegar's API next to the fake's own rate, in the same run."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.club.operators import Operator
from cloud_broker.ledger.db import Database
from cloud_broker.ledger.schema import MIGRATIONS
from cloud_broker.messages.gateway import Secret
from cloud_broker.messages.kavenegar import Kavenegar
from cloud_broker.messaging import campaigns, outbox, sender, settings
from edge.core.ruleset import compile_rules
from tests.bench import ledger_gen
from tests.conftest import ROOT
from tests.helpers.headoffice import HO
from tests.helpers.store import rules_doc
from tests.helpers.terminal import Terminal
from tests.messages.conftest import KEY
from tests.messages.fakes import FakeKavenegar

MEMBERS = int(os.environ.get("LOYALTY_BENCH_SMS_MEMBERS", "1000000"))
MINA = Operator(1, "mina", "Mina", "admin")
pytestmark = pytest.mark.timeout(3600)


@pytest.fixture(params=["sqlite", "postgresql"])
def million(request: pytest.FixtureRequest) -> Iterator[str]:
    """A million members (90% with phones), made once and kept."""
    records = MEMBERS  # a sale each on average: what planning reads is the members
    if request.param == "sqlite":
        folder = ROOT / "var" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder}/members-{MEMBERS}.db"
        if not ledger_gen.ready(url, MEMBERS, records):
            for f in folder.glob(f"members-{MEMBERS}.db*"):
                f.unlink()
            ledger_gen.generate(url, MEMBERS, records, days=30)
        yield url
        return
    from tests.cloud.conftest import _PG_PROBLEM, PG_DSN

    if _PG_PROBLEM:
        pytest.skip(f"PostgreSQL not reachable: {_PG_PROBLEM}")
    import psycopg

    schema = f"bench_members_{MEMBERS}"
    url = f"{PG_DSN}?options=-csearch_path%3D{schema}"
    if not ledger_gen.ready(url, MEMBERS, records):
        with psycopg.connect(PG_DSN, autocommit=True) as c:
            c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            c.execute(f"CREATE SCHEMA {schema}")
        ledger_gen.generate(url, MEMBERS, records, days=30)
    yield url


def test_planning_a_campaign_to_a_million_members(benchmark: Any, million: str) -> None:
    db = Database(million)
    db.migrate(MIGRATIONS)  # a ledger made by an older generator run: today's schema
    rs = compile_rules(rules_doc(1, tenant=ledger_gen.TENANT))
    figures: dict[str, Any] = {}

    def run() -> None:
        db.run(lambda tx: tx.execute("DELETE FROM sms_outbox"))
        cid = campaigns.create(db, rs, MINA, "bench", "{name} عزیز، {points} امتیاز دارید.",
                               {"all": True})  # fmt: skip
        t0 = time.perf_counter()
        est = campaigns.estimate(db, cid)
        t1 = time.perf_counter()
        campaigns.schedule(db, MINA, cid, None)
        planned = campaigns.due(db, int(time.time() * 1000) + 1)
        t2 = time.perf_counter()
        queued = 0
        while True:  # the chunks the sender's jobs queue ahead of sending, all at once here
            n = campaigns.feed(db, ahead=10**9)
            if not n:
                break
            queued += n
        t3 = time.perf_counter()
        figures.update(estimate_s=t1 - t0, plan_s=t2 - t1, queue_s=t3 - t2,
                       recipients=est.recipients, planned=planned, queued=queued)  # fmt: skip

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
        assert figures["planned"] == figures["recipients"] == figures["queued"] >= MEMBERS * 8 // 10
    finally:
        db.run(lambda tx: tx.execute("DELETE FROM sms_outbox"))
        db.close()
    benchmark.extra_info.update({
        "backend": million.split(":", 1)[0], "members": MEMBERS,
        "recipients": figures["recipients"], "count_and_price_s": round(figures["estimate_s"], 2),
        "plan_s": round(figures["plan_s"], 2), "queue_all_rows_s": round(figures["queue_s"], 1),
        "goal": "plan <= 10 s",
    })  # fmt: skip


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sender_throughput_next_to_the_gateway(
    benchmark: Any, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    from tests.bench.test_bench_reconciler import ledger_for

    url = ledger_for(backend, tmp_path, request)
    ho = HO(url)
    pos = Terminal(tmp_path)
    ho.register(pos)
    n = 3000
    phones = [f"+98912{i:07d}" for i in range(n)]
    for i in range(0, n, 500):
        ho.feed(pos, [pos.sale(p, 1_000_000, earned=100) for p in phones[i : i + 500]])
    settings.save(ho.db, MINA, {"quiet_start": 0, "quiet_end": 0, "send_rate_per_min": 10**7,
                                "cap_count": 1000})  # fmt: skip
    fake = FakeKavenegar(KEY)
    fake.raw = True  # answers at once, keeps nothing: the limit of this machine's HTTP
    gw = Kavenegar(Secret(KEY), base_url=fake.base_url, sender="1000", timeout=10)
    figures: dict[str, float] = {}

    def run() -> None:
        t0 = time.perf_counter()
        for i in range(n):  # the adapter alone, one after the other, as the sender sends
            gw.send(phones[i], "سلام", ref=f"raw-{i}")
        figures["raw_per_s"] = n / (time.perf_counter() - t0)
        cid = campaigns.create(ho.db, ho.rs, MINA, "bench", "{name} عزیز", {"all": True},
                               rate_per_min=100_000)  # fmt: skip
        campaigns.schedule(ho.db, MINA, cid, None)
        campaigns.due(ho.db, int(time.time() * 1000) + 1)
        while campaigns.feed(ho.db, ahead=10**9):
            pass
        s = sender.Sender(ho.db, gw, lambda: ho.rs, "bench")
        t0 = time.perf_counter()
        while s.step(batch=200):
            pass
        figures["sender_per_s"] = n / (time.perf_counter() - t0)
        figures["sent"] = outbox.counts(ho.db, cid).get("sent", 0)

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        gw.close()
        fake.close()
        ho.close()
    assert figures["sent"] == n
    benchmark.extra_info.update({
        "backend": backend, "messages": n, "sender_per_s": round(figures["sender_per_s"]),
        "fake_gateway_raw_per_s": round(figures["raw_per_s"]),
        "ratio": round(figures["sender_per_s"] / figures["raw_per_s"], 2),
    })  # fmt: skip
