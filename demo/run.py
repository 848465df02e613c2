"""./dev demo: the whole club on one machine, and proof that head office agrees with the tills.

    ./dev demo [--stores N] [--customers N] [--visits N] [--broker mqtt://HOST:PORT]
               [--workdir DIR] [--seed N] [--pace SECONDS]

Starts a private Mosquitto (unless ``--broker``), head office on SQLite, provisions the stores
with firmware_tools, lets customers shop while one store loses its link to head office for a
while, then holds head office's ledger against the ground truth.  Exit status 0 only when every
check passes; 1 when one fails; 2 when the demo could not be set up.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cloud_broker.local_broker import LocalMosquitto
from demo.report import Check, Out, Progress, StreamWatcher, members_table, verify
from demo.shoppers import Cashier, Customer, Truth, make_customers, plan
from demo.world import DemoError, HeadOffice, StoreTerminal
from edge.errors import ConfigError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="./dev demo",
        description="Run the whole loyalty club on this machine and check head office against "
        "the ground truth.",
    )
    p.add_argument("--stores", type=int, default=3, help="simulated stores (at least 2)")
    p.add_argument("--customers", type=int, default=15, help="club members shopping")
    p.add_argument("--visits", type=int, default=5, help="visits per customer")
    p.add_argument("--broker", help="use this broker (mqtt://HOST:PORT) instead of a private one")
    p.add_argument("--workdir", type=Path, help="keep everything here and write summary.json")
    p.add_argument("--seed", type=int, default=1405, help="the same seed, the same shopping")
    p.add_argument("--pace", type=float, default=0.2, help="seconds between customers")
    p.add_argument("--offline-store", type=int, default=2, help="which store loses its link")
    args = p.parse_args(argv)
    if args.stores < 2:
        p.error("--stores must be at least 2 (one of them goes offline)")
    if args.customers < 1 or args.visits < 1:
        p.error("--customers and --visits must be at least 1")
    if args.broker and not args.broker.startswith("mqtt://"):
        p.error("--broker takes mqtt://HOST:PORT")
    args.offline_store = min(max(args.offline_store, 1), args.stores)
    return args


class Outage:
    """Cuts one store's link when its cashier is a third through the queue and restores it
    at two thirds (and after at least ``min_down`` seconds)."""

    def __init__(self, out: Out, term: StoreTerminal, min_down: float) -> None:
        self.out, self.term, self.min_down = out, term, min_down
        self.cut_at: float | None = None
        self.restored_at: float | None = None
        self.lock = threading.Lock()

    def served(self, term: StoreTerminal, done: int, total: int) -> None:
        if term is not self.term or term.link is None:
            return
        with self.lock:
            if self.cut_at is None and done >= total // 3:
                term.link.cut()
                self.cut_at = time.monotonic()
                self.out.line(
                    self.out.c("\033[33m", f"  ✂  {term.store} loses its link to head office "
                               f"(قطع ارتباط فروشگاه {term.store}); the tills keep selling")
                )  # fmt: skip
            elif self.cut_at is not None and self.restored_at is None and done >= 2 * total // 3:
                self.restore()

    def restore(self) -> None:
        if self.term.link is None or self.cut_at is None or self.restored_at is not None:
            return
        left = self.min_down - (time.monotonic() - self.cut_at)
        if left > 0:
            time.sleep(left)
        self.term.link.restore()
        self.restored_at = time.monotonic()
        self.out.line(
            self.out.c("\033[33m", f"  ↺  {self.term.store}'s link is back after "
                       f"{self.restored_at - self.cut_at:.1f}s (ارتباط برقرار شد); the agent "
                       "reconnects on its back-off and catches up")
        )  # fmt: skip


def wait_drained(terms: list[StoreTerminal], ho: HeadOffice, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = True
        for t in terms:
            try:
                st = t.status()
            except OSError:
                done = False
                break
            applied = ho.count("SELECT applied_through FROM devices WHERE device = ?", (t.device,))
            if (
                st["outbox"]["depth"]
                or st["payments_unknown"]
                or applied != st["outbox"]["last_seq"]
            ):
                done = False
                break
        if done:
            return True
        time.sleep(0.25)
    return False


def setup(
    out: Out, args: argparse.Namespace, workdir: Path
) -> tuple[LocalMosquitto | None, str, HeadOffice, list[StoreTerminal]]:
    broker: LocalMosquitto | None = None
    if args.broker:
        url = args.broker
        out.line(f"  broker        {url} (yours)")
    else:
        broker = LocalMosquitto(workdir / "broker")
        broker.start()
        url = broker.url
        out.line(f"  broker        private Mosquitto on {url}")
    ho = HeadOffice(workdir, url)
    ho.setup()
    ho.start()
    out.line(f"  head office   python -m cloud_broker serve   ledger {ho.ledger_url}")
    # on a shared broker, device ids of earlier runs have retained acks: take fresh ones
    suffix = f"-{secrets.token_hex(2)}" if args.broker else ""
    terms = [
        StoreTerminal(workdir, i, url, via_link=i == args.offline_store - 1, suffix=suffix)
        for i in range(args.stores)
    ]
    with ThreadPoolExecutor(max_workers=min(4, len(terms))) as pool:
        list(pool.map(lambda t: t.provision(ho), terms))
    for t in terms:
        ok = t.selftest.count("OK ")
        out.line(
            f"  {t.store:<4} {t.device:<7} provisioned: firmware_tools init, enroll, selftest "
            f"({ok} checks OK); devices nfc, rfid, qr, keypad, bank (ZVT {t.bank.terminal_id})"
        )
        t.start()
    return broker, url, ho, terms


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - the story, in order
    args = parse_args(argv)
    out = Out(sys.stdout)
    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="loyalty-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()
    rng = random.Random(args.seed)  # noqa: S311 - the same seed, the same shopping
    out.head("Customer club at the edge · باشگاه مشتریان")
    broker: LocalMosquitto | None = None
    ho: HeadOffice | None = None
    terms: list[StoreTerminal] = []
    stream: StreamWatcher | None = None
    try:
        try:
            broker, url, ho, terms = setup(out, args, workdir)
            stream = StreamWatcher(url, f"demo-stream-{secrets.token_hex(4)}")
            stream.start()
        except (DemoError, ConfigError, OSError) as e:
            out.line(out.c("\033[31m", f"the demo could not be set up: {e}"))
            return 2
        customers = make_customers(args.customers, rng)
        queues = plan(customers, args.stores, args.visits, rng)
        truth = Truth()
        offline = terms[args.offline_store - 1]
        outage = Outage(out, offline, min_down=max(2.0, args.pace * 25))
        out.head(
            f"{len(customers)} customers shop in {len(terms)} stores "
            f"({sum(len(q) for q in queues)} visits); {offline.store} will lose its link"
        )
        progress = Progress(out, terms, truth, stream, every=1.0)
        cashiers = [
            Cashier(t, q, truth, args.pace, outage.served)
            for t, q in zip(terms, queues, strict=True)
        ]
        t0 = time.monotonic()
        progress.start()
        for c in cashiers:
            c.start()
        for c in cashiers:
            c.join()
        outage.restore()
        shop_s = time.monotonic() - t0
        out.line(f"  all customers served in {shop_s:.1f}s; waiting for head office to catch up")
        drained = wait_drained(terms, ho, timeout=120)
        time.sleep(0.5)  # the last stream messages
        out.line(progress.snapshot())
        progress.stop()
        checks, figures = verify(ho, terms, truth)
        if not drained:
            checks.append(Check("head office caught up within 120 s", False, "it did not"))
        return finish(
            out, args, workdir, keep, ho, terms, truth, customers, stream, checks, figures, shop_s
        )
    finally:
        if stream is not None:
            stream.stop()
        for t in terms:
            t.stop()
        if ho is not None:
            ho.stop()
        if broker is not None:
            broker.stop()
        if keep:
            out.line(f"\n  everything is kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def finish(
    out: Out,
    args: argparse.Namespace,
    workdir: Path,
    keep: bool,
    ho: HeadOffice,
    terms: list[StoreTerminal],
    truth: Truth,
    customers: list[Customer],
    stream: StreamWatcher,
    checks: list[Check],
    figures: dict[str, Any],
    shop_s: float,
) -> int:
    if truth.mistyped:
        m = truth.mistyped[0]
        out.head("A cashier mistyped a number · شماره اشتباه")
        out.line(f"  typed {m['typed']!r} → {m['status']} {m.get('error')}")
        out.line(f"  customer display: {m.get('fa')}")
        out.line(f"                    {m.get('en')}")
    if truth.receipts:
        r = truth.receipts[-1]
        out.head(f"{r['customer']}'s receipt · رسید مشتری")
        for fa, en in zip(r["fa"], r["en"], strict=False):
            out.line(f"  {en:<44} {fa}")
    out.head("Members at head office · اعضا در دفتر مرکزی")
    names = {c.ref: f"{c.name} ({c.way})" for c in customers}
    shown = members_table(out, ho, names)
    out.head("The reconciled stream (head office consumers) · جریان تطبیق‌شده")
    for kind in ("sale", "offline sale", "refund"):
        body = stream.samples.get(kind)
        if body:
            text = json.dumps(body, ensure_ascii=False)
            out.line(f"  {kind:<13} {text[:230]}{'…' if len(text) > 230 else ''}")
    out.line(
        f"  {stream.count} reconciled records in {stream.messages} messages on "
        "loyalty/v1/{tenant}/reconciled/{store}"
    )
    if figures["alerts"]:
        kinds: dict[str, int] = {}
        for a in figures["alerts"]:
            kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
        out.line(f"  head office alerts: {kinds} (python -m cloud_broker alerts list)")
    out.head("Head office against the ground truth · تطبیق با واقعیت")
    for c in checks:
        mark = out.c(GREEN_OK, "✔") if c.ok else out.c(RED_BAD, "✘")
        out.line(f"  {mark} {c.name}")
        out.line(f"      {c.detail}")
    ok = all(c.ok for c in checks)
    out.line()
    if ok:
        verdict = out.c(
            GREEN_OK,
            f"All {len(checks)} checks pass: head office agrees with every till and bank "
            "terminal. · دفتر مرکزی با همه صندوق‌ها هم‌خوان است.",
        )
    else:
        verdict = out.c(RED_BAD, "Head office does NOT agree with the ground truth. · ناهم‌خوانی!")
    out.line(verdict)
    if keep:
        summary = {
            "ok": ok,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "shopping_seconds": round(shop_s, 2),
            "stores": [
                {
                    "store": t.store,
                    "device": t.device,
                    "config": str(t.config),
                    "offline_for_part_of_the_run": t.link is not None,
                }
                for t in terms
            ],
            "ground_truth": {
                "sales": truth.sales,
                "refunds": truth.refunds,
                "declined": truth.declined,
                "bank_charged": {t.device: t.charged() for t in terms},
                "members": figures["members_expected"],
            },
            "head_office": {
                "ledger": ho.ledger_url,
                "records": figures["records"],
                "members": figures["members_ledger"],
                "alerts": figures["alerts"],
                "top_members": shown,
            },
            "checks": [asdict(c) for c in checks],
        }
        (workdir / "summary.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=2, default=str), "utf-8"
        )
    return 0 if ok else 1


GREEN_OK, RED_BAD = "\033[32m", "\033[31m"


if __name__ == "__main__":
    sys.exit(main())
