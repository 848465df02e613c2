"""The small CBOR messages beside records: acks, gap requests, device status.

    ack     {0: applied_through (uint), 1: hash of that record (bstr 32)}   retained
    gap     {0: [[first, last], ...]}  seq ranges head office is missing (at most 64)
    status  {0: "online" | "offline", 1: reason (text), 2: outbox depth,
             3: applied_through, 4: rules version, 5: wall ms}                retained

Decoding is strict (edge.protocol.cbor) and checks the shape; bad messages raise
DecodeError with code ``bad_message``.
"""

from __future__ import annotations

from typing import Any

from edge.errors import DecodeError
from edge.protocol import cbor

MAX_GAP_RANGES = 64


def _bad(msg: str) -> DecodeError:
    return DecodeError("bad_message", msg)


def encode_ack(applied_through: int, record_hash: bytes | None) -> bytes:
    m: dict[int, Any] = {0: applied_through}
    if record_hash is not None:
        m[1] = record_hash
    return cbor.encode(m)


def decode_ack(data: bytes) -> tuple[int, bytes | None]:
    m = cbor.decode(data, max_size=256)
    if type(m) is not dict or not set(m) <= {0, 1} or type(m.get(0)) is not int or m[0] < 0:
        raise _bad("an ack is {0: applied_through, 1: hash}")
    h = m.get(1)
    if h is not None and (type(h) is not bytes or len(h) != 32):
        raise _bad("an ack's hash is 32 bytes")
    return m[0], h


def encode_gap(ranges: list[tuple[int, int]]) -> bytes:
    return cbor.encode({0: [[a, b] for a, b in ranges[:MAX_GAP_RANGES]]})


def decode_gap(data: bytes) -> list[tuple[int, int]]:
    m = cbor.decode(data, max_size=4096)
    if type(m) is not dict or set(m) != {0} or type(m[0]) is not list:
        raise _bad("a gap request is {0: [[first, last], ...]}")
    if len(m[0]) > MAX_GAP_RANGES:
        raise _bad(f"more than {MAX_GAP_RANGES} ranges")
    out = []
    for r in m[0]:
        if (
            type(r) is not list
            or len(r) != 2
            or type(r[0]) is not int
            or type(r[1]) is not int
            or not 1 <= r[0] <= r[1]
        ):
            raise _bad("each range is [first, last] with 1 <= first <= last")
        out.append((r[0], r[1]))
    return out


def encode_progress(wall_ms: int, applied: int, queued: int) -> bytes:
    """Head office's heartbeat while it works through records (topics.progress): records
    applied since the last one and records received but not yet applied."""
    return cbor.encode({0: wall_ms, 1: applied, 2: queued})


def decode_progress(data: bytes) -> tuple[int, int, int]:
    m = cbor.decode(data, max_size=64)
    if (
        type(m) is not dict
        or set(m) != {0, 1, 2}
        or any(type(m[k]) is not int or m[k] < 0 for k in (0, 1, 2))
    ):
        raise _bad("a progress message is {0: wall_ms, 1: applied, 2: queued}")
    return m[0], m[1], m[2]


def encode_status(state: str, reason: str = "", **info: int | None) -> bytes:
    keys = {"depth": 2, "applied_through": 3, "rules_version": 4, "wall_ms": 5, "rules_key": 6}
    m: dict[int, Any] = {0: state}
    if reason:
        m[1] = reason
    for k, v in info.items():
        if v is not None:
            m[keys[k]] = v
    return cbor.encode(m)


def decode_status(data: bytes) -> dict[str, Any]:
    m = cbor.decode(data, max_size=1024)
    if type(m) is not dict or m.get(0) not in ("online", "offline"):
        raise _bad("a status is {0: 'online' | 'offline', ...}")
    names = {
        0: "state",
        1: "reason",
        2: "depth",
        3: "applied_through",
        4: "rules_version",
        5: "wall_ms",
        6: "rules_key",
    }
    return {names[k]: v for k, v in m.items() if k in names}
