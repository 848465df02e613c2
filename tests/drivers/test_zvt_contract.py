"""The bank-terminal contract for the ZVT driver, and what faults on the line do.

The same tests run against the simulator on a pseudo-terminal (serial framing, ACK/NAK),
over TCP (hw_sim TcpServer, bare APDUs), through ``sim://`` URLs in both modes, and
against a real terminal when LOYALTY_TEST_ZVT_PORT names its port (serial device or
``socket://host:20007``; LOYALTY_TEST_ZVT_PASSWORD and LOYALTY_TEST_ZVT_AMOUNT optional).
A real terminal runs only the tests that need no scripted outcome.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.drivers.base import PaymentResult
from edge.drivers.zvt import Timers, ZVTTerminal
from edge.drivers.zvt.transport import SerialLink
from edge.errors import DeviceError
from hw_sim.device import SimDevice
from hw_sim.faults import Faults
from hw_sim.transport import PtyServer, TcpServer
from hw_sim.zvt import ZVTSim

TIMERS = Timers(t1=0.2, t2=0.3, t3=1.0, t4=3.0, abort_grace=1.0)
FAST = "step=0.002&status_every=0.05"


def H(text: str) -> bytes:
    return bytes.fromhex(text)


# -- the contract -----------------------------------------------------------------------


@dataclass
class Bank:
    terminal: ZVTTerminal
    sim: ZVTSim | None
    kind: str

    def next(self, outcome: str, **kw: str) -> None:
        if self.sim is None:
            pytest.skip("a real terminal cannot be told how the next payment ends")
        self.sim.event("next", outcome=outcome, **kw)

    @property
    def serial(self) -> bool:
        return not self.terminal.tcp


KINDS = ["pty", "tcp", "sim-serial", "sim-tcp", "real"]


@pytest.fixture(params=KINDS)
def bank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bank]:
    kind = request.param
    server: PtyServer | TcpServer | None = None
    sim: ZVTSim | None = None
    if kind == "real":
        port = os.environ.get("LOYALTY_TEST_ZVT_PORT")
        if not port:
            pytest.skip(
                "no real ZVT terminal: set LOYALTY_TEST_ZVT_PORT (e.g. /dev/ttyUSB0 or "
                "socket://192.168.1.50:20007) and LOYALTY_TEST_ZVT_PASSWORD to run the "
                "contract against one"
            )
        term = ZVTTerminal(port, password=os.environ.get("LOYALTY_TEST_ZVT_PASSWORD", "000000"))
    elif kind == "pty":
        sim = ZVTSim(mode="serial", step=0.002, status_every=0.05, ack_timeout=0.2)
        server = PtyServer(sim, tmp_path / "ttyZVT").start()
        term = ZVTTerminal(str(tmp_path / "ttyZVT"), timers=TIMERS)
    elif kind == "tcp":
        sim = ZVTSim(mode="tcp", step=0.002, status_every=0.05)
        server = TcpServer(sim).start()
        term = ZVTTerminal(f"socket://127.0.0.1:{server.port}", timers=TIMERS)
    else:
        mode = kind.split("-")[1]
        term = ZVTTerminal(f"sim://zvt?mode={mode}&{FAST}", timers=TIMERS)
        sim = term._port.device
    yield Bank(term, sim, kind)
    term.close()
    if server is not None:
        server.stop()


def test_contract_register(bank: Bank) -> None:
    bank.terminal.register()
    assert bank.terminal.registered
    assert len(bank.terminal.terminal_id) == 8 and bank.terminal.terminal_id.isdigit()


def test_contract_payment_reports_a_result(bank: Bank) -> None:
    """The one contract test a real terminal runs unattended: some PaymentResult comes
    back, well formed (present a card, or let it time out / cancel)."""
    amount = int(os.environ.get("LOYALTY_TEST_ZVT_AMOUNT", "1000"))
    statuses: list[str] = []
    r = bank.terminal.authorize(amount, on_status=statuses.append, timeout=60)
    assert isinstance(r, PaymentResult)
    assert r.amount == (amount if r.approved else 0) and isinstance(r.amount, int)
    assert r.en and r.fa and r.reference()["result"] == f"{r.result_code:02d}"
    assert all(" / " in s for s in statuses)


def test_contract_approve(bank: Bank) -> None:
    bank.next("approve", card_type="VISA")
    statuses: list[str] = []
    r = bank.terminal.authorize(1_250_000, on_status=statuses.append)
    assert (r.approved, r.amount, r.result_code) == (True, 1_250_000, 0)
    assert r.terminal_id == "29001006" and r.trace > 0 and r.receipt > 0
    assert len(r.date) == 4 and len(r.time) == 6 and r.date.isdigit() and r.time.isdigit()
    assert r.card_type == "VISA" and len(r.auth_code) == 6
    assert statuses and "insert" in statuses[0]
    assert "APPROVED" in r.receipt_lines and "Amount: 1,250,000 IRR" in r.receipt_lines


def test_contract_counters_increase(bank: Bank) -> None:
    bank.next("approve")
    first = bank.terminal.authorize(1000)
    bank.next("approve")
    second = bank.terminal.authorize(2000)
    assert second.trace == first.trace + 1 and second.receipt == first.receipt + 1


def test_contract_decline(bank: Bank) -> None:
    bank.next("decline")
    r = bank.terminal.authorize(50_000)
    assert (r.approved, r.amount, r.result_code) == (False, 0, 0x05)
    assert "declined" in r.en and "رد شد" in r.fa
    assert "DECLINED (05)" in r.receipt_lines
    bank.next("approve")
    assert bank.terminal.authorize(50_000).approved  # and the next one goes through


def test_contract_abort_at_the_terminal(bank: Bank) -> None:
    bank.next("abort")
    r = bank.terminal.authorize(50_000)
    assert (r.approved, r.result_code) == (False, 0x6C)
    assert "cancelled at the terminal" in r.en


def test_contract_timeout(bank: Bank) -> None:
    bank.next("timeout")
    t0 = time.monotonic()
    r = bank.terminal.authorize(50_000, timeout=0.3)
    assert time.monotonic() - t0 < 2.0
    assert (r.approved, r.result_code) == (False, 0x6C)
    assert "within 0.3s" in r.en and "0.3" in r.fa
    bank.next("approve")
    assert bank.terminal.authorize(50_000).approved


def test_contract_abort_from_the_cash_register(bank: Bank) -> None:
    bank.next("timeout")
    r = bank.terminal.authorize(50_000, on_status=lambda _s: bank.terminal.abort())
    assert (r.approved, r.result_code, r.en) == (
        False,
        0x6C,
        "payment cancelled at the cash register",
    )
    bank.next("timeout")
    timer = threading.Timer(0.15, bank.terminal.abort)  # from another thread
    timer.start()
    r = bank.terminal.authorize(50_000)
    timer.join()
    assert (r.approved, r.result_code) == (False, 0x6C)


def test_contract_no_receipt_lines_unless_asked(bank: Bank) -> None:
    if bank.sim is None:
        pytest.skip("needs the simulator")
    bank.terminal.ecr_prints = False
    bank.terminal.register()
    assert not bank.sim.ecr_prints
    assert bank.terminal.authorize(1000).receipt_lines == ()


def test_contract_nak_then_retransmission(bank: Bank) -> None:
    if bank.sim is None or not bank.serial:
        pytest.skip("ACK/NAK exist on the serial link only")
    bank.terminal.register()
    bank.sim.event("corrupt_next", count=2)
    r = bank.terminal.authorize(1000)
    assert r.approved
    assert bank.sim.naks_sent == 2
    assert isinstance(bank.terminal.link, SerialLink) and bank.terminal.link.retransmissions == 2


# -- faults -----------------------------------------------------------------------------


class CorruptFrames(Faults):
    """Flips one bit in the listed frames (counted from 1) the terminal sends."""

    def __init__(self, which: set[int]) -> None:
        super().__init__()
        self.which = which
        self.frames = 0

    @property
    def active(self) -> bool:
        return True

    def apply(self, data: bytes) -> bytes | None:
        if len(data) > 1:
            self.frames += 1
            if self.frames in self.which:
                return data[:3] + bytes([data[3] ^ 0x01]) + data[4:]
        return data


def _pty_terminal(
    tmp_path: Path, sim: SimDevice, faults: Faults | None = None, timers: Timers = TIMERS
) -> tuple[PtyServer, ZVTTerminal]:
    server = PtyServer(sim, tmp_path / "ttyZVT", faults=faults).start()
    return server, ZVTTerminal(str(tmp_path / "ttyZVT"), timers=timers)


def test_corrupted_frames_are_naked_and_sent_again(tmp_path: Path) -> None:
    sim = ZVTSim(mode="serial", step=0.002, ack_timeout=0.2)
    server, term = _pty_terminal(tmp_path, sim, CorruptFrames({2, 5, 6, 9}))
    try:
        r = term.authorize(1_250_000)
        assert r.approved and r.amount == 1_250_000 and r.receipt_lines
        assert isinstance(term.link, SerialLink) and term.link.naks_sent == 4
        assert sim.retransmissions == 4
    finally:
        term.close()
        server.stop()


def test_random_line_noise_is_survived(tmp_path: Path) -> None:
    sim = ZVTSim(mode="serial", step=0.002, ack_timeout=0.2)
    server, term = _pty_terminal(tmp_path, sim, Faults(corrupt=0.002, seed=7))
    try:
        results = [term.authorize(1000 * (i + 1)) for i in range(4)]
        assert all(r.approved for r in results)
        assert [r.amount for r in results] == [1000, 2000, 3000, 4000]
        assert len(sim.history) == 4  # no payment was started twice
    finally:
        term.close()
        server.stop()


def test_silent_terminal_is_a_device_error(tmp_path: Path) -> None:
    server, term = _pty_terminal(tmp_path, SimDevice())
    try:
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match=r"did not acknowledge a frame.*spy://") as e:
            term.register()
        assert time.monotonic() - t0 < 3
        assert "پایانهٔ بانکی" in e.value.fa
    finally:
        term.close()
        server.stop()


def test_terminal_vanishing_mid_payment_is_a_device_error(tmp_path: Path) -> None:
    timers = Timers(t1=0.2, t2=0.3, t3=1.0, t4=0.5, abort_grace=1.0)
    sim = ZVTSim(mode="serial", step=0.002, outcome="timeout", status_every=0.05)
    server, term = _pty_terminal(tmp_path, sim, Faults(disconnect_after=120), timers)
    try:
        with pytest.raises(DeviceError, match=r"sent nothing for 0.5s|did not acknowledge"):
            term.authorize(1000, timeout=30)
    finally:
        term.close()
        server.stop()


def test_tcp_connection_lost_is_a_device_error() -> None:
    sim = ZVTSim(mode="tcp", step=0.002)
    server = TcpServer(sim, faults=Faults(disconnect_after=10)).start()
    term = ZVTTerminal(f"socket://127.0.0.1:{server.port}", timers=TIMERS)
    try:
        with pytest.raises(DeviceError, match="bank terminal"):
            term.authorize(1000)
    finally:
        term.close()
        server.stop()


class DeafToAbort(ZVTSim):
    """A terminal that keeps waiting for the card and takes 06 B0 for 80 00 00."""

    def on_bytes(self, data: bytes) -> None:
        super().on_bytes(data.replace(H("06 B0 00"), H("80 00 00")))


def test_cash_register_timeout_without_the_terminal_confirming() -> None:
    sim = DeafToAbort(mode="tcp", step=0.002, outcome="timeout", status_every=0.05)
    server = TcpServer(sim).start()
    term = ZVTTerminal(
        f"socket://127.0.0.1:{server.port}",
        timers=Timers(t1=0.2, t2=0.3, t3=1.0, t4=3.0, abort_grace=0.3),
    )
    try:
        r = term.authorize(1000, timeout=0.2)
        assert (r.approved, r.result_code) == (False, 0x6C)
        assert "did not confirm the cancel" in r.en and "آخرین رسید" in r.fa
    finally:
        term.close()
        server.stop()


def test_spy_url_traces_the_line_for_a_technician(tmp_path: Path) -> None:
    sim = ZVTSim(mode="serial", step=0.002)
    server = PtyServer(sim, tmp_path / "ttyZVT").start()
    trace = tmp_path / "zvt-trace.txt"
    term = ZVTTerminal(f"spy://{tmp_path / 'ttyZVT'}?file={trace}", timers=TIMERS)
    try:
        assert term.authorize(1000).approved
    finally:
        term.close()
        server.stop()
    # the hexdump's 16-byte lines, reassembled into what went each way
    sent, got = bytearray(), bytearray()
    for line in trace.read_text().splitlines():
        m = re.match(r"[\d.]+ (TX|RX) +[0-9A-F]{4}  (.{49})", line)
        if m:
            (sent if m[1] == "TX" else got).extend(bytes.fromhex(m[2]))
    assert H("10 02 06 01 0A 04 00 00 00 00 10 10 00 49 03 64 10 03 6C 2F") in sent
    assert H("10 02 06 0F 00 10 03 C6 33") in got  # the completion as the terminal sent it
