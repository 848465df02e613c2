"""Head office books each record under the rules bundle the record names, keeps every
bundle it is given, and holds (with an alert) a record naming one it does not have."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_broker.ledger import rulebooks
from cloud_broker.local_broker import LocalMosquitto
from edge.core.errors import RuleError
from edge.errors import SignatureError
from edge.protocol import bundles, keys, topics
from edge.protocol.mqtt import BrokerConfig, connect, new_client
from tests.cloud.test_service import serve, uplink
from tests.conftest import RULES_PATH
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal
from tests.helpers.wait import until

ALI = "+989121234567"


def _doc(version: int, expiry: int) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(RULES_PATH.read_text("utf-8"))
    doc["version"] = version
    doc["policy"]["points_expiry_days"] = expiry
    return doc


def _lot_expiry(ho: HO, seq: int) -> int:
    return int(ho.one("SELECT expires_day - earned_day FROM lots WHERE seq = ?", (seq,)))


def test_a_record_is_booked_under_the_bundle_it_names(ho: HO, pos: Terminal) -> None:
    rulebooks.store(ho.db, _doc(2, 30))
    ho.rc.rules.reload()
    recs = [
        pos.enroll(ALI),
        pos.sale(ALI, earned=100),  # names v1: expires after 365 days
        pos.sale(ALI, earned=50, rules_version=2),  # names v2: after 30
    ]
    out = ho.feed(pos, recs)
    assert out.applied == 3
    assert _lot_expiry(ho, 2) == 365 and _lot_expiry(ho, 3) == 30
    assert ho.check() == []


def test_a_record_naming_an_unknown_bundle_waits_for_it(ho: HO, pos: Terminal) -> None:
    recs = [pos.enroll(ALI), pos.sale(ALI, earned=100, rules_version=7), pos.sale(ALI, earned=5)]
    out = ho.feed(pos, recs)
    assert (out.applied, out.held, out.quarantined) == (1, 2, 0)
    assert out.acks[pos.device][0] == 1 and pos.device not in out.gaps  # no gap to ask for
    alerts = ho.q("SELECT kind, device, seq FROM alerts")
    assert alerts == [("rules_unknown", pos.device, 2)]
    # delivered again meanwhile: still waiting, still one alert
    out = ho.feed(pos, recs[1:])
    assert out.applied == 0 and ho.one("SELECT COUNT(*) FROM alerts") == 1
    assert ho.rc.retry_parked().applied == 0  # the bundle has not come
    rulebooks.store(ho.db, _doc(7, 10))  # another process keeps it (the console, the CLI)
    out = ho.rc.retry_parked()
    assert out.applied == 2 and out.acks[pos.device][0] == 3
    assert _lot_expiry(ho, 2) == 10 and _lot_expiry(ho, 3) == 365
    assert ho.one("SELECT COUNT(*) FROM held") == 0
    assert ho.check() == []


def test_a_published_version_never_changes(ho: HO) -> None:
    rulebooks.store(ho.db, _doc(2, 30))
    rulebooks.store(ho.db, _doc(2, 30))  # the same again: kept once
    with pytest.raises(RuleError, match="already holds a different"):
        rulebooks.store(ho.db, _doc(2, 31))
    assert ho.one("SELECT COUNT(*) FROM rule_bundles WHERE version = 2") == 1


def test_signed_bundles_are_verified_before_they_are_kept(ho: HO) -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    rs = rulebooks.store_signed(ho.db, bundles.sign(_doc(3, 90), key), key.public_key())
    assert rs.version == 3
    with pytest.raises(SignatureError):
        rulebooks.store_signed(ho.db, bundles.sign(_doc(4, 90), other), key.public_key())
    assert rulebooks.from_message(ho.db, bundles.sign(_doc(5, 90), other), key.public_key()) is None
    assert [int(v) for (v,) in ho.q("SELECT version FROM rule_bundles ORDER BY version")] == [3]


def test_the_service_keeps_bundles_published_on_the_rules_topic(
    tmp_path: Path, broker: LocalMosquitto
) -> None:
    """serve --rules-pub: a record naming v2 waits until head office's signed v2 appears
    on the rules topic (published as terminals receive it), then is booked under it; a
    bundle signed by another key is not kept."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    ho = HO(url)
    t = Terminal(tmp_path)
    ho.register(t)
    key = Ed25519PrivateKey.generate()
    pub = tmp_path / "rules.pub.pem"
    pub.write_text(keys.public_pem(key))
    hq = serve(broker, url, tmp_path / "serve.log", "--rules-pub", str(pub))
    up = uplink(t, broker)
    pubc = new_client(BrokerConfig.from_url(broker.url), "rules-publisher")
    connect(pubc, BrokerConfig.from_url(broker.url))
    pubc.loop_start()
    try:
        t.enroll(ALI)
        t.sale(ALI, earned=40, rules_version=2)
        up.notify()
        assert until(lambda: ho.one("SELECT COUNT(*) FROM held") == 1, 20)
        assert ho.one("SELECT kind FROM alerts") == "rules_unknown"
        evil = bundles.sign(_doc(2, 99), Ed25519PrivateKey.generate())
        pubc.publish(topics.rules(t.identity.tenant), evil, qos=1, retain=True).wait_for_publish(5)
        good = bundles.sign(_doc(2, 45), key)
        pubc.publish(topics.rules(t.identity.tenant), good, qos=1, retain=True).wait_for_publish(5)
        assert until(lambda: ho.one("SELECT applied_through FROM devices") == 2, 20)
        assert _lot_expiry(ho, 2) == 45
        assert [int(v) for (v,) in ho.q("SELECT version FROM rule_bundles ORDER BY version")] == [
            1,
            2,
        ]
        assert ho.check() == []
    finally:
        pubc.loop_stop()
        up.stop()
        hq.terminate()
        hq.wait(15)
        ho.close()
