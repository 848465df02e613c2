"""``python -m cloud_broker archive``: the ledger's months, archived and not.

python -m cloud_broker archive month 1404-01 --dir /var/lib/loyalty-ho/archive
python -m cloud_broker archive list [--json]
python -m cloud_broker archive verify /var/lib/loyalty-ho/archive/ledger-1404-01.cbor.gz
python -m cloud_broker archive partitions      (PostgreSQL: make the coming months')
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud_broker.ledger import archive, partitions
from cloud_broker.ledger.db import Database

OpenDb = Callable[[argparse.Namespace], Database]
Actor = Callable[[str | None], str]  # --by (or None) -> the name the audit log records


def add_parsers(sub: Any, open_db: OpenDb, actor: Actor) -> None:
    p = sub.add_parser("archive", help="archive old months of the ledger; list and verify")
    p.add_argument("action", choices=["month", "list", "verify", "partitions"])
    p.add_argument("arg", nargs="?", help="month: a Jalali month (1404-01); verify: a file")
    p.add_argument("--dir", type=Path, help="month: where the archive files go")
    p.add_argument("--keep-months", type=int, default=archive.KEEP_MONTHS,
                   help="month: months before this one kept online (default 12)")  # fmt: skip
    p.add_argument("--by", help="who archives (the audit log; default cli:<login>)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=lambda a: cmd_archive(a, open_db, actor))


def _fail(en: str, fa: str) -> int:
    print(f"error: {en}\nخطا: {fa}")
    return 2


def cmd_archive(args: argparse.Namespace, open_db: OpenDb, actor: Actor) -> int:
    db = open_db(args)
    if args.action == "list":
        return _list(db, args.json)
    if args.action == "partitions":
        made = db.run(lambda tx: partitions.ensure(tx, int(time.time() * 1000)))
        print("made " + (", ".join(made) if made else "nothing (all there, or not PostgreSQL)"))
        return 0
    if not args.arg:
        return _fail(f"archive {args.action} needs its argument",
                     f"archive {args.action} آرگومان لازم دارد")  # fmt: skip
    if args.action == "verify":
        return _verify(db, Path(args.arg))
    return _month(db, args, actor(args.by))


def _month(db: Database, args: argparse.Namespace, who: str) -> int:
    try:
        month = partitions.parse_month(args.arg)
    except ValueError as e:
        return _fail(str(e), f"{args.arg!r} ماه شمسی نیست؛ مانند ۱۴۰۴-۰۱ بنویسید")
    if args.dir is None:
        return _fail("archive month needs --dir", "archive month به --dir نیاز دارد")
    done = archive.archive_month(db, month, args.dir, who, keep_months=args.keep_months)
    counts = ", ".join(f"{t} {n:,}" for t, n in done.counts.items())
    print(f"archived {done.month} to {done.path} ({done.size:,} bytes, sha256 {done.sha256}): "
          + counts)  # fmt: skip
    return 0


def _list(db: Database, as_json: bool) -> int:
    rows = archive.archived(db)
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for r in rows:
        print(f"{r['month']}  {r['file']}  {r['records']:,} records  {r['journals']:,} "
              f"journals  {r['bytes']:,} bytes  sha256 {r['sha256']}")  # fmt: skip
    if not rows:
        print("no month archived yet")
    return 0


def _verify(db: Database, path: Path) -> int:
    if not path.is_file():
        return _fail(f"{path} is not a file", f"{path} فایل نیست")
    known = {r["file"]: r["sha256"] for r in archive.archived(db)}
    header, s = archive.verify(path, known.get(path.name), archive.key_finder(db))
    where = "matches the ledger's SHA-256" if path.name in known else "not in this ledger"
    counts = ", ".join(f"{t} {n:,}" for t, n in s.counts.items())
    print(f"{path.name}: {header['month']} OK, signatures verified ({where}); {counts}")
    return 0
