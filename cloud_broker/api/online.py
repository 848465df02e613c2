"""Online sales and refunds: the chain's e-shop records a sale through the API as a till
would, as a signed record of a registered "online store" device, hash-chained in its own
outbox (the terminal's own code, edge.ledger_cache), and applied by the reconciler's own
code in the API process, so it reconciles, is checked and streams exactly like a till's.

The device's key and outbox live in head office's data folder (``--online-dir``: the key
file mode 0600).  A record committed but not yet applied (the process died between the
two) is applied at the next start; the reconciler's exactly-once keeps a record applied
twice from counting twice.  One process serves one online device (its chain is written in
order under a lock)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from cloud_broker.club.errors import ClubError
from cloud_broker.ledger.books import queue_snapshots
from cloud_broker.ledger.db import Database
from cloud_broker.programme.preview import member_input, now_iso
from cloud_broker.reconcile.reconciler import Incoming, Reconciler
from cloud_broker.registry import devices as registry
from edge.clock import Clock
from edge.core import engine
from edge.core import record as R
from edge.core.errors import CoreError
from edge.core.refund import refund as refund_quote
from edge.core.refund import settle_member
from edge.core.ruleset import RuleSet
from edge.ledger_cache.outbox import Identity, Outbox, OutboxView
from edge.protocol import keys, topics
from edge.protocol.record import Record, Sealer, parse, record_hash

OFFSET_MIN = 210
T = TypeVar("T")


def setup(db: Database, folder: Path, tenant: str, store: str, device: str) -> None:
    """Make the online device's key (mode 0600) and register it (technician's step, once)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{device}.key"
    key = keys.load_private(path) if path.exists() else keys.generate(path)
    registry.register(db, device, tenant, store, keys.public_raw(key), by="api online-store")
    (folder / f"{device}.json").write_text(json.dumps({"tenant": tenant, "store": store,
                                                       "device": device}))  # fmt: skip


