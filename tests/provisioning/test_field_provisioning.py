"""A blank terminal becomes a trusted club device with the technician's commands, against
simulated hardware on pseudo-terminals, a real Mosquitto (TLS, client certificates, the
generated ACL) and head office's real reconciler; then the agent sells and head office
accepts the sale.  Tokens that must not work do not; rotated keys and revoked devices
behave as head office says."""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from edge.config import load
from edge.protocol import keys
from firmware_tools import client
from hw_sim.pn532 import PN532Sim
from hw_sim.rdm6300 import RDM6300Sim
from hw_sim.scanner import ScannerSim
from hw_sim.transport import PtyServer
from hw_sim.zvt import ZVTSim
from tests.conftest import ROOT
from tests.provisioning.world import World, wait

BASKET = {
    "lines": [{"sku": "DAIRY-CHEESE-400", "category": "dairy", "qty": 2, "unit_price": 2_150_000}]
}


def _api(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _steps(out: str) -> dict[str, str]:
    """step name -> OK | FAIL | SKIP, from selftest's English lines."""
    return {m[1]: m[0] for m in re.findall(r"^(OK|FAIL|SKIP) +([\w-]+): ", out, re.M)}


def test_blank_terminal_provisioned_enrolled_selftested_and_selling(
    world: World, tmp_path: Path
) -> None:
    sims = {
        "nfc": PN532Sim(),
        "rfid": RDM6300Sim("0F00A1B2C3"),
        "qr": ScannerSim(),
        "bank": ZVTSim(),
    }
    servers = {n: PtyServer(s, tmp_path / f"tty-{n}").start() for n, s in sims.items()}
    drivers = {"nfc": "card:pn532", "rfid": "card:rdm6300", "qr": "card:scanner",
               "bank": "bank:zvt"}  # fmt: skip
    attach = [a for n, d in drivers.items() for a in ("--attach", f"{n}:{d}:{tmp_path}/tty-{n}")]
    stop = threading.Event()
    agent: subprocess.Popen[bytes] | None = None
    try:
        # 1. init: the key is made on the terminal, 0600, never shown
        config = world.init("pos-1", *attach, "--option", "bank.password=000000")
        cfg = load(config)
        key_file = cfg.key_file
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert {d.driver for d in cfg.devices.values()} == {"pn532", "rdm6300", "scanner", "zvt"}
        secret = key_file.read_text().splitlines()[1]  # a line of the private key's base64

        # 2. enroll with a one-time token from head office
        token = world.token("s1")
        r = world.tool("enroll", "--config", str(config), "--token", token)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "enrolled" in r.stdout and "ثبت شد" in r.stdout
        assert secret not in r.stdout + r.stderr
        row = world.q("SELECT tenant, store, status, public_key FROM devices WHERE device = ?",
                      ("pos-1",))  # fmt: skip
        pub = keys.public_raw(keys.load_private(key_file))
        assert row == [("hypershahr", "s1", "active", pub)]

        # 3. selftest: every device answers, the broker over TLS, a heartbeat acknowledged
        def scanning() -> None:  # the technician scans a test code while selftest waits
            while not stop.wait(0.2):  # the technician's pace, not a wait for an event
                sims["qr"].scan("LC1:TEST-CARD-7")  # type: ignore[attr-defined]

        threading.Thread(target=scanning, daemon=True).start()
        r = world.tool("selftest", "--config", str(config), "--wait", "5")
        stop.set()
        assert r.returncode == 0, r.stdout + r.stderr
        steps = _steps(r.stdout)
        assert steps == {
            "key": "OK", "nfc": "OK", "rfid": "OK", "qr": "OK", "bank": "OK", "broker": "OK",
            "clock": "OK", "disk": "OK", "heartbeat": "OK",
        }, r.stdout  # fmt: skip
        assert "PN532 v1.6" in r.stdout and "card 0F00A1B2C3" in r.stdout
        assert "LC1:TEST-CARD-7" in r.stdout and "terminal id 29001006" in r.stdout
        assert "TLSv1.3" in r.stdout and "device certificate pos-1" in r.stdout
        assert "سالم heartbeat" in r.stdout and "selftest: 9 OK, 0 FAIL, 0 SKIP" in r.stdout
        assert world.q("SELECT seq, type FROM records WHERE device = ?", ("pos-1",)) == [
            (1, "heartbeat")
        ]

        # 4. the agent, on the configuration init wrote, sells; head office accepts the sale
        agent = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=(tmp_path / "agent.log").open("ab"),
        )
        assert agent.stdout is not None
        line = agent.stdout.readline().decode().strip()
        assert line.startswith("listening "), (tmp_path / "agent.log").read_text()[-3000:]
        url = line.split(" ", 1)[1]
        assert wait(lambda: _api(url, "GET", "/v1/status")["online"])
        s = _api(url, "POST", "/v1/baskets", {"basket": BASKET})
        _api(url, "POST", f"/v1/sessions/{s['session']}/identify", {"phone": "09121234567"})
        paid = _api(url, "POST", f"/v1/sessions/{s['session']}/pay")
        assert paid["status"] == "approved", paid
        seq = paid["record"]["seq"]
        assert wait(
            lambda: world.q("SELECT type FROM records WHERE device = ? AND seq = ?",
                            ("pos-1", seq)) == [("sale",)]
        ), (world.dir / "serve.log").read_text()[-3000:]  # fmt: skip
        assert world.q("SELECT COUNT(*) FROM quarantine WHERE device = ?", ("pos-1",)) == [(0,)]
    finally:
        stop.set()
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(20)
        for srv in servers.values():
            srv.stop()


