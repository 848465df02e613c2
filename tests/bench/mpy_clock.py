# A microsecond clock and a JSON loader for the scripts that time the engine on CPython and
# MicroPython alike (quote_loop.py, quote_phases.py).  Plain subset code.
import json
import time

if hasattr(time, "ticks_us"):

    def now_us():
        return time.ticks_us()

    def elapsed(a, b):
        return time.ticks_diff(b, a)
else:

    def now_us():
        return time.perf_counter_ns() // 1000

    def elapsed(a, b):
        return b - a


def load(p):
    with open(p) as f:
        return json.loads(f.read())
