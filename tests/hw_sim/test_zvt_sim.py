"""The simulated ZVT terminal: golden transcripts, events, options and fuzzing.

The transcripts below are the exact bytes between a cash register and a terminal for each
message of a payment (PA00P015 chapter numbers in the comments; framing per PA00P016).
Here the simulator is driven by them byte for byte; ``tests/drivers/test_zvt.py`` plays
the terminal's side of the same transcripts to the driver.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import datetime

import pytest

from edge.drivers.zvt.framing import MAX_APDU, encode_frame
from hw_sim import catalog
from hw_sim.zvt import ZVTSim, add_cli, from_cli, from_url

ECR, PT = "ECR", "PT"
Transcript = list[tuple[str, str]]
FIXED = datetime(2025, 3, 20, 14, 30, 5)


def H(text: str) -> bytes:
    return bytes.fromhex(text)


# Registration (PA00P015 2.1): password 000000, config BA, currency 03 64 (IRR), TLV 12
# (40 characters per line).  PT: 80 00 00, then Completion 06 0F (3.3) with status byte
# (19), terminal id 29001006 (29; its 0x10 doubled on the line) and currency (49).
# Every frame is answered with ACK 06 (PA00P016, serial transport).
SERIAL_REGISTER = [
    (ECR, "10 02 06 00 0B 00 00 00 BA 03 64 06 03 12 01 40 10 03 DB 23"),
    (PT, "06"),
    (PT, "10 02 80 00 00 10 03 F5 1F"),
    (ECR, "06"),
    (PT, "10 02 06 0F 0A 19 00 29 29 00 10 10 06 49 03 64 10 03 A4 3D"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
]

# Authorisation 06 01 of 1 250 000 Rials (2.2); intermediate status 04 FF 0A "insert
# card" and 04 "waiting for the bank" (3.2); Status-Information 04 0F (3.1): result 27=00,
# amount 04, trace 0B, time 0C, date 0D, masked PAN 22 (LL-var), TID 29, VU number 2A,
# authorisation code 3B, currency 49, receipt 87, turnover 88, card type 8A, card name 8B
# (LL-var); Completion 06 0F (3.3).  The ECR answers each with 80 00 00.
SERIAL_APPROVE = [
    (ECR, "10 02 06 01 0A 04 00 00 01 25 00 00 49 03 64 10 03 43 7F"),
    (PT, "06"),
    (PT, "10 02 80 00 00 10 03 F5 1F"),
    (ECR, "06"),
    (PT, "10 02 04 FF 01 0A 10 03 F5 7D"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
    (PT, "10 02 04 FF 01 04 10 03 E5 E7"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
    (
        PT,
        "10 02 04 0F 56 27 00 04 00 00 01 25 00 00 0B 00 00 01 0C 14 30 05 0D 03 20 22 F0 F8 "
        "60 37 99 EE EE EE 12 34 29 29 00 10 10 06 2A 56 55 2D 53 49 4D 2D 30 30 30 31 20 20 "
        "20 20 3B 31 31 32 36 34 38 00 00 49 03 64 87 00 01 88 00 00 01 8A 06 8B F1 F0 4D 61 "
        "73 74 65 72 63 61 72 64 10 03 6C AB",
    ),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
    (PT, "10 02 06 0F 00 10 03 C6 33"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
]

# Declined by the bank: result 05 in the status, then Abort 06 1E 05 (3.4).
SERIAL_DECLINE = [
    (ECR, "10 02 06 01 0A 04 00 00 00 05 00 00 49 03 64 10 03 7F 9D"),
    (PT, "06"),
    (PT, "10 02 80 00 00 10 03 F5 1F"),
    (ECR, "06"),
    (PT, "10 02 04 FF 01 0A 10 03 F5 7D"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
    (PT, "10 02 04 FF 01 04 10 03 E5 E7"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
    (
        PT,
        "10 02 04 0F 49 27 05 04 00 00 00 05 00 00 0B 00 00 02 0C 14 30 05 0D 03 20 22 F0 F8 "
        "60 37 99 EE EE EE 12 34 29 29 00 10 10 06 2A 56 55 2D 53 49 4D 2D 30 30 30 31 20 20 "
        "20 20 49 03 64 87 00 02 8A 06 8B F1 F0 4D 61 73 74 65 72 63 61 72 64 10 03 4F EE",
    ),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
    (PT, "10 02 06 1E 01 05 10 03 84 40"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
]

# The customer cancels at the terminal: status with result 6C, then 06 1E 6C (3.4).
SERIAL_PT_ABORT = [
    (ECR, "10 02 06 01 0A 04 00 00 00 05 00 00 49 03 64 10 03 7F 9D"),
    (PT, "06"),
    (PT, "10 02 80 00 00 10 03 F5 1F"),
    (ECR, "06"),
    (PT, "10 02 04 FF 01 0A 10 03 F5 7D"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
    (PT, "10 02 04 0F 07 27 6C 29 29 00 10 10 06 10 03 B2 57"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
    (PT, "10 02 06 1E 01 6C 10 03 C9 F2"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
]

# The cash register cancels: it answers the intermediate status with Abort 06 B0 (2.21)
# instead of 80 00 00; the PT acknowledges and ends with 06 1E 6C.
SERIAL_ECR_ABORT = [
    (ECR, "10 02 06 01 0A 04 00 00 00 05 00 00 49 03 64 10 03 7F 9D"),
    (PT, "06"),
    (PT, "10 02 80 00 00 10 03 F5 1F"),
    (ECR, "06"),
    (PT, "10 02 04 FF 01 0A 10 03 F5 7D"),
    (ECR, "06"),
    (ECR, "10 02 06 B0 00 10 03 43 F3"),
    (PT, "06"),
    (PT, "10 02 80 00 00 10 03 F5 1F"),
    (ECR, "06"),
    (PT, "10 02 06 1E 01 6C 10 03 C9 F2"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
]

# The PT receives the authorisation with a bad CRC and NAKs it (15); the ECR sends the
# same frame again (PA00P016).  1000 Rials = 00 00 00 00 10 00: the 0x10 is doubled.
SERIAL_NAK = [
    (ECR, "10 02 06 01 0A 04 00 00 00 00 10 10 00 49 03 64 10 03 6C 2F"),
    (PT, "15"),
    (ECR, "10 02 06 01 0A 04 00 00 00 00 10 10 00 49 03 64 10 03 6C 2F"),
    (PT, "06"),
    (PT, "10 02 80 00 00 10 03 F5 1F"),
    (ECR, "06"),
    (PT, "10 02 04 FF 01 0A 10 03 F5 7D"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
    (PT, "10 02 04 FF 01 04 10 03 E5 E7"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
    (
        PT,
        "10 02 04 0F 56 27 00 04 00 00 00 00 10 10 00 0B 00 00 05 0C 14 30 05 0D 03 20 22 F0 "
        "F8 60 37 99 EE EE EE 12 34 29 29 00 10 10 06 2A 56 55 2D 53 49 4D 2D 30 30 30 31 20 "
        "20 20 20 3B 31 34 34 33 32 34 00 00 49 03 64 87 00 03 88 00 00 02 8A 06 8B F1 F0 4D "
        "61 73 74 65 72 63 61 72 64 10 03 14 18",
    ),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
    (PT, "10 02 06 0F 00 10 03 C6 33"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
]

# The same over TCP/IP (PA00P016, TCP transport): bare APDUs, no DLE, no CRC, no ACK.
TCP_REGISTER = [
    (ECR, "06 00 0B 00 00 00 BA 03 64 06 03 12 01 40"),
    (PT, "80 00 00"),
    (PT, "06 0F 0A 19 00 29 29 00 10 06 49 03 64"),
    (ECR, "80 00 00"),
]

TCP_APPROVE = [
    (ECR, "06 01 0A 04 00 00 01 25 00 00 49 03 64"),
    (PT, "80 00 00"),
    (PT, "04 FF 01 0A"),
    (ECR, "80 00 00"),
    (PT, "04 FF 01 04"),
    (ECR, "80 00 00"),
    (
        PT,
        "04 0F 56 27 00 04 00 00 01 25 00 00 0B 00 00 01 0C 14 30 05 0D 03 20 22 F0 F8 60 37 "
        "99 EE EE EE 12 34 29 29 00 10 06 2A 56 55 2D 53 49 4D 2D 30 30 30 31 20 20 20 20 3B "
        "31 31 32 36 34 38 00 00 49 03 64 87 00 01 88 00 00 01 8A 06 8B F1 F0 4D 61 73 74 65 "
        "72 63 61 72 64",
    ),
    (ECR, "80 00 00"),
    (PT, "06 0F 00"),
    (ECR, "80 00 00"),
]

TCP_DECLINE = [
    (ECR, "06 01 0A 04 00 00 00 05 00 00 49 03 64"),
    (PT, "80 00 00"),
    (PT, "04 FF 01 0A"),
    (ECR, "80 00 00"),
    (PT, "04 FF 01 04"),
    (ECR, "80 00 00"),
    (
        PT,
        "04 0F 49 27 05 04 00 00 00 05 00 00 0B 00 00 02 0C 14 30 05 0D 03 20 22 F0 F8 60 37 "
        "99 EE EE EE 12 34 29 29 00 10 06 2A 56 55 2D 53 49 4D 2D 30 30 30 31 20 20 20 20 49 "
        "03 64 87 00 02 8A 06 8B F1 F0 4D 61 73 74 65 72 63 61 72 64",
    ),
    (ECR, "80 00 00"),
    (PT, "06 1E 01 05"),
    (ECR, "80 00 00"),
]

TCP_PT_ABORT = [
    (ECR, "06 01 0A 04 00 00 00 05 00 00 49 03 64"),
    (PT, "80 00 00"),
    (PT, "04 FF 01 0A"),
    (ECR, "80 00 00"),
    (PT, "04 0F 07 27 6C 29 29 00 10 06"),
    (ECR, "80 00 00"),
    (PT, "06 1E 01 6C"),
    (ECR, "80 00 00"),
]

TCP_ECR_ABORT = [
    (ECR, "06 01 0A 04 00 00 00 05 00 00 49 03 64"),
    (PT, "80 00 00"),
    (PT, "04 FF 01 0A"),
    (ECR, "06 B0 00"),
    (PT, "80 00 00"),
    (PT, "06 1E 01 6C"),
    (ECR, "80 00 00"),
]

# With the ECR printing (config 80|02): a declined VISA payment, its receipt as Print
# Line messages 06 D1 (3.5), attribute 00, closed by attribute 81 (last line), then 06 1E.
TCP_RECEIPT = [
    (ECR, "06 01 0A 04 00 00 00 07 50 00 49 03 64"),
    (PT, "80 00 00"),
    (PT, "04 FF 01 0A"),
    (ECR, "80 00 00"),
    (PT, "04 FF 01 04"),
    (ECR, "80 00 00"),
    (
        PT,
        "04 0F 43 27 05 04 00 00 00 07 50 00 0B 00 00 01 0C 14 30 05 0D 03 20 22 F0 F8 60 37 "
        "99 EE EE EE 12 34 29 29 00 10 06 2A 56 55 2D 53 49 4D 2D 30 30 30 31 20 20 20 20 49 "
        "03 64 87 00 01 8A 0A 8B F0 F4 56 49 53 41",
    ),
    (ECR, "80 00 00"),
    (PT, "06 D1 17 00 20 20 20 20 20 20 20 20 20 20 43 41 52 44 20 50 41 59 4D 45 4E 54"),
    (ECR, "80 00 00"),
    (PT, "06 D1 16 00 54 65 72 6D 69 6E 61 6C 2D 49 44 3A 20 32 39 30 30 31 30 30 36"),
    (ECR, "80 00 00"),
    (
        PT,
        "06 D1 1D 00 44 61 74 65 3A 20 30 33 2F 32 30 20 20 20 54 69 6D 65 3A 20 31 34 3A 33 "
        "30 3A 30 35",
    ),
    (ECR, "80 00 00"),
    (
        PT,
        "06 D1 1D 00 54 72 61 63 65 3A 20 30 30 30 30 30 31 20 20 52 65 63 65 69 70 74 3A 20 "
        "30 30 30 31",
    ),
    (ECR, "80 00 00"),
    (PT, "06 D1 0B 00 43 61 72 64 3A 20 56 49 53 41"),
    (ECR, "80 00 00"),
    (PT, "06 D1 13 00 41 6D 6F 75 6E 74 3A 20 37 35 2C 30 30 30 20 49 52 52"),
    (ECR, "80 00 00"),
    (PT, "06 D1 0E 00 44 45 43 4C 49 4E 45 44 20 28 30 35 29"),
    (ECR, "80 00 00"),
    (PT, "06 D1 01 81"),
    (ECR, "80 00 00"),
    (PT, "06 1E 01 05"),
    (ECR, "80 00 00"),
]

# A frame from the PT is lost or damaged on the way: the ECR NAKs, the PT repeats it.
SERIAL_PT_REPEATS = [
    (ECR, "10 02 06 00 0B 00 00 00 BA 03 64 06 03 12 01 40 10 03 DB 23"),
    (PT, "06"),
    (PT, "10 02 80 00 00 10 03 F5 1F"),
    (ECR, "06"),
    (PT, "10 02 06 0F 0A 19 00 29 29 00 10 10 06 49 03 64 10 03 A4 3D"),
    (ECR, "15"),
    (PT, "10 02 06 0F 0A 19 00 29 29 00 10 10 06 49 03 64 10 03 A4 3D"),
    (ECR, "06"),
    (ECR, "10 02 80 00 00 10 03 F5 1F"),
    (PT, "06"),
]

# Negative acknowledgements 84 xx (chapter "Error-Messages"): an authorisation in euros to
# a terminal set up for Rials (6F, wrong currency), a command the terminal does not offer
# (Diagnosis 06 70 -> 83, function not possible), an authorisation without an amount
# (9A, ZVT protocol error).
SERIAL_NEGATIVE = [
    (ECR, "10 02 06 01 0A 04 00 00 00 00 50 00 49 09 78 10 03 F6 62"),
    (PT, "06"),
    (PT, "10 02 84 6F 00 10 03 93 22"),
    (ECR, "06"),
    (ECR, "10 02 06 70 00 10 03 D9 F9"),
    (PT, "06"),
    (PT, "10 02 84 83 00 10 03 91 8E"),
    (ECR, "06"),
    (ECR, "10 02 06 01 03 49 03 64 10 03 34 71"),
    (PT, "06"),
    (PT, "10 02 84 9A 00 10 03 1A 97"),
    (ECR, "06"),
]


class Bench:
    """The simulator alone; the test plays the cash register, byte for byte."""

    def __init__(self, sim: ZVTSim) -> None:
        self.sim = sim
        self.out: list[bytes] = []
        sim.attach(self.out.append)

    def tick(self, seconds: float = 0.0) -> None:
        """Run the terminal's clock for ``seconds`` (at least one tick)."""
        end = time.monotonic() + seconds
        while True:
            self.sim.tick(time.monotonic())
            if time.monotonic() >= end:
                return
            time.sleep(0.001)  # the pace of the simulated clock, not a wait for an event

    def tick_until(self, cond: Callable[[], bool], timeout: float = 30.0) -> None:
        """Run the terminal's clock until ``cond()`` holds; AssertionError after ``timeout``."""
        end = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < end, f"not within {timeout} s; the terminal sent {self.out}"
            self.tick(0.001)

    def run(self, transcript: Transcript) -> None:
        for i, (who, text) in enumerate(transcript):
            if who == ECR:
                self.sim.receive(H(text))
                continue
            deadline = time.monotonic() + 30.0  # bounds a failure only
            while not self.out and time.monotonic() < deadline:
                self.tick(0.001)
            assert self.out, f"step {i}: the terminal should have sent {text}"
            got = self.out.pop(0).hex(" ").upper()
            assert got == text, f"step {i}"
        self.tick(0.02)
        assert self.out == [], "the terminal said more than the transcript"


