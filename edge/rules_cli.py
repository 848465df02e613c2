"""Command line for the rule engine; runs on CPython and on MicroPython."""

import json
import sys

from edge.core import jsonenc
from edge.core.engine import quote
from edge.core.errors import CoreError
from edge.core.refund import refund
from edge.core.ruleset import compile_rules

# MicroPython modules have no __doc__, so the usage text is a plain string.
USAGE = """usage:
    python -m edge.rules_cli quote --rules R.json --basket B.json [--member M.json]
                               --at 2026-03-20T10:00:00+03:30 [--used-codes U.json] [--pretty]
    python -m edge.rules_cli refund --sale Q.json --request R.json [--prior P.json]
                               [--void] [--pretty]
    python -m edge.rules_cli check --rules R.json

``micropython -m edge.rules_cli`` with the same arguments prints byte-identical output.
Exit status: 0 done, 1 input refused (the reason goes to stderr as JSON), 2 usage.
"""


def _args(argv):
    opts = {}
    flags = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--pretty" or a == "--void":
            flags[a[2:]] = True
            i += 1
        elif a[:2] == "--" and i + 1 < len(argv):
            opts[a[2:]] = argv[i + 1]
            i += 2
        else:
            raise ValueError("unexpected argument %s" % (a,))
    return opts, flags


def _load(path):
    with open(path, "rb") as f:
        data = f.read()
    return json.loads(data.decode("utf-8"))


def _codes(path):
    # --used-codes: a JSON list of coupon codes
    v = _load(path)
    if type(v) is not list:
        raise ValueError("--used-codes must be a JSON list of coupon codes")
    out = {}
    for c in v:
        if type(c) is not str:
            raise ValueError("--used-codes: every code must be text, got %r" % (c,))
        out[c] = 1
    return out


def _prior(path):
    # --prior: {"lines": [{"line": i, "qty": n}, ...]}, as in a refund request
    v = _load(path)
    if type(v) is not dict or type(v.get("lines")) is not list:
        raise ValueError('--prior must be a JSON object {"lines": [{"line": i, "qty": n}, ...]}')
    return v["lines"]


def _need(opts, name):
    if name not in opts:
        raise ValueError("--%s is required" % (name,))
    return opts[name]


def run(argv, out):
    if not argv or argv[0] in ("-h", "--help", "help"):
        out.write(USAGE)
        return 0 if argv else 2
    cmd = argv[0]
    opts, flags = _args(argv[1:])
    if cmd == "quote":
        rs = compile_rules(_load(_need(opts, "rules")))
        member = _load(opts["member"]) if "member" in opts else None
        used = _codes(opts["used-codes"]) if "used-codes" in opts else None
        result = quote(rs, _load(_need(opts, "basket")), member, _need(opts, "at"), used)
    elif cmd == "refund":
        prior = _prior(opts["prior"]) if "prior" in opts else None
        result = refund(
            _load(_need(opts, "sale")),
            _load(_need(opts, "request")),
            prior,
            "void" if flags.get("void") else "refund",
        )
    elif cmd == "check":
        rs = compile_rules(_load(_need(opts, "rules")))
        result = {
            "ok": True,
            "version": rs.version,
            "rules": len(rs.rules),
            "tiers": [t.id for t in rs.tiers],
        }
    else:
        raise ValueError("unknown command %s" % (cmd,))
    out.write(jsonenc.dumps(result, 2 if flags.get("pretty") else 0))
    out.write("\n")
    return 0


def main():
    try:
        code = run(sys.argv[1:], sys.stdout)
    except CoreError as e:
        err = {"error": type(e).__name__, "reason": e.reason, "fa": e.fa, "en": e.en}
        if hasattr(e, "rule"):
            err["rule"] = e.rule
        sys.stderr.write(jsonenc.dumps(err) + "\n")
        code = 1
    except ValueError as e:
        # usage problems and malformed JSON files
        sys.stderr.write("edge.rules_cli: %s\n" % (e,))
        code = 2
    except OSError as e:
        sys.stderr.write("edge.rules_cli: cannot read input: %s\n" % (e,))
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
