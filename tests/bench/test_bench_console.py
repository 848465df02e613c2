"""The console on a chain's ledger: member search and member page on 500,000 members and
5,000,000 records (tests/bench/ledger_gen.py), and the reconciler's throughput while the
console is busy beside it."""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from cloud_broker.club import members
from cloud_broker.ledger.db import Database
from cloud_broker.ledger.schema import MIGRATIONS
from cloud_broker.local_broker import LocalMosquitto
from edge.core.ruleset import compile_rules
from tests.bench import ledger_gen
from tests.bench.conftest import percentile
from tests.bench.test_bench_reconciler import N, _records, ledger_for, reconcile
from tests.conftest import ROOT, RULES_PATH
from tests.helpers.console import Console, http_session

MEMBERS = int(os.environ.get("LOYALTY_BENCH_MEMBERS", "500000"))
RECORDS = int(os.environ.get("LOYALTY_BENCH_RECORDS", "5000000"))
SAMPLES = 1000
FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
pytestmark = pytest.mark.timeout(3600)  # the first run writes the big ledgers (minutes)


@pytest.fixture(params=["sqlite", "postgresql"])
def big_ledger(request: pytest.FixtureRequest) -> Iterator[str]:
    """The generated ledger, made once and kept (var/bench/, or schema ``bench_console`` on
    PostgreSQL) until the generator's version or the size changes."""
    if request.param == "sqlite":
        folder = ROOT / "var" / "bench"
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder}/console-{MEMBERS}-{RECORDS}.db"
        if not ledger_gen.ready(url, MEMBERS, RECORDS):
            for f in folder.glob(f"console-{MEMBERS}-{RECORDS}.db*"):
                f.unlink()
            ledger_gen.generate(url, MEMBERS, RECORDS)
        yield url
        return
    from tests.cloud.conftest import _PG_PROBLEM, PG_DSN

    if _PG_PROBLEM:
        pytest.skip(f"PostgreSQL not reachable: {_PG_PROBLEM}")
    import psycopg

    schema = f"bench_console_{MEMBERS}_{RECORDS}"
    url = f"{PG_DSN}?options=-csearch_path%3D{schema}"
    if not ledger_gen.ready(url, MEMBERS, RECORDS):
        with psycopg.connect(PG_DSN, autocommit=True) as c:
            c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            c.execute(f"CREATE SCHEMA {schema}")
        ledger_gen.generate(url, MEMBERS, RECORDS)
    yield url


