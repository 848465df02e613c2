"""The checkout's durable state on the terminal: payment intents and the sales kept for
refunds.  This module owns the SQL of the ``payments`` and ``sales`` tables (as
:class:`~edge.ledger_cache.outbox.Outbox` owns the outbox); edge.checkout is the state
machine that moves them.

A **payment** is one attempt to move money through the bank terminal: a charge for a sale
(``kind`` ``sale``), money back to the card (``refund``, ``void``), or a card payment taken
without the club (``plain``).  Its ``state``::

    intent -> charging -> committed                      the record (if any) is written
                       -> declined                       no money moved
                       -> approved -> committed          money moved; the record's commit
                                                         failed and is retried
                       -> unknown  -> committed | declined   asked again until settled
    intent -> cancelled                                  the bank was never asked

``idem`` is the POS's idempotency key, scoped by what it is for (``pay:`` or
``refund:``): at most one payment per key is in any state but declined or cancelled (a
unique index), so a repeated request finds the first one and its stored ``result``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge.ledger_cache import db

OPEN_STATES = ("intent", "charging", "unknown", "approved")
# the bank reference fields that, all present and equal, identify one transaction
IDENTITY = ("terminal_id", "trace", "receipt", "amount", "date", "time")


@dataclass(frozen=True, slots=True)
class Payment:
    id: int
    kind: str
    session: str
    basket: str | None
    member: str | None
    amount: int
    state: str
    quote: str
    ident: str | None
    bank: dict[str, Any] | None
    seq: int | None
    idem: str | None
    result: dict[str, Any] | None
    orig_seq: int | None
    request: dict[str, Any] | None
    created_ms: int


@dataclass(frozen=True, slots=True)
class Sale:
    seq: int
    hash: bytes
    basket: str | None
    member: str | None
    quote: dict[str, Any]
    refunded: list[dict[str, int]]
    bank: dict[str, Any] | None
    created_ms: int


_COLUMNS = (
    "id, kind, session, basket, member, amount, state, quote, ident, bank, seq, idem, "
    "result, orig_seq, request, created_ms"
)


def _json(v: Any) -> Any:
    return json.loads(v) if v else None


def _payment(r: Any) -> Payment:
    return Payment(
        int(r[0]),
        r[1],
        r[2],
        r[3],
        r[4],
        int(r[5]),
        r[6],
        r[7],
        r[8],
        _json(r[9]),
        r[10],
        r[11],
        _json(r[12]),
        r[13],
        _json(r[14]),
        int(r[15]),
    )


def _now() -> int:
    return int(time.time() * 1000)


def same_transaction(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Both references name the same bank transaction: every identifying field is present
    in both and equal.  A terminal that was reset or replaced starts its trace and receipt
    numbers again, so (terminal id, trace) alone is not enough."""
    return all(a.get(k) not in (None, "") and a.get(k) == b.get(k) for k in IDENTITY)