class OnlineStore:
    """The online store's device in this process.  Its outbox is the terminal's (a SQLite
    connection bound to one thread), so everything runs on one worker thread of its own,
    which also writes the device's chain in order."""

    def __init__(self, db: Database, rules: Any, folder: Path, device: str) -> None:
        meta = json.loads((folder / f"{device}.json").read_text("utf-8"))
        self.db, self.rules = db, rules
        self.identity = Identity(meta["tenant"], meta["store"], device)
        self.topic = topics.records(meta["tenant"], meta["store"], device)
        self._worker = ThreadPoolExecutor(1, "online-store")
        self._on(self._open, folder, device)
        self.catch_up()

    def _on(self, fn: Callable[..., T], *args: Any) -> T:
        return self._worker.submit(fn, *args).result()

    def _open(self, folder: Path, device: str) -> None:
        key = keys.load_private(folder / f"{device}.key")
        self.outbox = Outbox(folder / f"{device}.db", self.identity, Sealer(key, device),
                             Clock(OFFSET_MIN))  # fmt: skip
        self.view = OutboxView(folder / f"{device}.db")
        self.reconciler = Reconciler(self.db, self.rules.latest)

    def rs(self) -> RuleSet:
        self.rules.reload()
        latest: RuleSet = self.rules.latest
        return latest

    def catch_up(self) -> int:
        """Apply what the outbox holds beyond what head office applied (after a crash)."""
        return self._on(self._catch_up)

    def _catch_up(self) -> int:
        applied = int(self.db.read("SELECT applied_through FROM devices WHERE device = ?",
                                   (self.identity.device,))[0][0])  # fmt: skip
        pending = self.view.pending(applied, 1000)
        if pending:
            self._apply([raw for _, raw in pending])
        return len(pending)

    def _apply(self, raws: list[bytes]) -> None:
        out = self.reconciler.process([Incoming(self.topic, raw) for raw in raws])
        ack = out.acks.get(self.identity.device)
        if ack is not None:
            self.view.ack(ack[0], ack[1], int(time.time() * 1000))
        if out.members:
            self.db.run(lambda tx: queue_snapshots(tx, out.members, 0))

    def quote(self, basket: dict[str, Any], member: str | None) -> dict[str, Any]:
        """What the engine would give ``member`` for ``basket`` now, with head office's view
        of the member (the same engine and rules as the tills)."""
        rs = self.rs()
        m = None
        if member:
            today = _today()
            m = self.db.run(lambda tx: member_input(tx, member, today, rs.window_days),
                            write=False)  # fmt: skip
            if m is None:
                raise ClubError("unknown_member", "no such member", "چنین عضوی در باشگاه نیست.")
        try:
            q: dict[str, Any] = engine.quote(rs, basket, m, now_iso())
        except CoreError as e:
            raise ClubError("bad_basket", str(e), e.fa or str(e)) from e
        return q

    def sale(self, basket: dict[str, Any], member: str | None, paid_ref: str) -> dict[str, Any]:
        """Record an online sale the shop has been paid for; what it booked."""
        return self._on(self._sale, basket, member, paid_ref)

    def _sale(self, basket: dict[str, Any], member: str | None, paid_ref: str) -> dict[str, Any]:
        q = self.quote(basket, member)
        who = R.member_field("phone", member) if member else None
        body = R.sale_body(q)
        rec = self.outbox.commit(
            "sale", body, member=who, charged=True,
            bank={R.B_TERMINAL: "online", R.B_TRACE: paid_ref[:40], R.B_AMOUNT: q["payable"]},
        )  # fmt: skip
        self.db.run(lambda tx: tx.execute(
            "INSERT INTO online_sales (device, seq, quote) VALUES (?, ?, ?)",
            (rec.device, rec.seq, json.dumps(q))))  # fmt: skip
        self._apply([rec.raw])
        return _answer(rec, q)

    def refund(self, seq: int, request: dict[str, Any]) -> dict[str, Any]:
        """Refund (part of) online sale ``seq``: the engine's refund quote, settled against
        what the member holds now."""
        return self._on(self._refund, seq, request)

    def _refund(self, seq: int, request: dict[str, Any]) -> dict[str, Any]:
        row = self.db.read("SELECT quote, refunded FROM online_sales WHERE device = ? AND "
                           "seq = ?", (self.identity.device, seq))  # fmt: skip
        if not row:
            raise ClubError("no_sale", "no such online sale", "چنین فروش اینترنتی نیست.")
        sale_q, prior = json.loads(row[0][0]), json.loads(row[0][1])
        try:
            r = refund_quote(sale_q, request, prior or None)
        except CoreError as e:
            raise ClubError("bad_refund", str(e), e.fa or str(e)) from e
        raw = bytes(self.db.read("SELECT raw FROM records WHERE device = ? AND seq = ?",
                                 (self.identity.device, seq))[0][0])  # fmt: skip
        sale_rec = parse(raw)
        member = sale_rec.payload.get(R.K_MEMBER)
        phone = member[R.M_REF] if member else None
        points = wallet = 0
        if phone:
            bal = self.db.read("SELECT points, wallet FROM members WHERE member = ?",
                               (phone,))  # fmt: skip
            points, wallet = (int(bal[0][0]), int(bal[0][1])) if bal else (0, 0)
            settle_member(r, points, wallet, self.rs().policy)
        else:
            settle_member(r, 0, 0, {"refund_clawback": "overdraft"})
        body = R.refund_body(r, self.identity.device, seq, record_hash(raw))
        rec = self.outbox.commit("refund", body, member=member, charged=True)
        done = prior + [{"line": ln["line"], "qty": ln["qty"]} for ln in r["lines"]]
        self.db.run(lambda tx: tx.execute(
            "UPDATE online_sales SET refunded = ? WHERE device = ? AND seq = ?",
            (json.dumps(done), self.identity.device, seq)))  # fmt: skip
        self._apply([rec.raw])
        return {"device": rec.device, "seq": rec.seq, "refund_amount": r["refund_amount"],
                "points_reversed": r["points_reversed"], "withheld": r["withheld"]}  # fmt: skip

    def close(self) -> None:
        def shut() -> None:
            self.view.close()
            self.outbox.close()

        self._on(shut)
        self._worker.shutdown()


def _today() -> int:
    return int((time.time() + OFFSET_MIN * 60) // 86400)


def _answer(rec: Record, q: dict[str, Any]) -> dict[str, Any]:
    return {"device": rec.device, "seq": rec.seq, "subtotal": q["subtotal"],
            "discount": q["discount"], "payable": q["payable"],
            "points_earned": q["points_earned"], "wallet_earned": q["wallet_earned"],
            "applied": [{"rule": a["rule"], "kind": a["kind"]} for a in q["applied"]]}  # fmt: skip
