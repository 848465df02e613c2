"""What a person watching the demo sees: live progress while it runs, then the reckoning:
head office's ledger held against the ground truth of the bank terminals and receipts."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, TextIO

import paho.mqtt.client as mqtt

from demo.shoppers import Truth
from demo.world import TENANT, HeadOffice, StoreTerminal
from edge import receipt
from edge.core import record as R
from edge.protocol import topics
from edge.protocol.cbor import decode
from edge.protocol.cose import parse
from edge.protocol.mqtt import BrokerConfig, connect, new_client

BOLD, GREEN, RED, DIM, RESET = "\033[1m", "\033[32m", "\033[31m", "\033[2m", "\033[0m"


class Out:
    """Printing with colour on a terminal and without it in a pipe or a log."""

    def __init__(self, stream: TextIO) -> None:
        self.s = stream
        self.tty = stream.isatty() and os.environ.get("NO_COLOR") is None

    def c(self, code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if self.tty else text

    def line(self, text: str = "") -> None:
        print(text, file=self.s, flush=True)

    def head(self, text: str) -> None:
        self.line()
        self.line(self.c(BOLD, text))
        self.line(self.c(DIM, "─" * min(78, max(20, len(text)))))


class StreamWatcher:
    """A head-office consumer of the reconciled stream: counts it and keeps a few samples."""

    def __init__(self, broker_url: str, client_id: str) -> None:
        self.cfg = BrokerConfig.from_url(broker_url)
        self.count = 0  # reconciled records
        self.messages = 0  # stream messages (head office batches them)
        self.samples: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.c = new_client(self.cfg, client_id)
        self.c.on_connect = lambda c, *_a: c.subscribe(topics.reconciled(TENANT, "+"), qos=1)
        self.c.on_message = self._on_message

    def _on_message(self, _c: mqtt.Client, _u: Any, m: mqtt.MQTTMessage) -> None:
        try:
            entries = json.loads(m.payload)["entries"]
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            self.messages += 1
            for body in entries:
                key = str(body.get("type", "?"))
                if key == "sale" and body.get("offline"):
                    key = "offline sale"
                self.count += 1
                self.samples.setdefault(key, body)

    def start(self) -> None:
        connect(self.c, self.cfg)
        self.c.loop_start()

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


class Progress(threading.Thread):
    """One line every ``every`` seconds: each store online or not and its outbox, the
    checkouts so far, what head office has reconciled."""

    def __init__(
        self,
        out: Out,
        terms: list[StoreTerminal],
        truth: Truth,
        stream: StreamWatcher,
        every: float,
    ) -> None:
        super().__init__(name="progress", daemon=True)
        self.out, self.terms, self.truth, self.stream, self.every = out, terms, truth, stream, every
        self.t0 = time.monotonic()
        self.stop_evt = threading.Event()

    def snapshot(self) -> str:
        parts = []
        for t in self.terms:
            try:
                st = t.status()
                on, depth = bool(st["online"]), int(st["outbox"]["depth"])
            except (OSError, KeyError, ValueError):
                on, depth = False, -1
            mark = self.out.c(GREEN, "● online ") if on else self.out.c(RED, "○ OFFLINE")
            parts.append(f"{t.store} {mark} outbox {depth if depth >= 0 else '?':>3}")
        with self.truth.lock:
            sales, refunds, declined = (
                len(self.truth.sales),
                len(self.truth.refunds),
                self.truth.declined,
            )
        return (
            f"[{time.monotonic() - self.t0:5.1f}s] " + " | ".join(parts)
            + f" | sales {sales:3} declined {declined:2} refunds {refunds:2}"
            + f" | reconciled {self.stream.count:4}"
        )  # fmt: skip

    def run(self) -> None:
        while not self.stop_evt.wait(self.every):
            self.out.line(self.snapshot())

    def stop(self) -> None:
        self.stop_evt.set()
        self.join(5)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _sale_records(ho: HeadOffice) -> list[dict[str, Any]]:
    out = []
    for device, seq, kind, raw in ho.q(
        "SELECT device, seq, type, raw FROM records WHERE type IN ('sale', 'refund', 'void')"
    ):
        p = decode(parse(bytes(raw)).payload)
        bank = p.get(R.K_BANK) or {}
        out.append(
            {
                "device": device,
                "seq": int(seq),
                "type": kind,
                "amount": p[R.K_AMOUNTS][R.A_PAID],
                "terminal_id": bank.get(R.B_TERMINAL),
                "trace": bank.get(R.B_TRACE),
            }
        )
    return out


Sale = tuple[str, int, int, int | None]  # device, seq, payable, bank trace
Move = tuple[str, str, int]  # bank terminal id, "in" (a charge) or "back" (to the card), amount
Refund = tuple[str, int, int]  # device, seq, amount


def money_checks(
    truth_sales: list[Sale],
    ho_sales: list[Sale],
    bank: list[Move],
    booked: list[Move],
    truth_refunds: list[Refund],
    ho_refunds: list[Refund],
) -> list[Check]:
    """Sales and refunds at head office against the tills and the bank terminals.  Money is
    compared per bank terminal (its id), so a terminal swapped mid-day, whose trace numbers
    start again at 1, is held to its own charges."""
    ts, hs = sorted(truth_sales), sorted(ho_sales)
    missing = [x for x in ts if x not in hs]
    extra = [x for x in hs if x not in ts] + [x for i, x in enumerate(hs) if x in hs[:i]]
    # (terminal id, way) -> [bank count, bank Rials, ledger count, ledger Rials]
    per: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for col, moves in ((0, bank), (2, booked)):
        for tid, way, amount in moves:
            per[(tid, way)][col] += 1
            per[(tid, way)][col + 1] += amount
    wrong = {k: v for k, v in per.items() if v[0:2] != v[2:4]}
    terminals = sorted({tid for tid, _w in per})
    lines = "; ".join(
        f"{tid}: charged {per[(tid, 'in')][1]:,} IRR in {per[(tid, 'in')][0]} payments, "
        f"back to the card {per[(tid, 'back')][1]:,} in {per[(tid, 'back')][0]}"
        for tid in terminals
    )
    return [
        Check(
            "every approved sale is in the ledger exactly once",
            not missing and not extra,
            f"{len(ts)} approved at the tills, {len(hs)} sale records at head office; "
            f"missing {len(missing)}, unexpected {len(extra)}",
        ),
        Check(
            "what each bank terminal charged and paid back is what head office booked",
            not wrong,
            f"{len(terminals)} bank terminals: {lines}"
            + (f"; differ: {sorted(wrong.items())[:3]}" if wrong else ""),
        ),
        Check(
            "every refund is in the ledger exactly once",
            sorted(truth_refunds) == sorted(ho_refunds),
            f"{len(truth_refunds)} refunds at the tills, {len(ho_refunds)} at head office",
        ),
    ]


def member_check(want: dict[str, dict[str, int]], got: dict[str, dict[str, int]]) -> Check:
    """Every member's points and wallet at head office against the sum of their receipts."""
    wrong = [
        m for m, v in want.items() if got.get(m) != {"points": v["points"], "wallet": v["wallet"]}
    ]
    return Check(
        "member balances equal the receipts",
        not wrong,
        f"{len(want)} members; points and wallet of {len(want) - len(wrong)} agree"
        + (f"; differ: {', '.join(wrong[:5])}" if wrong else ""),
    )


