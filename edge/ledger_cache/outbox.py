"""The outbox: every record the terminal signs, kept on disk until head office applies it.

:meth:`Outbox.commit` is the terminal's one durable step.  In a single SQLite
transaction (``BEGIN IMMEDIATE`` ... ``COMMIT`` with ``synchronous=FULL``) it allocates
the next gapless ``seq``, builds the payload with the previous record's hash, signs it,
stores it, advances the device counters and records the member's balance delta.  It
returns only after the commit; nothing is acknowledged to anyone before that.

Rows leave the outbox only when head office's application ack (``applied_through``)
covers them (:class:`OutboxView`, used by the uplink thread on its own connection).
The outbox never overwrites: it grows until the disk limit, raising alarms at the
configured fill levels, and refuses *new* sales at the hard limit (``check_capacity``,
called before the card is charged).  Two different things can stop a sale, and they are
told apart everywhere: the **outbox is full** (its own limit, ``max_bytes``: head office
has not acknowledged for a long time) and the **disk is full** (less than
``min_free_disk`` free on the file system, whatever filled it).  A sale whose card was
already charged is never refused by these limits, and if the disk fills while the bank
terminal is approving it, the preallocated reserve (edge.ledger_cache.reserve) is
released so that its record can still be written.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.clock import Clock
from edge.core import record as R
from edge.errors import ChainConflictError, DiskFullError, OutboxFullError, StorageError
from edge.ledger_cache import db
from edge.ledger_cache.reserve import Reserve
from edge.protocol.identity import Identity
from edge.protocol.record import Record, Sealer

log = logging.getLogger("edge.outbox")

__all__ = ["Identity", "Limits", "MemberDelta", "Outbox", "OutboxView"]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Outbox bounds.  ``max_bytes`` is the hard limit for new sales; ``reserve_bytes`` of
    disk are preallocated for sales already charged (released when the disk fills);
    ``min_free_disk`` is the free space the file system must keep for a new sale to
    start; alarms go off at ``alarm_pct`` of ``max_bytes``."""

    max_bytes: int = 256 * MIB
    reserve_bytes: int = 8 * MIB
    min_free_disk: int = 16 * MIB
    alarm_pct: tuple[int, ...] = (50, 80, 95)


@dataclass(frozen=True, slots=True)
class MemberDelta:
    """What one record changes in a member's local balance estimate."""

    member: str
    day: str
    points: int = 0
    wallet: int = 0
    spend: int = 0
    discount: int = 0
    earned: int = 0
    visits: int = 0
    info: dict[str, Any] = field(default_factory=dict)


FULL_FA = (
    "حافظه باشگاه مشتریان پر است؛ تا ارسال اطلاعات به دفتر مرکزی، فروش باشگاهی ممکن نیست. "
    "با پشتیبانی تماس بگیرید."
)
FULL_EN = (
    "The loyalty store on this terminal is full: club sales are paused until it sends "
    "its records to head office. Call support."
)
CONFLICT_KEY = "chain_conflict"
CONFLICT_EN = (
    "This terminal's records are behind head office's (it was reinstalled or restored from "
    "an old copy): club sales are stopped so that none is lost. A technician must resume "
    "it (python -m firmware_tools resume)."
)
CONFLICT_FA = (
    "سوابق این پایانه از دفتر مرکزی عقب‌تر است (دوباره نصب یا از نسخه قدیمی بازگردانده "
    "شده)؛ برای اینکه هیچ خریدی گم نشود فروش باشگاهی متوقف شده است. تکنسین باید پایانه "
    "را بازیابی کند."
)
DISK_FA = (
    "دیسک این پایانه پر است؛ فروش باشگاهی تا آزاد شدن فضا ممکن نیست. "
    "پرداخت بدون باشگاه ممکن است. با پشتیبانی تماس بگیرید."
)
DISK_EN = (
    "This terminal's disk is full: club sales are paused until space is freed. Card "
    "payments without the club still work. Call support."
)


