"""selftest on its own (no head office needed): a silent serial device gets FAIL with the
spy:// hint and exit status 1; strings a device sends are shown cleaned; an offline
terminal skips the broker steps; enroll without head office times out clearly."""

from __future__ import annotations

import re
import threading
import unicodedata
from pathlib import Path

from cloud_broker.local_broker import LocalMosquitto
from edge.config import load
from edge.protocol import keys
from hw_sim.device import SimDevice
from hw_sim.pn532 import PN532Sim
from hw_sim.scanner import ScannerSim
from hw_sim.transport import PtyServer
from tests.provisioning.world import run


def _init(tmp: Path, *extra: str) -> Path:
    ho = keys.generate(tmp / "ho-rules.key")
    (tmp / "rules.pub.pem").write_text(keys.public_pem(ho))
    config = tmp / "term" / "edge.toml"
    r = run(
        "firmware_tools", "init", "--config", str(config), "--tenant", "hypershahr",
        "--store", "s1", "--device", "pos-7", "--rules-key", str(tmp / "rules.pub.pem"),
        "--pos-listen", "127.0.0.1:0", *extra, cwd=tmp,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return config


def _selftest(tmp: Path, config: Path, *extra: str) -> tuple[int, str]:
    r = run("firmware_tools", "selftest", "--config", str(config), *extra, cwd=tmp)
    return r.returncode, r.stdout


def test_a_silent_serial_device_fails_with_the_spy_hint(tmp_path: Path) -> None:
    silent = PtyServer(SimDevice(), tmp_path / "tty-nfc").start()  # a cable to nothing
    alive = PtyServer(PN532Sim(), tmp_path / "tty-nfc2").start()
    try:
        config = _init(
            tmp_path,
            "--attach", f"nfc:card:pn532:{tmp_path}/tty-nfc",
            "--attach", f"nfc2:card:pn532:{tmp_path}/tty-nfc2",
            "--attach", f"rfid:card:rdm6300:{tmp_path}/tty-nfc2",
        )  # fmt: skip
        code, out = _selftest(tmp_path, config, "--wait", "0")
    finally:
        silent.stop()
        alive.stop()
    assert code == 1, out
    assert re.search(r"^FAIL nfc: card reader pn532: no answer from the NFC reader", out, re.M)
    assert re.search(r"^     خطا nfc: ", out, re.M)
    spy = f'port = "spy://{tmp_path}/tty-nfc?file=/tmp/nfc.trace"'
    assert f"hint: trace the line: set {spy} in [devices.nfc]" in out
    assert f"راهنما: ردگیری خط: در [devices.nfc] مقدار {spy}" in out
    assert re.search(r"^OK   nfc2: PN532 v1\.6 answered", out, re.M)
    assert re.search(r"^SKIP rfid: card reader rdm6300 only speaks when used", out, re.M)
    assert re.search(r"^SKIP broker: no broker configured", out, re.M)
    assert re.search(r"^SKIP heartbeat: ", out, re.M)
    assert "selftest: 4 OK, 1 FAIL, 3 SKIP" in out


def test_a_passive_device_that_stays_silent_fails_too(tmp_path: Path) -> None:
    quiet = PtyServer(SimDevice(), tmp_path / "tty-rfid").start()
    try:
        config = _init(tmp_path, "--attach", f"rfid:card:rdm6300:{tmp_path}/tty-rfid")
        code, out = _selftest(tmp_path, config, "--wait", "0.5", "--skip", "disk")
    finally:
        quiet.stop()
    assert code == 1
    assert re.search(r"^FAIL rfid: nothing from .* within 0\.5 s \(was a card", out, re.M)
    assert "spy://" in out and re.search(r"^SKIP disk: skipped", out, re.M)


HOSTILE = (
    "LC1:\x1b[2J\x1b[31mPWNED\x1b[0m\x1b]0;title\x07\u202egnp.exe\u2066"  # escapes, bidi
    + "A" * 300
)


def test_device_strings_are_shown_cleaned(tmp_path: Path) -> None:
    hostile, sneaky, long = ScannerSim(), ScannerSim(), ScannerSim()
    servers = [
        PtyServer(hostile, tmp_path / "tty-qr1").start(),
        PtyServer(sneaky, tmp_path / "tty-qr2").start(),
        PtyServer(long, tmp_path / "tty-qr3").start(),
    ]
    stop = threading.Event()

    def scanning() -> None:
        while not stop.wait(0.1):
            hostile.scan(HOSTILE)  # refused by the driver (C0 controls): shown why, cleaned
            sneaky.scan("LC1:\u009b2J\u202eOK\u009d0;x\u009c" + "B" * 300)  # C1, bidi: refused
            long.scan("LC1:OK" + "C" * 300)  # accepted, shown capped

    threading.Thread(target=scanning, daemon=True).start()
    try:
        config = _init(
            tmp_path,
            "--attach", f"qr1:card:scanner:{tmp_path}/tty-qr1",
            "--attach", f"qr2:card:scanner:{tmp_path}/tty-qr2",
            "--attach", f"qr3:card:scanner:{tmp_path}/tty-qr3",
        )  # fmt: skip
        code, out = _selftest(tmp_path, config, "--wait", "5")
    finally:
        stop.set()
        for s in servers:
            s.stop()
    assert code == 1, out  # the refused line is a failure the technician must see
    for ch in out:
        assert ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cf") or ch == "\u200c", (
            repr(ch),
            out,
        )
    assert "[2J" not in out and "[31m" not in out and "]0;" not in out
    line = re.search(r"^FAIL qr1: .*$", out, re.M)
    assert line is not None, out
    assert "(control or formatting characters in scan): LC1:PWNEDgnp.exeAAA" in line[0]
    assert len(line[0]) < 200  # the device's string is capped
    line = re.search(r"^FAIL qr2: .*$", out, re.M)
    assert line is not None, out
    assert "(control or formatting characters in scan): LC1:OKBBB" in line[0]
    ok = re.search(r"^OK   qr3: scanned on \S+: LC1:OKCCC+…$", out, re.M)
    assert ok is not None, out
    assert len(ok[0].split(": ", 2)[2]) <= 64


