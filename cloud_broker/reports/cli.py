"""``python -m cloud_broker reports``: the nightly scores, and any report as CSV.

    python -m cloud_broker reports refresh          (RFM, segments, churn and value: nightly)
    python -m cloud_broker reports sales --from 1405/09/01 --to 1405/09/30 --by week [--store S]
    python -m cloud_broker reports categories|skus|stores --from ... --to ...
    python -m cloud_broker reports kpis [--from ... --to ...] [--json]

Tables go to standard output as CSV (``--xlsx FILE`` writes a workbook instead).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud_broker.club import today as today_
from cloud_broker.ledger.db import Database
from cloud_broker.reports import export, kpis, periods, sales, scores
from edge.core.ruleset import RuleSet

OpenDb = Callable[[argparse.Namespace], Database]
LoadRules = Callable[[str | None], RuleSet]


def cmd_reports(args: argparse.Namespace, open_db: OpenDb, load_rules: LoadRules) -> int:
    db = open_db(args)
    day = today_.local_day()
    if args.action == "refresh":
        done = scores.refresh(db, day, with_models=not args.no_models)
        print(json.dumps(done))
        return 0
    period = periods.parse_period(args.start, args.end, day)
    f = sales.Filters(store=args.store, category=args.category, tier=args.tier)
    if args.action == "kpis":
        figures = kpis.figures(db, load_rules(args.rules), period, day, args.store)
        for key, value in figures.items():
            print(f"{key:<26} {json.dumps(value, ensure_ascii=False)}")
        return 0
    tables: dict[str, Callable[[], sales.Table]] = {
        "sales": lambda: sales.over_time(db, period, args.by, f),
        "stores": lambda: sales.by_store(db, period, f),
        "categories": lambda: sales.by_category(db, period, f),
        "skus": lambda: sales.by_sku(db, period, f),
    }
    table = tables[args.action]()
    if args.xlsx:
        Path(args.xlsx).write_bytes(export.to_xlsx(table, args.action))
        print(f"wrote {args.xlsx}")
    else:
        sys.stdout.buffer.write(export.to_csv(table)[3:])  # no byte-order mark on a terminal
    return 0


def add_parsers(sub: Any, open_db: OpenDb, load_rules: LoadRules) -> None:
    p = sub.add_parser("reports", help="the nightly scores; reports as CSV or XLSX")
    p.add_argument("action", choices=["refresh", "sales", "stores", "categories", "skus", "kpis"])
    p.add_argument("--from", dest="start", help="first day, Jalali (default: this month's first)")
    p.add_argument("--to", dest="end", help="last day, Jalali (default: today)")
    p.add_argument("--by", default="day", choices=periods.GRAINS)
    p.add_argument("--store")
    p.add_argument("--category")
    p.add_argument("--tier", help="a tier id; '' for anonymous customers")
    p.add_argument("--xlsx", help="write a workbook to this file instead of CSV")
    p.add_argument("--no-models", action="store_true", help="refresh: RFM only, no BG/NBD")
    p.set_defaults(fn=lambda a: cmd_reports(a, open_db, load_rules))
