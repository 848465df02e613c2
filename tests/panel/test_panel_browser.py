"""The member panel in Chromium at a phone's size: sign in with the code sent by SMS (the
local fake of Kavenegar), the card with points, wallet and tier, the QR code read by a
simulated scanner at a till (a real agent process), which identifies the member; an expired
QR refused at the till; the profile; a survey answered for points."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_broker.club import operators
from cloud_broker.local_broker import free_port
from cloud_broker.panel import surveys
from cloud_broker.programme import keys as rules_keys
from edge.protocol import keys, memberqr
from hw_sim.scanner import ScannerSim
from tests.conftest import ROOT
from tests.helpers.console import shot
from tests.helpers.headoffice import HO
from tests.helpers.store import Store
from tests.helpers.terminal import Terminal
from tests.helpers.wait import until
from tests.messages.conftest import KEY
from tests.messages.fakes import FakeKavenegar

ALI = "+989121234567"
FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
BASKET = {"id": "P-1", "lines": [{"sku": "MILK", "category": "dairy", "qty": 1,
                                  "unit_price": 450_000}]}  # fmt: skip


def _panel(ledger: str, tmp: Path, fake: FakeKavenegar) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), LOYALTY_SMS_API_KEY=KEY,
               LOYALTY_PANEL_SECRET="q" * 48)  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud_broker", "--ledger", ledger, "panel", "--listen",
         f"127.0.0.1:{port}", "--gateway", "kavenegar", "--base-url", fake.base_url,
         "--sender", "10004346", "--rules-key-dir", str(tmp / "rules-keys"),
         "--insecure-cookies"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=(tmp / "panel.log").open("ab"),
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().decode().startswith("panel at"), (tmp / "panel.log").read_text()
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/login", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    assert until(up, 30), (tmp / "panel.log").read_text()
    return proc, url


def test_sign_in_card_qr_at_the_till_profile_and_survey(tmp_path: Path, page: Any) -> None:
    ho = HO(f"sqlite:///{tmp_path}/ledger.db")
    t = Terminal(tmp_path, "pos-1", "s1")
    ho.register(t)
    ho.feed(t, [t.enroll(ALI), t.sale(ALI, 2_000_000, earned=200)])
    rules_key = Ed25519PrivateKey.generate()
    keys.write_private(tmp_path / "rules.key", rules_key)
    rules_keys.adopt(ho.db, rules_keys.KeyDir(tmp_path / "rules-keys"), "hypershahr",
                     tmp_path / "rules.key", "test")  # fmt: skip
    surveys.add(ho.db, operators.command_line("test"), "nps-1", "ما را به دوستانتان "
                "پیشنهاد می‌کنید؟", "Would you recommend us?", 150)  # fmt: skip
    fake = FakeKavenegar(KEY)
    proc, url = _panel(ho.db.url, tmp_path, fake)
    store = Store(tmp_path, ho_key=rules_key)
    store.qr = store.add_sim("qr", "card", "scanner", ScannerSim())  # type: ignore[attr-defined]
    store.start()
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(url + "/")
        page.wait_for_selector("[data-test=login]")  # not signed in: to the sign-in page
        page.fill("[data-test=phone]", "۰۹۱۲ ۱۲۳ ۴۵۶۷")
        page.click("[data-test=send]")
        page.wait_for_selector("[data-test=code-form]")
        assert until(lambda: len(fake.messages) == 1, 10)
        code = re.search(r"(\d{6})", next(iter(fake.messages.values())).text).group(1)  # type: ignore[union-attr]
        page.fill("[data-test=code]", code.translate(FA))
        page.click("[data-test=enter]")
        page.wait_for_selector("[data-test=card] svg")
        assert page.inner_text("[data-test=points]") == "۲۰۰"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
        shot(page, "panel")
        qr = page.evaluate("fetch('/qr').then(r => r.json())")
        assert qr["code"].startswith("LQ2.") and qr["expires"] > time.time()

        # at the till: the scanner reads the code off the phone
        _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
        store.qr.scan(qr["code"])  # type: ignore[attr-defined]
        code_, v = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"wait": 5})
        assert code_ == 200 and v["member"] == ALI and v["identified_by"] == "qr", v
        # a screenshot of yesterday's code: refused at the till, clearly
        old = memberqr.make(rules_key, "hypershahr", ALI, int(time.time()) - 3600)
        _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
        store.qr.scan(old)  # type: ignore[attr-defined]
        code_, v = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"wait": 5})
        assert code_ == 400 and v["error"] == "expired_qr" and "منقضی" in v["fa"], v
        forged = memberqr.make(Ed25519PrivateKey.generate(), "hypershahr", ALI, int(time.time()))
        store.qr.scan(forged)  # type: ignore[attr-defined]
        code_, v = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"wait": 5})
        assert code_ == 400 and v["error"] == "bad_qr", v

        page.click("[data-test=survey] label >> nth=4")
        page.click("[data-test=answer]")
        page.wait_for_selector("[data-test=points]")
        assert page.inner_text("[data-test=points]") == "۳۵۰"  # 200 + the survey's 150
        page.click("nav >> text=مشخصات")
        page.fill("[data-test=name]", "علی کریمی")
        page.check("[data-test=opt-out]")
        page.click("[data-test=save]")
        page.wait_for_selector("[role=status]")
        name, opt = ho.q("SELECT name, sms_opt_out FROM members WHERE member = ?", (ALI,))[0]
        assert (name, opt) == ("علی کریمی", 1)
        # another visitor, no cookie: nothing but the sign-in page
        assert httpx.get(url + "/history", follow_redirects=False).status_code == 303
        r = httpx.post(url + "/profile", data={"name": "x"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
    finally:
        store.stop()
        proc.terminate()
        proc.wait(15)
        fake.close()
