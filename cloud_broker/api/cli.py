"""``python -m cloud_broker api`` and ``webhooks``: serving the public API, its keys, the
online store device, and the webhook endpoints and dispatcher.

    python -m cloud_broker api serve --listen 127.0.0.1:8500 [--online-dir DIR --online-device ID]
    python -m cloud_broker api keys create NAME --scopes members:read,quote [--rate 600]
    python -m cloud_broker api keys list | revoke ID
    python -m cloud_broker api online-store --dir DIR --tenant T --store S --device online-1
    python -m cloud_broker webhooks add URL --events sale.reconciled,tier.changed
    python -m cloud_broker webhooks list | deliveries [--state failed] | replay ID | disable ID
    python -m cloud_broker webhooks run             (the dispatcher, until SIGTERM)

The webhooks' master key: ``--key-file`` (mode 0600, made on first use) or
``$LOYALTY_WEBHOOK_KEY``.  Keys and secrets are printed once and never stored in clear.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud_broker import keyfile, webserve
from cloud_broker.api import keys, online, webhooks
from cloud_broker.club import operators
from cloud_broker.ledger.db import Database
from edge.core.ruleset import RuleSet

log = logging.getLogger("cloud_broker.api")
OpenDb = Callable[[argparse.Namespace], Database]
LedgerUrl = Callable[[argparse.Namespace], str]
LoadRules = Callable[[str | None], RuleSet]


def _master(args: argparse.Namespace) -> bytes:
    path = Path(args.key_file) if args.key_file else None
    return keyfile.load(path, "LOYALTY_WEBHOOK_KEY", "webhook key", "it signs webhooks")


def cmd_api(args: argparse.Namespace, open_db: OpenDb, ledger_url: LedgerUrl,
            load_rules: LoadRules) -> int:  # fmt: skip
    db = open_db(args)
    me = operators.command_line(getattr(args, "by", None))
    if args.action == "keys":
        if args.what == "create":
            scopes = [s.strip() for s in (args.scopes or "").split(",") if s.strip()]
            kid, key = keys.create(db, me, args.arg or "", scopes, args.rate)
            print(f"key {kid}: {key}\n(shown once: give it to its user now)")
        elif args.what == "revoke":
            keys.revoke(db, me, int(args.arg or 0))
            print("revoked")
        else:
            for k in keys.listing(db):
                state = "revoked" if k["revoked_at"] else "live"
                print(f"{k['id']:>4} lk_{k['prefix']}_…  {state:<8} {','.join(k['scopes']):<40} "
                      f"{k['rate_per_min']}/min  {k['name']}")  # fmt: skip
        return 0
    if args.action == "online-store":
        online.setup(db, Path(args.dir), args.tenant, args.store, args.device)
        print(f"online store device {args.device} registered; key in {args.dir}")
        return 0
    return _serve(args, ledger_url(args), load_rules(args.rules))


def _serve(args: argparse.Namespace, url: str, seed: RuleSet) -> int:
    from cloud_broker.api.app import ApiConfig, create_app  # noqa: PLC0415

    webserve.listen(args.listen)  # a wrong address is refused before anything opens
    cfg = ApiConfig(url, seed, Path(args.online_dir) if args.online_dir else None,
                    args.online_device)  # fmt: skip
    webserve.serve(create_app(cfg), args.listen, "api", "/v1/")
    return 0


def cmd_webhooks(args: argparse.Namespace, open_db: OpenDb) -> int:
    db = open_db(args)
    me = operators.command_line(getattr(args, "by", None))
    if args.action == "add":
        events = [e.strip() for e in (args.events or "").split(",") if e.strip()]
        wid, secret = webhooks.add(db, _master(args), me, args.arg or "", events)
        print(f"webhook {wid}: secret {secret}\n(shown once: the receiver checks "
              "X-Loyalty-Signature with it)")  # fmt: skip
    elif args.action == "list":
        for w in webhooks.listing(db):
            state = "disabled" if w["disabled_at"] else "live"
            print(f"{w['id']:>4} {state:<8} {w['url']}  {','.join(w['events'])}")
    elif args.action == "deliveries":
        for d in webhooks.deliveries(db, args.state):
            print(json.dumps(d, ensure_ascii=False))
    elif args.action == "replay":
        webhooks.replay(db, me, int(args.arg or 0))
        print("queued again")
    elif args.action == "disable":
        webhooks.disable(db, me, int(args.arg or 0))
        print("disabled")
    else:
        master = _master(args)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_a: stop.set())
        signal.signal(signal.SIGINT, lambda *_a: stop.set())
        print("delivering webhooks", flush=True)
        webhooks.run(db, master, stop, every_s=args.every)
    return 0


def add_parsers(sub: Any, open_db: OpenDb, ledger_url: LedgerUrl, load_rules: LoadRules) -> None:
    p = sub.add_parser("api", help="the public API: serve it, its keys, the online store")
    p.add_argument("action", choices=["serve", "keys", "online-store"])
    p.add_argument("what", nargs="?", choices=["create", "list", "revoke"])
    p.add_argument("arg", nargs="?", help="keys create: its name; keys revoke: its id")
    p.add_argument("--listen", default="127.0.0.1:8500")
    p.add_argument("--scopes", help=f"keys create: some of {','.join(keys.SCOPES)}")
    p.add_argument("--rate", type=int, default=600, help="keys create: requests a minute")
    p.add_argument("--online-dir", help="serve: the online store's key and outbox folder")
    p.add_argument("--online-device", help="serve: the online store's device id")
    p.add_argument("--dir", help="online-store: the folder for its key and outbox")
    p.add_argument("--tenant")
    p.add_argument("--store")
    p.add_argument("--device", default="online-1")
    p.add_argument("--by", help="who does it (the audit log); default cli:<login>")
    p.set_defaults(fn=lambda a: cmd_api(a, open_db, ledger_url, load_rules))
    w = sub.add_parser("webhooks", help="webhook endpoints, deliveries, the dispatcher")
    w.add_argument("action", choices=["add", "list", "deliveries", "replay", "disable", "run"])
    w.add_argument("arg", nargs="?", help="add: the URL; replay: a delivery id; disable: an id")
    w.add_argument("--events", help=f"add: some of {','.join(webhooks.EVENTS)}")
    w.add_argument("--state", help="deliveries: queued, delivered, failed")
    w.add_argument("--key-file", help="the master key (mode 0600) the secrets derive from")
    w.add_argument("--every", type=float, default=1.0, help="run: seconds between idle polls")
    w.add_argument("--by", help="who does it (the audit log); default cli:<login>")
    w.set_defaults(fn=lambda a: cmd_webhooks(a, open_db))