class Outbox:
    """The writer side; one per process, used from one thread."""

    def __init__(
        self,
        path: Path | str,
        identity: Identity,
        sealer: Sealer,
        clock: Clock,
        limits: Limits | None = None,
        *,
        on_alarm: Callable[[int, str], None] | None = None,
    ) -> None:
        if sealer.device != identity.device:
            raise StorageError("the signing key belongs to another device")
        self.path = Path(path)
        self.identity = identity
        self.limits = limits or Limits()
        self._sealer = sealer
        self._clock = clock
        self._on_alarm = on_alarm
        self._conn = db.connect(self.path)
        self._ensure_device()
        self._level = self._alarm_level(self._bytes())
        self.reserve = Reserve(self.path.parent, self.limits.reserve_bytes)
        self.reserve.ensure(self.limits.min_free_disk)
        row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (CONFLICT_KEY,)).fetchone()
        self._conflict: dict[str, Any] | None = json.loads(row[0]) if row else None

    # -- set-up -----------------------------------------------------------------------

    def _ensure_device(self) -> None:
        row = self._conn.execute("SELECT tenant, store, device FROM device").fetchone()
        ident = self.identity
        if row is None:
            self._conn.execute(
                "INSERT INTO device (id, tenant, store, device, next_seq, last_hash) "
                "VALUES (1, ?, ?, ?, 1, ?)",
                (ident.tenant, ident.store, ident.device, R.ZERO_HASH),
            )
        elif tuple(row) != (ident.tenant, ident.store, ident.device):
            raise StorageError(
                f"this database belongs to {row[0]}/{row[1]}/{row[2]}, not "
                f"{ident.tenant}/{ident.store}/{ident.device}"
            )

    def close(self) -> None:
        self._conn.close()

    # -- capacity ---------------------------------------------------------------------

    def _bytes(self) -> int:
        return int(self._conn.execute("SELECT outbox_bytes FROM device").fetchone()[0])

    def _disk_free(self) -> int:
        return shutil.disk_usage(self.path.parent).free

    def _alarm_level(self, used: int) -> int:
        level = 0
        for pct in self.limits.alarm_pct:
            if used * 100 >= pct * self.limits.max_bytes:
                level = pct
        return level

    def check_capacity(self) -> None:
        """Raise OutboxFullError or DiskFullError when a new sale must not start (call
        before charging).  Makes the disk reserve again if it was used and there is room."""
        used = self._bytes()
        if used >= self.limits.max_bytes:
            raise OutboxFullError(
                f"outbox holds {used} bytes, the limit is {self.limits.max_bytes}: {FULL_EN}",
                fa=FULL_FA,
            )
        self.reserve.ensure(self.limits.min_free_disk)
        free = self._disk_free()
        if free < self.limits.min_free_disk:
            raise DiskFullError(
                f"only {free} bytes free on the disk (at least {self.limits.min_free_disk} "
                f"needed): {DISK_EN}",
                fa=DISK_FA,
            )

    def disk_full(self) -> bool:
        return self._disk_free() < self.limits.min_free_disk

    def can_record(self) -> None:
        """Raise ChainConflictError, OutboxFullError or DiskFullError when no new record
        may be written now (call before charging)."""
        if self._conflict is not None:
            raise ChainConflictError(
                f"{CONFLICT_EN} (head office has applied seq {self._conflict['applied']}, "
                f"this terminal has written {self._conflict['written']})",
                fa=CONFLICT_FA,
            )
        self.check_capacity()

    # -- the chain against head office's ----------------------------------------------------

    @property
    def conflict(self) -> dict[str, Any] | None:
        """What head office said that this terminal's chain cannot follow, or None."""
        return self._conflict

    def set_conflict(self, applied: int, ack_hash: bytes | None, why: str, now_ms: int) -> None:
        """Stop recording: head office's ack shows a chain this terminal does not hold."""
        if self._conflict is not None:
            return
        written = int(self._conn.execute("SELECT next_seq - 1 FROM device").fetchone()[0])
        info = {
            "applied": applied,
            "hash": ack_hash.hex() if ack_hash else None,
            "written": written,
            "why": why,
            "at_ms": now_ms,
        }
        db.write(
            self._conn,
            "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
            "value = excluded.value",
            (CONFLICT_KEY, json.dumps(info)),
        )
        self._conflict = info
        log.critical(
            "chain conflict: %s; club records are stopped until a technician resumes this terminal",
            why,
        )

    def _note_level(self, used: int) -> None:
        level = self._alarm_level(used)
        if level == self._level:
            return
        if level > self._level:
            msg = (
                f"outbox {used * 100 // self.limits.max_bytes}% full ({used} of "
                f"{self.limits.max_bytes} bytes): head office is not acknowledging"
            )
            log.log(logging.ERROR if level >= 90 else logging.WARNING, msg)
        else:
            msg = f"outbox below {self._level}% again ({used} bytes)"
            log.info(msg)
        self._level = level
        if self._on_alarm is not None:
            self._on_alarm(level, msg)

    # -- the durable step ---------------------------------------------------------------

    def commit(
        self,
        kind: str,
        body: dict[int, Any],
        *,
        member: dict[int, str] | None = None,
        bank: dict[int, Any] | None = None,
        offline: bool = False,
        basket: str | None = None,
        delta: MemberDelta | None = None,
        charged: bool = False,
        also: Callable[[sqlite3.Connection, Record], None] | None = None,
    ) -> Record:
        """Allocate seq, seal, store; returns after the commit.  ``charged`` says the money
        was already taken, so the outbox limits do not apply and a full disk releases the
        reserve for one more try.  ``also`` runs inside the same transaction with the new
        record (the checkout's own bookkeeping)."""
        args = (kind, body, member, bank, offline, basket, delta, charged, also)
        try:
            return self._commit(*args)
        except DiskFullError:
            if not (charged and self.reserve.release()):
                raise
        return self._commit(*args)

    def _commit(
        self,
        kind: str,
        body: dict[int, Any],
        member: dict[int, str] | None,
        bank: dict[int, Any] | None,
        offline: bool,
        basket: str | None,
        delta: MemberDelta | None,
        charged: bool,
        also: Callable[[sqlite3.Connection, Record], None] | None,
    ) -> Record:
        conn = self._conn
        with db.transaction(conn):
            seq, last_hash, used = conn.execute(
                "SELECT next_seq, last_hash, outbox_bytes FROM device"
            ).fetchone()
            # A charged sale is never refused here (the money is taken; only a physically
            # full disk can stop it, and check_capacity keeps reserve_bytes free for that).
            if not charged and used >= self.limits.max_bytes:
                raise OutboxFullError(f"outbox full ({used} bytes): {FULL_EN}", fa=FULL_FA)
            now = self._clock.now()
            ident = self.identity
            payload = R.build(
                kind,
                ident.tenant,
                ident.store,
                ident.device,
                seq,
                bytes(last_hash),
                now.field(),
                body,
                member,
                bank,
                offline,
                basket,
            )
            rec = self._sealer.seal(payload)
            conn.execute(
                "INSERT INTO outbox (seq, type, record, hash, created_ms) VALUES (?, ?, ?, ?, ?)",
                (seq, kind, rec.raw, rec.hash, now.wall_ms),
            )
            conn.execute(
                "UPDATE device SET next_seq = ?, last_hash = ?, "
                "outbox_rows = outbox_rows + 1, outbox_bytes = outbox_bytes + ?",
                (seq + 1, rec.hash, len(rec.raw)),
            )
            if delta is not None:
                conn.execute(
                    "INSERT INTO member_delta (seq, member, day, points, wallet, spend, "
                    "discount, earned, visits, info) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        seq,
                        delta.member,
                        delta.day,
                        delta.points,
                        delta.wallet,
                        delta.spend,
                        delta.discount,
                        delta.earned,
                        delta.visits,
                        json.dumps(delta.info, sort_keys=True) if delta.info else None,
                    ),
                )
            if also is not None:
                also(conn, rec)
        self._note_level(used + len(rec.raw))
        return rec

    # -- reading ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        row = self._conn.execute(
            "SELECT next_seq, applied_through, last_ack_ms, outbox_rows, outbox_bytes FROM device"
        ).fetchone()
        # the oldest row is the lowest seq: a primary-key lookup, not a scan of the table
        first = self._conn.execute("SELECT created_ms FROM outbox ORDER BY seq LIMIT 1").fetchone()
        return {
            "last_seq": row[0] - 1,
            "applied_through": row[1],
            "last_ack_ms": row[2],
            "depth": row[3],
            "bytes": row[4],
            "oldest_ms": first[0] if first else None,
            "fill_pct": row[4] * 100 // self.limits.max_bytes,
            "alarm_pct": self._level,
        }

    def storage(self) -> dict[str, Any]:
        """The disk, apart from the outbox: free bytes, the minimum, the reserve."""
        free = self._disk_free()
        return {
            "disk_free": free,
            "disk_min_free": self.limits.min_free_disk,
            "disk_full": free < self.limits.min_free_disk,
            "reserve_ready": self.reserve.ready(),
        }

    @property
    def conn(self) -> sqlite3.Connection:
        """The writer's connection (the agent's own tables live in the same file)."""
        return self._conn


