"""``python -m cloud_broker sms``: the message sender, and a look at the outbox.

    python -m cloud_broker sms run --gateway kavenegar --api-key-file /etc/loyalty-ho/sms.key \\
        [--sender 10004346] [--base-url URL] [--worker NAME]
    python -m cloud_broker sms run --gateway log          (development: messages to the log)
    python -m cloud_broker sms status

``run`` reads the ledger's journals for the automated messages, queues today's greetings
and notices, plans the campaigns that are due, sends at the pace allowed and reads delivery
reports, until SIGTERM.  Several may run (on one ledger, against one gateway account): a
message is claimed by one of them and is never sent twice.  The API key comes from a file
of mode 0600 or from ``$LOYALTY_SMS_API_KEY`` (or ``--api-key-env``), never the ledger.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud_broker.ledger import rulebooks
from cloud_broker.ledger.db import Database
from cloud_broker.messages.gateway import from_config
from cloud_broker.messaging import campaigns, outbox, sender, triggers
from edge.core.ruleset import RuleSet

log = logging.getLogger("cloud_broker.messaging")
OpenDb = Callable[[argparse.Namespace], Database]
LoadRules = Callable[[str | None], RuleSet]


def cmd_sms(args: argparse.Namespace, open_db: OpenDb, load_rules: LoadRules) -> int:
    db = open_db(args)
    if args.action == "status":
        for state, n in sorted(outbox.counts(db).items()):
            print(f"{state:<12} {n:>10,}")
        return 0
    books = rulebooks.RuleBooks(db, seed=load_rules(args.rules))
    gw = from_config(
        args.gateway, base_url=args.base_url,
        api_key_file=Path(args.api_key_file) if args.api_key_file else None,
        api_key_env=args.api_key_env, sender=args.sender,
    )  # fmt: skip
    worker = args.worker or f"{socket.gethostname()}:{os.getpid()}"

    def rules() -> RuleSet:
        books.reload()
        return books.latest

    last_daily = [0.0]

    def jobs() -> None:
        now = outbox.now_ms()
        rs = rules()
        triggers.scan(db, rs, now)
        if time.monotonic() - last_daily[0] > 600:  # idempotent: every row has its key
            last_daily[0] = time.monotonic()
            triggers.daily(db, rs, now)
        campaigns.due(db, now)
        campaigns.feed(db)

    s = sender.Sender(db, gw, rules, worker)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    signal.signal(signal.SIGINT, lambda *_a: stop.set())
    print(f"sending through {gw.name} as {worker}", flush=True)
    try:
        sender.run(s, stop, jobs, reports_every=args.reports_every)
    finally:
        gw.close()
        log.info("stopped: %s", s.stats)
    return 0


def add_parsers(sub: Any, open_db: OpenDb, load_rules: LoadRules) -> None:
    p = sub.add_parser("sms", help="send the messages to members; the outbox")
    p.add_argument("action", choices=["run", "status"])
    p.add_argument("--gateway", default="log", help="kavenegar, ippanel or log (development)")
    p.add_argument("--base-url", help="the gateway's address (a test server, a proxy)")
    p.add_argument("--api-key-file", help="the gateway's API key, in a file of mode 0600")
    p.add_argument("--api-key-env", help="the environment variable holding the key")
    p.add_argument("--sender", help="the account's line to send from")
    p.add_argument("--worker", help="this sender's name in the outbox (default host:pid)")
    p.add_argument("--reports-every", type=float, default=30.0,
                   help="seconds between reads of the delivery reports")  # fmt: skip
    p.set_defaults(fn=lambda a: cmd_sms(a, open_db, load_rules))