@dataclass(frozen=True)
class OutboxState:
    """One terminal's outbox as the agent reports it, beside what head office applied."""

    store: str
    depth: int
    last_seq: int
    applied: int  # head office's applied_through for the device
    unknown: int  # payments whose outcome the agent does not know yet

    @property
    def drained(self) -> bool:
        return self.depth == 0 and self.unknown == 0 and self.applied == self.last_seq

    @property
    def figures(self) -> str:
        text = f"outbox {self.depth}, last seq {self.last_seq}, applied through {self.applied}"
        return text + (f", payments unknown {self.unknown}" if self.unknown else "")

    def __str__(self) -> str:
        return f"{self.store}: {self.figures}"


def outbox_state(ho: HeadOffice, t: StoreTerminal) -> OutboxState:
    """OSError when the agent does not answer."""
    st = t.status()
    applied = ho.count("SELECT applied_through FROM devices WHERE device = ?", (t.device,))
    return OutboxState(
        t.store,
        int(st["outbox"]["depth"]),
        int(st["outbox"]["last_seq"]),
        applied,
        int(st["payments_unknown"]),
    )


def outbox_check(states: list[OutboxState | str], gave_up_after: float | None = None) -> Check:
    """Every outbox drained; a store whose agent did not answer is named with why
    (``states`` holds that text in its place); ``gave_up_after``: the wait timed out."""
    ok = gave_up_after is None and all(isinstance(s, OutboxState) and s.drained for s in states)
    detail = "; ".join(str(s) for s in states)
    if gave_up_after is not None:
        detail = f"head office had not caught up after {gave_up_after:g} s; {detail}"
    return Check("every outbox is empty and acknowledged", ok, detail)