def sim_for(mode: str, **kw: object) -> ZVTSim:
    opts: dict[str, object] = {"receipts": False, "step": 0.0, "status_every": 0.0}
    opts.update(kw)
    return ZVTSim(mode=mode, clock=lambda: FIXED, **opts)  # type: ignore[arg-type]


def test_serial_payments_transcript() -> None:
    sim = sim_for("serial")
    b = Bench(sim)
    b.run(SERIAL_REGISTER)
    assert sim.config == 0xBA and sim.ecr_prints is False  # receipts switched off
    b.run(SERIAL_APPROVE)
    sim.event("next", outcome="decline")
    b.run(SERIAL_DECLINE)
    sim.event("next", outcome="abort")
    b.run(SERIAL_PT_ABORT)
    sim.event("next", outcome="timeout")
    b.run(SERIAL_ECR_ABORT)
    sim.event("corrupt_next")
    b.run(SERIAL_NAK)
    assert [h["outcome"] for h in sim.history] == [
        "approve",
        "decline",
        "abort",
        "timeout",
        "approve",
    ]
    assert [h["trace"] for h in sim.history] == [1, 2, 3, 4, 5]  # the trace counter
    assert sim.receipt_no == 3 and sim.turnover == 2
    assert sim.history[3]["ended"] == "aborted by the cash register"
    assert sim.naks_sent == 1


