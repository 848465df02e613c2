"""Run simulated devices so any driver can be pointed at them.

    python -m hw_sim pn532 --link /tmp/ttyNFC --card 04A1B2C3D4E5F6
    python -m hw_sim rdm6300 --link /tmp/ttyRFID --card 0F00A1B2C3
    python -m hw_sim scanner --link /tmp/ttyQR
    python -m hw_sim keypad --link /tmp/ttyKEY
    python -m hw_sim zvt --link /tmp/ttyZVT          (serial, DLE framing)
    python -m hw_sim zvt --tcp 20007                 (TCP)
    python -m hw_sim scenario store-day.json

While a device runs, lines on standard input are events: ``tap card=04A1B2C3D4E5F6``,
``remove``, ``scan code=...``, ``type text=۰۹۱۲۱۲۳۴۵۶۷``, ``next outcome=decline``.
``--faults corrupt=0.01,drop=0.001,delay=0.05,disconnect_after=500`` injects faults.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading

from hw_sim import catalog
from hw_sim.faults import Faults
from hw_sim.scenario import Scenario, ScenarioError
from hw_sim.transport import PtyServer, TcpServer


def parse_event(line: str) -> tuple[str, dict[str, str]] | None:
    """``type text=۰۹۱۲ ۱۲۳ ۴۵۶۷`` -> ("type", {"text": "۰۹۱۲ ۱۲۳ ۴۵۶۷"}): words after a
    KEY=VALUE belong to its value (a phone number typed in groups), quotes work too;
    None for a blank line; ValueError for a line that names no key for a word."""
    parts = shlex.split(line.strip())
    if not parts:
        return None
    args: dict[str, str] = {}
    key: str | None = None
    for word in parts[1:]:
        name, eq, value = word.partition("=")
        if eq and name.isidentifier():
            key = name
            args[key] = value
        elif key is not None:
            args[key] += " " + word
        else:
            raise ValueError(f"what is {word!r}? give KEY=VALUE (e.g. text=0912...)")
    return parts[0], args


def _events_from_stdin(device: object, stop: threading.Event) -> None:
    for line in sys.stdin:
        try:
            event = parse_event(line)
            if event is None:
                continue
            device.event(event[0], **event[1])  # type: ignore[attr-defined]
            print(f"ok {event[0]}", flush=True)
        except (ValueError, KeyError) as e:
            print(f"error: {e}", flush=True)
    stop.wait()  # standard input closed (e.g. started in the background): keep serving


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m hw_sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="kind", required=True)
    # only the device asked for is imported (its options are added to its subcommand)
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for kind in catalog.KINDS:
        p = sub.add_parser(kind, help=f"a simulated {kind}")
        if kind != chosen:
            continue
        where = p.add_mutually_exclusive_group()
        where.add_argument("--link", help="symlink to create for the pseudo-terminal")
        where.add_argument("--tcp", type=int, help="serve on this TCP port instead")
        p.add_argument("--faults", help="corrupt=P,drop=P,delay=S,disconnect_after=N")
        p.add_argument("--seed", type=int)
        catalog.module(kind).add_cli(p)
    sc = sub.add_parser("scenario", help="run a scenario file")
    sc.add_argument("file")
    sc.add_argument("--hold", action="store_true", help="keep serving after the last event")
    args = ap.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    signal.signal(signal.SIGINT, lambda *_a: stop.set())
    if args.kind == "scenario":
        try:
            scenario = Scenario.load(args.file).start()
        except ScenarioError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print("\n".join(scenario.describe()), flush=True)
        while not stop.is_set() and not (scenario.done.is_set() and not args.hold):
            stop.wait(0.1)
        scenario.stop()
        for err in scenario.errors:
            print(f"error: {err}", file=sys.stderr)
        return 1 if scenario.errors else 0
    try:
        device = catalog.module(args.kind).from_cli(args)
        faults = Faults.parse(args.faults, args.seed)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    server: PtyServer | TcpServer
    if args.tcp is not None:
        server = TcpServer(device, args.tcp, faults=faults)
        print(f"{args.kind} on tcp 127.0.0.1:{server.port}", flush=True)
    else:
        server = PtyServer(device, args.link, faults=faults)
        print(
            f"{args.kind} on {server.path}" + (f" (link {args.link})" if args.link else ""),
            flush=True,
        )
    server.start()
    threading.Thread(target=_events_from_stdin, args=(device, stop), daemon=True).start()
    stop.wait()
    server.stop()
    return 0
