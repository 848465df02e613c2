"""Deterministic CBOR encoding (RFC 8949 §4.2.1) in the MicroPython subset.

The CPython side encodes records with cbor2's canonical mode (C speed); this encoder
lets MicroPython produce the same bytes, and the tests hold the two to identical
output.  Shortest-form heads, definite lengths, map keys sorted by their encoded bytes.
Integers, bytes, text, lists, dicts, booleans and null only.
"""

from edge.core.errors import CoreError


def _head(major, n, out):
    mt = major << 5
    if n < 24:
        out.append(bytes((mt | n,)))
    elif n < 0x100:
        out.append(bytes((mt | 24, n)))
    elif n < 0x10000:
        out.append(bytes((mt | 25, n >> 8, n & 0xFF)))
    elif n < 0x100000000:
        out.append(bytes((mt | 26, n >> 24, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF)))
    elif n < 0x10000000000000000:
        b = []
        for i in range(7, -1, -1):
            b.append((n >> (8 * i)) & 0xFF)
        out.append(bytes([mt | 27] + b))
    else:
        raise CoreError("integer too large for CBOR: %d" % (n,))


def _item(v, out):
    t = type(v)
    if v is None:
        out.append(b"\xf6")
    elif v is True:
        out.append(b"\xf5")
    elif v is False:
        out.append(b"\xf4")
    elif t is int:
        if v >= 0:
            _head(0, v, out)
        else:
            _head(1, -1 - v, out)
    elif t is bytes:
        _head(2, len(v), out)
        out.append(v)
    elif t is str:
        b = v.encode("utf-8")
        _head(3, len(b), out)
        out.append(b)
    elif t is list or t is tuple:
        _head(4, len(v), out)
        for x in v:
            _item(x, out)
    elif t is dict:
        pairs = []
        for k in v:
            if type(k) is not int and type(k) is not str:
                raise CoreError("CBOR map keys must be integers or text, got %r" % (k,))
            kb = []
            _item(k, kb)
            pairs.append((b"".join(kb), k))
        pairs.sort()
        _head(5, len(pairs), out)
        for kb, k in pairs:
            out.append(kb)
            _item(v[k], out)
    else:
        raise CoreError("cannot encode %s as CBOR" % (t,))


def dumps(value):
    out = []
    _item(value, out)
    return b"".join(out)
