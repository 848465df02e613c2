"""What a support agent does in the console reaches the tills: the whole chain, real parts
(Mosquitto, the reconciler process, the agent process with a simulated bank terminal, the
console process, Chromium)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from cloud_broker.local_broker import LocalMosquitto
from cloud_broker.registry import devices as registry
from hw_sim.zvt import ZVTSim
from tests.cloud.test_service import serve
from tests.helpers.console import Console, login
from tests.helpers.headoffice import HO
from tests.helpers.store import Store

BASKET = {"lines": [{"sku": "RICE-5KG", "category": "grocery", "qty": 1, "unit_price": 3_000_000}]}
PHONE, MEMBER, CARD = "09121234567", "+989121234567", "04C0FFEE11"


def _identify(store: Store, **who: str) -> dict[str, Any]:
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    code, s = store.api("POST", f"/v1/sessions/{s['session']}/identify", who)
    assert code == 200, s
    return s


def _sell(store: Store, **who: str) -> int:
    s = _identify(store, **who)
    code, r = store.api("POST", f"/v1/sessions/{s['session']}/pay")
    assert code == 200 and r["status"] == "approved", r
    return int(s["quote"]["points_earned"])


def test_an_adjustment_and_a_linked_card_reach_the_till(
    tmp_path: Path, broker: LocalMosquitto, page: Any
) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    ho = HO(url)
    store = Store(tmp_path, broker_url=broker.url)
    registry.register(ho.db, store.device, store.tenant, store.store, store.public_key)
    hq: subprocess.Popen[bytes] = serve(broker, url, tmp_path / "serve.log")
    store.add_sim("bank", "bank", "zvt", ZVTSim())
    store.start()
    console = Console(url, tmp_path)
    try:
        assert store.wait(lambda: store.status()["online"])
        earned = _sell(store, phone=PHONE)
        card_earned = _sell(store, card=CARD)
        assert store.wait(lambda: store.status()["outbox"]["depth"] == 0)
        assert ho.member(MEMBER)[0] == earned

        login(page, console, "support")
        page.goto(console.url + "/members/%2B989121234567")
        form = page.locator("form[data-test=adjust]")
        form.locator("[name=points]").fill("500")
        form.locator("[name=reason]").fill("گم شدن رسید")
        form.locator("button").click()
        page.wait_for_selector("[role=status]")
        # the till's next quote for this member starts from head office's new balance
        assert store.wait(
            lambda: (
                _identify(store, phone=PHONE)["quote"]["member"]["points_before"] == earned + 500
            ),
            30,
        ), store.log.read_text()[-2000:]

        page.goto(console.url + f"/members/card:{CARD}")
        form = page.locator("form[data-test=link]")
        form.locator("[name=phone]").fill("۰۹۱۲۱۲۳۴۵۶۷")
        form.locator("[name=reason]").fill("مشتری کارت و موبایل را یکی خواست")
        form.locator("button").click()
        page.wait_for_selector("[role=status]")
        # the card tapped at the till is now the phone member, with the card's points
        total = earned + 500 + card_earned

        def card_is_phone_member() -> bool:
            s = _identify(store, card=CARD)
            return bool(s["member"] == MEMBER and s["quote"]["member"]["points_before"] == total)

        assert store.wait(card_is_phone_member, 30), store.log.read_text()[-2000:]
        assert ho.check() == []
    finally:
        console.stop()
        store.stop()
        hq.terminate()
        hq.wait(15)
        ho.close()
