# Runs on CPython and MicroPython: reads one JSON request per line on stdin, prints
# one canonical JSON answer per line.  The tests feed both interpreters the same
# requests and compare the bytes.  Plain subset code: no annotations, no f-strings.
import json
import sys

# MicroPython puts the script's directory first on sys.path, not the working
# directory; the tests run this from the repository root.
sys.path.insert(0, ".")

import binascii

from edge.core import cborenc, dates, jalali, jsonenc, phone
from edge.core import record as R
from edge.core.engine import quote as engine_quote
from edge.core.errors import CoreError
from edge.core.ruleset import compile_rules


def jalali_range(req):
    out = []
    for day in range(req["from"], req["to"]):
        y, m, d = jalali.from_days(day)
        back = jalali.to_days(y, m, d)
        out.append("%d %d-%d-%d %d %s" % (day, y, m, d, back, dates.format_date(day)))
    return out


def phones(req):
    out = []
    for text in req["texts"]:
        try:
            out.append(phone.normalise(text))
        except CoreError as e:
            out.append("! " + e.en + " | " + e.fa)
    return out


def timestamps(req):
    out = []
    for text in req["texts"]:
        try:
            out.append(dates.parse_timestamp(text))
        except CoreError as e:
            out.append("! " + e.reason)
    return out


def quote(req):
    try:
        return engine_quote(compile_rules(req["rules"]), req["basket"], req["member"], req["at"])
    except CoreError as e:
        return {"error": e.reason}


def _hex(b):
    return binascii.hexlify(b).decode()


def record(req):
    # build a record payload in the subset and encode it with the subset's CBOR encoder
    t = req["time"]
    body = req["body"]
    if "sale" in body:
        fields = R.sale_body(body["sale"])
    elif "refund" in body:
        rf, dev, seq, h = body["refund"]
        fields = R.refund_body(rf, dev, seq, binascii.unhexlify(h))
    else:
        extra = {}
        for k in body["extra"]:
            extra[int(k)] = body["extra"][k]
        fields = {R.K_EXTRA: extra}
    member = R.member_field(req["member"][0], req["member"][1]) if req["member"] else None
    p = R.build(
        req["kind"],
        req["tenant"],
        req["store"],
        req["device"],
        req["seq"],
        binascii.unhexlify(req["prev"]),
        R.time_field(t[0], t[1], t[2], binascii.unhexlify(t[3])),
        fields,
        member,
        R.bank_field(req["bank"]),
        req["offline"],
        req["basket"],
    )
    return _hex(cborenc.dumps(p))


HANDLERS = {
    "record": record,
    "quote": quote,
    "jalali_range": jalali_range,
    "phones": phones,
    "timestamps": timestamps,
}


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        req = json.loads(line)
        sys.stdout.write(jsonenc.dumps(HANDLERS[req["fn"]](req)))
        sys.stdout.write("\n")


main()
