"""Deterministic CBOR (RFC 8949 §4.2.1) out, strictly checked CBOR in.

Encoding is cbor2's canonical mode restricted to what records contain: integers, byte
and text strings, arrays, maps with text keys or small integer keys (-24 <= k < 24, each
encoded in one byte), booleans, null and tag 18.  For such keys cbor2's canonical key
order (length first) and §4.2.1's bytewise order agree; a larger integer key would let
them differ (24 encodes as ``18 18``, before -1's ``20`` bytewise but after it by
length), so it is refused both ways.  Floats are refused: there are none in money or
points.

Decoding must refuse what a lenient decoder would let through.  The fast path decodes
with cbor2 (C), checks the types, and re-encodes canonically: if the bytes are exactly
the input, the input was canonical (shortest forms, definite lengths, sorted unique
keys).  Anything else goes through our own strict decoder, which names the problem.
Each refusal is a :class:`~edge.errors.DecodeError` with a ``code``:

    too_large        the message is larger than ``max_size``
    truncated        the data ends inside an item
    trailing_bytes   bytes left after the top-level item
    indefinite       an indefinite-length string, array or map
    non_minimal      an integer or length not in its shortest form
    unsorted_keys    map keys not in bytewise order of their encodings
    duplicate_key    the same key twice in a map
    bad_key          a map key that is not text or an integer in -24..23
    unknown_tag      a tag other than the ones allowed here
    too_deep         nesting deeper than ``max_depth``
    float            a floating-point number
    bad_simple       undefined or another simple value than false/true/null
    bad_utf8         a text string that is not valid UTF-8
    malformed        reserved additional information, a stray break
"""

from __future__ import annotations

from typing import Any

import cbor2

from edge.errors import DecodeError

MAX_SIZE = 64 * 1024
MAX_DEPTH = 16


def _bad_key(k: Any) -> DecodeError | None:
    """The refusal for map key ``k``, or None when it is allowed."""
    t = type(k)
    if t is str or (t is int and -24 <= k < 24):
        return None
    if t is int:
        return DecodeError("bad_key", f"map key {k} is outside -24..23 (one-byte integers)")
    return DecodeError("bad_key", f"map key {k!r} is not an integer or text")


def _check(
    obj: Any, depth: int = 0, tags: frozenset[int] | None = None, max_depth: int = MAX_DEPTH
) -> None:
    t = type(obj)
    if t is int:
        if not -0x10000000000000000 <= obj < 0x10000000000000000:
            # cbor2 turns a tag 2/3 bignum into an int; bignums are not allowed
            raise DecodeError(
                "unknown_tag", "integers beyond 64 bits (bignum tags) are not allowed"
            )
        return
    if t is str or t is bytes or obj is None or t is bool:
        return
    if depth >= max_depth:
        raise DecodeError("too_deep", f"nesting deeper than {max_depth}")
    if t is list or t is tuple:
        for x in obj:
            _check(x, depth + 1, tags, max_depth)
    elif t is dict:
        for k, v in obj.items():
            err = _bad_key(k)
            if err is not None:
                raise err
            _check(v, depth + 1, tags, max_depth)
    elif t is cbor2.CBORTag:
        if tags is not None and obj.tag not in tags:
            raise DecodeError("unknown_tag", f"tag {obj.tag} is not allowed here")
        _check(obj.value, depth + 1, tags, max_depth)
    elif t is float:
        raise DecodeError("float", "floating-point numbers are not allowed")
    else:
        raise DecodeError("bad_type", f"cannot encode {t.__name__}")


def encode(obj: Any) -> bytes:
    """Deterministic encoding of ``obj`` (see the module docstring for what is allowed)."""
    _check(obj)
    return cbor2.dumps(obj, canonical=True)


