"""Integrations in Chromium: an admin makes an API key (shown once) that the API then
accepts, revokes it, and sends a failed webhook delivery again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from cloud_broker.api import webhooks
from tests.api.conftest import ADMIN, ALI, ApiServer, seed
from tests.helpers.console import Console, http_session, login, shot
from tests.helpers.headoffice import HO


def test_keys_and_deliveries_from_the_console(tmp_path: Path, page: Any) -> None:
    ho = HO(f"sqlite:///{tmp_path}/ledger.db")
    seed(ho, tmp_path)
    webhooks.add(ho.db, b"k" * 48, ADMIN, "http://127.0.0.1:9/down", ["member.enrolled"])
    webhooks.scan(ho.db)
    with httpx.Client(timeout=2) as c:  # nothing listens on port 9: the delivery fails
        webhooks.deliver_due(ho.db, b"k" * 48, c)
    console = Console(ho.db.url, tmp_path)
    api = ApiServer(ho.db.url, tmp_path)
    try:
        login(page, console, "admin")
        page.click("header >> text=یکپارچه‌سازی")
        page.fill("[data-test=key-name]", "فروشگاه اینترنتی")
        page.check("[data-test='scope-members:read']")
        page.click("[data-test=key-create]")
        key = page.inner_text("[data-test=key]")
        assert key.startswith("lk_")
        shot(page, "integrations")
        c = api.client(key)
        assert c.get("/v1/members", params={"phone": ALI}).json()["member"] == ALI
        page.goto(console.url + "/integrations")  # shown once: not on the page any more
        assert key not in page.content() and key[:11] in page.content()
        page.click("[data-test=deliveries] [data-test=replay]")
        page.wait_for_selector("text=دوباره در صف ارسال است")
        newest = ho.one("SELECT MAX(id) FROM webhook_deliveries")  # listed first
        assert ho.q("SELECT attempts, state FROM webhook_deliveries WHERE id = ?",
                    (newest,)) == [(0, "queued")]  # fmt: skip
        assert ho.one("SELECT target FROM audit_log WHERE action = 'webhook.replay'") == (
            f"delivery:{newest}")  # fmt: skip
        page.click("[data-test=keys] button")  # revoke
        page.wait_for_selector("text=کلید باطل شد")
        assert c.get("/v1/members", params={"phone": ALI}).status_code == 401
        assert http_session(console, "marketing").get("/integrations").status_code == 403
    finally:
        api.stop()
        console.stop()