def _queries(rng: random.Random) -> list[str]:
    """What support agents type: phones in every form, card ids, names."""
    out = []
    for k in range(SAMPLES):
        m = rng.randrange(MEMBERS)
        key = ledger_gen.member_key(m)
        if key.startswith("card:"):
            out.append(key[5:] if k % 2 else key.lower())
        elif k % 4 == 0:
            out.append(("0" + key[3:]).translate(FA))  # ۰۹۱۲...
        elif k % 4 == 1:
            out.append(f"+98 {key[3:6]} {key[6:9]} {key[9:]}")
        elif k % 4 == 2:
            first = ledger_gen.FIRST[m % len(ledger_gen.FIRST)]
            last = ledger_gen.LAST[(m // len(ledger_gen.FIRST)) % len(ledger_gen.LAST)]
            out.append(f"{first} {last[: 1 + k % 3]}")  # a name being typed
        else:
            out.append("00" + key[1:])
    return out


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def _server(resp: Any, out: list[float]) -> None:
    """The console's own time for a request (its Server-Timing header)."""
    assert resp.status_code == 200, resp.text[-500:]
    out.append(float(resp.headers["server-timing"].split("dur=")[1]))


def test_member_search_and_page(benchmark: Any, big_ledger: str, tmp_path: Path) -> None:
    """p99 of the console's member search and member page: inside head office (the club
    function the page calls) and over HTTP from the console process (render included)."""
    rng = random.Random(7)
    queries = _queries(rng)
    pages = [ledger_gen.member_key(rng.randrange(MEMBERS)) for _ in range(SAMPLES)]
    rs = compile_rules(__import__("json").loads(RULES_PATH.read_text("utf-8")))
    db = Database(big_ledger)
    db.migrate(MIGRATIONS)  # a ledger made by an older generator run: today's schema
    console = Console(big_ledger, tmp_path)
    http = http_session(console, "support")
    figures: dict[str, float] = {}

    def run() -> None:
        for q in queries[:100] + pages[:100]:  # warm the caches the way a day's work does
            members.search(db, q)
        search = [_timed(lambda q=q: members.search(db, q)) for q in queries]
        page = [_timed(lambda m=m: members.page(db, rs, m)) for m in pages]
        found = sum(1 for q in queries[:200] if members.search(db, q))
        s_search: list[float] = []
        s_page: list[float] = []
        s_today: list[float] = []
        h_search = [
            _timed(lambda q=q: _server(http.get("/members", params={"q": q}), s_search))
            for q in queries
        ]
        h_page = [
            _timed(lambda m=m: _server(http.get("/members/" + quote(m, safe="")), s_page))
            for m in pages
        ]
        h_today = [_timed(lambda: _server(http.get("/"), s_today)) for _ in range(50)]
        r = http.get("/members/" + quote(pages[0], safe=""))
        assert r.status_code == 200 and 'data-test="points"' in r.text
        figures.update(
            search_p99_ms=percentile(search, 99),
            search_p50_ms=percentile(search, 50),
            page_p99_ms=percentile(page, 99),
            page_p50_ms=percentile(page, 50),
            server_search_p99_ms=percentile(s_search, 99),
            server_page_p99_ms=percentile(s_page, 99),
            server_today_p99_ms=percentile(s_today, 99),
            http_search_p99_ms=percentile(h_search, 99),
            http_page_p99_ms=percentile(h_page, 99),
            http_today_p99_ms=percentile(h_today, 99),
            found_share=found / 200,
        )

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        http.close()
        console.stop()
        db.close()
    assert figures["found_share"] > 0.95  # the queries find their members
    benchmark.extra_info.update(
        {
            "backend": big_ledger.split(":", 1)[0],
            "members": MEMBERS,
            "records": RECORDS,
            **{k: round(v, 2) for k, v in figures.items()},
            "goal": "p99 <= 50 ms (search and page)",
        }
    )


class Load:
    """Support agents at the console beside the reconciler: ``agents`` threads, each
    opening a page (a search, a member, today's figures) and reading it for ``think`` s."""

    def __init__(self, console: Console, agents: int, think: float) -> None:
        self.console, self.agents, self.think = console, agents, think
        self.stop_ = threading.Event()
        self.done = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._agent, args=(i,)) for i in range(agents)]

    def _agent(self, i: int) -> None:
        rng = random.Random(i)
        http = http_session(self.console, "support")
        try:
            while not self.stop_.is_set():
                member = f"+98912{rng.randrange(2000):07d}"
                path = rng.choice(
                    ["/", f"/members?q={member[3:]}", "/members/" + quote(member, safe="")]
                )
                http.get(path)
                with self.lock:
                    self.done += 1
                self.stop_.wait(self.think)
        finally:
            http.close()

    def start(self) -> None:
        self.t0 = time.perf_counter()
        for t in self.threads:
            t.start()

    def stop(self) -> float:
        self.stop_.set()
        for t in self.threads:
            t.join()
        return self.done / (time.perf_counter() - self.t0)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_reconciler_beside_a_busy_console(
    benchmark: Any, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """10,000 live sale records reconciled alone, then again with the console serving
    support agents on the same ledger: the second rate next to the first."""
    (tmp_path / "t").mkdir()
    terms, msgs = _records(tmp_path / "t")
    agents, think = 8, 0.25
    figures: dict[str, float] = {}

    def run() -> None:
        alone = tmp_path / "alone"
        alone.mkdir()
        dt, broker = reconcile(alone, ledger_for(backend, alone, request), terms, msgs, "live")
        broker.stop()
        figures["alone_per_s"] = N / dt
        busy = tmp_path / "busy"
        busy.mkdir()
        url = ledger_for(backend, busy, request)
        loads: list[Load] = []

        def beside(_b: LocalMosquitto) -> Callable[[], None]:
            console = Console(url, busy)
            load = Load(console, agents, think)
            load.start()
            loads.append(load)

            def stop() -> None:
                figures["console_requests_per_s"] = load.stop()
                console.stop()

            return stop

        dt, broker = reconcile(busy, url, terms, msgs, "live", beside)
        broker.stop()
        figures["with_console_per_s"] = N / dt

    benchmark.pedantic(run, rounds=1, iterations=1)
    shutil.rmtree(tmp_path / "t", ignore_errors=True)
    benchmark.extra_info.update(
        {
            "backend": backend,
            "records": N,
            "console_agents": agents,
            "think_s": think,
            "alone_per_s": round(figures["alone_per_s"]),
            "with_console_per_s": round(figures["with_console_per_s"]),
            "console_requests_per_s": round(figures["console_requests_per_s"], 1),
            "ratio": round(figures["with_console_per_s"] / figures["alone_per_s"], 2),
            "goal": "ratio >= 0.9",
        }
    )
