"""Reconciliation: verify records, apply each exactly once, in order, to the ledger.

:meth:`Reconciler.process` takes a batch of raw messages and, in order:

1. **outside the transaction**: strict decode and schema check, topic check, registry
   lookup, signature check (in a thread pool: Ed25519 releases the GIL).  Failures go to
   quarantine with the reason and the raw bytes; forged or misrouted records are also
   security events;
2. **in one transaction**: lock the devices then the members involved (in key order), and
   for each device in seq order: a record already applied with the same hash is a
   duplicate (acked again, not applied); the same (device, seq) with another hash is a
   security event; the next seq is applied if its ``prev`` is the last applied hash (else
   a broken chain: quarantine and security event); a later seq is held and the gap is
   requested; held records are applied as soon as the gap closes.  A revoked device's
   records after its ``revoked_after_seq`` are refused, held ones included.

Idempotency and ordering live in the database: ``records`` has primary key (device, seq)
and a unique hash, and each device's ``applied_through``/``last_hash`` row is locked while
it moves, so several reconcilers can run against one PostgreSQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cloud_broker.ledger import books as ledger
from cloud_broker.ledger import budgets
from cloud_broker.ledger.books import Books
from cloud_broker.ledger.daily import DailyBook, local_day
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.ledger.rulebooks import RuleBooks
from cloud_broker.reconcile.postings import Postings, stream_body
from cloud_broker.registry.devices import DeviceInfo, RegistryCache, last_accepted
from edge.core import record as R
from edge.core.ruleset import RuleSet
from edge.errors import ProtocolError, SignatureError
from edge.protocol import cose, topics
from edge.protocol.record import Record, Unverified, describe, parse, record_hash

log = logging.getLogger("cloud_broker.reconciler")
cose.prefer_libsodium()  # every process that screens records verifies with libsodium

MAX_DRAIN = 10_000  # held records applied per device per batch

# what became of a device's next record in apply()
APPLIED = "applied"
REFUSED = "refused"  # quarantined
PARKED = "parked"  # held until head office has the rules bundle it names


@dataclass(slots=True)
class Incoming:
    topic: str
    raw: bytes
    token: Any = None  # the MQTT message id, for the ack after commit


def _may_spend(p: dict[int, Any]) -> bool:
    """The record may take points from the member's lots (a sale redeeming points; a
    refund, adjustment or anything but a sale)."""
    if p.get(R.K_TYPE) != "sale":
        return True
    pts = p.get(R.K_POINTS)
    return bool(isinstance(pts, dict) and pts.get(R.P_REDEEMED))


@dataclass(slots=True)
class Outcome:
    acks: dict[str, tuple[int, bytes | None]] = field(default_factory=dict)
    gaps: dict[str, tuple[int, int]] = field(default_factory=dict)
    tenants: dict[str, str] = field(default_factory=dict)  # device -> its registered tenant
    members: list[str] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    held: int = 0
    quarantined: int = 0
    stream: int = 0


@dataclass(slots=True)
class _Verified:
    msg: Incoming
    rec: Record


@dataclass(slots=True)
class _Refused:
    msg: Incoming
    device: str | None
    seq: int | None
    code: str
    reason: str
    security: bool


@dataclass(slots=True)
class Screened:
    verified: list[_Verified]
    refused: list[_Refused]

    def of(self, msg: Incoming) -> Screened:
        """The part of this batch that is about ``msg``."""
        return Screened(
            [v for v in self.verified if v.msg is msg], [r for r in self.refused if r.msg is msg]
        )


@dataclass(slots=True)
class _Held:
    """A record waiting behind a gap; ``raw``/``payload`` are loaded only when the batch
    can close the gap (they were verified when the record was held)."""

    hash: bytes
    raw: bytes | None = None
    payload: dict[int, Any] | None = None


class Reconciler:
    def __init__(
        self,
        db: Database,
        rs: RuleSet,
        *,
        verify_threads: int = 2,
        registry: RegistryCache | None = None,
        utc_offset_min: int = 210,
    ) -> None:
        self.db = db
        self.rules = RuleBooks(db, seed=rs)
        self.utc_offset_min = utc_offset_min  # head office's own day, for tier windows
        self.registry = registry or RegistryCache(db)
        self._pool = ThreadPoolExecutor(verify_threads, "verify") if verify_threads > 1 else None

    @property
    def rs(self) -> RuleSet:
        """The newest rules bundle (tiers, expiry; records name their own)."""
        return self.rules.latest

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    # -- step 1: verify ------------------------------------------------------------------

    def _check(self, msg: Incoming) -> tuple[Unverified, DeviceInfo] | _Refused:
        try:
            u = parse(msg.raw)
        except ProtocolError as e:
            return _Refused(msg, None, None, e.code, describe(e), False)
        where = topics.parse_records(msg.topic)
        if where != (u.tenant, u.store, u.device):
            return _Refused(
                msg,
                u.device,
                u.seq,
                "topic_mismatch",
                f"record of {u.tenant}/{u.store}/{u.device} arrived on {msg.topic}",
                True,
            )
        info = self.registry.get(u.device)
        if info is None:
            return _Refused(
                msg,
                u.device,
                u.seq,
                "unknown_device",
                f"device {u.device!r} is not registered",
                False,
            )
        if (info.tenant, info.store) != (u.tenant, u.store):
            return _Refused(
                msg,
                u.device,
                u.seq,
                "device_mismatch",
                f"device {u.device} is registered to {info.tenant}/{info.store}, "
                f"the record says {u.tenant}/{u.store}",
                True,
            )
        return u, info

    def _verify(self, item: tuple[Unverified, DeviceInfo], msg: Incoming) -> _Verified | _Refused:
        u, info = item
        for attempt in (0, 1):
            key = info.key_for(u.seq)
            if key is not None:
                try:
                    return _Verified(msg, u.verify(key))
                except SignatureError:
                    pass
            if attempt == 0:  # a key rotated or registered meanwhile?
                fresh = self.registry.get(u.device, fresh=True)
                if fresh is None:
                    break
                info = fresh
        return _Refused(
            msg,
            u.device,
            u.seq,
            "bad_signature",
            f"signature of {u.device} seq {u.seq} does not verify with its key",
            True,
        )

    def screen(self, batch: list[Incoming]) -> Screened:
        """Step 1 for a batch, in this process (see :mod:`cloud_broker.screen` for the
        worker-process version the service uses)."""
        checked = [self._check(m) for m in batch]
        todo = [(c, m) for c, m in zip(checked, batch, strict=True) if not isinstance(c, _Refused)]
        refused = [c for c in checked if isinstance(c, _Refused)]

        def run(cm: tuple[Any, Incoming]) -> _Verified | _Refused:
            return self._verify(cm[0], cm[1])

        results = list(
            self._pool.map(run, todo) if self._pool and len(todo) > 8 else map(run, todo)
        )
        verified = [r for r in results if isinstance(r, _Verified)]
        refused += [r for r in results if isinstance(r, _Refused)]
        return Screened(verified, refused)

    # -- step 2: apply -------------------------------------------------------------------

    def apply(self, screened: Screened, now_ms: int | None = None) -> Outcome:
        """Apply a screened batch in one transaction; ``now_ms``: head office's time for
        it (default: the clock)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return self.db.run(
            lambda tx: _Apply(self, tx, now).run(screened.verified, screened.refused)
        )

    def process(self, batch: list[Incoming], now_ms: int | None = None) -> Outcome:
        return self.apply(self.screen(batch), now_ms)

    def retry_parked(self) -> Outcome:
        """Apply held records that were waiting for a rules bundle head office now has
        (and any other held record whose gap has closed)."""
        rows = self.db.read(
            "SELECT DISTINCT h.device FROM held h JOIN devices d ON d.device = h.device "
            "WHERE h.seq = d.applied_through + 1"
        )
        devices = sorted(str(r[0]) for r in rows)
        if not devices:
            return Outcome()
        self.rules.reload()
        self.rules.forget_missing()
        now = int(time.time() * 1000)
        return self.db.run(lambda tx: _Apply(self, tx, now).run([], [], devices))


