"""The tax page in Chromium: finance sees an invoice blocked for a product without an id,
gives the product its id, sends it again, and the fake tax system accepts it; the tax id on
the command line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cloud_broker.club import today as today_
from cloud_broker.invoicing import mapping, queue
from cloud_broker.invoicing.cli import Clients
from tests.conftest import ROOT
from tests.helpers.console import Console, http_session, login, shot
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal
from tests.invoicing.test_queue import FINANCE, _sale
from tests.tax.conftest import ECONOMIC_CODE, MEMORY_ID
from tests.tax.fake_moadian import FakeMoadian


def test_a_blocked_invoice_mapped_and_sent_from_the_console(
    tmp_path: Path, page: Any, fake: FakeMoadian, key_files: tuple[str, str]
) -> None:
    ho = HO(f"sqlite:///{tmp_path}/ledger.db")
    t = Terminal(tmp_path, "pos-1", "s1")
    t.time.to_day(today_.local_day())  # sold today: the page lists what sold lately
    ho.register(t)
    mapping.set_store(ho.db, FINANCE, "s1", MEMORY_ID, ECONOMIC_CODE, *key_files)
    ho.feed(t, [_sale(t, [("SOAP-1", "home", 2, 300_000, 0)], None)])
    queue.scan(ho.db)
    clients = Clients(ho.db, fake.base_url, 2.0)
    queue.send_due(ho.db, clients)
    assert ho.one("SELECT state FROM tax_invoices") == "blocked"
    console = Console(ho.db.url, tmp_path)
    try:
        login(page, console, "finance")
        page.click("header >> text=صورتحساب‌های مالیاتی")
        page.wait_for_selector("[data-test=problems]")
        assert "SOAP-1" in page.inner_text("[data-test=unmapped]")
        assert "شناسه کالای مالیاتی ندارد" in page.inner_text("[data-test=problems]")
        page.fill("[data-test=product-code]", "SOAP-1")
        page.fill("[data-test=product-sstid]", "۲۷۲۰۰۰۰۱۶۶۰۷۷")
        page.click("[data-test=product-save]")
        page.wait_for_selector("[role=status]")
        shot(page, "tax")
        page.click("[data-test=resend]")
        page.wait_for_selector("text=دوباره در صف ارسال است")
        now = int(time.time() * 1000)
        for i in range(5):
            queue.send_due(ho.db, clients, now=now + i * 10**8)
            queue.inquire(ho.db, clients, now=now + i * 10**8)
        assert ho.one("SELECT state FROM tax_invoices") == "accepted"
        page.reload()
        assert "SOAP-1" not in page.inner_text("[data-test=unmapped]")
        assert http_session(console, "marketing").get("/tax").status_code == 403
    finally:
        clients.close()
        console.stop()


def test_taxid_on_the_command_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cloud_broker", "tax", "taxid", "--memory-id", "DEF5GH",
         "--date", "2020-07-20", "--serial", "8173"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out == "DEF5GH0481F0000001FED8\n"