class _Decoder:
    __slots__ = ("allowed_tags", "data", "max_depth", "pos")

    def __init__(self, data: bytes, allowed_tags: frozenset[int], max_depth: int) -> None:
        self.data = data
        self.pos = 0
        self.allowed_tags = allowed_tags
        self.max_depth = max_depth

    def _need(self, n: int) -> int:
        p = self.pos
        if p + n > len(self.data):
            raise DecodeError(
                "truncated", f"data ends at byte {len(self.data)}, an item needs {p + n}"
            )
        self.pos = p + n
        return p

    def _arg(self, info: int) -> int:
        if info < 24:
            return info
        if info == 24:
            v = self.data[self._need(1)]
            if v < 24:
                raise DecodeError("non_minimal", f"value {v} in two bytes at {self.pos - 2}")
            return v
        if info == 25:
            p = self._need(2)
            v = int.from_bytes(self.data[p : p + 2], "big")
            if v < 0x100:
                raise DecodeError("non_minimal", f"value {v} in three bytes at {p - 1}")
            return v
        if info == 26:
            p = self._need(4)
            v = int.from_bytes(self.data[p : p + 4], "big")
            if v < 0x10000:
                raise DecodeError("non_minimal", f"value {v} in five bytes at {p - 1}")
            return v
        if info == 27:
            p = self._need(8)
            v = int.from_bytes(self.data[p : p + 8], "big")
            if v < 0x100000000:
                raise DecodeError("non_minimal", f"value {v} in nine bytes at {p - 1}")
            return v
        if info == 31:
            raise DecodeError("indefinite", f"indefinite length at byte {self.pos - 1}")
        raise DecodeError(
            "malformed", f"reserved additional information {info} at byte {self.pos - 1}"
        )

    def item(self, depth: int) -> Any:
        if depth > self.max_depth:
            raise DecodeError("too_deep", f"nesting deeper than {self.max_depth}")
        ib = self.data[self._need(1)]
        major = ib >> 5
        info = ib & 0x1F
        if major == 0:
            return self._arg(info)
        if major == 1:
            return -1 - self._arg(info)
        if major == 2:
            n = self._arg(info)
            p = self._need(n)
            return self.data[p : p + n]
        if major == 3:
            n = self._arg(info)
            p = self._need(n)
            try:
                return self.data[p : p + n].decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError("bad_utf8", f"invalid UTF-8 in text at byte {p}") from None
        if major == 4:
            n = self._arg(info)
            if n > len(self.data) - self.pos:  # each item takes at least one byte
                raise DecodeError("truncated", f"array of {n} items cannot fit")
            return [self.item(depth + 1) for _ in range(n)]
        if major == 5:
            n = self._arg(info)
            if 2 * n > len(self.data) - self.pos:
                raise DecodeError("truncated", f"map of {n} pairs cannot fit")
            out: dict[Any, Any] = {}
            prev = b""
            for i in range(n):
                start = self.pos
                k = self.item(depth + 1)
                raw = self.data[start : self.pos]
                err = _bad_key(k)
                if err is not None:
                    raise err
                if i and raw <= prev:
                    if raw == prev:
                        raise DecodeError("duplicate_key", f"key {k!r} appears twice")
                    raise DecodeError("unsorted_keys", f"key {k!r} out of canonical order")
                prev = raw
                out[k] = self.item(depth + 1)
            return out
        if major == 6:
            tag = self._arg(info)
            if tag not in self.allowed_tags:
                raise DecodeError("unknown_tag", f"tag {tag} is not allowed here")
            return cbor2.CBORTag(tag, self.item(depth + 1))
        # major 7
        if info == 20:
            return False
        if info == 21:
            return True
        if info == 22:
            return None
        if info in (25, 26, 27):
            raise DecodeError("float", f"floating-point number at byte {self.pos - 1}")
        if info == 31:
            raise DecodeError("malformed", f"unexpected break at byte {self.pos - 1}")
        raise DecodeError("bad_simple", f"simple value {info} at byte {self.pos - 1}")


def decode(
    data: bytes,
    *,
    allowed_tags: frozenset[int] = frozenset(),
    max_size: int = MAX_SIZE,
    max_depth: int = MAX_DEPTH,
    typed: bool = False,
) -> Any:
    """Decode exactly one canonical CBOR item from ``data`` or raise DecodeError.

    ``typed=True`` skips the walk that refuses floats, bignums, other tags and deep
    nesting on the fast path: only for callers that then check the type of every value
    themselves (record payloads: edge.protocol.record.validate does).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("bad_type", f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_size:
        raise DecodeError("too_large", f"{len(data)} bytes, the limit is {max_size}")
    if not data:
        raise DecodeError("truncated", "no data")
    try:
        value = cbor2.loads(data)
        if not typed:
            _check(value, 0, allowed_tags, max_depth)
        if cbor2.dumps(value, canonical=True) == data:
            return value
    except Exception:  # noqa: BLE001, S110 - any doubt: the strict decoder names the problem
        pass
    return _strict(data, allowed_tags, max_depth)


def _strict(data: bytes, allowed_tags: frozenset[int], max_depth: int) -> Any:
    d = _Decoder(data, allowed_tags, max_depth)
    try:
        d.item(0)
    except RecursionError:
        raise DecodeError("too_deep", "nesting too deep") from None
    if d.pos != len(data):
        raise DecodeError("trailing_bytes", f"{len(data) - d.pos} bytes after the item")
    # The strict decoder accepts only canonical CBOR, which the fast path also accepts,
    # so reaching here means cbor2 and this decoder disagree: refuse rather than guess.
    raise DecodeError("malformed", "the decoders disagree about this message")
