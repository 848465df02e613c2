"""Archiving a month of the ledger: its rows to a file, what they add up to kept, the rows
gone (on PostgreSQL its partitions detached and dropped).

What is archived: a Jalali month of head office's clock (``cloud_broker.ledger.partitions``)
of ``records``, ``journals``, their ``entries`` and ``lot_moves``, and the ``admitted``
records whose journal is among them.  What stays, because refunds, audits and tax invoices
need it or because it is small:

* everything of the last ``keep_months`` months (12 by default; a terminal refunds within 30
  days, so a refund never needs an archived sale, and if one ever does head office applies
  it with the "refund without its sale" alert it already raises);
* a month with a tax invoice not yet final (accepted or failed) is refused;
* members, lots, tiers, coupons, the daily and monthly report tables, the audit log, tax
  invoices, quarantine, devices and their keys are never archived;
* what the archived rows add up to: ``archived_balances`` (each account's sum per unit),
  ``archived_lots`` (each lot's moves), ``archived_chains`` (each device's last archived
  record: seq, hash, count), so ``ledger check`` still proves every balance and chain;
* ``archived_months``: the file's name, its SHA-256, size and row counts.

The file (``ledger-1404-08.cbor.gz``) is gzip of length-prefixed canonical CBOR frames: a
header, chunks of rows ``[table, [row, ...]]``, and a trailer with the counts.  It is written
and read back (counts, chains, every record's hash) before the database forgets anything; the
rows are deleted in one transaction that first checks they are still what the file holds.
:func:`verify` checks a file again later, and with the ledger's device keys every record's
signature too.  Months are archived oldest first.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx, chunks, marks
from cloud_broker.ledger.partitions import KEYS, Month, existing, month_of_ms, partitioned
from edge.errors import LedgerError
from edge.protocol import record as records_mod
from edge.protocol.record import record_hash

FORMAT = "loyalty-ledger-archive"
VERSION = 1
KEEP_MONTHS = 12
MIN_KEEP_MONTHS = 2
PAGE = 2000  # journals read (with their entries and moves) per query

COLUMNS = {
    "records": (
        "device", "seq", "hash", "prev", "tenant", "store", "type", "member", "device_time",
        "offline", "journal_id", "received_at", "raw",
    ),
    "journals": ("id", "tenant", "kind", "device", "seq", "member", "day", "at"),
    "entries": ("journal_id", "account", "unit", "amount", "at"),
    "lot_moves": ("id", "journal_id", "lot_id", "points", "ref_journal", "at"),
    "admitted": (
        "hash", "device", "seq", "tenant", "store", "type", "member", "quarantine_id",
        "journal_id", "admitted_at", "admitted_by", "reason", "raw",
    ),
}  # fmt: skip
TABLES = tuple(COLUMNS)


class ArchiveError(LedgerError):
    """A month that cannot be archived (yet), or an archive file that does not verify."""

    def __init__(self, en: str, fa: str) -> None:
        super().__init__(en, fa)


@dataclass(slots=True)
class Summary:
    """What a month's rows add up to: the counts, and what ``ledger check`` needs kept."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    balances: dict[tuple[str, str], int] = field(default_factory=dict)
    lots: dict[int, int] = field(default_factory=dict)
    chains: dict[str, tuple[int, int, bytes, int]] = field(default_factory=dict)
    last_day: int | None = None
    problems: list[str] = field(default_factory=list)

    def add(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        self.counts[table] += len(rows)
        if table == "entries":
            self._entries(rows)
        elif table == "lot_moves":
            for r in rows:
                self.lots[int(r[2])] = self.lots.get(int(r[2]), 0) + int(r[3])
        elif table == "journals":
            for r in rows:
                self.last_day = max(self.last_day or int(r[6]), int(r[6]))
        elif table == "admitted":
            for r in rows:
                if record_hash(bytes(r[12])) != bytes(r[0]):
                    self.problems.append(f"admitted {r[1]} seq {r[2]}: its bytes do not hash")
        elif table == "records":
            for r in rows:  # in (device, seq) order
                d, seq, h, prev, raw = str(r[0]), int(r[1]), bytes(r[2]), bytes(r[3]), r[12]
                if record_hash(bytes(raw)) != h:
                    self.problems.append(f"{d} seq {seq}: its bytes do not hash to its hash")
                have = self.chains.get(d)
                if have is not None and (seq != have[1] + 1 or prev != have[2]):
                    self.problems.append(f"{d} seq {seq} does not follow seq {have[1]}")
                first = have[0] if have else seq
                self.chains[d] = (first, seq, h, (have[3] if have else 0) + 1)

    def _entries(self, rows: list[tuple[Any, ...]]) -> None:
        """A page of entries: it holds whole journals' entries, each must balance."""
        per: dict[tuple[int, str], int] = {}
        for r in rows:
            k = (str(r[1]), str(r[2]))
            self.balances[k] = self.balances.get(k, 0) + int(r[3])
            j = (int(r[0]), str(r[2]))
            per[j] = per.get(j, 0) + int(r[3])
        self.problems += [
            f"journal {j}: {u} entries add up to {v}" for (j, u), v in sorted(per.items()) if v
        ]


@dataclass(frozen=True, slots=True)
class Archived:
    month: str
    path: Path
    sha256: str
    size: int
    counts: dict[str, int]


# -- reading a month ----------------------------------------------------------------------


def _between(key: str, m: Month) -> str:
    return f"{key} >= {m.lo} AND {key} < {m.hi}"


def _pages(tx: Tx, m: Month) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """The month's rows, table by table, a page at a time (records in chain order)."""
    cols = ", ".join(COLUMNS["records"])
    after: tuple[str, int] = ("", 0)
    while True:
        rows = [
            tuple(r)
            for r in tx.all(
                f"SELECT {cols} FROM records WHERE {_between('received_at', m)} AND "
                f"(device > ? OR (device = ? AND seq > ?)) ORDER BY device, seq LIMIT {PAGE}",
                (after[0], after[0], after[1]),
            )
        ]
        if not rows:
            break
        yield "records", rows
        after = (str(rows[-1][0]), int(rows[-1][1]))
    last = -1
    while True:
        journals = [
            tuple(r)
            for r in tx.all(
                f"SELECT {', '.join(COLUMNS['journals'])} FROM journals WHERE "
                f"{_between('at', m)} AND id > ? ORDER BY id LIMIT {PAGE}",
                (last,),
            )
        ]
        if not journals:
            break
        yield "journals", journals
        ids = [int(j[0]) for j in journals]
        last = ids[-1]
        for table, order in (("entries", "journal_id, account, unit"), ("lot_moves", "id"),
                             ("admitted", "journal_id")):  # fmt: skip
            within = f" AND {_between('at', m)}" if table != "admitted" else ""
            rows = []
            for part in chunks(ids):
                rows += [
                    tuple(r)
                    for r in tx.all(
                        f"SELECT {', '.join(COLUMNS[table])} FROM {table} WHERE "
                        f"journal_id IN ({marks(len(part))}){within} ORDER BY {order}",
                        part,
                    )
                ]
            if rows:
                yield table, rows


def _counts(tx: Tx, m: Month) -> dict[str, int]:
    out = {
        t: int(tx.one(f"SELECT COUNT(*) FROM {t} WHERE {_between(k, m)}")[0])
        for t, k in KEYS.items()
    }
    out["admitted"] = int(
        tx.one(
            "SELECT COUNT(*) FROM admitted a WHERE EXISTS (SELECT 1 FROM journals j WHERE "
            f"j.id = a.journal_id AND {_between('j.at', m)})"
        )[0]
    )
    return out


# -- the file -----------------------------------------------------------------------------


def _frame(obj: Any) -> bytes:
    body = cbor2.dumps(obj, canonical=True)
    return struct.pack(">I", len(body)) + body


def _frames(path: Path) -> Iterator[Any]:
    """The file's frames; a damaged file (gzip's CRC or length at its end included) is an
    ArchiveError, never a decoder's exception."""
    try:
        with gzip.open(path, "rb") as f:
            while True:
                head = f.read(4)
                if not head:
                    return
                if len(head) != 4:
                    raise ArchiveError(f"{path.name}: cut short", f"{path.name}: ناقص است")
                (n,) = struct.unpack(">I", head)
                body = f.read(n)
                if len(body) != n:
                    raise ArchiveError(f"{path.name}: cut short", f"{path.name}: ناقص است")
                yield cbor2.loads(body)
    except (OSError, EOFError, zlib.error, cbor2.CBORDecodeError) as e:
        raise ArchiveError(
            f"{path.name}: damaged ({type(e).__name__}: {e})", f"{path.name}: آسیب دیده است"
        ) from None


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def read(path: Path) -> tuple[dict[str, Any], Summary, Iterator[tuple[str, list[Any]]]]:
    """Open an archive: its header, and a reader of its row chunks that fills a
    :class:`Summary` as it goes (compare ``summary.counts`` with the trailer's after)."""
    frames = _frames(path)
    try:
        header = next(frames)
    except StopIteration:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArchiveError(
            f"{path.name} is not a ledger archive", f"{path.name} بایگانی دفتر کل نیست"
        )
    if header.get("version") != VERSION:
        raise ArchiveError(
            f"{path.name}: archive version {header.get('version')!r} is not {VERSION}",
            f"{path.name}: نسخهٔ بایگانی {header.get('version')!r} پشتیبانی نمی‌شود",
        )
    s = Summary()

    def rows() -> Iterator[tuple[str, list[Any]]]:
        for fr in frames:
            if isinstance(fr, dict) and "counts" in fr:
                header["trailer"] = fr["counts"]
                for _ in frames:  # read to the end, where gzip checks its CRC
                    raise ArchiveError(
                        f"{path.name}: data after the trailer",
                        f"{path.name}: داده‌ای پس از پایان بایگانی هست",
                    )
                return
            table, chunk = fr
            s.add(table, [tuple(r) for r in chunk])
            yield table, chunk
        raise ArchiveError(f"{path.name}: no trailer", f"{path.name}: پایان بایگانی ناپیداست")

    return header, s, rows()


def verify(
    path: Path,
    sha256: str | None = None,
    key_for: Callable[[str, int], Ed25519PublicKey | None] | None = None,
) -> tuple[dict[str, Any], Summary]:
    """Read an archive through: its counts against its trailer, each device's records
    contiguous and chained, each record's bytes against its hash; ``sha256``: the file's
    digest as the ledger recorded it; ``key_for(device, seq)``: the key to check each
    record's signature with.  ArchiveError names the first problem."""
    if sha256 is not None and _sha256(path)[0] != sha256:
        raise ArchiveError(
            f"{path.name}: its SHA-256 is not the one the ledger recorded (changed or damaged)",
            f"{path.name}: چکیدهٔ SHA-256 با آنچه دفتر کل ثبت کرده یکی نیست (تغییر کرده یا "
            "آسیب دیده)",
        )
    header, s, chunks_ = read(path)
    for table, chunk in chunks_:
        if table in ("records", "admitted") and key_for is not None:
            for r in chunk:
                d, seq = (r[0], r[1]) if table == "records" else (r[1], r[2])
                key = key_for(str(d), int(seq))
                try:
                    if key is None:
                        raise ValueError("no key")
                    records_mod.parse(bytes(r[12])).verify(key)
                except Exception as e:  # noqa: BLE001 - any failure is the same finding
                    s.problems.append(f"{d} seq {seq}: signature does not verify ({e})")
    if header.get("trailer") != s.counts:
        s.problems.append(f"counts {s.counts} are not the trailer's {header.get('trailer')}")
    if s.problems:
        raise ArchiveError(
            f"{path.name}: {s.problems[0]}" + (f" (+{len(s.problems) - 1} more)"
                                               if len(s.problems) > 1 else ""),
            f"{path.name}: بایگانی درست نیست: {s.problems[0]}",
        )  # fmt: skip
    return header, s


# -- archiving ----------------------------------------------------------------------------


def _refuse(en: str, fa: str) -> ArchiveError:
    return ArchiveError(en, fa)


def _preconditions(tx: Tx, m: Month, now_ms: int, keep_months: int) -> None:
    newest = month_of_ms(now_ms)
    for _ in range(keep_months):
        newest = newest.prev()
    if (m.year, m.month) >= (newest.year, newest.month):
        raise _refuse(
            f"{m.label} is within the last {keep_months} months kept online (the latest "
            f"that may be archived now is {newest.prev().label})",
            f"{m.label} در {keep_months} ماه اخیر است که باید در دسترس بماند (آخرین ماهی "
            f"که اکنون می‌شود بایگانی کرد {newest.prev().label} است)",
        )
    if tx.one("SELECT 1 FROM archived_months WHERE month = ?", (m.first_day,)):
        raise _refuse(f"{m.label} is archived already", f"{m.label} پیش‌تر بایگانی شده است")
    for table, key in KEYS.items():
        row = tx.one(f"SELECT MIN({key}) FROM {table}")
        if row[0] is not None and int(row[0]) < m.lo:
            older = month_of_ms(int(row[0])).label
            raise _refuse(
                f"{table} still holds {older}: months are archived oldest first",
                f"{table} هنوز ردیف‌های {older} را دارد: ماه‌ها از قدیمی‌ترین بایگانی می‌شوند",
            )
    open_tax = int(
        tx.one(
            "SELECT COUNT(*) FROM tax_invoices t JOIN records r ON r.device = t.device AND "
            f"r.seq = t.seq WHERE {_between('r.received_at', m)} AND t.state != 'accepted'"
        )[0]
    )
    if open_tax:
        raise _refuse(
            f"{m.label} has {open_tax} tax invoice(s) the tax system has not accepted: send or "
            "settle them first",
            f"{m.label} {open_tax} صورتحساب مالیاتی نهایی‌نشده دارد: نخست آن‌ها را بفرستید یا "
            "تعیین تکلیف کنید",
        )
    late = []  # each device's records of the month are a prefix of what is left of its chain
    for d, top in tx.all(
        f"SELECT device, MAX(seq) FROM records WHERE {_between('received_at', m)} "
        "GROUP BY device ORDER BY device"
    ):
        if tx.one(
            f"SELECT 1 FROM records WHERE device = ? AND seq < ? AND received_at >= {m.hi} LIMIT 1",
            (d, top),
        ):
            late.append((d,))
    if late:
        names = ", ".join(str(r[0]) for r in late[:5])
        raise _refuse(
            f"records of {names} in {m.label} are not a prefix of their chains (a later "
            "month holds an earlier seq): not archived",
            f"رکوردهای {names} در {m.label} پیشوند زنجیره‌شان نیستند: بایگانی نشد",
        )


def archive_month(
    db: Database,
    m: Month,
    directory: Path,
    actor: str,
    *,
    keep_months: int = KEEP_MONTHS,
    now_ms: int | None = None,
) -> Archived:
    """Archive month ``m`` into ``directory`` (see the module docstring)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if keep_months < MIN_KEEP_MONTHS:
        raise _refuse(
            f"--keep-months {keep_months}: at least {MIN_KEEP_MONTHS} months stay online "
            "(refunds and tax invoices of last month still need their sales)",
            f"--keep-months {keep_months}: دست‌کم {MIN_KEEP_MONTHS} ماه باید در دسترس بماند",
        )
    db.run(lambda tx: _preconditions(tx, m, now, keep_months), write=False)
    path, tmp = _target(directory, m)

    def write(tx: Tx) -> Summary:
        s = Summary()
        with gzip.open(tmp, "wb", compresslevel=6) as f:
            f.write(_frame({"format": FORMAT, "version": VERSION, "month": m.label,
                            "lo": m.lo, "hi": m.hi, "columns": {t: list(c) for t, c in
                            COLUMNS.items()}, "written_at": now}))  # fmt: skip
            for table, rows in _pages(tx, m):
                s.add(table, rows)
                f.write(_frame([table, [list(r) for r in rows]]))
            f.write(_frame({"counts": s.counts}))
            f.flush()
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        return s

    written = db.run(write, write=False)  # one snapshot: the file is one moment
    if written.problems:
        tmp.unlink(missing_ok=True)
        raise _refuse(
            f"{m.label} not archived: {written.problems[0]}",
            f"{m.label} بایگانی نشد: {written.problems[0]}",
        )
    _, again = verify(tmp)  # read back from the disk before anything is forgotten
    if again.counts != written.counts or again.balances != written.balances:
        tmp.unlink(missing_ok=True)
        raise _refuse(f"{tmp.name} did not read back as written", f"{tmp.name} همان‌گونه خوانده نشد")
    try:
        os.link(tmp, path)  # unlike a rename, never replaces a file
    except FileExistsError:
        raise _refuse(
            f"{path} appeared while this run wrote (another archiver?): not archived",
            f"{path} هنگام نوشتن پدید آمد (بایگانی‌کنندهٔ دیگری؟): بایگانی نشد",
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(directory)
    digest, size = _sha256(path)

    def forget(tx: Tx) -> None:
        if tx.dialect == "postgresql":  # no row of the month may come between count and drop
            tx.execute("LOCK TABLE records, journals, entries, lot_moves, admitted IN SHARE MODE")
        _preconditions(tx, m, now, keep_months)
        if _counts(tx, m) != written.counts:
            raise _refuse(
                f"{m.label} changed while it was written: archive it again",
                f"{m.label} هنگام نوشتن تغییر کرد: دوباره بایگانی کنید",
            )
        _carry(tx, written)
        tx.execute(
            "INSERT INTO archived_months (month, label, lo, hi, file, sha256, bytes, records, "
            "journals, entries, lot_moves, admitted, last_day, archived_at, actor) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (m.first_day, m.label, m.lo, m.hi, path.name, digest, size,
             *(written.counts[t] for t in TABLES), written.last_day, now, actor),
        )  # fmt: skip
        _keep_hashes(tx, m)
        _drop(tx, m)
        audit.record(
            tx, actor, "ledger.archive", m.label,
            {"file": path.name, "sha256": digest, "bytes": size, **written.counts},
        )  # fmt: skip

    db.run(forget)
    return Archived(m.label, path, digest, size, dict(written.counts))


def _target(directory: Path, m: Month) -> tuple[Path, Path]:
    """The month's file (which must not exist) and this run's own temporary file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"ledger-{m.label}.cbor.gz"
    if path.exists():  # another run's, another ledger's, or a run stopped before it forgot
        raise _refuse(
            f"{path} exists already: move it away first (it may be the only copy of a month)",
            f"{path} از پیش هست: نخست آن را جابه‌جا کنید (شاید تنها نسخهٔ یک ماه باشد)",
        )
    fd, name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    return path, Path(name)  # two runs never write one file


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _carry(tx: Tx, s: Summary) -> None:
    """Add what the month's rows add up to to the ``archived_*`` tables."""
    tx.executemany(
        "INSERT INTO archived_balances (account, unit, amount) VALUES (?, ?, ?) ON CONFLICT "
        "(account, unit) DO UPDATE SET amount = archived_balances.amount + excluded.amount",
        [(a, u, v) for (a, u), v in sorted(s.balances.items())],
    )
    tx.executemany(
        "INSERT INTO archived_lots (lot_id, points) VALUES (?, ?) ON CONFLICT (lot_id) DO "
        "UPDATE SET points = archived_lots.points + excluded.points",
        sorted(s.lots.items()),
    )
    for d, (first, last, h, n) in sorted(s.chains.items()):
        row = tx.one("SELECT through_seq FROM archived_chains WHERE device = ?", (d,))
        if first != (int(row[0]) if row else 0) + 1:
            raise _refuse(
                f"{d}: the archive starts at seq {first}, not after the last one archived",
                f"{d}: بایگانی از seq {first} شروع می‌شود، نه پس از آخرین بایگانی‌شده",
            )
        tx.execute(
            "INSERT INTO archived_chains (device, through_seq, last_hash, records) VALUES "
            "(?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET through_seq = excluded.through_seq, "
            "last_hash = excluded.last_hash, records = archived_chains.records + excluded.records",
            (d, last, h, n),
        )


def _keep_hashes(tx: Tx, m: Month) -> None:
    """Keep the month's record hashes (about 100 bytes a record with the index): a record
    sent again later is still compared with what was applied at its seq, and an admitted
    record is not admitted a second time."""
    tx.execute(
        "INSERT INTO archived_hashes (device, seq, hash, admitted) SELECT device, seq, hash, 0 "
        f"FROM records WHERE {_between('received_at', m)}"
    )
    tx.execute(
        "INSERT INTO archived_hashes (device, seq, hash, admitted) SELECT a.device, a.seq, "
        "a.hash, 1 FROM admitted a JOIN journals j ON j.id = a.journal_id WHERE "
        f"{_between('j.at', m)}"
    )


def _drop(tx: Tx, m: Month) -> None:
    """Forget the month's rows: PostgreSQL detaches and drops its partitions (and deletes
    any of its rows in the default partitions); SQLite deletes them."""
    tx.execute(
        "DELETE FROM admitted WHERE journal_id IN (SELECT id FROM journals WHERE "
        f"{_between('at', m)})"
    )
    whole = partitioned(tx)
    for table, key in KEYS.items():
        if whole and m.table(table) in existing(tx, table):
            tx.execute(f"ALTER TABLE {table} DETACH PARTITION {m.table(table)}")
            tx.execute(f"DROP TABLE {m.table(table)}")
        tx.execute(f"DELETE FROM {table} WHERE {_between(key, m)}")


def archived(db: Database) -> list[dict[str, Any]]:
    """The months archived, oldest first."""
    rows = db.read(
        "SELECT label, file, sha256, bytes, records, journals, entries, lot_moves, admitted, "
        "last_day, archived_at, actor FROM archived_months ORDER BY month"
    )
    keys = ("month", "file", "sha256", "bytes", "records", "journals", "entries",
            "lot_moves", "admitted", "last_day", "archived_at", "actor")  # fmt: skip
    return [dict(zip(keys, r, strict=True)) for r in rows]


def key_finder(db: Database) -> Callable[[str, int], Ed25519PublicKey | None]:
    """``(device, seq) -> key`` from the ledger's device keys (a key from its ``from_seq``)."""
    keys: dict[str, list[tuple[int, bytes]]] = {}
    for d, from_seq, pub in db.read(
        "SELECT device, from_seq, public_key FROM device_keys ORDER BY device, from_seq"
    ):
        keys.setdefault(str(d), []).append((int(from_seq), bytes(pub)))

    def find(device: str, seq: int) -> Ed25519PublicKey | None:
        best = None
        for from_seq, pub in keys.get(device, []):
            if from_seq <= seq:
                best = pub
        return Ed25519PublicKey.from_public_bytes(best) if best is not None else None

    return find