def test_reused_expired_and_foreign_tokens_are_refused(world: World) -> None:
    first = world.init("pos-2a")
    second = world.init("pos-2b")
    token = world.token("s1")
    r = world.tool("enroll", "--config", str(first), "--token", token.lower())  # as typed
    assert r.returncode == 0, r.stdout + r.stderr

    def refused(tok: str, code: str) -> str:
        r = world.tool("enroll", "--config", str(second), "--token", tok)
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"head office refused ({code})" in r.stderr
        assert f"دفتر مرکزی نپذیرفت ({code})" in r.stderr
        return r.stderr

    out = refused(token, "token_used")  # a token works once
    assert "a token works once" in out and "هر توکن یک بار کار می‌کند" in out
    expiring = world.token("s1", "--ttl", "1s")
    time.sleep(1.2)  # the token's 1 s lifetime runs out: a time-based expiry, not an event
    assert "expired at" in refused(expiring, "token_expired")
    assert "not hypershahr/s1" in refused(world.token("s9"), "token_store")
    assert "not pos-2b" in refused(world.token("s1", "--device", "pos-9"), "token_device")
    refused("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF", "token_unknown")
    assert world.q("SELECT COUNT(*) FROM devices WHERE device = ?", ("pos-2b",)) == [(0,)]
    kinds = world.q("SELECT detail FROM security_events WHERE device = ?", ("pos-2b",))
    assert {k[0].split(":")[0] for k in kinds} >= {"token_used", "token_store", "token_unknown"}
    # the refusals left the terminal able to enroll with a good token, via stdin
    r = world.tool("enroll", "--config", str(second), "--token", "-", stdin=world.token() + "\n")
    assert r.returncode == 0, r.stdout + r.stderr


def _ship(cfg: Any, key: Any, n: int, timeout: float = 15.0) -> tuple[list[int], bool]:
    """Commit ``n`` heartbeats signed with ``key`` and ship them; (seqs, acknowledged)."""
    with client.outbox(cfg, key) as ob:
        seqs = [client.heartbeat(ob).seq for _ in range(n)]
    acked, _ = client.ship(cfg, seqs[-1], timeout)
    return seqs, acked


def test_rotate_key_old_records_stay_valid_and_the_old_key_is_refused_after(
    world: World,
) -> None:
    config = world.init("pos-3")
    r = world.tool("enroll", "--config", str(config), "--token", world.token())
    assert r.returncode == 0, r.stdout + r.stderr
    cfg = load(config)
    old = keys.load_private(cfg.key_file)
    assert _ship(cfg, old, 2) == ([1, 2], True)

    r = world.tool("rotate-key", "--config", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "new key from seq 3" in r.stdout and "کلید عوض شد" in r.stdout
    new = keys.load_private(cfg.key_file)
    assert keys.public_raw(new) != keys.public_raw(old)
    assert sorted(p.name for p in cfg.key_file.parent.glob("device.key*")) == ["device.key"]
    assert stat.S_IMODE(cfg.key_file.stat().st_mode) == 0o600
    assert world.q(
        "SELECT from_seq, public_key FROM device_keys WHERE device = ? ORDER BY from_seq",
        ("pos-3",),
    ) == [(1, keys.public_raw(old)), (3, keys.public_raw(new))]

    # records after the rotation, signed with the new key, are accepted
    assert _ship(cfg, new, 1) == ([4], True)
    assert [s for (s,) in world.q("SELECT seq FROM records WHERE device = ? ORDER BY seq",
                                  ("pos-3",))] == [1, 2, 3, 4]  # fmt: skip
    # a record signed with the old key after the rotation seq is refused
    seqs, acked = _ship(cfg, old, 1, timeout=1.5)
    assert seqs == [5] and not acked
    assert wait(
        lambda: (
            world.q("SELECT code FROM quarantine WHERE device = ? AND seq = 5", ("pos-3",))
            == [("bad_signature",)]
        )
    )


def test_decommission_revokes_later_records_and_destroys_the_key(world: World) -> None:
    config = world.init("pos-4")
    r = world.tool("enroll", "--config", str(config), "--token", world.token())
    assert r.returncode == 0, r.stdout + r.stderr
    cfg = load(config)
    key = keys.load_private(cfg.key_file)  # what a thief would still hold
    with client.outbox(cfg, key) as ob:
        client.heartbeat(ob)  # not sent yet: decommissioning drains it first

    r = world.tool("decommission", "--config", str(config), "--destroy-key")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "records after seq 1 are refused" in r.stdout and "از رده خارج شد" in r.stdout
    assert not cfg.key_file.exists() and "device key destroyed" in r.stdout
    assert world.q(
        "SELECT status, revoked_after_seq, applied_through FROM devices WHERE device = ?",
        ("pos-4",),
    ) == [("revoked", 1, 1)]

    seqs, acked = _ship(cfg, key, 1, timeout=1.5)
    assert seqs == [2] and not acked
    assert wait(
        lambda: (
            world.q("SELECT code FROM quarantine WHERE device = ? AND seq = 2", ("pos-4",))
            == [("revoked",)]
        )
    )
    # without its key the terminal can no longer sign anything: a usage error now
    r = world.tool("decommission", "--config", str(config))
    assert r.returncode == 2 and "device.key does not exist" in r.stderr
