"""The durable queue of tax invoices (``tax_invoices``), one row per reconciled sale, refund
or void of a store that has a taxpayer set up, and its sender.

States::

    queued ──send──> sending ──accepted──> sent ──inquiry──> accepted   (final)
      ^                 │                                 └──> failed     (the system's errors)
      │                 └─timeout: inquire by uid: found -> sent; not found -> queued
      └── resend (after the mapping or the data is fixed) ── blocked | failed | rejected

* A row gets its serial and its tax id when it is queued, in the transaction that reads the
  journal: the tax id never changes afterwards, and it is the idempotency key: a resend
  sends the same tax id with a new request uid, never a second invoice for the same sale.
* The uid is stored before the packet leaves; after a timeout the row stays ``sending`` and
  the next pass asks the system by that uid whether it arrived (it may have) before sending
  again.  It counts as lost only ``LOST_AFTER_MS`` after the sender stopped waiting for the
  answer (``sent_at`` is moved to then), not after the pass began: the request may have
  left long after that, and the system may take it any time after the client gave up.
  Before the request leaves, ``sent_at`` holds the latest the sender can stop waiting (now
  plus the client's ``send_budget_s``), so a sender killed while it waits gives the
  system the same grace.
* Transient errors (timeouts, 5xx, 429, an unreadable answer) retry after 30 s doubling to
  an hour; a refusal of the whole request (4xx) makes its rows ``rejected`` with the
  system's errors; ``blocked`` is ours (an unmapped product, a return of a sale that was
  never invoiced): the console shows why and resends once fixed.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.invoicing import build, mapping
from cloud_broker.ledger import audit
from cloud_broker.ledger.daily import local_day
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.tax.client import MoadianClient, new_request_uid
from cloud_broker.tax.errors import TaxError, TaxRejectedError, TaxValidationError
from cloud_broker.tax.invoice import Invoice, Seller
from cloud_broker.tax.responses import InquiryStatus
from cloud_broker.tax.taxid import tax_id_for_sale
from edge.core import record as R
from edge.protocol.record import parse

log = logging.getLogger("cloud_broker.invoicing")
BATCH = 100  # invoices per request (the system takes up to 1000)
FIRST_RETRY_MS = 30_000
MAX_RETRY_MS = 3_600_000
LOOK_BACK = 8192  # journal ids: 32 reconcilers' pools of 256 (cloud_broker.ledger.db)
LOST_AFTER_MS = 120_000  # a "sending" row the system does not know after this is resent
STATES = ("queued", "sending", "sent", "accepted", "failed", "rejected", "blocked")


def _now() -> int:
    return int(time.time() * 1000)


def _backoff(attempts: int) -> int:
    base = min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** max(0, attempts - 1))
    return int(base * (0.8 + 0.4 * random.random()))  # noqa: S311 - jitter, not a secret


def scan(db: Database, limit: int = 1000) -> int:
    """Queue an invoice for every sale, refund and void applied since each store's mark;
    how many were queued."""

    def run(tx: Tx) -> int:
        stores = {  # the query below takes only these stores' sales after their set-up
            str(r[0]): (str(r[1]), int(r[2]))
            for r in tx.all(
                "SELECT store, memory_id, next_serial FROM tax_stores WHERE enabled = 1"
            )
        }
        if not stores:
            return 0
        mark = tx.one("SELECT value FROM tax_marks WHERE name = 'journal'")
        last = int(mark[0]) if mark else 0
        # Journal ids are not committed in order: on PostgreSQL each transaction takes a
        # pool of ids, so with several reconcilers a sale may commit after the mark went
        # past its id.  The scan looks back LOOK_BACK ids for sales not yet queued.
        rows = tx.all(
            "SELECT j.id, r.device, r.seq, r.store, r.type, r.raw FROM journals j JOIN records "
            "r ON r.journal_id = j.id WHERE j.id > ? AND j.kind IN ('sale', 'refund', 'void') "
            "AND j.id > (SELECT s.since_journal FROM tax_stores s WHERE s.store = r.store AND "
            "s.enabled = 1) AND NOT EXISTS (SELECT 1 FROM tax_invoices t WHERE "
            "t.device = r.device AND t.seq = r.seq) ORDER BY j.id LIMIT ?",
            (last - LOOK_BACK, limit),
        )
        queued = 0
        for _jid, device, seq, store, kind, raw in rows:
            found = stores.get(str(store))
            if found is None:  # set up between the two reads: the next pass takes it
                continue
            memory_id, serial = found
            p = parse(bytes(raw)).payload
            t = p[R.K_TIME]
            tax_id = tax_id_for_sale(memory_id, serial, int(t[R.T_WALL]), int(t[R.T_OFFSET]))
            original, state, errors = None, "queued", None
            if kind != "sale":
                o = p[R.K_ORIG]
                row = tx.one(
                    "SELECT tax_id FROM tax_invoices WHERE device = ? AND seq = ?",
                    (o[R.O_DEVICE], o[R.O_SEQ]),
                )
                if row is None:
                    state = "blocked"
                    errors = json.dumps(
                        [
                            {
                                "code": "no_original",
                                "en": "the sale it returns "
                                "was never invoiced (before the store was set up)",
                                "fa": "فاکتور فروش اصلی به سامانه فرستاده نشده است",
                            }
                        ],
                        ensure_ascii=False,
                    )
                else:
                    original = str(row[0])
            amount = int(p[R.K_AMOUNTS][R.A_PAID])
            got = tx.execute(
                "INSERT INTO tax_invoices (store, device, seq, kind, serial, tax_id, "
                "original_tax_id, day, amount, state, next_at, errors, created_at) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, seq) DO NOTHING",
                (
                    store,
                    device,
                    seq,
                    "sale" if kind == "sale" else "return",
                    serial,
                    tax_id,
                    original,
                    local_day(p),
                    amount,
                    state,
                    _now(),
                    errors,
                    _now(),
                ),
            ).rowcount
            if got:
                stores[str(store)] = (memory_id, serial + 1)
                tx.execute(
                    "UPDATE tax_stores SET next_serial = ? WHERE store = ?", (serial + 1, store)
                )
                queued += 1
        if rows and int(rows[-1][0]) > last:
            tx.execute(
                "INSERT INTO tax_marks (name, value) VALUES ('journal', ?) ON "
                "CONFLICT (name) DO UPDATE SET value = excluded.value",
                (int(rows[-1][0]),),
            )
        return queued

    return db.run(run)


def _errors(items: list[tuple[str, str, str]]) -> str:
    return json.dumps([{"code": c, "en": en, "fa": fa} for c, en, fa in items], ensure_ascii=False)


def _set(db: Database, ids: list[int], **cols: Any) -> None:
    if not ids:
        return
    sets = ", ".join(f"{k} = ?" for k in cols)
    db.run(
        lambda tx: tx.executemany(
            f"UPDATE tax_invoices SET {sets} WHERE id = ?", [(*cols.values(), i) for i in ids]
        )
    )


def _build(
    db: Database, store: dict[str, Any], rows: list[Any]
) -> tuple[list[tuple[int, Invoice]], list[int]]:
    """Invoices for ``rows``; the rows that cannot be built are blocked with the reason."""
    seller = Seller(store["memory_id"], store["economic_code"])
    table = db.run(mapping.products, write=False)
    out, short = [], []
    for rid, device, seq, serial, original in rows:
        raw = db.read("SELECT raw FROM records WHERE device = ? AND seq = ?", (device, seq))
        if not raw:  # its month is archived (cloud_broker archive): nothing to build from
            _set(db, [int(rid)], state="blocked", errors=_errors([(
                "archived",
                "its sale record is in a month's archive file, no longer in the ledger",
                "رکورد فروش آن در پروندهٔ بایگانی یک ماه است، نه در دفتر کل",
            )]))  # fmt: skip
            continue
        try:
            p = parse(bytes(raw[0][0])).payload
            _, missing = build.lines(p, table)
            inv = build.invoice(seller, int(serial), p, table, original)
        except TaxValidationError as e:
            _set(db, [int(rid)], state="blocked", errors=_errors([(e.field, e.en, e.fa)]))
            continue
        if missing:
            short.append(int(rid))
        out.append((int(rid), inv))
    return out, short


def send_due(db: Database, clients: Callable[[str], MoadianClient], now: int | None = None) -> int:
    """Send each store's due invoices, a batch a request; how many were sent.

    ``now`` is the pass's time in ms (the wall clock when None); the time spent in the
    pass is added to it when the rows of an unanswered request are stamped."""
    t = _now() if now is None else now
    began = time.monotonic()
    sent = 0
    for store in mapping.stores(db):
        if not store["enabled"]:
            continue
        rows = db.read(
            "SELECT id, device, seq, serial, original_tax_id FROM tax_invoices WHERE store = ? "
            "AND state = 'queued' AND next_at <= ? ORDER BY serial LIMIT ?",
            (store["store"], t, BATCH),
        )
        if not rows:
            continue
        built, short = _build(db, store, rows)
        if not built:
            continue
        client = clients(store["store"])
        uids = {rid: new_request_uid() for rid, _ in built}
        # Stored before the packet leaves, with the latest moment the sender can stop
        # waiting for it: if the process dies while it waits, ``inquire`` still gives the
        # system its grace from then, not from before the request left.
        leaves = t + int((time.monotonic() - began) * 1000)
        stop_waiting = leaves + int(client.send_budget_s * 1000)
        for rid, uid in uids.items():
            _set(db, [rid], state="sending", uid=uid, sent_at=stop_waiting)
        _set(
            db,
            short,
            errors=_errors(
                [
                    (
                        "short",
                        "one Rial below the ledger: VAT truncation",
                        "یک ریال کمتر از دفتر: گردکردن مالیات",
                    )
                ]
            ),
        )
        try:
            results = client.send([inv for _, inv in built], [uids[rid] for rid, _ in built])
        except TaxRejectedError as e:
            errs = [(m.code, m.message, m.message) for m in e.errors] or [("rejected", e.en, e.fa)]
            done = {r.uid for r in e.accepted}
            _set(
                db,
                [rid for rid in uids if uids[rid] not in done],
                state="rejected",
                errors=_errors(errs),
                final_at=t,
            )
            _accepted(db, [(r.uid, r.reference_number) for r in e.accepted], t)
            continue
        except TaxError as e:  # transient: a timeout may have delivered them: ask first
            log.warning("tax: %s invoices of %s not confirmed: %s", len(built), store["store"], e)
            # The grace before a resend counts from when we stopped waiting, not from ``t``:
            # this request may have left long after it (earlier stores, the token, the
            # server's key) and its timeout may have fired late (a loaded machine).  From
            # ``t``, ``inquire`` could find a packet still on its way "lost" and send its
            # invoice a second time.
            gave_up = t + int((time.monotonic() - began) * 1000)
            _set(db, list(uids), sent_at=gave_up)
            _accepted(db, [(r.uid, r.reference_number) for r in e.accepted], t)
            continue
        _accepted(db, [(r.uid, r.reference_number) for r in results], t)
        sent += len(results)
    return sent


def _accepted(db: Database, pairs: list[tuple[str, str]], t: int) -> None:
    if pairs:
        db.run(
            lambda tx: tx.executemany(
                "UPDATE tax_invoices SET state = 'sent', reference = ?, next_at = ? WHERE uid = ?",
                [(ref, t, uid) for uid, ref in pairs],
            )
        )


def inquire(db: Database, clients: Callable[[str], MoadianClient], now: int | None = None) -> int:
    """Ask the system about every sent (or unconfirmed) invoice; how many became final."""
    t = _now() if now is None else now
    final = 0
    for store in mapping.stores(db):
        rows = db.read(
            "SELECT id, uid, state, sent_at, attempts FROM tax_invoices WHERE store = ? AND "
            "state IN ('sent', 'sending') AND next_at <= ? ORDER BY id LIMIT 100",
            (store["store"], t),
        )
        if not rows:
            continue
        try:
            found = {
                r.uid: r for r in clients(store["store"]).inquire_by_uid([str(r[1]) for r in rows])
            }
        except TaxError as e:
            log.warning("tax: inquiry for %s failed: %s", store["store"], e)
            continue
        for rid, uid, state, sent_at, attempts in rows:
            res = found.get(str(uid))
            status = res.status if res is not None else InquiryStatus.NOT_FOUND
            if status == InquiryStatus.SUCCESS:
                _set(db, [rid], state="accepted", final_at=t)
                final += 1
            elif status == InquiryStatus.FAILED:
                errs = [(m.code, m.message, m.message) for m in res.errors] if res else []
                _set(db, [rid], state="failed", errors=_errors(errs), final_at=t)
                final += 1
            elif status == InquiryStatus.NOT_FOUND and state == "sending":
                if t - int(sent_at or 0) > LOST_AFTER_MS:  # never arrived: send it again
                    _set(
                        db,
                        [rid],
                        state="queued",
                        uid=None,
                        attempts=int(attempts) + 1,
                        next_at=t + _backoff(int(attempts) + 1),
                    )
            elif res is not None and state == "sending":  # it arrived after all
                _set(
                    db,
                    [rid],
                    state="sent",
                    reference=res.reference_number,
                    next_at=t,
                    attempts=int(attempts) + 1,
                )
            else:
                _set(db, [rid], next_at=t + _backoff(int(attempts) + 1), attempts=int(attempts) + 1)
    return final


def resend(db: Database, actor: Operator, invoice_id: int) -> None:
    """Queue a blocked, failed or rejected invoice again (same tax id, a new uid)."""
    actor.require("tax")

    def run(tx: Tx) -> None:
        done = tx.execute(
            "UPDATE tax_invoices SET state = 'queued', uid = NULL, errors = NULL, next_at = ?, "
            "final_at = NULL WHERE id = ? AND state IN ('blocked', 'failed', 'rejected')",
            (_now(), invoice_id),
        ).rowcount
        if done != 1:
            raise ClubError(
                "not_resendable",
                "only a blocked, failed or rejected invoice is sent again",
                "فقط صورتحساب ردشده یا معطل دوباره فرستاده می‌شود.",
            )
        audit.record(tx, actor.username, "tax.resend", f"tax_invoice:{invoice_id}", {})

    db.run(run)


def counts(db: Database, first_day: int, last_day: int) -> list[dict[str, Any]]:
    """Invoices per store, day and state."""
    rows = db.read(
        "SELECT store, day, state, COUNT(*), COALESCE(SUM(amount), 0) FROM tax_invoices WHERE "
        "day >= ? AND day <= ? GROUP BY store, day, state ORDER BY store, day DESC",
        (first_day, last_day),
    )
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for store, day, state, n, amount in rows:
        row = out.setdefault(
            (str(store), int(day)),
            {"store": str(store), "day": int(day), "amount": 0, **dict.fromkeys(STATES, 0)},
        )
        row[str(state)] = int(n)
        row["amount"] += int(amount)
    return list(out.values())


def problems(db: Database, limit: int = 200) -> list[dict[str, Any]]:
    """Blocked, failed and rejected invoices with their errors, for the console."""
    keys = (
        "id",
        "store",
        "device",
        "seq",
        "kind",
        "tax_id",
        "day",
        "amount",
        "state",
        "errors",
        "attempts",
    )
    rows = db.read(
        f"SELECT {', '.join(keys)} FROM tax_invoices WHERE state IN ('blocked', "
        "'failed', 'rejected') ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    out = []
    for r in rows:
        d = dict(zip(keys, r, strict=True))
        d["errors"] = json.loads(d["errors"]) if d["errors"] else []
        out.append(d)
    return out
