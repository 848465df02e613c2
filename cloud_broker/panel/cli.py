"""``python -m cloud_broker panel``: serve the member panel; ``surveys add``: a survey members
answer in it for points.

    python -m cloud_broker panel --listen 127.0.0.1:8600 --secret-file /etc/loyalty-ho/panel.key \\
        --rules-key-dir /etc/loyalty-ho/rules-keys --gateway kavenegar --api-key-file KEY \\
        [--sender 10004346] [--public-url https://club.example]
    python -m cloud_broker surveys add nps-1405 --question "..." --points 200
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud_broker import keyfile, webserve
from cloud_broker.club import operators
from cloud_broker.ledger.db import Database
from cloud_broker.messages.gateway import from_config
from cloud_broker.panel import surveys
from edge.core.ruleset import RuleSet

OpenDb = Callable[[argparse.Namespace], Database]
LedgerUrl = Callable[[argparse.Namespace], str]
LoadRules = Callable[[str | None], RuleSet]


def cmd_panel(args: argparse.Namespace, open_db: OpenDb, ledger_url: LedgerUrl,
              load_rules: LoadRules) -> int:  # fmt: skip
    from cloud_broker.panel.app import PanelConfig, create_app  # noqa: PLC0415

    webserve.listen(args.listen)  # a wrong address is refused before anything opens
    open_db(args).close()
    secret = keyfile.load(Path(args.secret_file) if args.secret_file else None,
                          "LOYALTY_PANEL_SECRET", "panel secret", "it keys the codes")  # fmt: skip
    gw = from_config(args.gateway, base_url=args.base_url,
                     api_key_file=Path(args.api_key_file) if args.api_key_file else None,
                     api_key_env=args.api_key_env, sender=args.sender)  # fmt: skip
    cfg = PanelConfig(ledger_url(args), secret, gw, load_rules(args.rules),
                      Path(args.rules_key_dir) if args.rules_key_dir else None,
                      args.public_url or "", not args.insecure_cookies)  # fmt: skip
    webserve.serve(create_app(cfg), args.listen, "panel")
    return 0


def cmd_survey(args: argparse.Namespace, open_db: OpenDb) -> int:
    db = open_db(args)
    me = operators.command_line(args.by)
    surveys.add(db, me, args.id, args.question, args.question_en or args.question, args.points)
    print(f"survey {args.id}: {args.points} points, open in the member panel")
    return 0


def add_parsers(sub: Any, open_db: OpenDb, ledger_url: LedgerUrl, load_rules: LoadRules) -> None:
    p = sub.add_parser("panel", help="serve the member panel")
    p.add_argument("--listen", default="127.0.0.1:8600")
    p.add_argument("--secret-file", help="the key of the codes (mode 0600, made on first use)")
    p.add_argument("--rules-key-dir", help="the rules keys: the membership QR is signed with "
                   "the one in force")  # fmt: skip
    p.add_argument("--gateway", default="log", help="kavenegar, ippanel or log")
    p.add_argument("--base-url", help="the gateway's address (a test server, a proxy)")
    p.add_argument("--api-key-file")
    p.add_argument("--api-key-env")
    p.add_argument("--sender")
    p.add_argument("--public-url", help="the panel's public address (referral links)")
    p.add_argument("--insecure-cookies", action="store_true",
                   help="cookies without Secure (plain-HTTP development only)")  # fmt: skip
    p.set_defaults(fn=lambda a: cmd_panel(a, open_db, ledger_url, load_rules))
    s = sub.add_parser("surveys", help="surveys members answer in their panel for points")
    s.add_argument("action", choices=["add"])
    s.add_argument("id")
    s.add_argument("--question", required=True, help="the question, in Persian")
    s.add_argument("--question-en")
    s.add_argument("--points", type=int, required=True)
    s.add_argument("--by")
    s.set_defaults(fn=lambda a: cmd_survey(a, open_db))
