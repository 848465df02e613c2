"""RDM6300: frames, debounce, noise, a real pty, sim:// and a real module if one is named."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from edge.drivers.rdm6300 import FrameParser, RDM6300FrameError, RDM6300Reader, decode, encode
from hw_sim.faults import Faults
from hw_sim.rdm6300 import RDM6300Sim
from hw_sim.transport import PtyServer

# The example of the RDM630 data sheet: card 62E3086CED; 62^E3^08^6C^ED = 08.
GOLDEN = b"\x02" + b"62E3086CED" + b"08" + b"\x03"


def test_golden_frame_byte_for_byte() -> None:
    assert encode("62E3086CED") == GOLDEN
    assert GOLDEN.hex() == "0236324533303836434544303803"
    assert decode(GOLDEN) == "62E3086CED"


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (GOLDEN[:-1] + b"\x04", "not an RDM6300 frame"),
        (GOLDEN.replace(b"08\x03", b"09\x03"), "bad checksum"),
        (GOLDEN.replace(b"62", b"6G"), "non-hex"),
        (GOLDEN[:10], "not an RDM6300 frame"),
    ],
)
def test_bad_frames_are_refused_with_the_reason(frame: bytes, why: str) -> None:
    with pytest.raises(RDM6300FrameError, match=why):
        decode(frame)


def test_parser_resynchronises_after_garbage_and_bad_frames() -> None:
    p = FrameParser()
    bad = GOLDEN.replace(b"08\x03", b"00\x03")
    stream = b"\xff\x00noise" + bad + GOLDEN + b"\x02\x02" + encode("0F00A1B2C3")
    cards = []
    for i in range(0, len(stream), 3):  # in small pieces, as a UART delivers them
        cards += p.feed(stream[i : i + 3])
    assert cards == ["62E3086CED", "0F00A1B2C3"]
    assert p.errors >= 1


def test_fuzz_parser_with_random_and_mutated_bytes() -> None:
    rng = random.Random(6300)
    p = FrameParser()
    sent: list[str] = []
    found: list[str] = []
    for i in range(12_000):
        if i % 3 == 0:  # random noise
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30)))
        elif i % 3 == 1:  # a mutated frame: refused unless the mutation changed nothing
            frame = bytearray(encode(f"{rng.randrange(16**10):010X}"))
            frame[rng.randrange(len(frame))] = rng.randrange(256)
            data = bytes(frame)
        else:  # a good frame, which must come through whatever preceded it
            card = f"{rng.randrange(16**10):010X}"
            sent.append(card)
            data = encode(card)
        for card in p.feed(data):
            assert len(card) == 10 and int(card, 16) >= 0
            found.append(card)
        assert len(p.buf) < 64  # never grows without bound
    missing = [c for c in sent if c not in found]
    assert missing == []


def _reader_on_pty(
    tmp_path: Path, sim: RDM6300Sim, faults: Faults | None = None
) -> tuple[PtyServer, RDM6300Reader]:
    srv = PtyServer(sim, tmp_path / "ttyRFID", faults=faults).start()
    return srv, RDM6300Reader(str(tmp_path / "ttyRFID"), release=0.3)


def test_contract_on_a_pseudo_terminal(tmp_path: Path) -> None:
    sim = RDM6300Sim(interval=0.03)
    srv, reader = _reader_on_pty(tmp_path, sim)
    try:
        assert reader.read(0.2) is None
        sim.tap("0F00A1B2C3")
        got = reader.read(2)
        assert got is not None and (got.kind, got.uid) == ("rfid", "0F00A1B2C3")
        assert reader.read(0.2) is None  # still in the field: debounced
        sim.remove()
        time.sleep(0.4)  # the driver's 0.3 s release timer runs out: time-based, not an event
        sim.tap("0F00A1B2C3")
        assert reader.read(2) is not None  # taken away and tapped again: a new read
    finally:
        reader.close()
        srv.stop()


def test_contract_via_sim_url() -> None:
    reader = RDM6300Reader("sim://rdm6300?card=62E3086CED")
    try:
        got = reader.read(2)
        assert got is not None and got.uid == "62E3086CED" and got.raw == GOLDEN
    finally:
        reader.close()


def test_reads_through_line_noise(tmp_path: Path) -> None:
    sim = RDM6300Sim("0F00A1B2C3", interval=0.02)
    srv, reader = _reader_on_pty(tmp_path, sim, Faults(corrupt=0.02, seed=3))
    try:
        got = reader.read(3)
        assert got is not None and got.uid == "0F00A1B2C3"  # a checksum guards every frame
    finally:
        reader.close()
        srv.stop()


@pytest.mark.skipif(
    "LOYALTY_TEST_RDM6300_PORT" not in os.environ,
    reason="set LOYALTY_TEST_RDM6300_PORT to run against a real RDM6300",
)
def test_contract_on_real_hardware() -> None:
    reader = RDM6300Reader(os.environ["LOYALTY_TEST_RDM6300_PORT"])
    try:
        print("hold a 125 kHz card to the reader...")
        got = reader.read(20)
        assert got is not None and len(got.uid) == 10
    finally:
        reader.close()