def test_tcp_payments_transcript() -> None:
    sim = sim_for("tcp")
    b = Bench(sim)
    for outcome, transcript in [
        (None, TCP_REGISTER),
        (None, TCP_APPROVE),
        ("decline", TCP_DECLINE),
        ("abort", TCP_PT_ABORT),
        ("timeout", TCP_ECR_ABORT),
    ]:
        if outcome:
            sim.event("next", outcome=outcome)
        b.run(transcript)


def test_receipt_lines_when_the_ecr_prints() -> None:
    sim = sim_for("tcp", receipts=True)
    b = Bench(sim)
    b.run(TCP_REGISTER)
    assert sim.ecr_prints
    sim.event("next", outcome="decline", card_type="VISA")
    b.run(TCP_RECEIPT)


def test_no_receipt_lines_without_the_print_bits() -> None:
    sim = sim_for("tcp", receipts=True)
    b = Bench(sim)
    sim.receive(H("06 00 06 00 00 00 08 03 64"))  # config 08: intermediate status only
    b.tick(0.01)
    sim.receive(H("80 00 00"))
    assert not sim.ecr_prints and not sim.busy
    b.out.clear()
    sim.receive(H("06 01 0A 04 00 00 00 00 50 00 49 03 64"))
    for _ in range(10):
        b.tick(0.005)
        sim.receive(H("80 00 00"))
    assert not any(o[:2] == H("06 D1") for o in b.out)
    assert b.out[-1] == H("06 0F 00")


