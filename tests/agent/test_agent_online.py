"""The agent with a real Mosquitto and the real reconciler: sales reach head office, an
offline stretch catches up, snapshots come back, rules bundles arrive over MQTT."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_broker.local_broker import LocalMosquitto
from cloud_broker.registry import devices as registry
from edge.protocol import bundles, topics
from edge.protocol.mqtt import BrokerConfig, connect, new_client
from hw_sim.zvt import ZVTSim
from tests.cloud.test_service import serve
from tests.helpers.headoffice import HO
from tests.helpers.store import Store, rules_doc

BASKET = {
    "lines": [{"sku": "DAIRY-CHEESE-400", "category": "dairy", "qty": 2, "unit_price": 2_150_000}]
}


def _sale(store: Store, phone: str) -> dict:  # type: ignore[type-arg]
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    code, s = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"phone": phone})
    assert code == 200, s
    code, r = store.api("POST", f"/v1/sessions/{s['session']}/pay")
    assert code == 200 and r["status"] == "approved", r
    return s["quote"]


def test_sales_offline_stretch_catch_up_and_snapshots(
    tmp_path: Path, broker: LocalMosquitto
) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    ho = HO(url)
    store = Store(tmp_path, broker_url=broker.url)
    registry.register(ho.db, store.device, store.tenant, store.store, store.public_key)
    hq: subprocess.Popen[bytes] = serve(broker, url, tmp_path / "serve.log")
    store.add_sim("bank", "bank", "zvt", ZVTSim())
    store.start()
    try:
        assert store.wait(lambda: store.status()["online"])
        earned = [_sale(store, "09121234567")["points_earned"] for _ in range(3)]
        assert store.wait(lambda: store.status()["outbox"]["depth"] == 0)
        assert ho.member("+989121234567")[0] == sum(earned)
        # the broker dies: the till keeps selling
        broker.kill()
        assert store.wait(lambda: not store.status()["online"])
        earned += [_sale(store, "۰۹۱۲۱۲۳۴۵۶۷")["points_earned"] for _ in range(3)]
        assert store.status()["outbox"]["depth"] == 3
        broker.start()
        assert store.wait(lambda: store.status()["outbox"]["depth"] == 0, 60)
        assert ho.one("SELECT COUNT(*) FROM records WHERE offline = 1") == 3
        assert ho.member("+989121234567")[0] == sum(earned)
        assert ho.check() == []

        # head office's snapshot came back: the next quote starts from its balance
        def balance_known() -> bool:
            _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
            _, s = store.api(
                "POST", f"/v1/sessions/{s['session']}/identify", {"phone": "09121234567"}
            )
            return s["quote"]["member"]["points_before"] == sum(earned)

        assert store.wait(balance_known, 20)
    finally:
        store.stop()
        hq.terminate()
        hq.wait(15)
        ho.close()


def test_rules_bundles_over_mqtt_only_newer_and_only_signed(
    tmp_path: Path, broker: LocalMosquitto
) -> None:
    store = Store(tmp_path, broker_url=broker.url)
    store.start()
    cfg = BrokerConfig.from_url(broker.url)
    pub = new_client(cfg, "ho-rules")
    connect(pub, cfg)
    pub.loop_start()

    def publish(raw: bytes) -> None:
        pub.publish(topics.rules(store.tenant), raw, qos=1, retain=True).wait_for_publish(5)

    try:
        assert store.wait(lambda: store.status()["online"])
        publish(bundles.sign(rules_doc(2), store.ho_key))
        assert store.wait(lambda: store.status()["rules_version"] == 2)
        publish(bundles.sign(rules_doc(1), store.ho_key))  # older: refused
        publish(bundles.sign(rules_doc(3), Ed25519PrivateKey.generate()))  # wrong key
        assert store.wait(lambda: "signature" in (store.status()["rules_error"] or ""))
        assert store.status()["rules_version"] == 2
        publish(bundles.sign(rules_doc(4), store.ho_key))
        assert store.wait(lambda: store.status()["rules_version"] == 4)
        # a restarted agent keeps the newest bundle it accepted
        store.kill()
        store.start()
        assert store.status()["rules_version"] == 4
    finally:
        pub.loop_stop()
        store.stop()