class Payments:
    """On the writer's connection (the agent thread)."""

    def __init__(self, conn: sqlite3.Connection, now_ms: Callable[[], int] | None = None) -> None:
        self.conn = conn
        self._now = now_ms or _now  # the terminal's clock (edge.clock), in milliseconds

    # -- payments ----------------------------------------------------------------------

    def intent(
        self,
        kind: str,
        session: str,
        amount: int,
        quote: str,
        *,
        basket: str | None = None,
        member: str | None = None,
        ident: str | None = None,
        idem: str | None = None,
        orig_seq: int | None = None,
        request: dict[str, Any] | None = None,
    ) -> int:
        """Record that money is about to move; DiskFullError if it cannot be written,
        sqlite3.IntegrityError if ``idem`` is already taken by a live payment."""
        now = self._now()
        cur = db.write(
            self.conn,
            "INSERT INTO payments (kind, session, basket, member, amount, state, quote, ident, "
            "idem, orig_seq, request, created_ms, updated_ms) "
            "VALUES (?, ?, ?, ?, ?, 'intent', ?, ?, ?, ?, ?, ?, ?)",
            (
                kind,
                session,
                basket,
                member,
                amount,
                quote,
                ident,
                idem,
                orig_seq,
                json.dumps(request) if request is not None else None,
                now,
                now,
            ),
        )
        return int(cur.lastrowid or 0)

    def set_state(
        self,
        pid: int,
        state: str,
        bank: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        conn: sqlite3.Connection | None = None,
    ) -> None:
        """Move payment ``pid`` to ``state``; with ``conn`` inside the caller's
        transaction (the commit of its record)."""
        sql = (
            "UPDATE payments SET state = ?, bank = COALESCE(?, bank), "
            "result = COALESCE(?, result), updated_ms = ? WHERE id = ?"
        )
        params = (
            state,
            json.dumps(bank) if bank is not None else None,
            json.dumps(result, ensure_ascii=False) if result is not None else None,
            self._now(),
            pid,
        )
        if conn is not None:
            conn.execute(sql, params)
        else:
            db.write(self.conn, sql, params)

    def committed(
        self,
        conn: sqlite3.Connection,
        pid: int,
        seq: int | None,
        bank: dict[str, Any] | None,
        result: dict[str, Any],
    ) -> None:
        conn.execute(
            "UPDATE payments SET state = 'committed', seq = ?, bank = COALESCE(?, bank), "
            "result = ?, updated_ms = ? WHERE id = ?",
            (
                seq,
                json.dumps(bank) if bank is not None else None,
                json.dumps(result, ensure_ascii=False),
                self._now(),
                pid,
            ),
        )

    def get(self, pid: int) -> Payment | None:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM payments WHERE id = ?", (pid,)).fetchone()
        return _payment(row) if row else None

    def by_key(self, idem: str) -> Payment | None:
        """The live (not declined or cancelled) payment that holds ``idem``."""
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM payments WHERE idem = ? AND "
            "state NOT IN ('declined', 'cancelled') ORDER BY id DESC LIMIT 1",
            (idem,),
        ).fetchone()
        return _payment(row) if row else None

    def open(self) -> list[Payment]:
        """Payments a failure left unfinished, oldest first."""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM payments WHERE state IN "
            "('intent', 'charging', 'unknown', 'approved') ORDER BY id"
        ).fetchall()
        return [_payment(r) for r in rows]

    def unsettled(self) -> list[int]:
        """Payments that moved or may have moved money and are not recorded yet (a
        ``charging`` one outside a payment in progress is one a failure left there: the
        agent thread runs payments and this query one at a time)."""
        rows = self.conn.execute(
            "SELECT id FROM payments WHERE state IN ('charging', 'unknown', 'approved')"
        ).fetchall()
        return [int(r[0]) for r in rows]

    def later_payment(self, pid: int) -> bool:
        """A later payment reached the bank terminal (its "last transaction" is then that
        one, not ``pid``'s)."""
        row = self.conn.execute(
            "SELECT 1 FROM payments WHERE id > ? AND amount > 0 AND "
            "state NOT IN ('intent', 'cancelled') LIMIT 1",
            (pid,),
        ).fetchone()
        return row is not None

    def booked(self, ref: dict[str, Any], but: int) -> str | None:
        """How a payment other than ``but`` committed with this bank transaction matches
        ``ref``: ``"same"`` (every identifying field present and equal), ``"similar"``
        (terminal id, trace, receipt and amount equal but a date or time missing, so it
        cannot be told apart) or None."""
        rows = self.conn.execute(
            "SELECT bank FROM payments WHERE state = 'committed' AND id != ? AND "
            "json_extract(bank, '$.terminal_id') = ? AND json_extract(bank, '$.trace') = ?",
            (but, ref.get("terminal_id"), ref.get("trace")),
        ).fetchall()
        found: str | None = None
        for (raw,) in rows:
            other = json.loads(raw) if raw else {}
            if same_transaction(other, ref):
                return "same"
            core = IDENTITY[:4]
            if all(other.get(k) == ref.get(k) for k in core) and not (
                ref.get("date") and ref.get("time") and other.get("date") and other.get("time")
            ):
                found = "similar"
        return found

    # -- sales kept for refunds ---------------------------------------------------------

    def add_sale(
        self,
        conn: sqlite3.Connection,
        seq: int,
        hash_: bytes,
        basket: str | None,
        member: str | None,
        quote: str,
        bank: dict[str, Any] | None,
        created_ms: int,
    ) -> None:
        conn.execute(
            "INSERT INTO sales (seq, hash, basket, member, quote, bank, created_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, hash_, basket, member, quote, json.dumps(bank) if bank else None, created_ms),
        )

    def sale(self, seq: int) -> Sale | None:
        row = self.conn.execute(
            "SELECT seq, hash, basket, member, quote, refunded, bank, created_ms FROM sales "
            "WHERE seq = ?",
            (seq,),
        ).fetchone()
        if row is None:
            return None
        return Sale(
            int(row[0]),
            bytes(row[1]),
            row[2],
            row[3],
            json.loads(row[4]),
            json.loads(row[5]),
            _json(row[6]),
            int(row[7]),
        )

    def set_refunded(self, conn: sqlite3.Connection, seq: int, done: list[dict[str, int]]) -> None:
        conn.execute("UPDATE sales SET refunded = ? WHERE seq = ?", (json.dumps(done), seq))

    def refunds_open(self, seq: int) -> bool:
        """A refund of sale ``seq`` is under way (its money may be moving)."""
        row = self.conn.execute(
            "SELECT 1 FROM payments WHERE orig_seq = ? AND kind IN ('refund', 'void') AND "
            "state IN ('intent', 'charging', 'unknown', 'approved') LIMIT 1",
            (seq,),
        ).fetchone()
        return row is not None