def test_terminal_repeats_a_frame_the_ecr_naks() -> None:
    Bench(sim_for("serial")).run(SERIAL_PT_REPEATS)


def test_negative_acknowledgements() -> None:
    Bench(sim_for("serial")).run(SERIAL_NEGATIVE)


def test_terminal_repeats_unacknowledged_frames_then_gives_up() -> None:
    sim = sim_for("serial", ack_timeout=0.02, retries=2)
    b = Bench(sim)
    sim.receive(H("10 02 06 00 0B 00 00 00 BA 03 64 06 03 12 01 40 10 03 DB 23"))
    assert b.out == [H("06"), H("10 02 80 00 00 10 03 F5 1F")]
    b.out.clear()
    # no ACK from the ECR: sent again twice, then the registration is dropped
    b.tick_until(lambda: sim._inflight is None)
    assert b.out == [H("10 02 80 00 00 10 03 F5 1F")] * 2
    assert sim.retransmissions == 2 and not sim.busy


def test_a_repeated_ecr_frame_is_acknowledged_but_not_handled_twice() -> None:
    sim = sim_for("serial")
    b = Bench(sim)
    reg = H("10 02 06 00 0B 00 00 00 BA 03 64 06 03 12 01 40 10 03 DB 23")
    sim.receive(reg)
    sim.receive(reg)  # our ACK was lost: the ECR sends the same frame again
    assert b.out == [H("06"), H("10 02 80 00 00 10 03 F5 1F"), H("06")]


