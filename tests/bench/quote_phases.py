# Where a quote's time goes, on the interpreter running this script (CPython or MicroPython):
#   <python> tests/bench/quote_phases.py RULES.json BASKET.json MEMBER.json AT ROUNDS
# prints {"phase": median_us, ...}: the parts of a quote the engine does before any rule
# (timestamp, basket, member), the whole quote, and primitive operations the engine is
# made of, each timed alone.  Plain subset code: it must run on MicroPython.
import json
import sys

sys.path.insert(0, ".")

from edge.core.alloc import allocate
from edge.core.dates import parse_timestamp
from edge.core.engine import quote
from edge.core.inputs import Basket, Member
from edge.core.ruleset import compile_rules
from tests.bench.mpy_clock import elapsed, load, now_us


def median(fn, rounds):
    times = []
    for _ in range(rounds):
        t0 = now_us()
        fn()
        times.append(elapsed(t0, now_us()))
    times.sort()
    return times[rounds // 2]


def _dict_str_keys():
    d = {"sku": 1, "category": 2, "qty": 3, "unit_price": 4, "discount": 5}
    s = 0
    for _ in range(1000):
        s += d["sku"] + d["qty"] + d["unit_price"]
    return s


def _int_arith():
    s = 0
    for i in range(1000):
        s += (i * 380000 * 2500) // 10000
    return s


def _calls():
    def f(a, b):
        return a + b

    s = 0
    for i in range(1000):
        s = f(s, i)
    return s


def _list_build():
    out = []
    for i in range(1000):
        out.append(i)  # noqa: PERF402 - the operation being timed
    return out


def _sort_ints():
    xs = [(i * 7919) % 1000 for i in range(1000)]
    xs.sort()
    return xs


def _str_build():
    # what validating a basket does per field: names built, text checked and encoded
    s = 0
    for i in range(1000):
        where = "basket.lines[" + str(i) + "]" + "." + "unit_price"
        s += len(where.encode("utf-8")) + (min(where) < " ")
    return s


def _dicts_made():
    out = []
    for i in range(1000):
        out.append({"sku": i, "qty": 1, "unit_price": 380000})  # noqa: PERF401 - timed
    return out


def _allocate():
    w = [380000 + i for i in range(50)]
    for _ in range(20):
        allocate(123456, w)


def main():
    rules, basket, member = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
    at = sys.argv[4]
    rounds = int(sys.argv[5])
    rs = compile_rules(rules)
    t = parse_timestamp(at)
    for _ in range(20):
        quote(rs, basket, member, at)
    out = {
        "quote": median(lambda: quote(rs, basket, member, at), rounds),
        "timestamp": median(lambda: parse_timestamp(at), rounds),
        "basket": median(lambda: Basket(basket), rounds),
        "member": median(lambda: Member(member, t["day"], rs.window_days), rounds),
        "op_dict_str_keys_x1000": median(_dict_str_keys, rounds // 10),
        "op_int_arith_x1000": median(_int_arith, rounds // 10),
        "op_calls_x1000": median(_calls, rounds // 10),
        "op_list_append_x1000": median(_list_build, rounds // 10),
        "op_sort_1000_ints": median(_sort_ints, rounds // 10),
        "op_allocate_50_x20": median(_allocate, rounds // 10),
        "op_strings_built_x1000": median(_str_build, rounds // 10),
        "op_dicts_made_x1000": median(_dicts_made, rounds // 10),
    }
    sys.stdout.write(json.dumps(out) + "\n")


main()
