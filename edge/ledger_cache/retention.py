"""Retention on the terminal: what is old and settled leaves the database.

The outbox deletes a record once head office's application ack covers it; the checkout's
own tables would otherwise grow for ever (a busy till writes a sale and a payment a
minute).  :func:`prune` deletes, in small batches so that a checkout never waits long
behind it:

* **sales** kept for refunds, once they are older than the refund window *and* head office
  has acknowledged their record, unless a refund of them is still moving money;
* **payments** in a final state (committed, declined, cancelled) last touched before the
  window, whose record (if any) head office has acknowledged.  Payments a failure left
  open are never pruned, nor any payment after the oldest open one (the bank terminal's
  "last transaction" is read against them when it is recovered), nor the newest payment.

An idempotency key is remembered as long as its payment: a POS that retries a request
after the refund window is treated as a new request.  A refund of a pruned sale is
refused with ``unknown_sale`` and says why (edge.refunds); head office still holds the
sale for its own refunds, audits and tax invoices.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from edge.ledger_cache import db

DAY_MS = 86_400_000
OPEN = "('intent', 'charging', 'unknown', 'approved')"
FINAL = "('committed', 'declined', 'cancelled')"


@dataclass(frozen=True, slots=True)
class Pruned:
    sales: int = 0
    payments: int = 0

    @property
    def rows(self) -> int:
        return self.sales + self.payments


def prune(conn: sqlite3.Connection, now_ms: int, keep_days: int, batch: int = 2000) -> Pruned:
    """One batch of at most ``batch`` sales and ``batch`` payments; call again while it
    deleted something (:meth:`Pruned.rows`).  Runs in its own transaction."""
    cutoff = now_ms - keep_days * DAY_MS
    with db.transaction(conn):
        applied = int(conn.execute("SELECT applied_through FROM device").fetchone()[0])
        sales = conn.execute(
            "DELETE FROM sales WHERE seq IN (SELECT seq FROM sales WHERE seq <= ? AND "
            "created_ms < ? AND seq NOT IN (SELECT orig_seq FROM payments WHERE orig_seq "
            f"IS NOT NULL AND state IN {OPEN}) ORDER BY seq LIMIT ?)",
            (applied, cutoff, batch),
        ).rowcount
        payments = conn.execute(
            "DELETE FROM payments WHERE id IN (SELECT id FROM payments WHERE "
            f"state IN {FINAL} AND updated_ms < ? AND (seq IS NULL OR seq <= ?) AND "
            f"id < (SELECT COALESCE(MIN(id), 9223372036854775807) FROM payments WHERE state "
            f"IN {OPEN}) AND id < (SELECT MAX(id) FROM payments) ORDER BY id LIMIT ?)",
            (cutoff, applied, batch),
        ).rowcount
    return Pruned(sales, payments)


def prune_all(conn: sqlite3.Connection, now_ms: int, keep_days: int) -> Pruned:
    """Every batch at once (tests, the command line); the agent calls :func:`prune` one
    batch at a time between checkouts."""
    sales = payments = 0
    while True:
        p = prune(conn, now_ms, keep_days)
        sales += p.sales
        payments += p.payments
        if not p.rows:
            return Pruned(sales, payments)