class OutboxView:
    """The uplink thread's side: read unacknowledged records, apply head office acks."""

    def __init__(self, path: Path | str) -> None:
        self._conn = db.connect(path)
        # Deleting acknowledged rows need not survive a power cut (the records would
        # simply be sent again and ignored), so this connection skips the fsync.
        self._conn.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        self._conn.close()

    def counters(self) -> tuple[int, int]:
        """(last seq written, applied_through)."""
        row = self._conn.execute("SELECT next_seq - 1, applied_through FROM device").fetchone()
        if row is None:
            return (0, 0)
        return (int(row[0]), int(row[1]))

    def pending(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        cur = self._conn.execute(
            "SELECT seq, record FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        )
        return [(int(s), bytes(r)) for s, r in cur.fetchall()]

    def get(self, seqs: list[int]) -> list[tuple[int, bytes]]:
        out = []
        for s in seqs:
            row = self._conn.execute("SELECT record FROM outbox WHERE seq = ?", (s,)).fetchone()
            if row is not None:
                out.append((s, bytes(row[0])))
        return out

    def ack(self, applied_through: int, ack_hash: bytes | None, now_ms: int) -> int:
        """Apply head office's cumulative ack; returns the number of rows deleted.

        An ack beyond what this device wrote, or whose hash is not our record's hash,
        is refused with ChainConflictError (and deletes nothing): head office holds a
        history of this device that this database does not (it was reinstalled with the
        same key, or restored from an old copy).
        """
        conn = self._conn
        with db.transaction(conn):
            last, done = conn.execute("SELECT next_seq - 1, applied_through FROM device").fetchone()
            if applied_through > last:
                raise ChainConflictError(
                    f"head office acknowledges seq {applied_through} but this "
                    f"device has only written {last}"
                )
            if applied_through <= done:
                conn.execute("UPDATE device SET last_ack_ms = ?", (now_ms,))
                return 0
            if ack_hash is not None:
                row = conn.execute(
                    "SELECT hash FROM outbox WHERE seq = ?", (applied_through,)
                ).fetchone()
                if row is not None and bytes(row[0]) != ack_hash:
                    raise ChainConflictError(
                        f"head office's hash for seq {applied_through} is not this device's record"
                    )
            n, size = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(record)), 0) FROM outbox WHERE seq <= ?",
                (applied_through,),
            ).fetchone()
            conn.execute("DELETE FROM outbox WHERE seq <= ?", (applied_through,))
            conn.execute(
                "UPDATE device SET applied_through = ?, applied_hash = ?, "
                "last_ack_ms = ?, outbox_rows = outbox_rows - ?, "
                "outbox_bytes = outbox_bytes - ?",
                (applied_through, ack_hash, now_ms, n, size),
            )
        return int(n)
