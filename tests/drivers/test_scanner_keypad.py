"""Scanner and keypad: lines, prefixes, terminators, Persian digits, bad input, fuzzing."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from edge.core.errors import PhoneError
from edge.drivers.keypad import KeyBuffer, Keypad
from edge.drivers.scanner import LineParser, ScanError, Scanner, parse_terminator
from edge.errors import ConfigError
from hw_sim.keypad import KeypadSim
from hw_sim.scanner import ScannerSim
from hw_sim.transport import PtyServer

CODE = "LOYALTY:1:+989121234567:7F3K"


@pytest.mark.parametrize(
    ("term", "prefix"), [("cr", ""), ("crlf", "]Q1"), ("lf", ""), ("0x03", "")]
)
def test_scanner_lines_on_a_pseudo_terminal(tmp_path: Path, term: str, prefix: str) -> None:
    sim = ScannerSim(term, prefix)
    srv = PtyServer(sim, tmp_path / "ttyQR").start()
    sc = Scanner(str(tmp_path / "ttyQR"), terminator=term, prefix=prefix)
    try:
        assert sc.read(0.1) is None
        sim.scan(CODE)
        sim.scan("کارت-۱۲")  # UTF-8 content
        a, b = sc.read(2), sc.read(2)
        assert a is not None and (a.kind, a.uid) == ("qr", CODE)
        assert b is not None and b.uid == "کارت-۱۲"
    finally:
        sc.close()
        srv.stop()


def test_scanner_refuses_bad_lines_and_keeps_good_ones() -> None:
    p = LineParser(b"\r", b"]Q1")
    out = p.feed(
        b"]Q1ok-1\r"
        + b"no-prefix\r"
        + b"]Q1\xff\xfe\r"
        + b"]Q1a\x1b[2Jb\r"
        + b"]Q1"
        + b"x" * 600
        + b"\r"
        + b"]Q1\r"
        + b"]Q1ok-2\r\n"
        + "]Q1LC1:abc\u202egpj.exe\r".encode()  # a bidi override: would reorder a screen
        + "]Q1x\u0085y\r".encode()  # a C1 control
    )
    assert [x for x in out if isinstance(x, str)] == ["ok-1", "ok-2"]
    errors = [str(x) for x in out if isinstance(x, ScanError)]
    assert len(errors) == 7
    assert any("prefix" in e for e in errors) and any("UTF-8" in e for e in errors)
    assert all("\x1b" not in e for e in errors)  # never shown raw


def test_scanner_configuration_errors() -> None:
    assert parse_terminator("0x0d0a") == b"\r\n"
    assert parse_terminator("0X0D") == b"\r"
    for bad in ("newline", "0x", "0xZZ"):
        with pytest.raises(ConfigError, match="terminator"):
            parse_terminator(bad)  # "0x" would have matched everywhere and hung the reader
    with pytest.raises(ValueError, match="terminator"):
        LineParser(b"")


def test_scanner_via_sim_url() -> None:
    sc = Scanner("sim://scanner?terminator=lf", terminator="lf")
    try:
        dev = sc._port.device  # the in-process simulator behind sim://
        dev.scan(CODE)
        got = sc.read(2)
        assert got is not None and got.uid == CODE
    finally:
        sc.close()


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("09121234567#", "+989121234567"),
        ("۰۹۱۲۱۲۳۴۵۶۷\r", "+989121234567"),
        ("٠٩١٢١٢٣٤٥٦٧\n", "+989121234567"),
        ("0912*09351112233#", "+989351112233"),
        ("093511122339\x08#", "+989351112233"),
        ("+98 912 123 4567#", "+989121234567"),
    ],
)
def test_keypad_forms(typed: str, e164: str) -> None:
    kb = KeyBuffer()
    lines = []
    for i, ch in enumerate(typed.encode("utf-8")):  # byte by byte, splitting UTF-8 sequences
        lines += kb.feed(bytes([ch]))
        assert i >= 0
    assert len(lines) == 1
    from edge.core.phone import normalise

    assert normalise(lines[0]) == e164


def test_keypad_on_a_pseudo_terminal_with_bilingual_errors(tmp_path: Path) -> None:
    sim = KeypadSim(key_delay=0.005)
    srv = PtyServer(sim, tmp_path / "ttyKEY").start()
    kp = Keypad(str(tmp_path / "ttyKEY"))
    try:
        sim.type("۰۹۱۲ ۱۲۳ ۴۵۶۷")
        assert kp.read_phone(3) == "+989121234567"
        sim.type("0212345678")
        with pytest.raises(PhoneError) as info:
            kp.read_phone(3)
        assert info.value.en and info.value.fa != info.value.en
        assert kp.read_phone(0.1) is None
    finally:
        kp.close()
        srv.stop()


def test_fuzz_scanner_and_keypad_parsers() -> None:
    rng = random.Random(42)
    lp, kb = LineParser(b"\r\n", b"]Q"), KeyBuffer()
    for _ in range(12_000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        for item in lp.feed(data):
            assert isinstance(item, str | ScanError)
        for line in kb.feed(data):
            assert isinstance(line, str) and len(line) <= 32
        assert len(lp.buf) <= 4 * 512 + 40 and len(kb.text) <= 32


@pytest.mark.skipif(
    "LOYALTY_TEST_SCANNER_PORT" not in os.environ,
    reason="set LOYALTY_TEST_SCANNER_PORT to run against a real scanner",
)
def test_scanner_on_real_hardware() -> None:
    sc = Scanner(
        os.environ["LOYALTY_TEST_SCANNER_PORT"],
        terminator=os.environ.get("LOYALTY_TEST_SCANNER_TERMINATOR", "cr"),
    )
    try:
        print("scan any QR code...")
        assert sc.read(20) is not None
    finally:
        sc.close()
