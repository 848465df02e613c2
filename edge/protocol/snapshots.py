"""Member balance snapshots, head office -> terminals (topic ``snapshot``, tenant-wide).

    message   {0: [snapshot, ...], 1: generated at (ms)}
    snapshot  {0: member (E.164 or card:UID), 1: points, 2: wallet (Rials), 3: tier,
               4: visits, 5: [[day number, rials], ...] spend in the tier window,
               6: birthday (Jalali YYYY-MM-DD) or null, 7: birthday year claimed,
               8: version, 9: {device: last seq of that device applied for this member},
               10: [card ids], 11: [single-use coupon codes used],
               12: [coupon codes the member holds], 13: wedding anniversary (Jalali) or
               null, 14: anniversary year claimed, 15: the member's referral code or null}

Fields 12 to 15 are optional (a snapshot without them means none); a terminal that does
not know them ignores them.

A terminal adds its own activity for the member with seq above ``9[its device]`` (its
records head office had not applied when the snapshot was made) to estimate the balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.errors import DecodeError
from edge.protocol import cbor

MAX_SNAPSHOT_MESSAGE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    member: str
    points: int
    wallet: int
    tier: str
    visits: int
    spend: tuple[tuple[int, int], ...]
    birthday: str | None
    birthday_claimed: int
    version: int
    device_seqs: dict[str, int]
    cards: tuple[str, ...] = ()
    used_coupons: tuple[str, ...] = ()
    coupons: tuple[str, ...] = ()  # held: issued by head office, valid, not used up
    anniversary: str | None = None
    anniversary_claimed: int = 0
    referral_code: str | None = None

    def to_map(self) -> dict[int, Any]:
        return {
            0: self.member,
            1: self.points,
            2: self.wallet,
            3: self.tier,
            4: self.visits,
            5: [list(s) for s in self.spend],
            6: self.birthday,
            7: self.birthday_claimed,
            8: self.version,
            9: dict(self.device_seqs),
            10: list(self.cards),
            11: list(self.used_coupons),
            12: list(self.coupons),
            13: self.anniversary,
            14: self.anniversary_claimed,
            15: self.referral_code,
        }


def encode(snaps: list[MemberSnapshot], generated_ms: int) -> bytes:
    return cbor.encode({0: [s.to_map() for s in snaps], 1: generated_ms})


def _int(v: Any, what: str) -> int:
    if type(v) is not int:
        raise DecodeError("bad_message", f"snapshot {what} must be an integer")
    return v


def _texts(v: Any, what: str) -> tuple[str, ...]:
    if type(v) is not list or any(type(x) is not str for x in v):
        raise DecodeError("bad_message", f"snapshot {what} must be a list of text")
    return tuple(v)


def _pairs(v: Any, what: str) -> tuple[tuple[int, int], ...]:
    if type(v) is not list or any(
        type(x) is not list or len(x) != 2 or type(x[0]) is not int or type(x[1]) is not int
        for x in v
    ):
        raise DecodeError("bad_message", f"snapshot {what} must be a list of [int, int]")
    return tuple((x[0], x[1]) for x in v)


def decode(data: bytes) -> tuple[list[MemberSnapshot], int]:
    m = cbor.decode(data, max_size=MAX_SNAPSHOT_MESSAGE)
    if type(m) is not dict or type(m.get(0)) is not list:
        raise DecodeError("bad_message", "a snapshot message is {0: [...], 1: ms}")
    out = []
    for s in m[0]:
        if type(s) is not dict or type(s.get(0)) is not str or type(s.get(3)) is not str:
            raise DecodeError("bad_message", "a member snapshot needs member and tier")
        seqs = s.get(9, {})
        if type(seqs) is not dict or any(type(k) is not str for k in seqs):
            raise DecodeError("bad_message", "snapshot device seqs must map device ids to seqs")
        out.append(
            MemberSnapshot(
                s[0],
                _int(s.get(1), "points"),
                _int(s.get(2), "wallet"),
                s[3],
                _int(s.get(4), "visits"),
                _pairs(s.get(5, []), "spend"),
                s.get(6) if type(s.get(6)) is str else None,
                _int(s.get(7, 0), "birthday year"),
                _int(s.get(8), "version"),
                {k: _int(v, "seq") for k, v in seqs.items()},
                _texts(s.get(10, []), "cards"),
                _texts(s.get(11, []), "used coupons"),
                _texts(s.get(12, []), "coupons"),
                s.get(13) if type(s.get(13)) is str else None,
                _int(s.get(14, 0), "anniversary year"),
                s.get(15) if type(s.get(15)) is str else None,
            )
        )
    return out, _int(m.get(1, 0), "time")