def test_transaction_dropped_when_the_ecr_stops_answering() -> None:
    sim = sim_for("tcp", reply_timeout=0.05)
    b = Bench(sim)
    sim.receive(H("06 01 0A 04 00 00 00 00 50 00 49 03 64"))
    b.tick()  # the first step goes out and the terminal waits for the answer
    assert sim.busy and b.out
    b.tick_until(lambda: not sim.busy)  # dropped once the reply timeout runs out


def test_ecr_abort_when_idle_is_acknowledged() -> None:
    sim = sim_for("tcp")
    b = Bench(sim)
    sim.receive(H("06 B0 00"))
    assert b.out == [H("80 00 00")]


def test_timeout_outcome_keeps_the_transaction_open() -> None:
    sim = sim_for("tcp", outcome="timeout", status_every=0.01)
    b = Bench(sim)
    sim.receive(H("06 01 0A 04 00 00 00 00 50 00 49 03 64"))
    for _ in range(5):
        b.tick(0.02)
        sim.receive(H("80 00 00"))
    statuses = [o for o in b.out if o == H("04 FF 01 0A")]
    assert len(statuses) >= 5 and sim.busy  # never a result, never a completion
    assert not any(o[:2] in (H("04 0F"), H("06 0F"), H("06 1E")) for o in b.out)


