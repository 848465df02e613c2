"""JSON for the tax system's packets, without floats.

Amounts are integer Rials; quantities and rates that are not whole are
:class:`decimal.Decimal` and are written as exact decimal literals (``1.5``, not
``1.5000000000000002``).  A float anywhere in a packet is a bug and is refused.
Persian text is written as UTF-8, not ``\\u`` escapes; keys keep their order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

__all__ = ["decode_json", "encode_json"]


def _encode_mapping(value: Mapping[Any, Any], out: list[str]) -> None:
    out.append("{")
    for i, (key, item) in enumerate(value.items()):
        if not isinstance(key, str):
            raise TypeError(f"JSON object keys must be str, got {key!r}")
        if i:
            out.append(",")
        out.append(json.dumps(key, ensure_ascii=False))
        out.append(":")
        _encode(item, out)
    out.append("}")


def _encode_sequence(value: Sequence[Any], out: list[str]) -> None:
    out.append("[")
    for i, item in enumerate(value):
        if i:
            out.append(",")
        _encode(item, out)
    out.append("]")


def _encode_number(value: int | Decimal | float) -> str:
    if isinstance(value, float):
        raise TypeError(f"float {value!r} in a tax packet: use int Rials or Decimal")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} in a tax packet")
        return format(value.normalize(), "f")
    return str(int(value))


def _encode(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool | str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int | Decimal | float):
        out.append(_encode_number(value))
    elif isinstance(value, Mapping):
        _encode_mapping(value, out)
    elif isinstance(value, Sequence):
        _encode_sequence(value, out)
    else:
        raise TypeError(f"cannot write {type(value).__name__} in a tax packet")


def encode_json(value: Any) -> bytes:
    """UTF-8 JSON of ``value`` (dict, list, str, int, bool, None, Decimal; no floats)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")


def decode_json(data: bytes | str) -> Any:
    """Parse JSON, reading every non-integer number as an exact :class:`Decimal`."""
    return json.loads(data, parse_float=Decimal)