def outage_check(store: str, offline_records: int, state: OutboxState | str) -> Check:
    """The store that lost its link sold offline, and head office has all of it: records
    made offline reached head office and its outbox is drained."""
    ok = offline_records > 0 and isinstance(state, OutboxState) and state.drained
    return Check(
        "the store that lost its link caught up",
        ok,
        f"{store}: {offline_records} records made offline are at head office; "
        + (state.figures if isinstance(state, OutboxState) else state),
    )


def service_check(truth: Truth, planned: int) -> Check:
    """Every planned visit was served, every customer recognised, nothing went wrong."""
    with truth.lock:
        served, sales, declined = truth.served, len(truth.sales), truth.declined
        problems = truth.misidentified + truth.errors
        mis, errors = len(truth.misidentified), len(truth.errors)
    return Check(
        "every customer was recognised and served",
        served == planned and not problems,
        f"{served} of {planned} visits served ({sales} sales, {declined} declined); "
        f"{mis} misidentified, {errors} errors" + (f": {problems[:3]}" if problems else ""),
    )


def verify(
    ho: HeadOffice,
    terms: list[StoreTerminal],
    truth: Truth,
    *,
    planned: int,
    cut: StoreTerminal | None,
    gave_up_after: float | None = None,
) -> tuple[list[Check], dict[str, Any]]:
    """Head office against the ground truth; (the checks, the figures behind them).

    ``planned``: the visits the cashiers were given; ``cut``: the store that lost its link
    (None: there was no outage); ``gave_up_after``: waiting for head office timed out."""
    recs = _sale_records(ho)
    ho_sales = [
        (r["device"], r["seq"], r["amount"], r["trace"]) for r in recs if r["type"] == "sale"
    ]
    truth_sales = [(s["device"], s["seq"], s["amount"], s["trace"]) for s in truth.sales]
    bank = [
        (str(h["terminal_id"]), "in" if h["kind"] == "payment" else "back", int(h["amount"]))
        for t in terms
        for h in t.charged()
    ]
    booked = [
        (str(r["terminal_id"]), "in" if r["type"] == "sale" else "back", int(r["amount"]))
        for r in recs
        if r["terminal_id"] is not None and r["amount"] > 0
    ]
    ho_refunds = [
        (r["device"], r["seq"], r["amount"]) for r in recs if r["type"] in ("refund", "void")
    ]
    t_refunds = [(r["device"], r["seq"], r["refund_amount"]) for r in truth.refunds]
    checks = money_checks(truth_sales, ho_sales, bank, booked, t_refunds, ho_refunds)
    want = truth.members()
    got = {
        m: {"points": int(p), "wallet": int(w)}
        for m, p, w in ho.q("SELECT member, points, wallet FROM members")
    }
    checks.append(member_check(want, got))
    states: dict[str, OutboxState | str] = {}
    for t in terms:
        try:
            states[t.store] = outbox_state(ho, t)
        except OSError as e:
            states[t.store] = f"the agent of {t.store} did not answer ({e})"
    checks.append(outbox_check(list(states.values()), gave_up_after))
    code, text = ho.ledger_check()
    checks.append(
        Check(
            "`cloud_broker ledger check` passes", code == 0, text.splitlines()[-1] if text else ""
        )
    )
    quarantined = ho.count("SELECT COUNT(*) FROM quarantine")
    checks.append(Check("nothing quarantined", quarantined == 0, f"{quarantined} in quarantine"))
    if cut is not None:
        offline = ho.count(
            "SELECT COUNT(*) FROM records WHERE device = ? AND offline != 0", (cut.device,)
        )
        checks.append(outage_check(cut.store, offline, states[cut.store]))
    checks.append(service_check(truth, planned))
    figures = {
        "records": ho.count("SELECT COUNT(*) FROM records"),
        "alerts": [
            {"kind": k, "detail": d} for k, d in ho.q("SELECT kind, detail FROM alerts ORDER BY id")
        ],
        "members_expected": want,
        "members_ledger": got,
    }
    return checks, figures


