"""Head office's rules tools: sign/verify round trip, a wrong key or a changed byte fails
verify, publish only moves the retained bundle forward."""

from __future__ import annotations

import json
from pathlib import Path

from cloud_broker.local_broker import LocalMosquitto
from edge.protocol import bundles, keys, topics
from edge.protocol.mqtt import BrokerConfig
from firmware_tools.mqttio import Session
from tests.conftest import RULES_PATH
from tests.provisioning.world import run


def _doc(tmp: Path, version: int) -> Path:
    doc = json.loads(RULES_PATH.read_text("utf-8"))
    doc["version"] = version
    path = tmp / f"rules-v{version}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False))
    return path


def _tool(tmp: Path, *args: str) -> tuple[int, str, str]:
    r = run("firmware_tools", "rules", *args, cwd=tmp)
    return r.returncode, r.stdout, r.stderr


def test_sign_verify_round_trip_and_wrong_keys(tmp_path: Path) -> None:
    assert _tool(tmp_path, "keygen", "--key", "ho.key", "--pub", "ho.pub")[0] == 0
    assert _tool(tmp_path, "keygen", "--key", "other.key", "--pub", "other.pub")[0] == 0
    code, out, err = _tool(tmp_path, "sign", str(_doc(tmp_path, 7)), "--key", "ho.key",
                           "--out", "v7.bundle")  # fmt: skip
    assert code == 0, err
    code, out, err = _tool(tmp_path, "verify", "v7.bundle", "--pub", "ho.pub")
    assert code == 0, err
    n = len(json.loads(RULES_PATH.read_text("utf-8"))["rules"])
    assert f"valid: hypershahr rules version 7, {n} rules" in out and "معتبر" in out
    # the bundle is what the terminal's own code accepts
    raw = (tmp_path / "v7.bundle").read_bytes()
    pinned = keys.public_from_pem((tmp_path / "ho.pub").read_bytes())
    assert bundles.open_bundle(raw, pinned, "hypershahr").version == 7

    code, out, err = _tool(tmp_path, "verify", "v7.bundle", "--pub", "other.pub")
    assert code == 1 and "does not verify with other.pub" in err and "bad_signature" in err
    assert "تأیید نشد" in err
    code, _out, err = _tool(tmp_path, "verify", "v7.bundle", "--pub", "ho.pub", "--tenant", "x")
    assert code == 1 and "rules for tenant hypershahr" in err
    damaged = bytearray(raw)
    damaged[len(damaged) // 2] ^= 0x01
    (tmp_path / "damaged.bundle").write_bytes(bytes(damaged))
    assert _tool(tmp_path, "verify", "damaged.bundle", "--pub", "ho.pub")[0] == 1
    # a rules document the engine refuses is not signed
    bad = json.loads(RULES_PATH.read_text("utf-8"))
    bad["version"] = "seven"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    code, _out, err = _tool(tmp_path, "sign", "bad.json", "--key", "ho.key", "--out", "bad.b")
    assert code == 1 and not (tmp_path / "bad.b").exists()
    assert _tool(tmp_path, "sign", "bad.json")[0] == 2  # usage: --key and --out missing


def test_publish_only_moves_forward(tmp_path: Path, broker: LocalMosquitto) -> None:
    assert _tool(tmp_path, "keygen", "--key", "ho.key", "--pub", "ho.pub")[0] == 0
    for v in (1, 2, 3):
        assert _tool(tmp_path, "sign", str(_doc(tmp_path, v)), "--key", "ho.key",
                     "--out", f"v{v}.bundle")[0] == 0  # fmt: skip

    def publish(v: int) -> tuple[int, str, str]:
        return _tool(tmp_path, "publish", f"v{v}.bundle", "--pub", "ho.pub",
                     "--broker", broker.url, "--timeout", "5")  # fmt: skip

    code, out, err = publish(2)
    assert code == 0, err
    assert "nothing was published before" in out
    for older in (2, 1):
        code, _out, err = publish(older)
        assert code == 1, err
        assert "already carries version 2" in err and "تازه‌تر نیست" in err
    code, out, err = publish(3)
    assert code == 0 and "replacing version 2" in out, err

    cfg = BrokerConfig.from_url(broker.url)
    with Session(cfg, "check") as s:
        s.subscribe(topics.rules("hypershahr"))
        m = s.wait_for(lambda m: m.retain, 30)
    assert m is not None and m.payload == (tmp_path / "v3.bundle").read_bytes()

    # a retained bundle that does not verify with our key is not replaced blindly
    junk = b"\xd2\x84junk"
    with Session(cfg, "intruder") as s:
        s.publish(topics.rules("hypershahr"), junk, retain=True)
    with Session(cfg, "check-junk") as s:  # the broker holds the junk as the retained bundle
        s.subscribe(topics.rules("hypershahr"))
        m = s.wait_for(lambda m: m.retain, 30)
    assert m is not None and m.payload == junk
    code, _out, err = publish(3)
    assert code == 1 and "does not verify" in err
