"""``python -m cloud_broker operators|member adjust|member link|console``: the command line
calls the same club functions as the console, and is audited the same way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.console.conftest import ALI, CARD, seed
from tests.helpers.console import PASSWORD
from tests.helpers.headoffice import HO


def cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloud_broker", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        env=dict(os.environ, **(env or {})),
        check=False,
    )


def test_the_first_admin_and_other_operators(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    HO(url).close()
    r = cli("operators", "add", "boss", "--role", "admin", "--name", "مدیر", "--password-stdin",
            "--ledger", url, stdin=PASSWORD + "\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = cli("operators", "add", "boss", "--role", "admin", "--password-stdin", "--ledger", url,
            stdin=PASSWORD + "\n")  # fmt: skip
    assert r.returncode == 1 and "exists already" in r.stderr
    r = cli("operators", "add", "weak", "--role", "viewer", "--password-stdin", "--ledger", url,
            stdin="short\n")  # fmt: skip
    assert r.returncode == 1 and "at least 10 characters" in r.stderr
    r = cli("operators", "add", "tty", "--role", "viewer", "--ledger", url, stdin="")
    assert r.returncode == 2 and "--password-stdin" in r.stderr  # never asks without a terminal
    listed = cli("operators", "list", "--ledger", url).stdout
    assert "boss" in listed and "admin" in listed and "weak" not in listed
    assert cli("operators", "disable", "boss", "--ledger", url, "--by", "root").returncode == 0
    assert "disabled" in cli("operators", "list", "--ledger", url).stdout
    ho = HO(url)
    assert ho.q("SELECT actor, action FROM audit_log ORDER BY id") == [
        (f"cli:{_login()}", "operator.add"),
        ("root", "operator.disable"),
    ]
    ho.close()


def _login() -> str:
    import getpass

    return getpass.getuser()


def test_member_adjust_and_link_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    ho = HO(url)
    seed(ho, tmp_path)
    ho.close()
    r = cli("member", "adjust", "۰۹۱۲۱۲۳۴۵۶۷", "--points", "25", "--reason", "goodwill",
            "--ledger", url)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = cli("member", "adjust", ALI, "--points", "-9999", "--reason", "x", "--ledger", url)
    assert r.returncode == 1 and "below zero" in r.stderr
    r = cli("member", "adjust", ALI, "--points", "5", "--ledger", url)
    assert r.returncode == 2 and "--reason" in r.stderr
    r = cli("member", "link", "09121234567", "--card", CARD, "--reason", "asked", "--ledger", url)
    assert r.returncode == 0, r.stderr
    shown = cli("member", "show", "09121234567", "--ledger", url).stdout
    assert "points 395" in shown and f"cards {CARD}" in shown
    assert "adjustment" in shown and "merge" in shown  # head office's journals in the history
    ho = HO(url)
    assert ho.check() == []
    assert [r[0] for r in ho.q("SELECT action FROM audit_log ORDER BY id")] == [
        "device.register",
        "member.adjust",
        "member.link_card",
    ]
    ho.close()


def test_console_refuses_bad_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    r = cli("console", "--ledger", url, "--secret-file", str(tmp_path / "s"))
    assert r.returncode == 2 and "does not exist" in r.stderr  # serve creates ledgers
    HO(url).close()
    r = cli("console", "--ledger", url, "--listen", "8400", "--secret-file", str(tmp_path / "s"))
    assert r.returncode == 2 and "HOST:PORT" in r.stderr
    secret = tmp_path / "open.secret"
    secret.write_text("x" * 48)
    secret.chmod(0o644)
    r = cli("console", "--ledger", url, "--secret-file", str(secret))
    assert r.returncode == 2 and "chmod 600" in r.stderr
