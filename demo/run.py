"""./dev demo: the whole club on one machine, and proof that head office agrees with the tills.

    ./dev demo [--stores N] [--customers N] [--visits N] [--broker mqtt://HOST:PORT]
               [--workdir DIR] [--seed N] [--pace SECONDS] [--offline-store N] [--exit]

Starts a private Mosquitto (unless ``--broker``), head office on SQLite, provisions the stores
with firmware_tools, lets customers shop while one store (the busiest, or ``--offline-store``)
loses its link to head office for a while, then holds head office's ledger against the ground
truth.  Head office's console runs beside it; the demo ends by printing its address and a
login and, run in a terminal, keeps head office, the console and the tills running until
Ctrl-C so that one can click through the members it made (``--exit``, or no terminal, stops
at once, as scripts and tests want).  Exit status 0 only when every check passes; 1 when one
fails; 2 when the demo could not be set up.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict
from itertools import zip_longest
from pathlib import Path
from typing import Any

from cloud_broker.local_broker import LocalMosquitto
from demo.console import console_check
from demo.report import (
    GREEN,
    RED,
    Check,
    Out,
    Progress,
    StreamWatcher,
    members_table,
    outbox_state,
    stream_line,
    verify,
)
from demo.shoppers import Cashier, Customer, Truth, Visit, make_customers, plan
from demo.world import DemoError, HeadOffice, StoreTerminal
from edge.errors import ConfigError
from edge.protocol.mqtt import BrokerConfig

STORE_NAMES = (
    ("هایپرشهر ونک", "Hypershahr Vanak"),
    ("هایپرشهر تجریش", "Hypershahr Tajrish"),
    ("هایپرشهر صادقیه", "Hypershahr Sadeghiyeh"),
    ("هایپرشهر پونک", "Hypershahr Pounak"),
)
DRAIN_TIMEOUT = 120.0  # seconds head office may take to catch up after the shopping


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
    p.add_argument(
        "--offline-store", type=int, help="which store (1..N) loses its link (default: the busiest)"
    )
    p.add_argument(
        "--exit",
        action="store_true",
        help="stop when the checks are done (default in a terminal: keep head office and its "
        "console running until Ctrl-C)",
    )
    args = p.parse_args(argv)
    if args.stores < 2:
        p.error("--stores must be at least 2 (one of them goes offline)")
    if args.customers < 1 or args.visits < 1:
        p.error("--customers and --visits must be at least 1")
    if args.offline_store is not None and not 1 <= args.offline_store <= args.stores:
        p.error(f"--offline-store must be between 1 and --stores ({args.stores})")
    if args.broker:
        try:
            broker = BrokerConfig.from_url(args.broker)
        except ConfigError as e:
            p.error(f"--broker: {e}")
        if broker.tls:
            p.error("--broker takes mqtt://HOST[:PORT]: the demo's stores speak plain MQTT")
    return args


def offline_store(args: argparse.Namespace, queues: list[list[Visit]]) -> int | None:
    """The index of the store that loses its link: ``--offline-store`` or the busiest;
    None when its queue is too short for an outage (one visit before the cut, one during)."""
    i = (
        args.offline_store - 1
        if args.offline_store is not None
        else max(range(len(queues)), key=lambda k: len(queues[k]))
    )
    return i if len(queues[i]) >= 2 else None


class Outage:
    """Cuts one store's link when its cashier is a third through the queue and restores it
    at two thirds (and after at least ``min_down`` seconds)."""

    def __init__(self, out: Out, term: StoreTerminal, min_down: float) -> None:
        self.out, self.term, self.min_down = out, term, min_down
        self.notice = 10.0  # seconds the agent may take to notice the cut
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
                self.wait_offline()
                self.out.line(
                    self.out.c("\033[33m", f"  ✂  {term.store} loses its link to head office "
                               f"(قطع ارتباط فروشگاه {term.store}); the tills keep selling")
                )  # fmt: skip
            elif self.cut_at is not None and self.restored_at is None and done >= 2 * total // 3:
                self.restore()

    def wait_offline(self) -> None:
        """Until the agent says it is offline, so the next checkout is an offline one."""
        deadline = time.monotonic() + self.notice
        while time.monotonic() < deadline:
            try:
                if not self.term.status()["online"]:
                    return
            except (OSError, KeyError, ValueError):
                return  # the report will say what is wrong with the agent
            time.sleep(0.05)

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


class Swap:
    """Replaces one store's bank terminal half-way through its queue: the new terminal has
    another id and its trace and receipt numbers start again at 1, as a swapped terminal's
    do.  The ground-truth checks hold each terminal to its own charges."""

    def __init__(self, out: Out, term: StoreTerminal) -> None:
        self.out, self.term = out, term
        self.done = False
        self.new_id = f"2991{int(term.bank.terminal_id[-4:]):04d}"

    def served(self, term: StoreTerminal, done: int, total: int) -> None:
        if term is not self.term or self.done or done < total // 2:
            return
        self.done = True
        old = term.bank.terminal_id
        term.bank.event("swap", terminal_id=self.new_id)
        self.out.line(
            self.out.c("\033[33m", f"  ⇄  {term.store}'s bank terminal {old} is swapped for "
                       f"{self.new_id} (تعویض پایانه بانکی); its trace numbers start again at 1")
        )  # fmt: skip


def wait_drained(terms: list[StoreTerminal], ho: HeadOffice, timeout: float) -> bool:
    """Until every outbox is drained (report.OutboxState.drained); False after ``timeout``."""

    def drained(t: StoreTerminal) -> bool:
        try:
            return outbox_state(ho, t).drained
        except OSError:
            return False

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(drained(t) for t in terms):
            return True
        time.sleep(0.25)
    return False


def setup(
    out: Out, args: argparse.Namespace, workdir: Path, cut: int | None, stack: ExitStack
) -> tuple[str, HeadOffice, list[StoreTerminal]]:
    """The broker, head office and the provisioned stores, each stopped by ``stack``;
    store ``cut`` (an index) reaches the broker through a link the demo can cut."""
    if args.broker:
        url = args.broker
        out.line(f"  broker        {url} (yours)")
    else:
        broker = LocalMosquitto(workdir / "broker")
        stack.callback(broker.stop)
        broker.start()
        url = broker.url
        out.line(f"  broker        private Mosquitto on {url}")
    ho = HeadOffice(workdir, url)
    stack.callback(ho.stop)
    ho.setup()
    ho.start()
    out.line(f"  head office   python -m cloud_broker serve   ledger {ho.ledger_url}")
    ho.start_console()
    out.line(f"  console       python -m cloud_broker console {ho.console_url}")
    # on a shared broker, device ids of earlier runs have retained acks: take fresh ones
    suffix = f"-{secrets.token_hex(2)}" if args.broker else ""
    terms = []
    for i in range(args.stores):
        t = StoreTerminal(workdir, i, url, via_link=i == cut, suffix=suffix)
        stack.callback(t.stop)
        terms.append(t)
    with ThreadPoolExecutor(max_workers=min(4, len(terms))) as pool:
        list(pool.map(lambda t: t.provision(ho), terms))
    for t in terms:
        ok = t.selftest.count("OK ")
        out.line(
            f"  {t.store:<4} {t.device:<7} provisioned: firmware_tools init, enroll, selftest "
            f"({ok} checks OK); devices nfc, rfid, qr, keypad, bank (ZVT {t.bank.terminal_id})"
        )
        t.start()
        if t.display_url:
            out.line(f"  {t.store:<4} customer display {t.display_url} (kiosk: ?mode=kiosk)")
    return url, ho, terms


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Out(sys.stdout)
    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="loyalty-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()
    with ExitStack() as stack:
        # the last thing done on the way out, after every process below has been stopped
        if keep:
            stack.callback(lambda: out.line(f"\n  everything is kept in {workdir}"))
        else:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        return run(out, args, workdir, keep, stack)


def run(out: Out, args: argparse.Namespace, workdir: Path, keep: bool, stack: ExitStack) -> int:
    """The story, in order; everything started is stopped by ``stack``."""
    rng = random.Random(args.seed)  # noqa: S311 - the same seed, the same shopping
    customers = make_customers(args.customers, rng)
    queues = plan(customers, args.stores, args.visits, rng)
    cut = offline_store(args, queues)
    out.head("Customer club at the edge · باشگاه مشتریان")
    try:
        url, ho, terms = setup(out, args, workdir, cut, stack)
        stream = StreamWatcher(url, f"demo-stream-{secrets.token_hex(4)}")
        stream.start()
        stack.callback(stream.stop)
    except (DemoError, ConfigError, OSError) as e:
        out.line(out.c(RED, f"the demo could not be set up: {e}"))
        return 2
    truth = Truth()
    planned = sum(len(q) for q in queues)
    offline = terms[cut] if cut is not None else None
    outage = Outage(out, offline, min_down=max(2.0, args.pace * 25)) if offline else None
    story = f"{offline.store} will lose its link" if offline else "no outage: too few visits"
    out.head(f"{len(customers)} customers shop in {len(terms)} stores ({planned} visits); {story}")
    progress = Progress(out, terms, truth, stream, every=1.0)

    swap = Swap(out, terms[0 if cut != 0 or len(terms) == 1 else 1])

    def served(term: StoreTerminal, done: int, total: int) -> None:
        if outage is not None:
            outage.served(term, done, total)
        swap.served(term, done, total)

    cashiers = [Cashier(t, q, truth, args.pace, served) for t, q in zip(terms, queues, strict=True)]
    t0 = time.monotonic()
    progress.start()
    stack.callback(progress.stop)
    for c in cashiers:
        c.start()
    for c in cashiers:
        c.join()
    if outage is not None:
        outage.restore()
    shop_s = time.monotonic() - t0
    out.line(f"  all customers served in {shop_s:.1f}s; waiting for head office to catch up")
    drained = wait_drained(terms, ho, timeout=DRAIN_TIMEOUT)
    ho.name_people(
        [(t.store, *STORE_NAMES[i % len(STORE_NAMES)]) for i, t in enumerate(terms)],
        {c.ref: c.name_fa for c in customers},
    )
    time.sleep(0.5)  # the last stream messages
    out.line(progress.snapshot())
    progress.stop()
    checks, figures = verify(
        ho,
        terms,
        truth,
        planned=planned,
        cut=offline,
        gave_up_after=None if drained else DRAIN_TIMEOUT,
    )
    top = [str(r[0]) for r in ho.q("SELECT member FROM members ORDER BY points DESC LIMIT 3")]
    checks.append(console_check(ho, top))
    return finish(
        out, args, workdir, keep, ho, terms, truth, customers, stream, checks, figures, shop_s
    )


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
        for en, fa in zip_longest(r["en"], r["fa"], fillvalue=""):
            out.line(f"  {en:<44} {fa}")
    out.head("Members at head office · اعضا در دفتر مرکزی")
    shown = members_table(out, ho, {c.ref: c.way for c in customers})
    out.head("The reconciled stream (head office consumers) · جریان تطبیق‌شده")
    for kind in ("sale", "offline sale", "refund"):
        body = stream.samples.get(kind)
        if body:
            out.line(f"  {kind:<13} {stream_line(body)}")
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
        mark = out.c(GREEN, "✔") if c.ok else out.c(RED, "✘")
        out.line(f"  {mark} {c.name}")
        out.line(f"      {c.detail}")
    ok = all(c.ok for c in checks)
    out.line()
    if ok:
        verdict = out.c(
            GREEN,
            f"All {len(checks)} checks pass: head office agrees with every till and bank "
            "terminal. · دفتر مرکزی با همه صندوق‌ها هم‌خوان است.",
        )
    else:
        verdict = out.c(RED, "Head office does NOT agree with the ground truth. · ناهم‌خوانی!")
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
    args.display_url = next((t.display_url for t in terms if t.display_url), "")
    show_console(out, ho, args)
    return 0 if ok else 1


def show_console(out: Out, ho: HeadOffice, args: argparse.Namespace) -> None:
    """Where the console is and how to log in; in a terminal, wait for Ctrl-C."""
    out.head("Head office's console · کنسول دفتر مرکزی")
    out.line(f"  {ho.console_url}/   user admin   password {ho.console_password}")
    shown = getattr(args, "display_url", "")
    if shown:
        out.line(f"  the customer display of store s1: {shown}")
    if args.exit or not sys.stdin.isatty():
        return
    out.line("  head office, its console and the tills keep running: press Ctrl-C to stop")
    out.line("  (دفتر مرکزی و کنسول روشن می‌مانند؛ برای پایان Ctrl-C را بزنید)")
    # Ctrl-C must stop it even when started from a shell that ignores SIGINT for what it
    # runs in the background (Python then installs no handler of its own)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while ho.console is not None and ho.console.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        out.line("\n  stopping")


if __name__ == "__main__":
    sys.exit(main())
