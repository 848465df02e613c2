"""``python -m cloud_broker tax``: the tax id, each store's taxpayer, product ids, the sender.

    python -m cloud_broker tax taxid --memory-id DEF5GH --date 2020-07-20 --serial 12
    python -m cloud_broker tax store STORE --memory-id A1B2C3 --economic-code 14003778990 \\
        --key /etc/loyalty-ho/tax/STORE.key --cert /etc/loyalty-ho/tax/STORE.crt
    python -m cloud_broker tax product sku|category CODE --sstid 2720000166053 [--vat 10]
    python -m cloud_broker tax run --base-url https://tp.tax.gov.ir   (until SIGTERM)
    python -m cloud_broker tax status
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud_broker.club import operators
from cloud_broker.invoicing import mapping, queue
from cloud_broker.ledger.db import Database
from cloud_broker.tax.client import PRODUCTION_URL, MoadianClient
from cloud_broker.tax.keys import load_credentials
from cloud_broker.tax.taxid import make_tax_id

log = logging.getLogger("cloud_broker.invoicing")
OpenDb = Callable[[argparse.Namespace], Database]


class Clients:
    """One client per store (its own memory id, key and certificate), made on first use."""

    def __init__(self, db: Database, base_url: str, timeout: float) -> None:
        self.db, self.base_url, self.timeout = db, base_url, timeout
        self.made: dict[str, MoadianClient] = {}

    def __call__(self, store: str) -> MoadianClient:
        if store not in self.made:
            s = next(x for x in mapping.stores(self.db) if x["store"] == store)
            creds = load_credentials(Path(s["key_file"]), Path(s["cert_file"]))
            self.made[store] = MoadianClient(
                self.base_url,
                s["memory_id"],
                creds.private_key,
                creds.certificate,
                timeout=self.timeout,
            )
        return self.made[store]

    def close(self) -> None:
        for c in self.made.values():
            c.close()


def run(
    db: Database,
    clients: Callable[[str], MoadianClient],
    stop: threading.Event,
    every_s: float = 5.0,
) -> None:
    """Queue, send and ask, until ``stop``."""
    while not stop.is_set():
        busy = 0
        try:
            busy += queue.scan(db)
            busy += queue.send_due(db, clients)
            busy += queue.inquire(db, clients)
        except Exception:
            log.exception("tax step failed (tried again)")
        if not busy:
            stop.wait(every_s)


def cmd_tax(args: argparse.Namespace, open_db: OpenDb) -> int:
    if args.action == "taxid":
        day = dt.date.fromisoformat(args.date)
        print(make_tax_id(args.memory_id, day, args.serial))
        return 0
    db = open_db(args)
    me = operators.command_line(args.by)
    if args.action == "store":
        mapping.set_store(db, me, args.arg, args.memory_id, args.economic_code, args.key, args.cert)
        print(f"store {args.arg}: invoices from now on go to the tax system")
    elif args.action == "product":
        mapping.set_product(
            db,
            me,
            args.arg,
            args.code,
            args.sstid or "",
            args.description or "",
            None if args.vat is None else round(args.vat * 100),
        )
        print("saved")
    elif args.action == "status":
        for row in queue.counts(db, 0, 10**7)[:60]:
            states = " ".join(f"{k}={row[k]}" for k in queue.STATES if row[k])
            print(f"{row['store']:<10} day {row['day']}  {states}")
    else:
        clients = Clients(db, args.base_url, args.timeout)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_a: stop.set())
        signal.signal(signal.SIGINT, lambda *_a: stop.set())
        print(f"sending tax invoices to {args.base_url}", flush=True)
        try:
            run(db, clients, stop, args.every)
        finally:
            clients.close()
    return 0


def add_parsers(sub: Any, open_db: OpenDb) -> None:
    p = sub.add_parser("tax", help="tax invoices: the tax id, taxpayers, product ids, sender")
    p.add_argument("action", choices=["taxid", "store", "product", "run", "status"])
    p.add_argument("arg", nargs="?", help="store: the store id; product: sku or category")
    p.add_argument("code", nargs="?", help="product: the SKU or the product group")
    p.add_argument("--memory-id")
    p.add_argument("--date", help="taxid: the sale's local day, YYYY-MM-DD")
    p.add_argument("--serial", type=int)
    p.add_argument("--economic-code")
    p.add_argument("--key", help="store: the taxpayer's private key (PEM, mode 0600)")
    p.add_argument("--cert", help="store: the taxpayer's certificate (PEM)")
    p.add_argument("--sstid", help="product: the 13-digit product or service id")
    p.add_argument("--description")
    p.add_argument("--vat", type=float, help="product: the VAT rate in percent (default 10)")
    p.add_argument("--base-url", default=PRODUCTION_URL)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--every", type=float, default=5.0, help="run: seconds between idle passes")
    p.add_argument("--by")
    p.set_defaults(fn=lambda a: cmd_tax(a, open_db))