class _Apply(Postings):
    """One batch inside one transaction."""

    daily_book = DailyBook  # the daily tables' keeper (a benchmark measures one that keeps none)

    def __init__(self, rc: Reconciler, tx: Tx, now: int) -> None:
        self.rc = rc
        self.rs = rc.rs  # the bundle of the record being applied (see apply)
        self.tx = tx
        self.now = now
        self.books = Books(tx, rc.rs, now)
        self.out = Outcome()
        self.records: list[tuple[Any, ...]] = []
        self.stream: list[tuple[str, str, bytes]] = []
        self.quarantine: list[tuple[Any, ...]] = []
        self.security: list[tuple[Any, ...]] = []
        # (device, seq) -> (hash, journal id, member, day, store, tenant) of records applied
        self.in_batch: dict[tuple[str, int], tuple[bytes, int, str | None, int, str, str]] = {}
        self.cutoff: dict[str, int | None] = {}  # device -> last seq accepted (None: any)
        self.home: dict[str, tuple[str, str]] = {}  # device -> its registered tenant, store
        self.today = (now // 1000 + rc.utc_offset_min * 60) // 86400
        self.parked: set[tuple[str, int]] = set()  # waiting for their rules bundle
        self.daily = self.daily_book()  # the daily tables, added at the end
        self.rule_use: dict[budgets.UseKey, list[int]] = {}  # campaign budgets, at the end
        end = tx.one("SELECT MAX(hi) FROM archived_months")[0]
        if end is not None:  # never inside a month archived already (a clock stepped back)
            self._not_before(int(end))

    def refuse(
        self,
        msg: Incoming,
        device: str | None,
        seq: int | None,
        code: str,
        reason: str,
        security: bool,
    ) -> None:
        self.quarantine.append((self.now, msg.topic, device, seq, code, reason, msg.raw))
        if security:
            self.security.append((self.now, device, seq, code, reason))
        self.out.quarantined += 1
        log.warning("quarantined %s seq %s: %s", device, seq, reason)

    def run(
        self, verified: list[_Verified], refused: list[_Refused], also: Sequence[str] = ()
    ) -> Outcome:
        """Apply a batch; ``also``: devices whose held records to try even though the
        batch has nothing of theirs."""
        tx = self.tx
        for r in refused:
            self.refuse(r.msg, r.device, r.seq, r.code, r.reason, r.security)
        by_device: dict[str, list[_Verified]] = {d: [] for d in also}
        for v in verified:
            by_device.setdefault(v.rec.device, []).append(v)
        devices = sorted(by_device)
        tx.lock("devices", "device", devices)
        state: dict[str, tuple[int, bytes]] = {}
        held: dict[str, dict[int, _Held]] = {}
        members: dict[str, set[str]] = {}
        spenders: set[str] = set()
        for d in devices:
            row = tx.one(
                "SELECT status, revoked_after_seq, applied_through, last_hash, tenant, store, "
                "applied_at FROM devices WHERE device = ?",
                (d,),
            )
            self._not_before(int(row[6]))
            applied = int(row[2])
            cutoff = self.cutoff[d] = last_accepted(row[0], row[1])
            tenant = self.out.tenants[d] = str(row[4])
            self.home[d] = (tenant, str(row[5]))
            state[d] = (applied, bytes(row[3]) if row[3] else R.ZERO_HASH)
            if cutoff is not None:
                self.purge_revoked(d, cutoff)
            held[d] = self.load_held(d, applied, {v.rec.seq for v in by_device[d]})
            payloads = [
                v.rec.payload for v in by_device[d] if cutoff is None or v.rec.seq <= cutoff
            ]
            payloads += [h.payload for h in held[d].values() if h.payload is not None]
            for p in payloads:
                m = self.member_of(p)
                if m:
                    members.setdefault(tenant, set()).add(m)
                    if _may_spend(p):
                        spenders.add(m)
        for tenant in sorted(members):
            self.books.ensure_members(tenant, sorted(members[tenant]))
        self.books.load_lots(sorted(spenders))  # one query, not one a member as they spend
        for d in devices:
            self.device(d, sorted(by_device[d], key=lambda v: v.rec.seq), state[d], held[d])
        tx.executemany(
            "INSERT INTO records (device, seq, hash, prev, tenant, store, type, member, "
            "device_time, offline, journal_id, received_at, raw) VALUES "
            "(?,?,?,?,?,?,?,?,?,?,?,?,?)",
            self.records,
        )
        tx.executemany(
            "INSERT INTO quarantine (received_at, topic, device, seq, code, reason, "
            "raw) VALUES (?,?,?,?,?,?,?)",
            self.quarantine,
        )
        tx.executemany(
            "INSERT INTO security_events (at, device, seq, kind, detail) VALUES (?,?,?,?,?)",
            self.security,
        )
        self.books.use(self.rc.rs)  # tiers follow the newest bundle
        flush_budgets(self.tx, self.rule_use, self.books, self.rc.rs)
        self.out.members = self.books.flush(self.today)
        self.daily.flush(tx)
        tx.executemany("INSERT INTO stream (tenant, store, body) VALUES (?, ?, ?)", self.stream)
        self.out.stream = len(self.stream)
        return self.out

    # -- held records -------------------------------------------------------------------

    def load_held(self, d: str, applied: int, incoming: set[int]) -> dict[int, _Held]:
        """The device's held records (seq and hash only); raw and payload too for those
        this batch can apply, i.e. the run of seqs from ``applied + 1`` that the batch
        and the held records cover together."""
        tx = self.tx
        held = {
            int(s): _Held(bytes(h))
            for s, h in tx.all(
                "SELECT seq, hash FROM held WHERE device = ? AND seq > ? ORDER BY seq LIMIT ?",
                (d, applied, MAX_DRAIN),
            )
        }
        end = applied + 1
        while end in incoming or end in held:
            end += 1
        cutoff = self.cutoff[d]
        if cutoff is not None:
            end = min(end, cutoff + 1)
        if not any(s < end for s in held):
            return held
        for s, h, r in tx.all(
            "SELECT seq, hash, raw FROM held WHERE device = ? AND seq > ? AND seq < ?",
            (d, applied, end),
        ):
            seq, raw = int(s), bytes(r)
            try:
                payload = parse(raw).payload  # verified when it was held
            except ProtocolError as e:  # held under an older, laxer schema
                held.pop(seq, None)
                tx.execute("DELETE FROM held WHERE device = ? AND seq = ?", (d, seq))
                tenant, store = self.home[d]
                self.refuse(
                    Incoming(topics.records(tenant, store, d), raw),
                    d,
                    seq,
                    e.code,
                    describe(e),
                    False,
                )
                continue
            held[seq] = _Held(bytes(h), raw, payload)
        return held

    def purge_revoked(self, d: str, cutoff: int) -> None:
        """Quarantine a revoked device's held records after its cutoff: they never apply."""
        tx = self.tx
        n = int(tx.one("SELECT COUNT(*) FROM held WHERE device = ? AND seq > ?", (d, cutoff))[0])
        if not n:
            return
        tenant, store = self.home[d]
        reason = _revoked_reason(d, cutoff)
        tx.execute(
            "INSERT INTO quarantine (received_at, topic, device, seq, code, reason, raw) "
            "SELECT ?, ?, device, seq, 'revoked', ?, raw FROM held WHERE device = ? AND seq > ? "
            "ORDER BY seq",
            (self.now, topics.records(tenant, store, d), reason, d, cutoff),
        )
        tx.execute(
            "INSERT INTO security_events (at, device, seq, kind, detail) "
            "SELECT ?, device, seq, 'revoked', ? FROM held WHERE device = ? AND seq > ? "
            "ORDER BY seq",
            (self.now, reason, d, cutoff),
        )
        tx.execute("DELETE FROM held WHERE device = ? AND seq > ?", (d, cutoff))
        self.out.quarantined += n
        log.warning("quarantined %d held records of %s: %s", n, d, reason)

    def revoked(self, msg: Incoming, d: str, seq: int) -> bool:
        """Refuse (and report) a record of a revoked device signed after its cutoff."""
        cutoff = self.cutoff.get(d)
        if cutoff is None or seq <= cutoff:
            return False
        self.refuse(msg, d, seq, "revoked", _revoked_reason(d, cutoff), True)
        return True

    def _not_before(self, applied_at: int) -> None:
        """The batch's time is at least each of its devices' last: a device's records keep
        their times in seq order (another reconciler's batch that took its time first, or
        a clock stepped back), so a month holds a contiguous run of every chain
        (cloud_broker.ledger.partitions)."""
        if applied_at > self.now:
            self.now = self.books.now = applied_at

    # -- per device ---------------------------------------------------------------------

    def device(
        self, d: str, items: list[_Verified], st: tuple[int, bytes], held: dict[int, _Held]
    ) -> None:
        applied, last_hash = st
        tx = self.tx
        for v in items:
            rec = v.rec
            seq = rec.seq
            if self.revoked(v.msg, d, seq):
                continue
            if seq <= applied:
                known = self.in_batch.get((d, seq))
                h = known[0] if known else self._stored_hash(d, seq)
                if h == rec.hash or (h is None and self._archived(d, seq)):
                    # (a month archived before its hashes were kept cannot be compared,
                    # nor applied again)
                    self.out.duplicates += 1
                else:
                    self.conflict(
                        v.msg,
                        d,
                        seq,
                        f"{d} seq {seq} was already applied with a different hash (a "
                        "reinstalled terminal, a restored old database, or a cloned key)",
                    )
                continue
            if seq > applied + 1:
                old = held.get(seq)
                if old is not None and old.hash != rec.hash:
                    self.conflict(v.msg, d, seq, f"{d} seq {seq} is held with a different hash")
                elif old is None:
                    self.hold(d, rec, held)
                continue
            done = self.apply(v.msg, rec, last_hash)
            if done == PARKED:
                self.hold(d, rec, held)
                continue
            if done == REFUSED:
                # quarantined; the device's later records in this batch are held behind the
                # gap, and the genuine record, when it comes, applies and drains them
                continue
            applied, last_hash = seq, rec.hash
            applied, last_hash = self.drain(d, applied, last_hash, held)
        applied, last_hash = self.drain(d, applied, last_hash, held)
        tx.execute(
            "UPDATE devices SET applied_through = ?, last_hash = ?, last_seen_at = ?, "
            "applied_at = ? WHERE device = ?",
            (applied, last_hash, self.now, self.now, d),
        )
        self.out.acks[d] = (applied, last_hash if applied else None)
        later = [s for s in held if s > applied]
        if later and min(later) > applied + 1:  # (a record waiting for its rules is no gap)
            self.out.gaps[d] = (applied + 1, min(later) - 1)

    def hold(self, d: str, rec: Record, held: dict[int, _Held]) -> None:
        self.tx.execute(
            "INSERT INTO held (device, seq, hash, received_at, raw) VALUES "
            "(?, ?, ?, ?, ?) ON CONFLICT (device, seq) DO NOTHING",
            (d, rec.seq, rec.hash, self.now, rec.raw),
        )
        if rec.seq not in held:
            held[rec.seq] = _Held(rec.hash, rec.raw, rec.payload)
            self.out.held += 1

    def known_conflict(self, raw: bytes, d: str, seq: int) -> bool:
        """These bytes were quarantined as a conflict already (in this batch or before),
        or admitted since."""
        if any(q[2:5] == (d, seq, "conflict") and q[6] == raw for q in self.quarantine):
            return True
        h = record_hash(raw)
        if self.tx.one("SELECT 1 FROM admitted WHERE hash = ?", (h,)) or self.tx.one(
            "SELECT 1 FROM archived_hashes WHERE hash = ? AND admitted = 1", (h,)
        ):
            return True
        rows = self.tx.all(
            "SELECT raw FROM quarantine WHERE device = ? AND seq = ? AND code = 'conflict'",
            (d, seq),
        )
        return any(bytes(r[0]) == raw for r in rows)

    def conflict(self, msg: Incoming, d: str, seq: int, reason: str) -> None:
        """A validly signed record at a seq head office already holds another record
        for: quarantined with a security event and an alert (a paid sale may be in it:
        ``quarantine admit`` books it, docs/ledger.md).  The same record sent again (the
        terminal resends what it is not acknowledged for) is a duplicate, not a new
        conflict."""
        if self.known_conflict(msg.raw, d, seq):
            self.out.duplicates += 1
            return
        self.refuse(msg, d, seq, "conflict", reason, True)
        self.books.alert(
            "critical",
            "chain_conflict",
            f"{reason}; the record is quarantined and may be a paid sale: resume the "
            "terminal and admit or dismiss the record",
            None,
            d,
            seq,
        )

    def drain(
        self, d: str, applied: int, last_hash: bytes, held: dict[int, _Held]
    ) -> tuple[int, bytes]:
        while applied + 1 in held:
            h = held[applied + 1]
            if h.raw is None or h.payload is None:
                # not loaded by load_held (cannot happen): it stays held for the next batch
                log.error("%s seq %d is held but was not loaded", d, applied + 1)
                break
            rec = Record(h.raw, h.hash, h.payload)
            tenant, store = self.home[d]
            done = self.apply(Incoming(topics.records(tenant, store, d), h.raw), rec, last_hash)
            if done == PARKED:
                break  # it stays held until head office has its rules bundle
            del held[applied + 1]
            # Applied, or quarantined (a broken chain, a revoked device): either way it leaves
            # `held`, so it is neither retried on every batch nor mistaken for a pending gap.
            self.tx.execute("DELETE FROM held WHERE device = ? AND seq = ?", (d, rec.seq))
            if done == REFUSED:
                break
            applied, last_hash = rec.seq, h.hash
        return applied, last_hash

    def _archived(self, d: str, seq: int) -> bool:
        row = self.tx.one("SELECT through_seq FROM archived_chains WHERE device = ?", (d,))
        return row is not None and seq <= int(row[0])

    def _stored_hash(self, d: str, seq: int) -> bytes | None:
        row = self.tx.one("SELECT hash FROM records WHERE device = ? AND seq = ?", (d, seq))
        if row is None:  # its month archived: the hash was kept (migration 19 on)
            row = self.tx.one(
                "SELECT hash FROM archived_hashes WHERE device = ? AND seq = ? AND admitted = 0",
                (d, seq),
            )
        return bytes(row[0]) if row else None

    # -- one record ----------------------------------------------------------------------

    def member_of(self, p: dict[int, Any]) -> str | None:
        m = p.get(R.K_MEMBER)
        if not m:
            return None
        if m[R.M_HOW] == "phone":
            return str(m[R.M_REF])
        row = self.tx.one("SELECT member FROM member_cards WHERE card = ?", (m[R.M_REF],))
        return str(row[0]) if row else f"card:{m[R.M_REF]}"

    def apply(self, msg: Incoming, rec: Record, last_hash: bytes) -> str:
        """Apply the device's next record: APPLIED, REFUSED (quarantined) or PARKED
        (head office lacks the rules bundle it names).  Every record passes here, from the
        batch or from ``held``."""
        d, seq = rec.device, rec.seq
        if self.revoked(msg, d, seq):
            return REFUSED
        if rec.prev != last_hash:
            self.refuse(
                msg,
                d,
                seq,
                "broken_chain",
                f"{d} seq {seq} does not follow the last applied record (prev hash differs)",
                True,
            )
            return REFUSED
        if not self.use_rules_of(rec):
            return PARKED
        self.post(msg, rec)
        return APPLIED

    def use_rules_of(self, rec: Record) -> bool:
        """Book ``rec`` under the bundle it names; False (and an alert, once) if head
        office does not have that bundle."""
        version = rec.payload.get(R.K_RULES)
        rs = self.rc.rules.get(version, self.tx)
        if rs is None:
            key = (rec.device, rec.seq)
            seen = key in self.parked or self.tx.one(
                "SELECT 1 FROM alerts WHERE kind = 'rules_unknown' AND device = ? AND seq = ?",
                key,
            )
            self.parked.add(key)
            if not seen:
                self.books.alert(
                    "critical",
                    "rules_unknown",
                    f"the record names rules bundle v{version}, which head office does not "
                    "have: it waits (held) until the bundle is added (serve --rules-pub, or "
                    "cloud_broker rules add)",
                    None,
                    rec.device,
                    rec.seq,
                )
                log.error(
                    "%s seq %d names rules v%s, unknown here: held", rec.device, rec.seq, version
                )
            return False
        self.rs = rs
        self.books.use(rs)
        return True

    def post(self, msg: Incoming, rec: Record, admitted: bool = False) -> int:
        """The ledger postings, the records row (or, ``admitted``, none: the caller keeps
        it apart) and the stream entry of a verified record; returns its journal id."""
        p = rec.payload
        d, seq = rec.device, rec.seq
        kind = p[R.K_TYPE]
        tenant, store = p[R.K_TENANT], p[R.K_STORE]
        day = local_day(p)
        member = self.member_of(p)
        ms = self.books.member(member) if member else None
        jid = self.books.journal(tenant, kind, d, seq, member, day)
        if kind == "sale":
            self.sale(jid, p, ms, day, d, seq)
        elif kind in ("refund", "void"):
            self.refund(jid, p, ms, day, d, seq)
        elif kind == "adjustment":
            self.adjustment(jid, p, ms, day, d, seq)
        elif kind == "enroll":
            self.enroll(p, ms)
        if ms is not None:
            if not admitted:
                ms.device_seqs[d] = seq
            ms.dirty = True
        self.stream.append((tenant, store, stream_body(rec, member, ms, jid)))
        if admitted:
            return jid
        t = p[R.K_TIME]
        self.records.append(
            (
                d,
                seq,
                rec.hash,
                rec.prev,
                tenant,
                store,
                kind,
                member,
                t[R.T_WALL],
                int(p[R.K_OFFLINE]),
                jid,
                self.now,
                rec.raw,
            )
        )
        self.in_batch[(d, seq)] = (rec.hash, jid, member, day, store, tenant)
        self.out.applied += 1
        return jid


def _revoked_reason(d: str, cutoff: int) -> str:
    if cutoff < 1:
        return f"device {d} is revoked; none of its records are accepted"
    return f"device {d} is revoked; records after seq {cutoff} are refused"


def run_expiry(
    db: Database, rs: RuleSet, today: int | None = None, utc_offset_min: int = 210
) -> dict[str, int]:
    now = int(time.time() * 1000)
    day = today if today is not None else (now // 1000 + utc_offset_min * 60) // 86400
    return db.run(lambda tx: ledger.expire_points(tx, rs, day, now))


def flush_budgets(tx: Tx, use: dict[budgets.UseKey, list[int]], books: Books, rs: RuleSet) -> None:
    """The batch's use of each rule against its campaign budget, alerts in the batch."""
    budgets.flush(
        tx, use, int(rs.policy.get("point_value_rials", 0)),
        lambda sev, kind, detail: books.alert(sev, kind, detail, None, None, None),
    )  # fmt: skip
