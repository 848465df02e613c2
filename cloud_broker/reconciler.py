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
   requested; held records are applied as soon as the gap closes.

Idempotency and ordering live in the database: ``records`` has primary key (device, seq)
and a unique hash, and each device's ``applied_through``/``last_hash`` row is locked while
it moves, so several reconcilers can run against one PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cloud_broker import ledger
from cloud_broker.db import Database, Tx
from cloud_broker.ledger import Books, MemberState, s_acct, st_acct
from cloud_broker.registry import DeviceInfo, RegistryCache
from edge.core import record as R
from edge.core.dates import format_timestamp
from edge.core.ruleset import RuleSet
from edge.errors import ProtocolError, SignatureError
from edge.protocol import topics
from edge.protocol.record import Record, Unverified, describe, parse

log = logging.getLogger("cloud_broker.reconciler")

MAX_DRAIN = 10_000  # held records applied per device per batch


@dataclass(slots=True)
class Incoming:
    topic: str
    raw: bytes
    token: Any = None  # the MQTT message id, for the ack after commit


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


def local_day(payload: dict[int, Any]) -> int:
    t = payload[R.K_TIME]
    return int((t[0] // 1000 + t[1] * 60) // 86400)


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
        self.rs = rs
        self.utc_offset_min = utc_offset_min  # head office's own day, for tier windows
        self.registry = registry or RegistryCache(db)
        self._pool = ThreadPoolExecutor(verify_threads, "verify") if verify_threads > 1 else None

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

    def apply(self, screened: Screened) -> Outcome:
        now = int(time.time() * 1000)
        return self.db.run(
            lambda tx: _Apply(self, tx, now).run(screened.verified, screened.refused)
        )

    def process(self, batch: list[Incoming]) -> Outcome:
        return self.apply(self.screen(batch))


class _Apply:
    """One batch inside one transaction."""

    def __init__(self, rc: Reconciler, tx: Tx, now: int) -> None:
        self.rc = rc
        self.rs = rc.rs
        self.tx = tx
        self.now = now
        self.books = Books(tx, rc.rs, now)
        self.out = Outcome()
        self.records: list[tuple[Any, ...]] = []
        self.stream: list[tuple[str, str, bytes]] = []
        self.quarantine: list[tuple[Any, ...]] = []
        self.security: list[tuple[Any, ...]] = []
        self.in_batch: dict[tuple[str, int], tuple[bytes, int, str | None, int, str]] = {}
        self.today = (now // 1000 + rc.utc_offset_min * 60) // 86400

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

    def run(self, verified: list[_Verified], refused: list[_Refused]) -> Outcome:
        tx = self.tx
        for r in refused:
            self.refuse(r.msg, r.device, r.seq, r.code, r.reason, r.security)
        by_device: dict[str, list[_Verified]] = {}
        for v in verified:
            by_device.setdefault(v.rec.device, []).append(v)
        devices = sorted(by_device)
        tx.lock("devices", "device", devices)
        state: dict[str, list[Any]] = {}
        held: dict[str, dict[int, tuple[bytes, bytes]]] = {}
        members: dict[str, set[str]] = {}
        for d in devices:
            row = tx.one(
                "SELECT status, revoked_after_seq, applied_through, last_hash, tenant "
                "FROM devices WHERE device = ?",
                (d,),
            )
            state[d] = [row[0], row[1], int(row[2]), bytes(row[3]) if row[3] else R.ZERO_HASH]
            held[d] = {
                int(s): (bytes(h), bytes(raw))
                for s, h, raw in tx.all(
                    "SELECT seq, hash, raw FROM held WHERE device = ? AND seq > ? ORDER BY seq "
                    "LIMIT ?",
                    (d, state[d][2], MAX_DRAIN),
                )
            }
            tenant = row[4]
            self.out.tenants[d] = str(tenant)
            for v in by_device[d]:
                m = self.member_of(v.rec.payload)
                if m:
                    members.setdefault(tenant, set()).add(m)
            for _h, raw in held[d].values():
                m = self.member_of(parse(raw).payload)
                if m:
                    members.setdefault(tenant, set()).add(m)
        for tenant in sorted(members):
            self.books.ensure_members(tenant, sorted(members[tenant]))
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
        self.out.members = self.books.flush(self.today)
        tx.executemany("INSERT INTO stream (tenant, store, body) VALUES (?, ?, ?)", self.stream)
        self.out.stream = len(self.stream)
        return self.out

    # -- per device ---------------------------------------------------------------------

    def device(
        self, d: str, items: list[_Verified], st: list[Any], held: dict[int, tuple[bytes, bytes]]
    ) -> None:
        status, revoked_after, applied, last_hash = st
        tx = self.tx
        for v in items:
            rec = v.rec
            seq = rec.seq
            if status != "active" and (revoked_after is None or seq > revoked_after):
                self.refuse(
                    v.msg,
                    d,
                    seq,
                    "revoked",
                    f"device {d} is revoked; seq {seq} was signed after {revoked_after}",
                    True,
                )
                continue
            if seq <= applied:
                known = self.in_batch.get((d, seq))
                h = known[0] if known else self._stored_hash(d, seq)
                if h == rec.hash:
                    self.out.duplicates += 1
                else:
                    self.refuse(
                        v.msg,
                        d,
                        seq,
                        "conflict",
                        f"{d} seq {seq} was already "
                        "applied with a different hash (replay or cloned key)",
                        True,
                    )
                continue
            if seq > applied + 1:
                old = held.get(seq)
                if old is not None and old[0] != rec.hash:
                    self.refuse(
                        v.msg,
                        d,
                        seq,
                        "conflict",
                        f"{d} seq {seq} is held with a different hash",
                        True,
                    )
                elif old is None:
                    tx.execute(
                        "INSERT INTO held (device, seq, hash, received_at, raw) VALUES "
                        "(?, ?, ?, ?, ?) ON CONFLICT (device, seq) DO NOTHING",
                        (d, seq, rec.hash, self.now, rec.raw),
                    )
                    held[seq] = (rec.hash, rec.raw)
                    self.out.held += 1
                continue
            ok = self.apply(v.msg, rec, last_hash)
            if not ok:
                # quarantined; the device's later records in this batch are held behind the
                # gap, and the genuine record, when it comes, applies and drains them
                continue
            applied, last_hash = seq, rec.hash
            applied, last_hash = self.drain(d, applied, last_hash, held)
        applied, last_hash = self.drain(d, applied, last_hash, held)
        tx.execute(
            "UPDATE devices SET applied_through = ?, last_hash = ?, last_seen_at = ? "
            "WHERE device = ?",
            (applied, last_hash, self.now, d),
        )
        self.out.acks[d] = (applied, last_hash if applied else None)
        later = [s for s in held if s > applied]
        if later:
            self.out.gaps[d] = (applied + 1, min(later) - 1)

    def drain(
        self, d: str, applied: int, last_hash: bytes, held: dict[int, tuple[bytes, bytes]]
    ) -> tuple[int, bytes]:
        while applied + 1 in held:
            h, raw = held.pop(applied + 1)
            rec = Record(raw, h, parse(raw).payload)  # verified when it was held
            ok = self.apply(
                Incoming(topics.records(rec.payload[R.K_TENANT], rec.payload[R.K_STORE], d), raw),
                rec,
                last_hash,
            )
            # Applied, or quarantined for a broken chain: either way it leaves `held`,
            # so it is neither retried on every batch nor mistaken for a pending gap.
            self.tx.execute("DELETE FROM held WHERE device = ? AND seq = ?", (d, rec.seq))
            if not ok:
                break
            applied, last_hash = rec.seq, h
        return applied, last_hash

    def _stored_hash(self, d: str, seq: int) -> bytes | None:
        row = self.tx.one("SELECT hash FROM records WHERE device = ? AND seq = ?", (d, seq))
        return bytes(row[0]) if row else None

    # -- one record ----------------------------------------------------------------------

    def member_of(self, p: dict[int, Any]) -> str | None:
        m = p.get(R.K_MEMBER)
        if not m:
            return None
        if m[0] == "phone":
            return str(m[1])
        row = self.tx.one("SELECT member FROM member_cards WHERE card = ?", (m[1],))
        return str(row[0]) if row else f"card:{m[1]}"

    def apply(self, msg: Incoming, rec: Record, last_hash: bytes) -> bool:
        p = rec.payload
        d, seq = rec.device, rec.seq
        if rec.prev != last_hash:
            self.refuse(
                msg,
                d,
                seq,
                "broken_chain",
                f"{d} seq {seq} does not follow the last applied record (prev hash differs)",
                True,
            )
            return False
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
            ms.device_seqs[d] = seq
            ms.dirty = True
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
                t[0],
                int(p[R.K_OFFLINE]),
                jid,
                self.now,
                rec.raw,
            )
        )
        self.in_batch[(d, seq)] = (rec.hash, jid, member, day, store)
        self.out.applied += 1
        self.stream.append((tenant, store, self.stream_body(rec, member, ms, jid)))
        return True

    def sale(
        self, jid: int, p: dict[int, Any], ms: MemberState | None, day: int, d: str, seq: int
    ) -> None:
        earned, redeemed = p[R.K_POINTS][0], p[R.K_POINTS][1]
        used, cashback = p[R.K_WALLET][0], p[R.K_WALLET][1]
        if ms is None:
            if earned or redeemed or used or cashback:
                self.books.alert(
                    "warning",
                    "anonymous_benefits",
                    "a sale without a member carries points or wallet amounts; nothing booked",
                    None,
                    d,
                    seq,
                )
            return
        b = self.books
        tenant, store = p[R.K_TENANT], p[R.K_STORE]
        b.spend(jid, ms, redeemed, day, s_acct(tenant, "points_redeemed"), d, seq)
        b.earn(jid, ms, earned, day, d, seq, s_acct(tenant, "points_issued"))
        b.wallet(jid, ms, cashback, s_acct(tenant, "cashback_issued"), d, seq)
        b.wallet(jid, ms, -used, st_acct(tenant, store, "wallet_redeemed"), d, seq)
        ms.visits += 1
        b.add_spend(ms, day, p[R.K_AMOUNTS][3])
        for a in p.get(R.K_APPLIED, ()):
            if a.get(6):
                ms.birthday_claimed = max(ms.birthday_claimed, a[6])
            code = a.get(5)
            if code:
                self.coupon(code, ms.member, d, seq)

    def coupon(self, code: str, member: str, d: str, seq: int) -> None:
        r = self.rs.by_code.get(code)
        others = self.tx.all("SELECT member, device, seq FROM coupon_uses WHERE code = ?", (code,))
        self.tx.execute(
            "INSERT INTO coupon_uses (code, member, device, seq) VALUES (?,?,?,?) "
            "ON CONFLICT (code, device, seq) DO NOTHING",
            (code, member, d, seq),
        )
        if r is not None and r.p.get("single_use") and others:
            self.books.alert(
                "warning",
                "coupon_reuse",
                f"single-use coupon {code} used again "
                f"(first by {others[0][0]} at {others[0][1]} seq {others[0][2]})",
                member,
                d,
                seq,
            )

    def _orig(self, p: dict[int, Any]) -> tuple[int | None, int | None, str | None]:
        """(journal id, local day, store) of the sale a refund refers to, if applied."""
        o = p[R.K_ORIG]
        key = (o[0], o[1])
        hit = self.in_batch.get(key)
        if hit is not None:
            return (hit[1], hit[3], hit[4]) if hit[0] == o[2] else (None, None, None)
        row = self.tx.one(
            "SELECT hash, journal_id, device_time, store FROM records WHERE device = ? AND seq = ?",
            key,
        )
        if row is None or bytes(row[0]) != o[2]:
            return None, None, None
        jrow = self.tx.one("SELECT day FROM journals WHERE id = ?", (row[1],))
        return int(row[1]), int(jrow[0]), str(row[3])

    def refund(
        self, jid: int, p: dict[int, Any], ms: MemberState | None, day: int, d: str, seq: int
    ) -> None:
        reversed_, returned = p[R.K_POINTS][0], p[R.K_POINTS][1]
        w_returned, cb_reversed = p[R.K_WALLET][0], p[R.K_WALLET][1]
        orig_jid, orig_day, orig_store = self._orig(p)
        o = p[R.K_ORIG]
        if orig_jid is None:
            self.books.alert(
                "warning",
                "refund_without_sale",
                f"refund of {o[0]} seq {o[1]} "
                "which head office has not applied (or whose hash differs)",
                ms.member if ms else None,
                d,
                seq,
            )
        if ms is None:
            return
        b = self.books
        tenant = p[R.K_TENANT]
        store = orig_store or p[R.K_STORE]
        b.spend(
            jid, ms, reversed_, day, s_acct(tenant, "points_issued"), d, seq, prefer=(o[0], o[1])
        )
        b.give_back(jid, ms, returned, day, orig_jid, d, seq)
        b.wallet(jid, ms, w_returned, st_acct(tenant, store, "wallet_redeemed"), d, seq)
        b.wallet(jid, ms, -cb_reversed, s_acct(tenant, "cashback_issued"), d, seq)
        b.add_spend(ms, orig_day if orig_day is not None else day, -p[R.K_AMOUNTS][3])

    def adjustment(
        self, jid: int, p: dict[int, Any], ms: MemberState | None, day: int, d: str, seq: int
    ) -> None:
        extra = p.get(R.K_EXTRA, {})
        points, wallet = int(extra.get(1, 0)), int(extra.get(2, 0))
        if ms is None:
            if points or wallet:
                self.books.alert("warning", "adjustment_without_member", "ignored", None, d, seq)
            return
        tenant = p[R.K_TENANT]
        if points > 0:
            self.books.earn(
                jid, ms, points, day, d, seq, s_acct(tenant, "points_adjusted"), kind="adjust"
            )
        elif points < 0:
            self.books.spend(jid, ms, -points, day, s_acct(tenant, "points_adjusted"), d, seq)
        self.books.wallet(jid, ms, wallet, s_acct(tenant, "wallet_adjusted"), d, seq)

    def enroll(self, p: dict[int, Any], ms: MemberState | None) -> None:
        extra = p.get(R.K_EXTRA, {})
        if ms is None:
            return
        if extra.get(0) == "card" and extra.get(1):
            card = str(extra[1])
            self.tx.execute(
                "INSERT INTO member_cards (card, member) VALUES (?, ?) "
                "ON CONFLICT (card) DO UPDATE SET member = excluded.member",
                (card, ms.member),
            )
        bday = extra.get(2)
        if isinstance(bday, str) and not ms.birthday:
            ms.birthday = bday
            ms.dirty = True

    def stream_body(
        self, rec: Record, member: str | None, ms: MemberState | None, jid: int
    ) -> bytes:
        p = rec.payload
        t = p[R.K_TIME]
        body: dict[str, Any] = {
            "v": 1,
            "tenant": p[R.K_TENANT],
            "store": p[R.K_STORE],
            "device": rec.device,
            "seq": rec.seq,
            "hash": rec.hash.hex(),
            "type": p[R.K_TYPE],
            "member": member,
            "device_time": format_timestamp(t[0] // 1000, t[1]),
            "offline": p[R.K_OFFLINE],
            "journal": jid,
            "basket": p.get(R.K_BASKET),
        }
        if R.K_AMOUNTS in p:
            a = p[R.K_AMOUNTS]
            names = (
                ("subtotal", "discount", "wallet", "payable")
                if body["type"] == "sale"
                else ("gross", "discount", "wallet", "refunded")
            )
            body["amounts"] = dict(zip(names, (a[0], a[1], a[2], a[3]), strict=True))
            body["points"] = (
                {"plus": p[R.K_POINTS][0], "minus": p[R.K_POINTS][1]}
                if body["type"] == "sale"
                else {"reversed": p[R.K_POINTS][0], "returned": p[R.K_POINTS][1]}
            )
            body["rules_version"] = p[R.K_RULES]
        if p.get(R.K_BANK):
            b = p[R.K_BANK]
            body["bank"] = {
                k: b[i]
                for i, k in enumerate(
                    (
                        "terminal_id",
                        "trace",
                        "receipt",
                        "amount",
                        "card_type",
                        "auth_code",
                        "result",
                    )
                )
                if i in b
            }
        if p.get(R.K_ORIG):
            o = p[R.K_ORIG]
            body["orig"] = {"device": o[0], "seq": o[1], "hash": o[2].hex()}
        if ms is not None:
            body["balances"] = {"points": ms.points, "wallet": ms.wallet}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def run_expiry(
    db: Database, rs: RuleSet, today: int | None = None, utc_offset_min: int = 210
) -> dict[str, int]:
    now = int(time.time() * 1000)
    day = today if today is not None else (now // 1000 + utc_offset_min * 60) // 86400
    return db.run(lambda tx: ledger.expire_points(tx, rs, day, now))
