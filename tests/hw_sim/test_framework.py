"""The simulator's transports, fault injection, scenarios and command line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import serial

from edge.drivers.rdm6300 import encode
from edge.drivers.registry import create, load, names
from edge.drivers.serialport import open_port, set_modem_lines
from edge.errors import ConfigError, DeviceError
from hw_sim.faults import Faults
from hw_sim.rdm6300 import RDM6300Sim
from hw_sim.scanner import ScannerSim
from hw_sim.scenario import Scenario, ScenarioError
from hw_sim.transport import PtyServer, TcpServer
from tests.conftest import ROOT


def test_pty_symlink_and_no_modem_lines(tmp_path: Path) -> None:
    sim = ScannerSim("lf")
    srv = PtyServer(sim, tmp_path / "ttyX").start()
    try:
        assert (tmp_path / "ttyX").resolve() == Path(srv.path)
        port = open_port(str(tmp_path / "ttyX"), baudrate=9600, timeout=1)
        # a pseudo-terminal has no modem lines: tolerated, and said so
        assert set_modem_lines(port, dtr=True, rts=False) is False
        sim.scan("abc")
        assert port.read(4) == b"abc\n"
        port.close()
    finally:
        srv.stop()
    assert not (tmp_path / "ttyX").exists()


def test_spy_url_traces_a_simulated_device(tmp_path: Path) -> None:
    sim = ScannerSim("lf")
    srv = PtyServer(sim, tmp_path / "ttyS").start()
    trace = tmp_path / "trace.txt"
    try:
        port = open_port(f"spy://{tmp_path / 'ttyS'}?file={trace}", timeout=1)
        sim.scan("hi")
        assert port.read(3) == b"hi\n"
        port.close()
    finally:
        srv.stop()
    assert "68 69 0A" in trace.read_text().upper()


def test_tcp_transport_and_disconnect_fault() -> None:
    sim = RDM6300Sim("0F00A1B2C3", interval=0.01)
    srv = TcpServer(sim, faults=Faults(disconnect_after=3 * 14)).start()
    try:
        port = serial.serial_for_url(f"socket://127.0.0.1:{srv.port}", timeout=1)
        frames = [port.read(14) for _ in range(3)]
        assert frames == [encode("0F00A1B2C3")] * 3
        port.timeout = 30  # bounds a failure: the read ends when the link goes down
        with pytest.raises(serial.SerialException, match="disconnected"):
            port.read(64)  # the link went down after 42 bytes
        port.close()
    finally:
        srv.stop()


def test_faults_are_reproducible_and_validated() -> None:
    a = Faults(corrupt=0.1, drop=0.1, seed=7).apply(bytes(range(200)))
    b = Faults(corrupt=0.1, drop=0.1, seed=7).apply(bytes(range(200)))
    assert a == b and a is not None and a != bytes(range(200))
    assert Faults.parse("corrupt=0.5,disconnect_after=10").disconnect_after == 10
    with pytest.raises(ValueError, match="unknown fault"):
        Faults.parse("melt=1")


def test_unknown_sim_kind_and_bad_ports_are_clear_errors() -> None:
    with pytest.raises(DeviceError, match="unknown simulated device"):
        open_port("sim://toaster")
    with pytest.raises(DeviceError, match="cannot open /dev/ttyNOPE"):
        open_port("/dev/ttyNOPE")


def test_driver_registry_is_lazy_and_names_choices() -> None:
    assert "rdm6300" in names("card") and "zvt" in names("bank")
    assert load("card", "scanner").__name__ == "Scanner"
    with pytest.raises(ConfigError, match=r"unknown card driver 'acr122'.*rdm6300"):
        load("card", "acr122")
    with pytest.raises(ConfigError, match="unknown device kind"):
        load("printer", "x")
    sc = create("card", "scanner", port="sim://scanner")
    sc.close()


def test_scenario_plays_events_on_time(tmp_path: Path) -> None:
    doc = {
        "devices": {
            "rfid": {
                "kind": "rdm6300",
                "link": str(tmp_path / "ttyR"),
                "options": {"interval": "0.02"},
            },
            "qr": {"kind": "scanner", "tcp": 0},
        },
        "events": [
            {"at": 0.1, "device": "rfid", "action": "tap", "card": "0F00A1B2C3", "for": 0.2},
            {"at": 0.2, "device": "qr", "action": "scan", "code": "X1"},
        ],
    }
    sc = Scenario(doc).start()
    port = open_port(str(tmp_path / "ttyR"), baudrate=9600, timeout=1)
    conn = socket.create_connection(("127.0.0.1", sc.servers["qr"].port))
    try:
        assert sc.done.wait(3) and sc.errors == []
        assert port.read(14) == encode("0F00A1B2C3")
        conn.settimeout(2)
        assert conn.recv(16) == b"X1\r"
        assert any("rdm6300 on" in d for d in sc.describe())
    finally:
        conn.close()
        port.close()
        sc.stop()


@pytest.mark.parametrize(
    ("doc", "msg"),
    [
        ({}, "needs a 'devices'"),
        ({"devices": {"a": {"kind": "toaster"}}}, "unknown simulated device"),
        (
            {"devices": {"a": {"kind": "scanner"}}, "events": [{"device": "b", "action": "x"}]},
            "unknown device 'b'",
        ),
        ({"devices": {"a": {"kind": "scanner", "options": {"terminator": "zz"}}}}, "terminator"),
    ],
)
def test_bad_scenarios_are_refused(doc: dict, msg: str) -> None:  # type: ignore[type-arg]
    with pytest.raises((ScenarioError, ConfigError), match=msg):
        Scenario(doc).start().stop()


def test_cli_runs_a_device_and_takes_events_on_stdin(tmp_path: Path) -> None:
    link = tmp_path / "ttyRFID"
    p = subprocess.Popen(
        [sys.executable, "-m", "hw_sim", "rdm6300", "--link", str(link)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None and p.stdin is not None
        assert f"(link {link})" in p.stdout.readline()
        port = open_port(str(link), baudrate=9600, timeout=2)
        p.stdin.write("tap card=62E3086CED\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "ok tap"
        assert port.read(14) == encode("62E3086CED")
        p.stdin.write("explode\n")
        p.stdin.flush()
        assert "error" in p.stdout.readline()
        port.close()
    finally:
        p.terminate()
        p.wait(5)


def test_cli_scenario_file(tmp_path: Path) -> None:
    f = tmp_path / "day.json"
    f.write_text(
        json.dumps(
            {
                "devices": {"k": {"kind": "keypad", "link": str(tmp_path / "k")}},
                "events": [{"at": 0.05, "device": "k", "action": "type", "text": "09121234567"}],
            }
        )
    )
    r = subprocess.run(
        [sys.executable, "-m", "hw_sim", "scenario", str(f)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "k: keypad on /dev/pts/" in r.stdout


def test_a_phone_typed_in_groups_reaches_the_keypad_whole() -> None:
    from hw_sim.cli import parse_event

    assert parse_event("type text=۰۹۱۲ ۱۲۳ ۴۵۶۷") == ("type", {"text": "۰۹۱۲ ۱۲۳ ۴۵۶۷"})
    assert parse_event('type text="0912 123 4567" enter=false') == (
        "type",
        {"text": "0912 123 4567", "enter": "false"},
    )
    assert parse_event("tap card=04A1B2 for=2") == ("tap", {"card": "04A1B2", "for": "2"})
    assert parse_event("   ") is None
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_event("type 0912")
    with pytest.raises(ValueError):
        parse_event('type text="0912')  # an unbalanced quote is an error, not a silent ok
