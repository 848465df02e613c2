"""Records refused into quarantine that may still be paid sales: admitted into the ledger,
dismissed with a reason, and the chain checkpoint that lets a reinstalled terminal resume.

A terminal reinstalled with its old key (or restored from an old copy of its database)
signs records whose seqs head office already holds another record for: they are
quarantined as ``conflict``, each with an alert.  They are validly signed by a registered
device and may be paid sales, so ``ledger check`` fails while any of them (or a
``broken_chain``, ``orphaned`` or ``revoked`` record) is unresolved.  The operator:

1. issues a checkpoint (:func:`checkpoint`): the device's records held behind a gap its
   old database can no longer fill are moved to quarantine as ``orphaned``, and head
   office signs what it holds of the chain, for ``python -m firmware_tools resume``;
2. admits each such record (:func:`admit`): its signature is verified again with the
   device's key for that seq, it is booked under the rules bundle it names, exactly as
   the reconciler books a record, and kept in ``admitted`` (unique by hash: admitting
   twice books once) apart from the device's chain in ``records``;
3. or dismisses one that is not a sale anyone paid for (:func:`dismiss`), with a reason.

Every resolution names who made it and why, in the audit log too (same transaction).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.reconcile.reconciler import Incoming, Reconciler, _Apply, flush_budgets
from cloud_broker.registry import devices as registry
from edge.core import record as R
from edge.errors import ConfigError, ProtocolError, SignatureError
from edge.protocol import checkpoints
from edge.protocol.record import Record, parse
from edge.sanitize import clean

# quarantine codes of records a registered device signed validly: possibly paid sales
ADMISSIBLE = ("conflict", "broken_chain", "orphaned", "revoked")
_IN_ADMISSIBLE = "('conflict', 'broken_chain', 'orphaned', 'revoked')"


class ResolveError(ConfigError):
    """A quarantine row that cannot be admitted or dismissed as asked."""

    def __init__(self, qid: int, en: str, fa: str) -> None:
        super().__init__(f"quarantine #{qid}", en)
        self.fa = fa


@dataclass(frozen=True, slots=True)
class Admitted:
    qid: int
    device: str
    seq: int
    kind: str
    journal: int | None  # None: the same record was in the ledger already


def _row(tx: Tx, qid: int) -> tuple[str | None, int | None, str, bytes, object]:
    row = tx.one("SELECT device, seq, code, raw, resolved_at FROM quarantine WHERE id = ?", (qid,))
    if row is None:
        raise ResolveError(qid, "no such quarantine entry", "چنین موردی در قرنطینه نیست")
    if row[4] is not None:
        raise ResolveError(qid, "already resolved", "این مورد قبلاً رسیدگی شده است")
    return row[0], row[1], str(row[2]), bytes(row[3]), row[4]


def _resolve(tx: Tx, qid: int, how: str, by: str, note: str) -> None:
    tx.execute(
        "UPDATE quarantine SET resolved_at = ?, resolution = ?, resolved_by = ?, "
        "resolution_note = ? WHERE id = ?",
        (int(time.time() * 1000), how, by, note, qid),
    )
    action = "quarantine.admit" if how == "admitted" else "quarantine.dismiss"
    audit.record(tx, by, action, f"quarantine:{qid}", {}, note)


def _note(by: str, reason: str) -> tuple[str, str]:
    by, reason = clean(by, 64).strip(), clean(reason, 500).strip()
    if not by or not reason:
        raise ConfigError("reason", "who resolves it and why are both required")
    return by, reason


def admit(rc: Reconciler, qid: int, by: str, reason: str) -> Admitted:
    """Book quarantined record ``qid`` in the ledger (see the module docstring)."""
    by, reason = _note(by, reason)

    def step(tx: Tx) -> Admitted:
        _device, _seq, code, raw, _ = _row(tx, qid)
        if code not in ADMISSIBLE:
            raise ResolveError(
                qid,
                f"a {code} entry is not a validly signed record of a registered device; "
                "only those can be admitted",
                "فقط رکوردهای دارای امضای معتبر یک دستگاه ثبت‌شده پذیرفتنی است",
            )
        rec = _verified(tx, qid, raw)
        if any(  # applied, admitted, or either in a month archived since
            tx.one(f"SELECT 1 FROM {table} WHERE hash = ?", (rec.hash,))
            for table in ("records", "admitted", "archived_hashes")
        ):
            _resolve(tx, qid, "admitted", by, f"already in the ledger; {reason}")
            return Admitted(qid, rec.device, rec.seq, rec.type, None)
        a = _Apply(rc, tx, int(time.time() * 1000))
        tenant = str(rec.payload[R.K_TENANT])
        member = a.member_of(rec.payload)
        if member:
            a.books.ensure_members(tenant, [member])
        if not a.use_rules_of(rec):
            raise ResolveError(
                qid,
                f"head office does not have rules bundle v{rec.payload.get(R.K_RULES)} "
                "that the record names: add it first (cloud_broker rules add)",
                "بسته قوانینی که رکورد نام می‌برد در دفتر مرکزی نیست",
            )
        topic = tx.one("SELECT topic FROM quarantine WHERE id = ?", (qid,))[0]
        jid = a.post(Incoming(str(topic), raw), rec, admitted=True)
        a.books.use(rc.rs)
        flush_budgets(tx, a.rule_use, a.books, rc.rs)
        a.books.flush(a.today)
        a.daily.flush(tx)
        tx.executemany("INSERT INTO stream (tenant, store, body) VALUES (?, ?, ?)", a.stream)
        tx.execute(
            "INSERT INTO admitted (hash, device, seq, tenant, store, type, member, "
            "quarantine_id, journal_id, admitted_at, admitted_by, reason, raw) VALUES "
            "(?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                rec.hash,
                rec.device,
                rec.seq,
                tenant,
                str(rec.payload[R.K_STORE]),
                rec.type,
                member,
                qid,
                jid,
                int(time.time() * 1000),
                by,
                reason,
                raw,
            ),
        )
        _resolve(tx, qid, "admitted", by, reason)
        return Admitted(qid, rec.device, rec.seq, rec.type, jid)

    return rc.db.run(step)


def _verified(tx: Tx, qid: int, raw: bytes) -> Record:
    try:
        u = parse(raw)
    except ProtocolError as e:
        raise ResolveError(qid, f"the record does not parse: {e}", "رکورد خوانا نیست") from e
    info = registry.load(tx, u.device)
    key = info.key_for(u.seq) if info is not None else None
    if key is None:
        raise ResolveError(qid, f"no key of {u.device} for seq {u.seq}", "کلید دستگاه پیدا نشد")
    try:
        return u.verify(key)
    except SignatureError as e:
        raise ResolveError(qid, "the signature does not verify", "امضا معتبر نیست") from e


def dismiss(db: Database, qid: int, by: str, reason: str) -> None:
    """Close quarantined entry ``qid`` without booking it (it was no paid sale)."""
    by, reason = _note(by, reason)

    def step(tx: Tx) -> None:
        _row(tx, qid)
        _resolve(tx, qid, "dismissed", by, reason)

    db.run(step)


def open_entries(db: Database, device: str | None = None) -> list[dict[str, object]]:
    """Unresolved quarantine entries that may be paid sales (``ledger check`` fails on
    them), oldest first."""
    sql = (
        "SELECT id, received_at, device, seq, code, reason FROM quarantine WHERE resolved_at "
        "IS NULL AND code IN " + _IN_ADMISSIBLE
    )
    params: list[object] = []
    if device is not None:
        sql += " AND device = ?"
        params.append(device)
    rows = db.read(sql + " ORDER BY id", params)
    keys = ("id", "received_at", "device", "seq", "code", "reason")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def checkpoint(db: Database, device: str, key: Ed25519PrivateKey) -> bytes:
    """Sign what head office holds of ``device``'s chain (see edge.protocol.checkpoints);
    its records held behind a gap are moved to quarantine as ``orphaned`` first."""

    def step(tx: Tx) -> checkpoints.Checkpoint:
        row = tx.one(
            "SELECT tenant, store, applied_through, last_hash FROM devices WHERE device = ?",
            (device,),
        )
        if row is None:
            raise ConfigError("device", f"{device!r} is not registered")
        tenant, store, applied, last_hash = str(row[0]), str(row[1]), int(row[2]), row[3]
        now = int(time.time() * 1000)
        tx.execute(
            "INSERT INTO quarantine (received_at, topic, device, seq, code, reason, raw) "
            "SELECT ?, ?, device, seq, 'orphaned', ?, raw FROM held WHERE device = ? "
            "ORDER BY seq",
            (
                now,
                f"loyalty/v1/{tenant}/records/{store}/{device}",
                "held behind a gap the reinstalled terminal can no longer fill",
                device,
            ),
        )
        tx.execute("DELETE FROM held WHERE device = ?", (device,))
        received = []
        for (raw,) in tx.all(
            "SELECT raw FROM quarantine WHERE device = ? AND code IN "
            + _IN_ADMISSIBLE
            + " ORDER BY id",
            (device,),
        ):
            try:
                received.append(_verified(tx, 0, bytes(raw)).hash)
            except ResolveError:
                continue
        return checkpoints.Checkpoint(
            tenant,
            store,
            device,
            applied,
            bytes(last_hash) if last_hash else R.ZERO_HASH,
            tuple(dict.fromkeys(received)),
            now,
        )

    return checkpoints.sign(db.run(step), key)
