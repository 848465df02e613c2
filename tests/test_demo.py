"""./dev demo: the whole club end to end, and the checks that hold head office to the truth.

The demo runs as a newcomer runs it (``python -m demo``), in a subprocess, on its own broker
and on one the test provides (``--broker``); the comparisons it prints are tested with
doctored inputs so that a disagreement cannot pass unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cloud_broker.local_broker import LocalMosquitto
from demo.report import member_check, money_checks
from tests.conftest import ROOT


def _demo(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_runs_the_club_and_head_office_agrees_with_the_ground_truth(tmp_path: Path) -> None:
    work = tmp_path / "w"
    res = _demo("--stores", "3", "--customers", "10", "--visits", "4", "--pace", "0.05",
                "--workdir", str(work))  # fmt: skip
    out = res.stdout
    assert res.returncode == 0, out[-6000:] + res.stderr[-3000:]
    assert "loses its link" in out and "OFFLINE" in out  # the outage is visible
    assert out.count("provisioned: firmware_tools init, enroll, selftest") == 3
    assert "All 9 checks pass" in out and "✘" not in out
    assert "bad_phone" in out and "۱۱ رقم" in out  # the mistyped number, for the customer
    assert "رسید مشتری" in out and "Points earned" in out  # a receipt in both languages
    assert '"type": "refund"' in out  # a sample of the reconciled stream
    summary = json.loads((work / "summary.json").read_text("utf-8"))
    assert summary["ok"] is True and all(c["ok"] for c in summary["checks"])
    truth = summary["ground_truth"]
    assert len(truth["sales"]) > 20 and truth["declined"] >= 1 and truth["refunds"]
    charged = sum(h["amount"] for hs in truth["bank_charged"].values() for h in hs)
    assert charged == sum(s["amount"] for s in truth["sales"])
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
    assert summary["stores"][1]["offline_for_part_of_the_run"] is True


def test_demo_uses_an_existing_broker(tmp_path: Path, broker: LocalMosquitto) -> None:
    res = _demo("--broker", broker.url, "--stores", "2", "--customers", "4", "--visits", "2",
                "--pace", "0")  # fmt: skip
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
    assert f"{broker.url} (yours)" in res.stdout
    assert "checks pass" in res.stdout


def test_quotes_demo_prints_bilingual_quotes_and_succeeds() -> None:
    """``python -m edge.demo``: the rule engine alone, quotes printed for people."""
    res = subprocess.run(
        [sys.executable, "-m", "edge.demo"],
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


SALES = [("pos-1", 2, 1_000_000, 1), ("pos-1", 3, 0, None), ("pos-2", 1, 500_000, 1)]
BANK = [("pos-1", 1_000_000, 1), ("pos-2", 500_000, 1)]


def _failed(checks: list) -> list[str]:  # type: ignore[type-arg]
    return [c.name for c in checks if not c.ok]


def test_money_checks_pass_only_when_everything_matches() -> None:
    assert (
        _failed(money_checks(SALES, list(SALES), BANK, [("pos-1", 4, 100)], [("pos-1", 4, 100)]))
        == []
    )
    # a sale the till approved that head office never booked
    assert "every approved sale is in the ledger exactly once" in _failed(
        money_checks(SALES, SALES[:2], BANK, [], [])
    )
    # booked twice under two sequence numbers: the same bank reference
    twice = [*SALES, ("pos-1", 9, 1_000_000, 1)]
    assert "every approved sale is in the ledger exactly once" in _failed(
        money_checks(SALES, twice, BANK, [], [])
    )
    # the bank charged something no till recorded
    assert "what the bank terminals charged is what head office booked" in _failed(
        money_checks(SALES, list(SALES), [*BANK, ("pos-2", 7, 2)], [], [])
    )
    assert "every refund is in the ledger exactly once" in _failed(
        money_checks(SALES, list(SALES), BANK, [("pos-1", 4, 100)], [])
    )


def test_member_check_names_the_member_who_differs() -> None:
    want = {"+989121234567": {"points": 10, "wallet": 5, "spend": 1}}
    assert member_check(want, {"+989121234567": {"points": 10, "wallet": 5}}).ok
    bad = member_check(want, {"+989121234567": {"points": 11, "wallet": 5}})
    assert not bad.ok and "+989121234567" in bad.detail
    assert not member_check(want, {}).ok
