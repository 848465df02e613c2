"""The console's commands: ``console`` (serve it) and ``operators`` (who may log in).

    python -m cloud_broker operators add USERNAME --name NAME --role admin [--password-stdin]
    python -m cloud_broker operators list | disable USERNAME | enable USERNAME
    python -m cloud_broker console --listen 127.0.0.1:8400 [--secret-file var/console.secret]

The first admin is made here, on head office's machine; later ones in the console.  The
password is asked twice on a terminal, or read from standard input with
``--password-stdin`` (scripts); never from the command line, where ``ps`` shows it.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud_broker import webserve
from cloud_broker.club import operators
from cloud_broker.ledger.db import Database, redact
from edge.core.ruleset import RuleSet
from edge.errors import ConfigError
from edge.sanitize import clean

log = logging.getLogger("cloud_broker.console")

OpenDb = Callable[[argparse.Namespace], Database]
LedgerUrl = Callable[[argparse.Namespace], str]
LoadRules = Callable[[str | None], RuleSet]


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ConfigError(
            "password", "no terminal to ask on: give --password-stdin and pipe the password in"
        )
    first = getpass.getpass("password (10 characters or more): ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("password", "the two passwords differ")
    return first


def cmd_operators(args: argparse.Namespace, open_db: OpenDb) -> int:
    db = open_db(args)
    actor = operators.command_line(args.by)
    if args.action == "list":
        rows = operators.list_all(db)
        for r in rows:
            state = "disabled" if r["disabled_at"] else "active"
            print(f"{clean(str(r['username']), 32):<20} {r['role']!s:<10} {state:<9} "
                  f"{clean(str(r['name']), 40)}")  # fmt: skip
        if not rows:
            print("no operators yet: python -m cloud_broker operators add USERNAME --role admin")
        return 0
    if not args.username:
        raise ConfigError(f"operators {args.action}", "give the operator's USERNAME")
    if args.action == "add":
        if not args.role:
            raise ConfigError("operators add", f"give --role ({', '.join(operators.ROLES)})")
        operators.add(
            db, args.username, args.name or args.username, args.role, _password(args),
            actor.username,
        )  # fmt: skip
        print(f"operator {clean(args.username, 32)} added ({args.role})")
        return 0
    operators.set_disabled(db, actor, args.username, args.action == "disable")
    print(f"operator {clean(args.username, 32)} {args.action}d")
    return 0


def cmd_console(
    args: argparse.Namespace, open_db: OpenDb, ledger_url: LedgerUrl, load_rules: LoadRules
) -> int:
    from cloud_broker.console.app import create_app, load_secret  # noqa: PLC0415
    from cloud_broker.console.web import ConsoleConfig  # noqa: PLC0415

    webserve.listen(args.listen)  # a wrong address is refused before anything opens
    open_db(args).close()  # the ledger must exist (serve creates it) and be migrated
    url = ledger_url(args)
    cfg = ConsoleConfig(
        ledger_url=url,
        secret=load_secret(Path(args.secret_file) if args.secret_file else None),
        secure_cookies=args.secure_cookies,
        seed_rules=load_rules(args.rules),
        rules_key_dir=Path(args.rules_key_dir) if args.rules_key_dir else None,
    )
    app = create_app(cfg)
    if not operators.list_all(app.state.ctx.db()):
        log.warning("no operator can log in yet: python -m cloud_broker operators add NAME "
                    "--role admin")  # fmt: skip
    log.info("console: ledger %s", redact(url))
    webserve.serve(app, args.listen, "console")
    return 0


def add_parsers(sub: Any, open_db: OpenDb, ledger_url: LedgerUrl, load_rules: LoadRules) -> None:
    o = sub.add_parser("operators", help="who may log in to the console, with which role")
    o.add_argument("action", choices=["add", "list", "disable", "enable"])
    o.add_argument("username", nargs="?")
    o.add_argument("--name", help="the operator's name as the console shows it")
    o.add_argument("--role", choices=operators.ROLES)
    o.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    o.add_argument("--by", help="who does it, for the audit log (default: cli:$USER)")
    o.set_defaults(fn=lambda a: cmd_operators(a, open_db))
    c = sub.add_parser("console", help="serve the web console")
    c.add_argument("--listen", default="127.0.0.1:8400", help="HOST:PORT (default 127.0.0.1:8400)")
    c.add_argument(
        "--secret-file",
        default="var/console.secret",
        help="the key that signs session cookies, mode 0600, made on first use "
        "($LOYALTY_CONSOLE_SECRET instead)",
    )
    c.add_argument(
        "--secure-cookies", action="store_true", help="behind TLS: cookies only over HTTPS"
    )
    c.add_argument(
        "--rules-key-dir",
        help="the folder of head office's private rules keys (rules-N.key, mode 0600): an "
        "approved programme is signed with the active one (without it the console cannot "
        "publish)",
    )
    c.set_defaults(fn=lambda a: cmd_console(a, open_db, ledger_url, load_rules))