def test_enroll_without_head_office_times_out_clearly(
    tmp_path: Path, broker: LocalMosquitto
) -> None:
    config = _init(tmp_path, "--broker", broker.url)
    r = run(
        "firmware_tools", "enroll", "--config", str(config), "--token", "AAAA-BBBB",
        "--timeout", "1", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 3, r.stdout + r.stderr
    assert "head office did not answer the enroll request within 1 s" in r.stderr
    assert "دفتر مرکزی در 1 ثانیه به درخواست enroll پاسخ نداد" in r.stderr


def test_usage_and_configuration_errors_exit_2(tmp_path: Path) -> None:
    r = run("firmware_tools", "selftest", "--config", str(tmp_path / "none.toml"), cwd=tmp_path)
    assert r.returncode == 2 and "no such configuration file" in r.stderr
    assert "خطای فرمان یا پیکربندی" in r.stderr
    r = run("firmware_tools", "enroll", cwd=tmp_path)
    assert r.returncode == 2
    config = _init(tmp_path)
    # init never replaces a device key
    r = run(
        "firmware_tools", "init", "--config", str(config), "--tenant", "hypershahr",
        "--store", "s1", "--device", "pos-7", "--rules-key", str(tmp_path / "rules.pub.pem"),
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2 and "a configuration exists" in r.stderr
    # a driver that does not exist: nothing is left behind, no key either
    other = tmp_path / "other" / "edge.toml"
    r = run(
        "firmware_tools", "init", "--config", str(other), "--tenant", "hypershahr",
        "--store", "s1", "--device", "pos-8", "--rules-key", str(tmp_path / "rules.pub.pem"),
        "--attach", "x:card:nosuch:/dev/null", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2 and "unknown card driver 'nosuch'" in r.stderr
    assert not (tmp_path / "other").exists()  # refused before anything was written


def _files(where: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(where.iterdir()) if p.is_file()}


def test_a_refused_init_force_changes_nothing(tmp_path: Path) -> None:
    config = _init(tmp_path)
    before = _files(config.parent)
    other = keys.generate(tmp_path / "other.key")
    (tmp_path / "other.pem").write_text(keys.public_pem(other))

    def init(where: Path, listen: str, *extra: str) -> tuple[int, str]:
        r = run(
            "firmware_tools", "init", "--config", str(where), "--tenant", "hypershahr",
            "--store", "s1", "--device", "pos-7", "--rules-key", str(tmp_path / "other.pem"),
            "--pos-listen", listen, *extra, cwd=tmp_path,
        )  # fmt: skip
        return r.returncode, r.stderr

    # the agent would refuse the new configuration: the pinned rules key, the configuration
    # and the key stay as they were, and nothing new is left beside them
    code, err = init(config, "bogus", "--force")
    assert code == 2 and "pos_api.listen" in err, err
    assert _files(config.parent) == before
    # the same into a fresh directory leaves no key, no copied files, no configuration
    fresh = tmp_path / "fresh" / "edge.toml"
    code, err = init(fresh, "bogus")
    assert code == 2 and "pos_api.listen" in err, err
    assert _files(fresh.parent) == {}
    # accepted, the new rules key replaces the pinned one; the device key is kept
    code, err = init(config, "127.0.0.1:0", "--force")
    assert code == 0, err
    after = _files(config.parent)
    assert sorted(after) == sorted(before)
    assert after["rules.pub.pem"] == keys.public_pem(other).encode()
    assert after["device.key"] == before["device.key"]
    assert load(config).rules_key_file == config.parent / "rules.pub.pem"


def test_a_failed_key_step_skips_the_heartbeat_and_still_sums_up(
    tmp_path: Path, broker: LocalMosquitto
) -> None:
    config = _init(tmp_path, "--broker", broker.url)
    (config.parent / "device.key").chmod(0o644)  # readable by others: the key step fails
    code, out = _selftest(tmp_path, config, "--wait", "0")
    assert code == 1, out
    assert re.search(r"^FAIL key: .*readable by others", out, re.M), out
    assert re.search(r"^OK   broker: ", out, re.M), out
    assert re.search(r"^SKIP heartbeat: needs the key and broker steps to pass first", out, re.M)
    assert "selftest: 3 OK, 1 FAIL, 1 SKIP" in out
