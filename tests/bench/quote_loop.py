# Times the engine on the interpreter running this script (CPython or MicroPython):
#   <python> tests/bench/quote_loop.py RULES.json BASKET.json MEMBER.json AT ROUNDS
# prints {"p50_us": ..., "p99_us": ..., "rounds": ..., "applied": ...}.
# Plain subset code: it must run on MicroPython.
import json
import sys

sys.path.insert(0, ".")

from edge.core.engine import quote
from edge.core.ruleset import compile_rules
from tests.bench.mpy_clock import elapsed, load, now_us


def main():
    rules, basket, member = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
    at = sys.argv[4]
    rounds = int(sys.argv[5])
    rs = compile_rules(rules)
    q = None
    for _ in range(20):
        q = quote(rs, basket, member, at)
    times = []
    for _ in range(rounds):
        t0 = now_us()
        q = quote(rs, basket, member, at)
        t1 = now_us()
        times.append(elapsed(t0, t1))
    times.sort()
    out = {
        "rounds": rounds,
        "p50_us": times[rounds // 2],
        "p99_us": times[(rounds * 99) // 100],
        "applied": len(q["applied"]),
    }
    sys.stdout.write(json.dumps(out) + "\n")


main()
