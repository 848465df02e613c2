"""A campaign from draft to delivered, in Chromium: the console process, the sender process
and the local fake of Kavenegar's API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from cloud_broker.club import operators
from tests.conftest import ROOT
from tests.console.conftest import seed
from tests.helpers.console import PASSWORD, Console, login, shot
from tests.helpers.headoffice import HO
from tests.helpers.wait import until
from tests.messages.conftest import KEY
from tests.messages.fakes import FakeKavenegar


def test_a_campaign_from_draft_to_delivered(tmp_path: Path, page: Any) -> None:
    ho = HO(f"sqlite:///{tmp_path}/ledger.db")
    seed(ho, tmp_path)  # three phone members and a card member
    operators.add(ho.db, "mina", "Mina", "marketing", PASSWORD, "test")
    console = Console(ho.db.url, tmp_path)
    fake = FakeKavenegar(KEY)
    env = dict(os.environ, LOYALTY_SMS_API_KEY=KEY, PYTHONPATH=str(ROOT))
    sender = subprocess.Popen(
        [sys.executable, "-m", "cloud_broker", "--ledger", ho.db.url, "sms", "run", "--gateway",
         "kavenegar", "--base-url", fake.base_url, "--sender", "10004346", "--reports-every", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=(tmp_path / "sms.log").open("ab"),
    )  # fmt: skip
    try:
        login(page, console, "mina")
        page.goto(console.url + "/messages")
        page.fill("[data-test=rules-form] [name=quiet_start]", "00:00")  # no quiet hours now
        page.fill("[data-test=rules-form] [name=quiet_end]", "00:00")
        page.click("[data-test=rules-form] button")
        page.wait_for_selector("[role=status]")
        shot(page, "messages")
        page.click("[data-test=new-campaign]")
        page.fill("[data-test=name]", "جشنواره پاییز")
        page.fill("[data-test=text]", "{name} عزیز، {points} امتیاز دارید؛ کد {coupon} را ببینید.")
        page.fill("[name=coupon]", "AUTUMN")
        page.wait_for_selector("[data-test=measure]")  # the length, as one types
        assert "بخش پیامک" in page.inner_text("#measure")
        page.click("[data-test=create]")
        page.wait_for_selector("[data-test=estimate]")
        assert page.inner_text("[data-test=recipients]") == "۲"  # phone members, not the card
        shot(page, "campaign")
        page.click("[data-test=schedule]")
        page.wait_for_selector("[role=status]")
        assert until(lambda: len(fake.messages) == 2, 30), (tmp_path / "sms.log").read_text()
        for m in fake.messages.values():
            assert "کد AUTUMN" in m.text and m.text.endswith("لغو۱۱")
            fake.deliver(m.provider_id)  # the handsets received them
        page.reload()
        assert until(lambda: _delivered(page) == "۲", 30)
        assert until(lambda: "پایان" in _reloaded(page, "[data-test=campaign-state]"), 30)
        page.goto(console.url + "/members/%2B989121234567")
        assert "AUTUMN" in page.inner_text("[data-test=member-messages]")
    finally:
        sender.send_signal(signal.SIGTERM)
        sender.wait(20)
        fake.close()
        console.stop()
        ho.close()


def _delivered(page: Any) -> str:
    return _reloaded(page, "[data-test=n-delivered]")


def _reloaded(page: Any, selector: str) -> str:
    page.reload()
    cell = page.locator(selector)
    return str(cell.inner_text()) if cell.count() else ""
