"""The head-office console in a test: the real process (``python -m cloud_broker console``)
on a free port, and a real Chromium driven by Playwright.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``./dev``); Playwright's own
download is not used.  Screenshots for docs/console.md are taken by the tests when
``$LOYALTY_SCREENSHOTS`` names a folder (``./dev screenshots``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.club import operators
from cloud_broker.ledger.db import Database
from cloud_broker.local_broker import free_port
from tests.conftest import ROOT

PASSWORD = "correct horse battery"  # every test operator's
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = os.environ.get("LOYALTY_CHROMIUM") or shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is missing: ./dev installs it with apt-get")
    return found


class Console:
    """``python -m cloud_broker console`` on a ledger, with operators of every role."""

    def __init__(self, ledger_url: str, tmp: Path, *extra: str) -> None:
        self.ledger_url = ledger_url
        db = Database(ledger_url)
        for role in operators.ROLES:
            if not any(o["username"] == role for o in operators.list_all(db)):
                operators.add(db, role, f"{role} tester", role, PASSWORD, "test")
        db.close()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = tmp / "console.log"
        env = dict(os.environ, LOYALTY_CONSOLE_SECRET="s" * 48, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cloud_broker", "console", "--ledger", ledger_url,
             "--listen", f"127.0.0.1:{port}", *extra],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.log.open("ab"),
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert line.startswith("console at"), self.log.read_text()
        self._wait_listening(port)

    def _wait_listening(self, port: int) -> None:
        import socket

        from tests.helpers.wait import until

        def up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        assert until(up, 30), self.log.read_text()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def login(page: Any, console: Console, username: str) -> None:
    page.goto(console.url + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("header.navbar")


def shot(page: Any, name: str) -> None:
    """A screenshot for the docs, when $LOYALTY_SCREENSHOTS names a folder."""
    folder = os.environ.get("LOYALTY_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"console-{name}.png"), full_page=True)


def http_session(console: Console, username: str) -> Any:
    """An httpx client logged in to the console as ``username`` (English pages)."""
    import re

    import httpx

    c = httpx.Client(base_url=console.url, follow_redirects=True, timeout=60)
    c.cookies.set("club_lang", "en")
    form = c.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token, form[-500:]
    r = c.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf": token.group(1), "next": "/"},
    )
    assert r.url.path == "/", r.text[-500:]
    return c
