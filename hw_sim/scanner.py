"""A simulated serial barcode/QR scanner: each scan sends prefix + code + terminator."""

from __future__ import annotations

import argparse
from typing import Any

from edge.drivers.scanner import parse_terminator
from hw_sim.device import SimDevice


class ScannerSim(SimDevice):
    kind = "scanner"

    def __init__(self, terminator: str = "cr", prefix: str = "") -> None:
        super().__init__()
        self.terminator = parse_terminator(terminator)
        self.prefix = prefix.encode()

    def scan(self, code: str) -> None:
        self.send(self.prefix + code.encode("utf-8") + self.terminator)

    def event(self, action: str, **args: Any) -> None:
        if action == "scan":
            self.scan(str(args["code"]))
        elif action == "raw":
            self.send(bytes.fromhex(str(args["hex"])))
        else:
            super().event(action, **args)


def add_cli(p: argparse.ArgumentParser) -> None:
    p.add_argument("--terminator", default="cr", help="cr, lf, crlf, tab, etx or 0xHEX")
    p.add_argument("--prefix", default="")


def from_cli(args: argparse.Namespace) -> ScannerSim:
    return ScannerSim(args.terminator, args.prefix)


def from_url(query: dict[str, list[str]]) -> ScannerSim:
    return ScannerSim(query.get("terminator", ["cr"])[0], query.get("prefix", [""])[0])
