"""The operator CLI: registry, member lookup, quarantine, alerts, ledger check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edge.protocol.keys import public_pem
from tests.conftest import ROOT
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal

ALI = "+989121234567"


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloud_broker", "--ledger", url, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_registry_member_quarantine_and_check(tmp_path: Path, ledger_url: str) -> None:
    HO(ledger_url).close()  # serve creates the ledger; every other command needs one
    t = Terminal(tmp_path, "pos-7", "s1")
    pem = tmp_path / "pos-7.pub.pem"
    pem.write_text(public_pem(t.key))
    register = ("devices", "register", "--device", "pos-7", "--tenant", "hypershahr",
                "--store", "s1", "--pem", str(pem))  # fmt: skip
    r = cli(ledger_url, *register)
    assert r.returncode == 0, r.stderr
    again = cli(ledger_url, *register)
    assert again.returncode == 2 and "already registered" in again.stderr
    ho = HO(ledger_url)
    ho.feed(t, [t.sale(ALI, earned=120, cashback=5_000), t.sale(ALI, redeemed=20)])
    ho.raw(t.topic, b"\x1b[31m\xd2\x84junk")  # hostile bytes
    ho.close()

    r = cli(ledger_url, "devices", "list", "--json")
    rows = json.loads(r.stdout)
    assert rows[0]["device"] == "pos-7" and rows[0]["applied_through"] == 2
    exported = cli(ledger_url, "devices", "export-keys").stdout
    assert "# pos-7" in exported and "BEGIN PUBLIC KEY" in exported

    r = cli(ledger_url, "member", "show", "۰۹۱۲ ۱۲۳ ۴۵۶۷")  # typed in Persian digits
    assert r.returncode == 0, r.stderr
    assert "points 100" in r.stdout and "wallet 5,000 IRR" in r.stdout
    assert "points by lot:" in r.stdout and "expires 1405/12/" in r.stdout  # Jalali, not days
    # history: a Jalali date and time, the store, the money: no bare numbers, no empty fields
    assert "1404/12/29 09:30 sale       s1 pos-7/1  paid 1,000,000 IRR" in r.stdout
    assert "cards" not in r.stdout and "birthday" not in r.stdout
    assert cli(ledger_url, "member", "show", "09350000000").returncode == 1

    r = cli(ledger_url, "quarantine", "list")
    assert "\x1b" not in r.stdout and r.stdout.strip()
    q = json.loads(cli(ledger_url, "quarantine", "list", "--json").stdout)
    assert q[0]["code"] and q[0]["raw_hex"].startswith("1b5b")

    ok = cli(ledger_url, "ledger", "check")
    assert ok.returncode == 0 and "ledger check: OK" in ok.stdout
    ho = HO(ledger_url)
    ho.db.run(lambda tx: tx.execute("UPDATE members SET wallet = wallet + 1"))
    ho.close()
    bad = cli(ledger_url, "ledger", "check")
    assert bad.returncode == 1 and "FAIL member wallet = entries" in bad.stdout

    r = cli(ledger_url, "devices", "revoke", "--device", "pos-7", "--reason", "stolen")
    assert r.returncode == 0 and "after seq 2" in r.stdout
    assert json.loads(cli(ledger_url, "devices", "list", "--json").stdout)[0]["status"] == "revoked"


def test_bad_urls_and_usage_exit_2(tmp_path: Path) -> None:
    r = cli("mysql://x", "ledger", "check")
    assert r.returncode == 2 and "expected sqlite:///PATH or postgresql://" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "cloud_broker", "nonsense"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2


def test_missing_files_are_configuration_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    r = cli(url, "member", "show", "09121234567")  # no ledger there: refused, none created
    assert r.returncode == 2 and "does not exist" in r.stderr and "serve" in r.stderr
    assert not (tmp_path / "ledger.db").exists()
    HO(url).close()
    for args in (
        ("--rules", str(tmp_path / "nope.json"), "ledger", "expire"),
        ("devices", "register", "--device", "pos-1", "--tenant", "t", "--store", "s", "--pem",
         str(tmp_path / "nope.pem")),
    ):  # fmt: skip
        r = cli(url, *args)
        assert r.returncode == 2 and "cannot read" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