@pytest.mark.parametrize(("first", "mode"), [("10 02", "serial"), ("06 00", "tcp")])
def test_auto_mode_follows_the_cash_register(first: str, mode: str) -> None:
    sim = ZVTSim()
    assert sim.mode is None
    sim.receive(H(first))
    assert sim.mode == mode


def test_events() -> None:
    sim = ZVTSim()
    sim.event("outcomes", outcomes="decline, abort")
    sim.event("next", outcome="timeout", card_type="VISA")
    assert list(sim.queue) == [("timeout", "VISA"), ("decline", None), ("abort", None)]
    sim.event("outcomes", outcomes=["approve"])
    assert sim.queue[-1] == ("approve", None)
    sim.event("corrupt_next", count="2")
    assert sim.corrupt_rx == 2
    with pytest.raises(ValueError, match="outcome must be one of"):
        sim.event("next", outcome="maybe")
    with pytest.raises(ValueError, match="has no action"):
        sim.event("tap", card="x")


def test_from_url_and_catalog() -> None:
    mod = catalog.module("zvt")
    sim = mod.from_url({"outcome": ["decline"], "mode": ["tcp"], "terminal_id": ["12345678"]})
    assert (sim.outcome, sim.mode, sim.terminal_id) == ("decline", "tcp", "12345678")
    sim = from_url({"receipts": ["0"], "outcomes": ["abort,approve"], "card_type": ["VISA"]})
    assert not sim.receipts and sim.mode is None and len(sim.queue) == 2
    for bad, why in [
        ({"outcome": ["x"]}, "outcome"),
        ({"mode": ["usb"]}, "mode"),
        ({"terminal_id": ["12"]}, "eight digits"),
        ({"colour": ["red"]}, "unknown zvt option"),
        ({"step": ["soon"]}, "could not convert"),
    ]:
        with pytest.raises(ValueError, match=why):
            from_url(bad)


def test_command_line_options() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tcp", type=int)
    add_cli(p)
    sim = from_cli(p.parse_args(["--outcome", "abort", "--terminal-id", "87654321"]))
    assert (sim.outcome, sim.mode, sim.terminal_id, sim.receipts) == (
        "abort",
        "serial",
        "87654321",
        True,
    )
    assert from_cli(p.parse_args(["--tcp-mode", "--no-receipts"])).mode == "tcp"
    assert not from_cli(p.parse_args(["--no-receipts"])).receipts
    assert from_cli(p.parse_args(["--tcp", "20007"])).mode == "tcp"  # TCP means bare APDUs


def _ecr_samples() -> list[bytes]:
    return [
        H(text)
        for transcript in (SERIAL_REGISTER, SERIAL_APPROVE, SERIAL_ECR_ABORT, SERIAL_NEGATIVE)
        for who, text in transcript
        if who == ECR
    ]


@pytest.mark.parametrize("mode", ["serial", "tcp", "auto"])
def test_fuzz_simulator_input(mode: str) -> None:
    """10,000 random and mutated inputs: the simulator never raises, never grows without
    bound, and still answers a clean registration afterwards."""
    rng = random.Random(f"zvt-{mode}")
    sim = ZVTSim(mode=mode, step=0.0, status_every=0.0, ack_timeout=0.0, reply_timeout=0.0)
    out: list[bytes] = []
    sim.attach(out.append)
    frames = [s for s in _ecr_samples() if len(s) > 1]
    samples = frames + [s[2:-4].replace(b"\x10\x10", b"\x10") for s in frames]
    for i in range(10_000):
        if i % 2:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        else:
            buf = bytearray(rng.choice(samples))
            for _ in range(rng.randrange(1, 4)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
            data = bytes(buf)
        sim.receive(data)
        sim.tick(time.monotonic())
        assert sim._splitter.pending <= MAX_APDU
        assert len(sim._outq) < 50
        out.clear()
    # recovers: over serial framing by itself; over TCP when the cash register reconnects
    # (a torn APDU leaves the byte stream without boundaries, as on a real terminal)
    if mode == "tcp":
        sim.connected()
    reg = H("06 00 0B 00 00 00 BA 03 64 06 03 12 01 40")
    sim.receive(encode_frame(reg) if sim.mode == "serial" else reg)
    assert any(H("80 00 00") in o for o in out)
