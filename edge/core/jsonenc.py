"""Canonical JSON text (MicroPython subset).

CPython's and MicroPython's ``json.dumps`` differ (spacing, key order, escaping of
non-ASCII), so the engine's output goes through this encoder on both: keys sorted,
no insignificant whitespace (or two-space indentation when ``indent`` is set),
non-ASCII written as UTF-8, integers, strings, lists, dicts, booleans and null only.
Floats are refused: there are none in money or points.
"""

from edge.core.errors import CoreError

_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _string(s, out):
    out.append('"')
    start = 0
    for i in range(len(s)):
        c = s[i]
        if c in _ESC or c < " ":
            if start < i:
                out.append(s[start:i])
            e = _ESC.get(c)
            out.append(e if e is not None else "\\u%04x" % ord(c))
            start = i + 1
    if start < len(s):
        out.append(s[start:])
    out.append('"')


def _value(v, out, indent, level):
    t = type(v)
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif t is int:
        out.append(str(v))
    elif t is str:
        _string(v, out)
    elif t is list or t is tuple:
        if not v:
            out.append("[]")
            return
        out.append("[")
        for i in range(len(v)):
            if i:
                out.append(",")
            _nl(out, indent, level + 1)
            _value(v[i], out, indent, level + 1)
        _nl(out, indent, level)
        out.append("]")
    elif t is dict:
        if not v:
            out.append("{}")
            return
        out.append("{")
        keys = sorted(v.keys())
        for i in range(len(keys)):
            k = keys[i]
            if type(k) is not str:
                raise CoreError("JSON object keys must be text, got %r" % (k,))
            if i:
                out.append(",")
            _nl(out, indent, level + 1)
            _string(k, out)
            out.append(": " if indent else ":")
            _value(v[k], out, indent, level + 1)
        _nl(out, indent, level)
        out.append("}")
    else:
        raise CoreError("cannot write %s as canonical JSON" % (t,))


def _nl(out, indent, level):
    if indent:
        out.append("\n" + " " * (indent * level))


def dumps(value, indent=0):
    out = []
    _value(value, out, indent, 0)
    return "".join(out)
