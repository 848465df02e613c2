"""Head office rotates its rules key without visiting terminals: a real agent, a real
Mosquitto, and head office's own tools (``firmware_tools rules endorse|publish-keys|
publish``) for everything head office is meant to do."""

from __future__ import annotations

import json
from pathlib import Path

from cloud_broker.local_broker import LocalMosquitto
from edge.protocol import keys, topics
from edge.protocol.mqtt import BrokerConfig
from firmware_tools.mqttio import Session
from tests.helpers.store import Store, rules_doc
from tests.provisioning.world import run

BASKET = {
    "lines": [{"sku": "DAIRY-CHEESE-400", "category": "dairy", "qty": 2, "unit_price": 2_150_000}]
}


class HeadOffice:
    """Head office's rules desk: its keys and the tools, in a directory of its own."""

    def __init__(self, base: Path, store: Store, broker: LocalMosquitto) -> None:
        self.dir = base / "ho"
        self.dir.mkdir()
        self.broker = broker
        self.tenant = store.tenant
        keys.write_private(self.dir / "rules-1.key", store.ho_key)
        (self.dir / "rules-1.pub.pem").write_text(keys.public_pem(store.ho_key))

    def tool(self, *args: str) -> tuple[int, str, str]:
        r = run("firmware_tools", "rules", *args, cwd=self.dir)
        return r.returncode, r.stdout, r.stderr

    def ok(self, *args: str) -> str:
        code, out, err = self.tool(*args)
        assert code == 0, err
        return out

    def new_key(self, n: int) -> None:
        self.ok("keygen", "--key", f"rules-{n}.key", "--pub", f"rules-{n}.pub.pem")

    def endorse(self, n: int, by: int) -> str:
        out = f"key-{n}.endorsement"
        self.ok("endorse", "--key", f"rules-{by}.key", "--new-pub", f"rules-{n}.pub.pem",
                "--number", str(n), "--tenant", self.tenant, "--out", out)  # fmt: skip
        return out

    def publish_keys(self, *files: str) -> str:
        return self.ok("publish-keys", *files, "--broker", self.broker.url, "--tenant",
                       self.tenant, "--pub", "rules-1.pub.pem", "--timeout", "5")  # fmt: skip

    def sign(self, version: int, key: int) -> str:
        doc = self.dir / f"rules-v{version}.json"
        doc.write_text(json.dumps(rules_doc(version), ensure_ascii=False))
        self.ok("sign", doc.name, "--key", f"rules-{key}.key", "--out", f"v{version}.bundle")
        return f"v{version}.bundle"

    def publish(self, bundle: str) -> tuple[int, str, str]:
        return self.tool("publish", bundle, "--pub", "rules-1.pub.pem", "--broker",
                         self.broker.url, "--timeout", "5")  # fmt: skip

    def force(self, bundle: str) -> None:
        """Publish a bundle the tools would refuse (a mistake, or someone else's)."""
        with Session(BrokerConfig.from_url(self.broker.url), "ho-raw") as s:
            s.publish(topics.rules(self.tenant), (self.dir / bundle).read_bytes(), retain=True)


def _quoted_version(store: Store) -> int:
    code, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    assert code == 201, s
    return int(s["quote"]["rules_version"])


def _refused(store: Store, code: str) -> bool:
    return code in (store.status()["rules_error"] or "")


def test_a_terminal_follows_rules_key_rotations(tmp_path: Path, broker: LocalMosquitto) -> None:
    store = Store(tmp_path, broker_url=broker.url)
    ho = HeadOffice(tmp_path, store, broker)
    late: Store | None = None
    store.start()
    try:
        assert store.wait(lambda: store.status()["online"])
        st = store.status()
        assert (st["rules_version"], st["rules_key"]) == (1, 1)

        # 1. key 1 endorses key 2; the terminal learns it, and still runs on key 1's rules
        ho.new_key(2)
        out = ho.publish_keys(ho.endorse(2, by=1))
        assert "newest: key 2" in out and "nothing was published before" in out
        assert store.wait(lambda: store.status()["rules_key"] == 2)
        assert store.status()["rules_version"] == 1

        # 2. rules v2 signed by key 2: installed, and key 1 is retired
        code, out, err = ho.publish(ho.sign(2, key=2))
        assert code == 0 and "(rules key 2)" in out, err
        assert store.wait(lambda: store.status()["rules_version"] == 2)
        assert store.status()["rules_key"] == 2 and store.status()["rules_error"] is None

        # 3. v3 signed by the retired key 1: the tools refuse to publish it ...
        code, _out, err = ho.publish(ho.sign(3, key=1))
        assert code == 1 and "retired key 1" in err and "کلید" in err
        # ... and a terminal that receives it anyway refuses it and keeps quoting with v2
        ho.force("v3.bundle")
        assert store.wait(lambda: _refused(store, "retired_key"))
        assert store.status()["rules_version"] == 2 and _quoted_version(store) == 2

        # 4. a restart: the ring survived (v3, retained, is refused again)
        store.kill()
        store.start()
        st = store.status()
        assert (st["rules_version"], st["rules_key"]) == (2, 2)
        # the bundle provisioned at init, signed with key 1, is old news, not an error
        assert "provisioned" not in (st["rules_error"] or "")
        assert store.wait(lambda: store.status()["online"] and _refused(store, "retired_key"))
        assert store.status()["rules_version"] == 2
        code, out, err = ho.publish(ho.sign(4, key=2))
        assert code == 0 and "replacing version 3" in out, err
        assert store.wait(lambda: store.status()["rules_version"] == 4)
        assert store.status()["rules_error"] is None

        # 5. a bundle from key 3 before the terminal knows key 3: refused, then installed as
        # soon as the endorsement arrives (it is held, not lost)
        ho.new_key(3)
        ho.endorse(3, by=2)
        ho.force(ho.sign(5, key=3))
        assert store.wait(lambda: _refused(store, "unknown_key"))
        assert store.status()["rules_version"] == 4
        # publish-keys keeps the whole chain: leaving out key 2's endorsement is refused
        code, _out, err = ho.tool("publish-keys", "key-3.endorsement", "--broker", broker.url,
                                  "--tenant", ho.tenant, "--timeout", "5")  # fmt: skip
        assert code == 1 and "does not begin with" in err, err
        ho.publish_keys("key-2.endorsement", "key-3.endorsement")
        assert store.wait(lambda: store.status()["rules_version"] == 5)
        st = store.status()
        assert st["rules_key"] == 3 and st["rules_error"] is None
        assert _quoted_version(store) == 5

        # 6. a terminal installed with key 1 that was away for both rotations catches up
        # from the retained messages alone
        late = Store(tmp_path, device="pos-2", broker_url=broker.url, ho_key=store.ho_key)
        late.start()
        assert late.wait(lambda: late.status()["rules_version"] == 5)
        assert late.status()["rules_key"] == 3
    finally:
        store.stop()
        if late is not None:
            late.stop()
