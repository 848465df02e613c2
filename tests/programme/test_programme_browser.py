"""The programme run from the console, end to end with real parts: Mosquitto, the
reconciler process, the console process, Chromium, and agents on simulated bank terminals.

* a tier change drafted, previewed, refused without a second admin, approved by another,
  applied by a till that quotes with it; rolled back; the rules key rotated;
* a coupon given to a member, redeemed at a till while it is offline; the same single-use
  coupon used at two offline stores: both sales kept, the second owed, an alert."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_broker.club import operators
from cloud_broker.ledger import rulebooks
from cloud_broker.local_broker import LocalMosquitto
from cloud_broker.programme import keys
from cloud_broker.registry import devices as registry
from edge.protocol import keys as pkeys
from hw_sim.zvt import ZVTSim
from tests.cloud.test_service import serve
from tests.helpers.console import PASSWORD, Console, login, shot
from tests.helpers.headoffice import HO
from tests.helpers.store import Store, rules_doc
from tests.helpers.wait import until

PHONE, MEMBER = "09121234567", "+989121234567"
BASKET = {"lines": [{"sku": "RICE-5KG", "category": "grocery", "qty": 1, "unit_price": 3_000_000}]}


class Chain:
    def __init__(self, tmp: Path, broker: LocalMosquitto, stores: int = 1) -> None:
        self.tmp = tmp
        key_file = tmp / "rules.key"
        key: Ed25519PrivateKey = pkeys.generate(key_file)
        self.url = f"sqlite:///{tmp}/ledger.db"
        self.ho = HO(self.url)
        rulebooks.store(self.ho.db, rules_doc(1))
        keys.adopt(self.ho.db, keys.KeyDir(tmp / "keys"), "hypershahr", key_file, "test")
        for name, role in (("mina", "marketing"), ("arash", "admin"), ("bita", "admin")):
            operators.add(self.ho.db, name, name, role, PASSWORD, "test")
        self.stores: list[Store] = []
        for i in range(stores):
            st = Store(tmp, device=f"pos-{i + 1}", store=f"s{i + 1}", broker_url=broker.url,
                       ho_key=key)  # fmt: skip
            registry.register(self.ho.db, st.device, st.tenant, st.store, st.public_key)
            st.add_sim("bank", "bank", "zvt", ZVTSim())
            self.stores.append(st)
        self.hq: subprocess.Popen[bytes] = serve(broker, self.url, tmp / "serve.log")
        for st in self.stores:
            st.start()
        self.console = Console(self.url, tmp, "--rules-key-dir", str(tmp / "keys"))

    def close(self) -> None:
        self.console.stop()
        for st in self.stores:
            st.stop()
        self.hq.terminate()
        self.hq.wait(15)
        self.ho.close()


@pytest.fixture
def chain(
    tmp_path: Path, broker: LocalMosquitto, request: pytest.FixtureRequest
) -> Iterator[Chain]:
    c = Chain(tmp_path, broker, getattr(request, "param", 1))
    yield c
    c.close()


def _quote(st: Store, **opts: Any) -> dict[str, Any]:
    _, s = st.api("POST", "/v1/baskets", {"basket": BASKET})
    code, s = st.api("POST", f"/v1/sessions/{s['session']}/identify", {"phone": PHONE})
    assert code == 200, s
    if opts:
        code, s = st.api("POST", f"/v1/sessions/{s['session']}/options", opts)
        assert code == 200, s
    return s


def _pay(st: Store, **opts: Any) -> dict[str, Any]:
    s = _quote(st, **opts)
    code, r = st.api("POST", f"/v1/sessions/{s['session']}/pay")
    assert code == 200 and r["status"] == "approved", r
    return dict(r["quote"])


def _approve(page: Any, chain: Chain, who: str) -> None:
    login(page, chain.console, who)
    page.goto(chain.console.url + "/programme")
    page.click("[data-test=open-draft]")
    page.click("[data-test=approve]")
    page.wait_for_selector("[role=status]")


def _post(page: Any, path: str) -> Any:
    csrf = page.locator("input[name=csrf]").first.input_value()
    return page.request.post(page.url.split("/programme")[0] + path, form={"csrf": csrf},
                             fail_on_status_code=False)  # fmt: skip


def test_a_tier_change_from_draft_to_the_till_then_back_and_a_new_key(
    chain: Chain, browser: Any
) -> None:
    st = chain.stores[0]
    assert st.wait(lambda: st.status()["online"] and st.status()["rules_version"] == 1)
    _pay(st)  # ALI becomes a member head office knows
    assert until(lambda: chain.ho.member(MEMBER)[3] == 1, 30)
    before = _quote(st)["quote"]
    assert before["wallet_earned"] == 0  # the regular tier gives no cashback today
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="fa-IR")
    page = ctx.new_page()
    try:
        login(page, chain.console, "mina")
        page.goto(chain.console.url + "/programme")
        shot(page, "programme")
        page.click("[data-test=start-draft]")
        page.wait_for_selector("[data-test=tiers-form]")
        page.fill("[data-test=tier-cashback-regular]", "۲")  # 2% back to every member
        page.click("[data-test=save-tiers]")
        page.wait_for_selector("[role=status]")
        assert "cashback_bp" in page.inner_text("[data-test=changes]")
        page.click("[data-test=preview]")
        page.fill("[data-test=member]", PHONE)
        page.fill("[data-test=sku-0]", "RICE-5KG")
        page.fill("[data-test=category-0]", "grocery")
        page.fill("[data-test=qty-0]", "1")
        page.fill("[data-test=price-0]", "3000000")
        page.click("[data-test=run-preview]")
        page.wait_for_selector("[data-test=results]")
        row = page.locator("[data-test=results] tbody tr").last
        assert row.locator("[data-test=now] [data-test=cashback]").inner_text() == "۰ ریال"
        assert row.locator("[data-test=draft] [data-test=cashback]").inner_text() == "۶۰٬۰۰۰ ریال"
        shot(page, "preview")
        page.goto(chain.console.url + "/programme")
        page.click("[data-test=open-draft]")
        page.fill("[data-test=submit-form] textarea", "۲٪ بازگشت وجه برای همه")
        page.click("[data-test=submit]")
        page.wait_for_selector("[data-test=waiting]")  # marketing cannot approve
        assert _post(page, "/programme/draft/1/approve").status == 403
        ctx.clear_cookies()
        login(page, chain.console, "arash")  # an admin who edits it may not approve it
        page.goto(chain.console.url + "/programme/draft/1")
        page.click("text=" + "بازگشت به ویرایش")
        page.wait_for_selector("[data-test=policy-form]")
        page.fill("[data-test=policy-form] [name=offline_points_limit]", "4000")
        page.click("[data-test=save-policy]")
        page.wait_for_selector("[role=status]")
        page.fill("[data-test=submit-form] textarea", "و سقف آفلاین ۴۰۰۰")
        page.click("[data-test=submit]")
        page.wait_for_selector("[data-test=waiting]")
        refused = _post(page, "/programme/draft/1/approve")
        assert refused.status == 400 and "مدیر دیگری" in refused.text()
        ctx.clear_cookies()
        _approve(page, chain, "bita")
        assert st.wait(lambda: st.status()["rules_version"] == 2, 30), st.log.read_text()[-2000:]
        after = _quote(st)["quote"]
        assert after["wallet_earned"] == after["payable"] * 200 // 10000 > 0  # the till quotes v2
        page.goto(chain.console.url + "/programme")
        assert until(lambda: _rollout_has(page, chain, 2), 20)
        shot(page, "published")

        # roll back to version 1: a new version 3 with version 1's content
        page.click("[data-test=rollback-1]")
        page.fill("[data-test=submit-form] textarea", "بازگشت به نسخه ۱")
        page.click("[data-test=submit]")
        ctx.clear_cookies()
        _approve(page, chain, "arash")
        assert st.wait(lambda: st.status()["rules_version"] == 3, 30)
        assert _quote(st)["quote"]["wallet_earned"] == 0

        # a new rules key: announced, reaching the till, then signing
        page.goto(chain.console.url + "/programme")
        page.click("[data-test=prepare-key]")
        page.wait_for_selector("[role=status]")
        assert st.wait(lambda: st.status()["rules_key"] == 2, 30), st.log.read_text()[-2000:]
        page.click("[data-test=switch-key]")
        page.wait_for_selector("[role=status]")
        assert st.wait(lambda: st.status()["rules_version"] == 4, 30), st.log.read_text()[-2000:]
        assert "retired" in page.inner_text("[data-test=keys]") or "بازنشسته" in page.inner_text(
            "[data-test=keys]"
        )
        assert chain.ho.check() == []
    finally:
        ctx.close()


def _rollout_has(page: Any, chain: Chain, version: int) -> bool:
    page.goto(chain.console.url + "/programme")
    return bool(page.locator("[data-test=rollout] tr.table-success").count())


@pytest.mark.parametrize("chain", [2], indirect=True)
def test_a_coupon_held_offline_and_used_twice(
    chain: Chain, broker: LocalMosquitto, browser: Any
) -> None:
    s1, s2 = chain.stores
    for st in (s1, s2):
        assert st.wait(lambda st=st: st.status()["online"])
    _pay(s1)  # ALI is a member, known at head office
    assert until(lambda: chain.ho.member(MEMBER)[3] == 1, 30)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fa-IR")
    page = ctx.new_page()
    try:
        login(page, chain.console, "mina")
        page.goto(chain.console.url + "/coupons")
        page.select_option("[data-test=code]", "VIP-7F3K")
        page.fill("[data-test=to]", "۰۹۱۲ ۱۲۳ ۴۵۶۷\n0912-000-0000\n")  # the second: no member
        page.click("[data-test=issue]")
        assert "1" in page.inner_text("[data-test=issued]") or "۱" in page.inner_text(
            "[data-test=issued]"
        )
        shot(page, "coupons")
    finally:
        ctx.close()

    def holds(st: Store) -> bool:
        q = _quote(st, coupons=["VIP-7F3K"])["quote"]
        return q["coupons_used"] == ["VIP-7F3K"]

    assert s1.wait(lambda: holds(s1), 30) and s2.wait(lambda: holds(s2), 30)
    broker.kill()  # both stores lose head office
    for st in (s1, s2):
        assert st.wait(lambda st=st: not st.status()["online"])
    first = _pay(s1, coupons=["VIP-7F3K"])
    second = _pay(s2, coupons=["VIP-7F3K"])  # the other store cannot know
    assert first["coupons_used"] == second["coupons_used"] == ["VIP-7F3K"]
    points_before = chain.ho.member(MEMBER)[0]
    broker.start()
    for st in (s1, s2):
        assert st.wait(lambda st=st: st.status()["outbox"]["depth"] == 0, 60)
    ho = chain.ho
    assert ho.one("SELECT COUNT(*) FROM coupon_uses WHERE code = 'VIP-7F3K'") == 2  # both kept
    alerts = ho.q("SELECT severity, kind, member FROM alerts WHERE kind = 'coupon_reuse'")
    assert alerts == [("critical", "coupon_reuse", MEMBER)]
    earned = first["points_earned"] + second["points_earned"]  # each with the coupon's 1000
    assert ho.member(MEMBER)[0] == points_before + earned - 1000  # the second use is owed
    assert ho.one("SELECT used_at IS NOT NULL FROM member_coupons WHERE member = ?", (MEMBER,))
    assert ho.check() == []
    detail = json.loads(json.dumps(ho.q("SELECT detail FROM alerts")))
    assert "owed by the member" in str(detail)
