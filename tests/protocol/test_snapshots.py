"""Member snapshot messages: round trip, and every malformed field is a DecodeError."""

from __future__ import annotations

from typing import Any

import pytest

from edge.errors import DecodeError
from edge.protocol import cbor, snapshots
from edge.protocol.snapshots import MemberSnapshot

SNAP = MemberSnapshot(
    member="+989121234567",
    points=3400,
    wallet=100_000,
    tier="gold",
    visits=12,
    spend=((20530, 900_000), (20531, 450_000)),
    birthday="1370-05-12",
    birthday_claimed=1404,
    version=7,
    device_seqs={"pos-0001": 41, "pos-0002": 3},
    cards=("04A1B2C3D4E5F6",),
    used_coupons=("NOWRUZ-1405",),
)


def test_round_trip() -> None:
    snaps, ms = snapshots.decode(snapshots.encode([SNAP], 1774027800000))
    assert snaps == [SNAP] and ms == 1774027800000


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (5, [1]),  # a spend entry that is not a pair
        (5, [[1]]),
        (5, [[1, 2, 3]]),
        (5, [["1403-01-01", 5]]),
        (5, {1: 2}),
        (9, {1: 5}),  # device ids are text
        (9, {"pos-0001": "41"}),
        (10, 5),  # cards: a list of text
        (10, "abc"),
        (10, {1: 2}),
        (10, [1]),
        (11, "abc"),  # used coupons: a list of text
        (11, [b"x"]),
        (1, "3400"),
    ],
)
def test_malformed_fields_are_refused(key: int, value: Any) -> None:
    m = SNAP.to_map()
    m[key] = value
    with pytest.raises(DecodeError) as info:
        snapshots.decode(cbor.encode({0: [m], 1: 0}))
    assert info.value.code == "bad_message"
