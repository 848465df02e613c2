# Runs on CPython and MicroPython: reads one JSON request per line on stdin, prints
# one canonical JSON answer per line.  The tests feed both interpreters the same
# requests and compare the bytes.  Plain subset code: no annotations, no f-strings.
import json
import sys

# MicroPython puts the script's directory first on sys.path, not the working
# directory; the tests run this from the repository root.
sys.path.insert(0, ".")

from edge.core import dates, jalali, jsonenc, phone
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


HANDLERS = {
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
