"""The simulated RDM6300's own frame builder (``hw_sim.rdm6300.frame``) against the data
sheet's example and a user's capture, and against the driver (``edge.drivers.rdm6300``):
each builds what the other reads."""

from __future__ import annotations

import random

import pytest

from edge.drivers.rdm6300 import FrameParser, decode, encode
from hw_sim.rdm6300 import RDM6300Sim, frame
from tests.drivers.test_rdm6300 import GOLDEN  # the data sheet's example, 62E3086CED

# A key fob read on a public forum (Hobby Components, "RDM6300 ... HCRFID0006"): the post
# decodes it as 10 00 86 F4 44 with checksum 26 (10^00^86^F4^44 = 26).  Only the decoded
# digits are used: the raw hex line in that post was edited by its author and does not
# check.
FORUM_CAPTURE = b"\x02100086F44426\x03"


def test_data_sheet_example_byte_for_byte() -> None:
    assert frame("62E3086CED") == GOLDEN
    assert GOLDEN.hex(" ") == "02 36 32 45 33 30 38 36 43 45 44 30 38 03"
    assert frame("100086F444") == FORUM_CAPTURE
    assert frame("62e3086ced") == GOLDEN  # sent in upper case, as the data sheet shows


@pytest.mark.parametrize("bad", ["62E3086CE", "62E3086CEDD", "62E3086CEG", "62E3086C é", ""])
def test_malformed_ids_are_refused_by_both(bad: str) -> None:
    with pytest.raises(ValueError, match="ten hex digits"):
        frame(bad)
    with pytest.raises(ValueError, match="ten hex digits"):
        encode(bad)
    with pytest.raises(ValueError, match="ten hex digits"):
        RDM6300Sim().tap(bad)


def test_frames_cross_decode_both_ways() -> None:
    rng = random.Random(125_000)
    stream = b""
    cards = []
    for _ in range(3000):
        card = "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(10))
        assert frame(card) == encode(card)  # the driver's builder, independently written
        assert decode(frame(card)) == card.upper()  # ours, read by the driver
        cards.append(card.upper())
        stream += frame(card)
    parser = FrameParser()
    assert parser.feed(stream) == cards and parser.errors == 0


def test_the_simulator_sends_its_own_frames() -> None:
    sim = RDM6300Sim("62E3086CED", interval=0.0)
    out: list[bytes] = []
    sim.attach(out.append)
    sim.tick(1.0)
    assert out == [GOLDEN]


def test_a_quick_tap_leaves_the_field_after_its_frames_however_late_they_go() -> None:
    sim = RDM6300Sim(interval=0.0)
    out: list[bytes] = []
    sim.attach(out.append)
    sim.tap("62E3086CED", frames=2)
    for now in (100.0, 200.0, 300.0, 400.0):  # the ticks come as late as they come
        sim.tick(now)
    assert out == [GOLDEN, GOLDEN] and sim.card is None
    with pytest.raises(ValueError, match="at least 1"):
        sim.tap("62E3086CED", frames=0)