def members_table(
    out: Out, ho: HeadOffice, ways: dict[str, str], n: int = 6
) -> list[dict[str, Any]]:
    """The top members with the names head office keeps for them (and how they shopped)."""
    rows = ho.q(
        "SELECT member, points, wallet, tier, visits, name FROM members "
        "ORDER BY points DESC, member LIMIT ?",
        (n,),
    )
    tiers = {"regular": "عادی", "bronze": "برنزی", "silver": "نقره‌ای", "gold": "طلایی"}
    head = ("member", "name", "tier", "points", "wallet (IRR)", "visits")
    out.line("  {:<22} {:<20} {:<16} {:>8} {:>14} {:>6}".format(*head))
    shown = []
    for m, pts, wal, tier, visits, name in rows:
        who = receipt.who(m)
        label = f"{name or ''} ({ways[m]})" if m in ways else str(name or "")
        tier_s = f"{tier} / {tiers.get(tier, tier)}"
        out.line(f"  {who:<22} {label:<20} {tier_s:<16} {pts:>8,} {wal:>14,} {visits:>6}")
        shown.append({"member": who, "tier": tier, "points": pts, "wallet": wal, "visits": visits})
    return shown


def stream_line(body: dict[str, Any]) -> str:
    """One reconciled-stream entry, as a person reads it: who (masked), where, what moved."""
    member = body.get("member")
    who = receipt.who(member) if member else "anonymous"
    when = str(body.get("device_time", ""))[:16].replace("T", " ")
    parts = [f"{body['store']}/{body['device']} #{body['seq']}", when, who]
    a = body.get("amounts") or {}
    p = body.get("points") or {}
    if body["type"] == "sale":
        parts.append(f"paid {a.get('payable', 0):,} IRR")
        parts.append(f"points +{p.get('plus', 0):,} -{p.get('minus', 0):,}")
    elif body["type"] in ("refund", "void"):
        parts.append(f"refunded {a.get('refunded', 0):,} IRR")
        parts.append(f"points -{p.get('reversed', 0):,} +{p.get('returned', 0):,}")
        o = body.get("orig") or {}
        parts.append(f"of {o.get('device')} #{o.get('seq')}")
    b = body.get("balances")
    if b:
        parts.append(f"balance {b['points']:,} points, {b['wallet']:,} IRR")
    return "  ".join(x for x in parts if x)
