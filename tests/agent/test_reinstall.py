"""A terminal reinstalled with its old key: an empty data directory, the same device id.

Its new chain starts at seq 1 again while head office already applied the old one.  The
terminal must notice (the ack says head office holds more than it wrote) and stop club
sales while the shop keeps selling without the club; head office must quarantine and alert
every conflicting record and refuse to call the ledger OK; and the documented commands
(head office's checkpoint, the technician's resume, head office's admit) must bring every
paid sale into the ledger and the terminal back to recording."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from cloud_broker.local_broker import LocalMosquitto
from cloud_broker.registry import devices as registry
from edge.protocol import keys
from hw_sim.zvt import ZVTSim
from tests.cloud.test_service import serve
from tests.conftest import ROOT
from tests.helpers.headoffice import HO
from tests.helpers.store import Store
from tests.helpers.wait import until

BASKET = {"lines": [{"sku": "TEA-500", "category": "grocery", "qty": 1, "unit_price": 3_200_000}]}


def _sale(store: Store, phone: str = "09121234567", **pay: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    store.api("POST", f"/v1/sessions/{s['session']}/identify", {"phone": phone})
    return store.api("POST", f"/v1/sessions/{s['session']}/pay", dict(pay))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def _cli_resend(broker: LocalMosquitto, store: Store, ho: HO) -> int:
    """Publish the terminal's outbox again, as its resend timer does; the conflicts
    quarantined after head office has seen them again."""
    import sqlite3

    import paho.mqtt.client as mqtt

    from edge.protocol import topics

    rows = sqlite3.connect(store.data_dir / "edge.db").execute("SELECT record FROM outbox")
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, "resender")
    c.connect("127.0.0.1", int(broker.url.rsplit(":", 1)[1]))
    c.loop_start()
    topic = topics.records(store.tenant, store.store, store.device)
    for (raw,) in rows:
        c.publish(topic, bytes(raw), qos=1).wait_for_publish(5)
    # a marker after them, on the same topic from the same client: once head office has
    # quarantined it, it has processed the resent records before it
    c.publish(topic, b"marker", qos=1).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()
    assert until(lambda: ho.one("SELECT COUNT(*) FROM quarantine WHERE raw = ?", (b"marker",)), 20)
    return int(ho.one("SELECT COUNT(*) FROM quarantine WHERE code = 'conflict'"))


def test_a_reinstalled_terminal_stops_and_resumes_without_losing_a_sale(
    tmp_path: Path, broker: LocalMosquitto
) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    ho = HO(url)
    store = Store(tmp_path, broker_url=broker.url)
    registry.register(ho.db, store.device, store.tenant, store.store, store.public_key)
    bank = store.add_sim("bank", "bank", "zvt", ZVTSim())
    hq = serve(broker, url, tmp_path / "serve.log")
    rules_key = tmp_path / "ho-rules.key"
    keys.write_private(rules_key, store.ho_key)
    try:
        store.start()
        for _ in range(2):
            assert _sale(store)[1]["status"] == "approved"
        assert store.wait(lambda: store.status()["outbox"]["depth"] == 0)
        applied = ho.one("SELECT applied_through FROM devices")
        assert applied == 3  # the enrolment and two sales

        # -- the reinstall: the same key, an empty database; it sells offline first ------
        store.kill()
        shutil.rmtree(store.data_dir)
        store.broker_url = None
        store.start()
        assert _sale(store)[1]["status"] == "approved"  # seq 1 and 2 again: a fork
        store.kill()
        store.broker_url = broker.url
        store.start()

        # the terminal notices and stops club sales; the shop still sells
        assert store.wait(lambda: store.status()["recording"]["reason"] == "chain_conflict")
        st = store.status()
        assert "resume" in st["recording"]["en"] and st["recording"]["fa"]
        code, e = _sale(store, "09351112233")
        assert code == 503 and e["error"] == "chain_conflict" and "without" in e["en"]
        code, plain = _sale(store, "09351112233", loyalty=False)
        assert code == 200 and plain["loyalty"] is False

        # head office: every conflict quarantined and alerted, and the ledger is not OK
        assert until(lambda: ho.one("SELECT COUNT(*) FROM quarantine") == 2, 20)
        assert ho.codes() == ["conflict", "conflict"]
        assert ho.one("SELECT COUNT(*) FROM alerts WHERE kind = 'chain_conflict'") == 2
        assert {f.invariant for f in ho.check()} == {"quarantine resolved"}
        # the terminal sends its unacknowledged records again: not new conflicts
        assert _cli_resend(broker, store, ho) == 2
        assert _cli("-m", "cloud_broker", "--ledger", url, "ledger", "check").returncode == 1

        # -- the documented way out ------------------------------------------------------
        cp = tmp_path / "pos-1.checkpoint"
        r = _cli(
            "-m", "cloud_broker", "--ledger", url, "devices", "checkpoint",
            "--device", store.device, "--rules-key", str(rules_key), "--out", str(cp),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        store.kill()
        r = _cli(
            "-m", "firmware_tools", "resume", "--config", str(store.dir / "edge.toml"),
            "--checkpoint", str(cp),
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        assert "seq 4" in r.stdout
        r = _cli("-m", "cloud_broker", "--ledger", url, "quarantine", "list", "--open", "--json")
        ids = [str(e["id"]) for e in json.loads(r.stdout)]
        assert len(ids) == 2  # the two conflicts, not the junk marker
        r = _cli(
            "-m", "cloud_broker", "--ledger", url, "quarantine", "admit", *ids,
            "--reason", "sale made on the reinstalled pos-1 before it resumed", "--by", "ops",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "journal" in r.stdout
        assert ho.check() == []  # every paid sale is in the ledger now
        assert ho.one("SELECT COUNT(*) FROM admitted WHERE type = 'sale'") == 1

        store.start()
        assert store.wait(lambda: store.status()["recording"]["ok"])
        assert _sale(store)[1]["status"] == "approved"
        assert store.wait(lambda: store.status()["outbox"]["depth"] == 0)
        assert ho.one("SELECT applied_through FROM devices") == 4
        assert ho.check() == []
        # the bank charged four club sales and one without the club; the ledger holds the four
        charged = [h["amount"] for h in bank.history if h["charged"]]  # type: ignore[attr-defined]
        sales = ho.one("SELECT COUNT(*) FROM records WHERE type = 'sale'")
        admitted = ho.one("SELECT COUNT(*) FROM admitted WHERE type = 'sale'")
        assert len(charged) == 5 and sales + admitted == 4
        # admitting again books nothing twice
        r = _cli(
            "-m", "cloud_broker", "--ledger", url, "quarantine", "admit", ids[0],
            "--reason", "again", "--by", "ops",
        )  # fmt: skip
        assert r.returncode == 1 and "already resolved" in r.stderr
    finally:
        store.stop()
        hq.terminate()
        hq.wait(15)
        ho.close()
