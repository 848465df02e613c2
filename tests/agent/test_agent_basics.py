"""The agent without a bank terminal: config errors, identification, enrolment, quotes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import load
from edge.errors import ConfigError
from hw_sim.keypad import KeypadSim
from hw_sim.rdm6300 import RDM6300Sim
from hw_sim.scanner import ScannerSim
from tests.conftest import ROOT
from tests.helpers.store import Store

BASKET = {
    "id": "POS-1",
    "lines": [{"sku": "DAIRY-MILK-1L", "category": "dairy", "qty": 2, "unit_price": 380_000}],
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path)
    s.rfid = s.add_sim("rfid", "card", "rdm6300", RDM6300Sim(interval=0.03))  # type: ignore[attr-defined]
    s.qr = s.add_sim("qr", "card", "scanner", ScannerSim())  # type: ignore[attr-defined]
    s.keys = s.add_sim("keypad", "phone", "keypad", KeypadSim())  # type: ignore[attr-defined]
    s.start()
    yield s
    s.stop()


def test_status_shows_rules_devices_and_offline(store: Store) -> None:
    st = store.status()
    assert st["rules_version"] == 1 and st["online"] is False
    assert st["devices"] == {"rfid": "ok", "qr": "ok", "keypad": "ok"}
    assert st["outbox"]["depth"] == 0


def test_phone_in_persian_digits_enrols_a_new_member(store: Store) -> None:
    code, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    assert code == 201 and s["quote"]["payable"] == 760_000 and s["member"] is None
    code, s2 = store.api(
        "POST", f"/v1/sessions/{s['session']}/identify", {"phone": "۰۹۱۲ ۱۲۳ ۴۵۶۷"}
    )
    assert code == 200, s2
    assert s2["member"] == "+989121234567" and s2["enrolled"] is True  # with the sale
    assert any(a["rule"] == "welcome" for a in s2["quote"]["applied"])  # first purchase
    # typing a number enrols nobody: a mistyped number on a cancelled basket leaves no member
    assert store.status()["outbox"]["depth"] == 0
    code, c = store.api("POST", f"/v1/sessions/{s['session']}/cancel")
    assert code == 200 and c["state"] == "cancelled"
    assert store.status()["outbox"]["depth"] == 0
    # an explicit enrolment, with the customer's consent, writes the enrol record
    code, e = store.api("POST", "/v1/members", {"phone": "۰۹۱۲ ۱۲۳ ۴۵۶۷"})
    assert code == 400 and e["error"] == "bad_request"  # no consent: nothing written
    code, e = store.api("POST", "/v1/members", {"phone": "۰۹۱۲ ۱۲۳ ۴۵۶۷", "consent": True})
    assert code == 200 and e == {"member": "+989121234567", "enrolled": True}
    assert store.status()["outbox"]["depth"] == 1
    code, e = store.api("POST", "/v1/members", {"phone": "09121234567", "consent": True})
    assert code == 200 and e["enrolled"] is False  # already a member: no second record
    assert store.status()["outbox"]["depth"] == 1


def test_a_wrong_phone_number_gets_a_bilingual_message(store: Store) -> None:
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    code, err = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"phone": "0212345"})
    assert code == 400 and err["error"] == "bad_phone"
    assert err["en"] and err["fa"] and err["fa"] != err["en"]


def test_identification_by_rfid_tap_qr_scan_and_keypad(store: Store) -> None:
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    sid = s["session"]
    store.rfid.tap("0F00A1B2C3", 0.5)  # type: ignore[attr-defined]
    code, v = store.api("POST", f"/v1/sessions/{sid}/identify", {"wait": 5})
    assert code == 200 and v["member"] == "card:0F00A1B2C3" and v["identified_by"] == "rfid"
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    store.qr.scan("LC1:APP-7731")  # type: ignore[attr-defined]
    code, v = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"wait": 5})
    assert code == 200 and v["member"] == "card:APP-7731" and v["identified_by"] == "qr"
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    store.keys.type("09351112233")  # type: ignore[attr-defined]
    code, v = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"wait": 5})
    assert code == 200 and v["member"] == "+989351112233"
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    code, v = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"wait": 0.3})
    assert code == 408 and v["error"] == "timeout"


def test_bad_requests_are_clear(store: Store) -> None:
    assert store.api("POST", "/v1/baskets", {"basket": {"lines": []}})[0] == 400
    assert store.api("GET", "/v1/sessions/0123456789abcdef")[0] == 404
    assert store.api("POST", "/v1/nothing", {})[0] == 404
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    code, err = store.api("POST", f"/v1/sessions/{s['session']}/pay")
    assert code == 503 and err["error"] == "no_bank"  # payable > 0 and no terminal configured
    code, err = store.api("POST", f"/v1/sessions/{s['session']}/options", {"tip": 5})
    assert code == 400


def test_config_errors_name_the_setting(tmp_path: Path) -> None:
    s = Store(tmp_path)
    s.add_port("bank", "bank", "pcpos9000", "/dev/ttyS0")
    with pytest.raises(ConfigError, match=r"devices\.bank\.driver.*unknown bank driver"):
        load(s.write_config())
    cfg = s.write_config()
    cfg.write_text(cfg.read_text().replace('id = "pos-1"', 'id = "pos 1"'))
    with pytest.raises(ConfigError, match=r"device\.id"):
        load(cfg)
    good = Store(tmp_path, device="pos-2").write_config()  # valid as it is
    load(good)
    text = good.read_text()
    for change, setting in [
        (("[checkout]", "[checkout]\nspeed = 3"), r"checkout\.speed"),
        (("bank_timeout_s = 10", "bank_timeout_s = -5"), r"checkout\.bank_timeout_s"),
        (('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:99999"'), r"pos_api\.listen"),
        (('rules_bundle = "rules.bundle"', "rules_bundle = 5"), r"head_office\.rules_bundle"),
        (("[checkout]", "[retention]\nrefund_days = 0\n[checkout]"), r"retention\.refund_days"),
    ]:
        assert change[0] in text
        good.write_text(text.replace(*change))
        with pytest.raises(ConfigError, match=setting):
            load(good)
    r = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 2 and "configuration error" in r.stderr


def test_a_bundle_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edge.protocol import bundles
    from tests.helpers.store import rules_doc

    s = Store(tmp_path)
    (s.dir / "rules.bundle").write_bytes(bundles.sign(rules_doc(), Ed25519PrivateKey.generate()))
    s.start()
    try:
        st = s.status()
        assert st["rules_version"] is None and "signature" in st["rules_error"]
        code, err = s.api("POST", "/v1/baskets", {"basket": BASKET})
        assert code == 503 and err["error"] == "no_rules" and err["fa"]
    finally:
        s.stop()


def test_identification_by_nfc_tap(tmp_path: Path) -> None:
    from hw_sim.pn532 import PN532Sim

    s = Store(tmp_path)
    nfc = s.add_sim("nfc", "card", "pn532", PN532Sim())
    s.start()
    try:
        assert s.status()["devices"]["nfc"] == "ok"
        _, v = s.api("POST", "/v1/baskets", {"basket": BASKET})
        nfc.event("tap", card="04A1B2C3D4E5F6")
        code, v = s.api("POST", f"/v1/sessions/{v['session']}/identify", {"wait": 10})
        assert code == 200, v
        assert v["member"] == "card:04A1B2C3D4E5F6" and v["identified_by"] == "nfc"
    finally:
        s.stop()
