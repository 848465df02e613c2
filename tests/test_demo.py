"""./dev demo: the whole club end to end, and the checks that hold head office to the truth.

The demo runs as a newcomer runs it (``python -m demo``), in a subprocess, on its own broker
and on one the test provides (``--broker``); the comparisons it prints are tested with
doctored inputs so that a disagreement cannot pass unnoticed."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.local_broker import LocalMosquitto
from demo import run as demo_run
from demo import world
from demo.report import (
    OutboxState,
    member_check,
    money_checks,
    outage_check,
    outbox_check,
    service_check,
)
from demo.shoppers import Cashier, Truth, Visit, make_customers
from demo.world import DemoError, HeadOffice, StoreTerminal
from tests.conftest import ROOT

CHECKS = [
    "every approved sale is in the ledger exactly once",
    "what each bank terminal charged and paid back is what head office booked",
    "every refund is in the ledger exactly once",
    "member balances equal the receipts",
    "every outbox is empty and acknowledged",
    "`cloud_broker ledger check` passes",
    "nothing quarantined",
    "the store that lost its link caught up",
    "every customer was recognised and served",
    "head office's console shows each member as the ledger holds them",
]


def _demo(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``python -m demo --exit ARGS`` in its own process group: a demo that overruns is
    killed with everything it started (broker, head office, agents, simulators), so no
    orphan keeps a port or a pseudo-terminal for the tests after it."""
    argv = [sys.executable, "-m", "demo", "--exit", *args]
    p = subprocess.Popen(
        argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail(f"the demo ran over {timeout:g} s:\n{out[-6000:]}\n{err[-3000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):  # what the demo left in its group
            os.killpg(p.pid, signal.SIGKILL)  # (nothing, when it is well)
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def test_demo_runs_the_club_and_head_office_agrees_with_the_ground_truth(tmp_path: Path) -> None:
    work = tmp_path / "w"
    res = _demo("--stores", "3", "--customers", "10", "--visits", "4", "--pace", "0.05",
                "--offline-store", "2", "--workdir", str(work))  # fmt: skip
    out = res.stdout
    assert res.returncode == 0, out[-6000:] + res.stderr[-3000:]
    assert "s2 will lose its link" in out and "s2 loses its link" in out
    assert "s2 ○ OFFLINE" in out  # the outage is visible
    assert out.count("provisioned: firmware_tools init, enroll, selftest") == 3
    assert f"All {len(CHECKS)} checks pass" in out and "✘" not in out
    assert "bad_phone" in out and "۱۱ رقم" in out  # the mistyped number, for the customer
    assert "رسید مشتری" in out and "Points earned" in out  # a receipt in both languages
    # a sample of the reconciled stream, readable, with every phone number masked
    assert re.search(r"refund +s\d/pos-\d #\d+ .* refunded [\d,]+ IRR", out)
    assert not re.search(r"\+98\d{10}", out), "a full phone number is printed"
    summary = json.loads((work / "summary.json").read_text("utf-8"))
    assert summary["ok"] is True and all(c["ok"] for c in summary["checks"])
    assert [c["name"] for c in summary["checks"]] == CHECKS
    assert "40 of 40 visits served" in out
    # members' names are head office's (entered through the club), the console's address
    assert re.search(r"(مریم|رضا|سارا|علی|زهرا) \((pos-phone|keypad|nfc|rfid|qr)\)", out)
    assert re.search(r"http://127\.0\.0\.1:\d+/ +user admin +password \S{12,}", out)
    assert "press Ctrl-C" not in out  # --exit: a script's demo ends
    truth = summary["ground_truth"]
    assert len(truth["sales"]) > 20 and truth["declined"] >= 1 and truth["refunds"]
    moves = [h for hs in truth["bank_charged"].values() for h in hs]
    charged = sum(h["amount"] for h in moves if h["kind"] == "payment")
    assert charged == sum(s["amount"] for s in truth["sales"])
    back = sum(h["amount"] for h in moves if h["kind"] != "payment")
    assert back == sum(r["refund_amount"] for r in truth["refunds"])  # refunds to the card
    assert len({h["terminal_id"] for h in moves}) == 4  # three terminals, one swapped
    assert summary["head_office"]["members"] == {
        m: {"points": v["points"], "wallet": v["wallet"]} for m, v in truth["members"].items()
    }
    members = {s["member"] for s in truth["sales"] if s["member"]}
    assert any(m.startswith("card:APP-") for m in members)  # QR from the club app
    assert any(m.startswith("card:04") for m in members)  # NFC
    assert any(m.startswith("card:0F") for m in members)  # RFID
    assert any(m.startswith("+98") for m in members)  # phone numbers
    tiers = {m["tier"] for m in summary["head_office"]["top_members"]}
    assert tiers - {"regular"}, tiers  # somebody climbed a tier
    # everything was kept: configs, device keys, the ledger
    assert (work / "head-office" / "ledger.db").exists()
    assert (work / "stores" / "s1" / "edge.toml").exists()
    assert [s["offline_for_part_of_the_run"] for s in summary["stores"]] == [False, True, False]


def test_demo_uses_an_existing_broker(tmp_path: Path, broker: LocalMosquitto) -> None:
    res = _demo("--broker", broker.url, "--stores", "2", "--customers", "4", "--visits", "2",
                "--pace", "0")  # fmt: skip
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
    assert f"{broker.url} (yours)" in res.stdout
    assert "checks pass" in res.stdout


def test_a_tiny_run_cuts_the_busiest_store_or_none(tmp_path: Path) -> None:
    """One customer, two visits: the store they both fall in loses its link (the default
    store s2 has none); one visit alone is too few for an outage."""
    res = _demo("--stores", "2", "--customers", "1", "--visits", "2", "--pace", "0",
                "--workdir", str(tmp_path / "w"))  # fmt: skip
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
    summary = json.loads((tmp_path / "w" / "summary.json").read_text("utf-8"))
    assert [c["name"] for c in summary["checks"]] == CHECKS
    outage = next(c for c in summary["checks"] if c["name"] == CHECKS[7])
    cut = next(s["store"] for s in summary["stores"] if s["offline_for_part_of_the_run"])
    assert outage["ok"] and outage["detail"].startswith(f"{cut}: "), outage
    assert not outage["detail"].startswith(f"{cut}: 0 records"), outage
    res = _demo("--stores", "2", "--customers", "1", "--visits", "1", "--pace", "0")
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
    assert "no outage: too few visits" in res.stdout and "All 9 checks pass" in res.stdout
    assert CHECKS[7] not in res.stdout and "loses its link" not in res.stdout


def test_a_demo_that_fails_during_set_up_stops_what_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[Any] = []
    ho_start, broker_start = HeadOffice.start, LocalMosquitto.start

    def start_ho(self: HeadOffice) -> None:
        ho_start(self)
        started.append(self.proc)

    def start_broker(self: LocalMosquitto, timeout: float = 10.0) -> None:
        broker_start(self, timeout)
        started.append(self.proc)

    def provision(self: StoreTerminal, ho: HeadOffice) -> None:
        raise DemoError("the technician's laptop died")

    monkeypatch.setattr(HeadOffice, "start", start_ho)
    monkeypatch.setattr(LocalMosquitto, "start", start_broker)
    monkeypatch.setattr(StoreTerminal, "provision", provision)
    code = demo_run.main(["--customers", "1", "--visits", "1", "--workdir", str(tmp_path / "w")])
    assert code == 2
    assert "could not be set up: the technician's laptop died" in capsys.readouterr().out
    assert len(started) == 2 and all(p.poll() is not None for p in started), started


def test_a_service_that_never_says_it_is_ready_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Head office on a broker that is not there keeps retrying and never says "serving"."""
    procs: list[subprocess.Popen[bytes]] = []
    popen = subprocess.Popen

    def recording(*a: Any, **k: Any) -> subprocess.Popen[bytes]:
        p: subprocess.Popen[bytes] = popen(*a, **k)
        procs.append(p)
        return p

    monkeypatch.setattr(world.subprocess, "Popen", recording)
    with pytest.raises(DemoError, match="said nothing in 2 s"):
        world._spawn(
            ["cloud_broker", "--ledger", f"sqlite:///{tmp_path}/l.db", "serve", "--broker",
             "mqtt://127.0.0.1:1"],
            tmp_path / "serve.log", "serving", "head office", start_timeout=2,
        )  # fmt: skip
    assert len(procs) == 1 and procs[0].poll() is not None


def test_the_broker_url_is_parsed_as_the_agent_parses_it(tmp_path: Path) -> None:
    args = demo_run.parse_args(["--broker", "mqtt://127.0.0.1"])  # no port: 1883
    assert args.broker == "mqtt://127.0.0.1"
    t = StoreTerminal(tmp_path, 0, args.broker, via_link=True)
    try:
        assert t.link is not None and t.link.upstream == ("127.0.0.1", 1883)
    finally:
        t.stop()


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--stores", "1"], "--stores must be at least 2"),
        (["--offline-store", "4"], "--offline-store must be between 1 and --stores (3)"),
        (["--offline-store", "0"], "--offline-store must be between 1 and --stores (3)"),
        (["--broker", "mqtts://mq:8883"], "the demo's stores speak plain MQTT"),
        (["--broker", "mqtt://127.0.0.1:port"], "bad broker URL"),
        (["--broker", "127.0.0.1:1883"], "expected mqtt://HOST:PORT"),
    ],
)
def test_bad_arguments_are_refused_with_usage(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        demo_run.parse_args(argv)
    assert e.value.code == 2 and error in capsys.readouterr().err


def test_the_offline_store_is_the_busiest_unless_named() -> None:
    visits: list[Any] = [object()] * 3
    queues = [visits[:1], visits[:3], visits[:2]]
    assert demo_run.offline_store(demo_run.parse_args([]), queues) == 1
    assert demo_run.offline_store(demo_run.parse_args(["--offline-store", "3"]), queues) == 2
    assert demo_run.offline_store(demo_run.parse_args(["--offline-store", "1"]), queues) is None


def test_quotes_demo_prints_bilingual_quotes_and_succeeds() -> None:
    """``python -m edge.quote_demo``: the rule engine alone, quotes printed for people."""
    res = subprocess.run(
        [sys.executable, "-m", "edge.quote_demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert "all quotes consistent" in res.stdout
    assert "PAYABLE" in res.stdout and "قابل پرداخت" in res.stdout
    assert "+989121234567" in res.stdout  # typed in Persian digits, normalised


def test_a_bad_argument_is_refused_with_usage() -> None:
    res = _demo("--stores", "1")
    assert res.returncode == 2 and "--stores must be at least 2" in res.stderr


class _DeadLine:
    """A terminal whose answers break off half-way: what http.client raises then is no
    OSError."""

    store, device = "s1", "pos-1"

    def api(self, *_a: Any, **_k: Any) -> tuple[int, dict[str, Any]]:
        raise http.client.IncompleteRead(b'{"sess', 40)


def test_a_cashier_reports_any_failure_and_serves_the_rest_of_the_queue() -> None:
    customers = make_customers(3, random.Random(1))
    visits = [Visit(c, [{"sku": "X", "category": "grocery", "qty": 1, "unit_price": 10}])
              for c in customers]  # fmt: skip
    truth = Truth()
    seen: list[int] = []
    cashier = Cashier(_DeadLine(), visits, truth, 0, lambda _t, done, _n: seen.append(done))  # type: ignore[arg-type]
    cashier.run()
    assert seen == [1, 2, 3] and truth.served == 3
    assert len(truth.errors) == 3 and "IncompleteRead" in truth.errors[0]
    assert not service_check(truth, 3).ok


def test_service_check_counts_the_visits() -> None:
    truth = Truth()
    truth.served, truth.declined = 4, 1
    truth.sales = [{}] * 3
    assert service_check(truth, 4).ok
    short = service_check(truth, 5)  # a cashier stopped before the end of the queue
    assert not short.ok and short.detail.startswith("4 of 5 visits served (3 sales, 1 declined)")


def _state(depth: int = 0, last: int = 7, applied: int = 7, unknown: int = 0) -> OutboxState:
    return OutboxState("s2", depth, last, applied, unknown)


def test_outbox_and_outage_checks_hold_the_cut_store_to_its_numbers() -> None:
    assert outbox_check([_state(), _state()]).ok
    assert not outbox_check([_state(), _state(depth=1)]).ok
    assert not outbox_check([_state(unknown=1)]).ok
    assert not outbox_check([_state(), "the agent of s3 did not answer (refused)"]).ok
    late = outbox_check([_state()], gave_up_after=120)
    assert not late.ok and late.detail.startswith("head office had not caught up after 120 s")

    ok = outage_check("s2", 3, _state())
    assert ok.ok and ok.detail == (
        "s2: 3 records made offline are at head office; outbox 0, last seq 7, applied through 7"
    )
    assert not outage_check("s2", 0, _state()).ok  # it never sold offline
    assert not outage_check("s2", 3, _state(depth=2, applied=5)).ok  # not caught up
    assert not outage_check("s2", 3, _state(applied=6)).ok
    assert not outage_check("s2", 3, "the agent of s2 did not answer (refused)").ok


SALES = [("pos-1", 2, 1_000_000, 1), ("pos-1", 3, 0, None), ("pos-2", 1, 500_000, 1)]
# pos-2's bank terminal was swapped for 29000009 after its first sale: traces start at 1 again
BANK = [("29000001", "in", 1_000_000), ("29000002", "in", 500_000), ("29000009", "in", 70)]
BOOKED = [("29000001", "in", 1_000_000), ("29000002", "in", 500_000), ("29000009", "in", 70)]
SALES_ALL = [*SALES, ("pos-2", 2, 70, 1)]
MONEY = "what each bank terminal charged and paid back is what head office booked"
ONCE = "every approved sale is in the ledger exactly once"


def _failed(checks: list) -> list[str]:  # type: ignore[type-arg]
    return [c.name for c in checks if not c.ok]


def test_money_checks_pass_only_when_everything_matches() -> None:
    refunds = [("pos-1", 4, 100)]
    back = [("29000001", "back", 100)]
    good = money_checks(
        SALES_ALL, list(SALES_ALL), [*BANK, *back], [*BOOKED, *back], refunds, refunds
    )
    assert _failed(good) == []
    assert "29000009: charged 70 IRR in 1 payments" in good[1].detail
    # a sale the till approved that head office never booked
    assert ONCE in _failed(money_checks(SALES_ALL, SALES_ALL[:2], BANK, BOOKED, [], []))
    # booked twice under two sequence numbers
    twice = [*SALES_ALL, ("pos-1", 9, 1_000_000, 1)]
    failed = _failed(
        money_checks(SALES_ALL, twice, BANK, [*BOOKED, ("29000001", "in", 1_000_000)], [], [])
    )
    assert ONCE in failed and MONEY in failed
    # the bank charged something no till recorded
    assert MONEY in _failed(
        money_checks(SALES_ALL, SALES_ALL, [*BANK, ("29000002", "in", 2)], BOOKED, [], [])
    )
    # the swapped terminal's sale booked under the old terminal's id
    misbooked = [*BOOKED[:2], ("29000002", "in", 70)]
    assert MONEY in _failed(money_checks(SALES_ALL, SALES_ALL, BANK, misbooked, [], []))
    # money went back to a card and head office has no refund through that terminal
    assert MONEY in _failed(
        money_checks(SALES_ALL, SALES_ALL, [*BANK, *back], BOOKED, refunds, refunds)
    )
    assert "every refund is in the ledger exactly once" in _failed(
        money_checks(SALES_ALL, SALES_ALL, BANK, BOOKED, refunds, [])
    )


def test_member_check_names_the_member_who_differs() -> None:
    want = {"+989121234567": {"points": 10, "wallet": 5, "spend": 1}}
    assert member_check(want, {"+989121234567": {"points": 10, "wallet": 5}}).ok
    bad = member_check(want, {"+989121234567": {"points": 11, "wallet": 5}})
    assert not bad.ok and "+989121234567" in bad.detail
    assert not member_check(want, {}).ok


def test_in_a_terminal_the_demo_keeps_the_console_up_until_ctrl_c(tmp_path: Path) -> None:
    """Run as a newcomer runs it (stdin a terminal): after the checks the console answers
    the login the demo printed, until Ctrl-C stops everything."""
    import pty

    from demo.console import ConsoleClient
    from tests.helpers.wait import until

    master, slave = pty.openpty()
    p = subprocess.Popen(
        [sys.executable, "-m", "demo", "--stores", "2", "--customers", "2", "--visits", "1",
         "--pace", "0", "--workdir", str(tmp_path / "w")],
        cwd=ROOT, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # a failure below kills the demo with all it started
    )  # fmt: skip
    os.close(slave)
    lines: list[str] = []
    try:
        assert p.stdout is not None
        for line in p.stdout:
            lines.append(line)
            if "press Ctrl-C" in line:
                break
        out = "".join(lines)
        assert "press Ctrl-C" in out, out[-4000:]
        m = re.search(r"(http://127\.0\.0\.1:\d+)/ +user admin +password (\S+)", out)
        assert m, out[-3000:]
        client = ConsoleClient(m.group(1))
        assert client.login("admin", m.group(2))
        assert "Members" in client.get("/members")
        assert not client.login("admin", "not the password")
        p.send_signal(signal.SIGINT)
        assert p.wait(60) == 0
        assert "stopping" in p.stdout.read()
        assert until(lambda: not _answers(m.group(1)), 10)  # and the console is gone
    finally:
        os.close(master)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/login", timeout=2):
            return True
    except OSError:
        return False
