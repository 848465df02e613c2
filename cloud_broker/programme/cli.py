"""The programme's commands (the console does the same through its pages):

python -m cloud_broker programme adopt-key --key rules.key --rules-key-dir DIR
python -m cloud_broker programme keys
python -m cloud_broker coupons issue CODE --to FILE [--until 1405/01/13]
python -m cloud_broker survey reward PHONE --survey ID --points N
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud_broker.club import operators
from cloud_broker.club.changes import phone_member
from cloud_broker.ledger import rulebooks
from cloud_broker.ledger.db import Database
from cloud_broker.programme import coupons, engagement, keys
from edge.core.ruleset import RuleSet
from edge.errors import ConfigError
from edge.sanitize import clean

OpenDb = Callable[[argparse.Namespace], Database]
LoadRules = Callable[[str | None], RuleSet]


def _read(path: str) -> str:
    try:
        return Path(path).read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("--to", f"cannot read {clean(path, 200)}: {e}") from None


def cmd_programme(args: argparse.Namespace, open_db: OpenDb, load_rules: LoadRules) -> int:
    db = open_db(args)
    if args.action == "keys":
        for k in keys.table(db):
            print(f"key {k['number']}: {k['state']}")
        return 0
    if not args.key or not args.rules_key_dir:
        raise ConfigError("programme adopt-key", "give --key FILE and --rules-key-dir DIR")
    rs = rulebooks.RuleBooks(db, seed=load_rules(args.rules)).latest
    by = operators.command_line(args.by).username
    n = keys.adopt(db, keys.KeyDir(Path(args.rules_key_dir)), rs.tenant, Path(args.key), by)
    print(f"the rules key is key {n}, active; its private half is in {args.rules_key_dir}")
    return 0


def cmd_coupons(args: argparse.Namespace, open_db: OpenDb, load_rules: LoadRules) -> int:
    db = open_db(args)
    rs = rulebooks.RuleBooks(db, seed=load_rules(args.rules)).latest
    to = _read(args.to) if args.to else ""
    done = coupons.issue(db, rs, operators.command_line(args.by), args.code, to, args.until or "")
    print(f"{done.issued} members now hold {done.code} (batch {done.batch}); {done.already} held "
          f"it already; {len(done.not_members)} numbers are no members")  # fmt: skip
    for m in done.not_members[:20]:
        print(f"  not a member: {m}")
    return 0


def cmd_survey(args: argparse.Namespace, open_db: OpenDb, load_rules: LoadRules) -> int:
    db = open_db(args)
    rs = rulebooks.RuleBooks(db, seed=load_rules(args.rules)).latest
    member = args.member if args.member.startswith("card:") else phone_member(args.member)
    done = engagement.reward(
        db, rs, operators.command_line(args.by), member, args.survey, args.points
    )
    said = "already rewarded: nothing changed" if done.repeated else f"journal {done.journal}"
    print(f"{clean(member, 40)}: survey {clean(args.survey, 64)} ({said})")
    return 0


def add_parsers(sub: Any, open_db: OpenDb, load_rules: LoadRules) -> None:
    by = "who does it, for the audit log (default: cli:$USER)"
    p = sub.add_parser("programme", help="the rules keys head office signs the programme with")
    p.add_argument("action", choices=["adopt-key", "keys"])
    p.add_argument("--key", help="head office's existing rules key (adopt-key)")
    p.add_argument("--rules-key-dir", help="the folder of private rules keys (adopt-key)")
    p.add_argument("--by", help=by)
    p.set_defaults(fn=lambda a: cmd_programme(a, open_db, load_rules))
    c = sub.add_parser("coupons", help="give a member-bound coupon of the programme to members")
    c.add_argument("action", choices=["issue"])
    c.add_argument("code")
    c.add_argument("--to", required=True, help="a file: one phone per line, or a CSV")
    c.add_argument("--until", help="the holding ends on this Jalali date")
    c.add_argument("--by", help=by)
    c.set_defaults(fn=lambda a: cmd_coupons(a, open_db, load_rules))
    s = sub.add_parser("survey", help="points for a survey answer or a review, once per member")
    s.add_argument("action", choices=["reward"])
    s.add_argument("member", help="phone number (any form) or card:UID")
    s.add_argument("--survey", required=True)
    s.add_argument("--points", type=int, required=True)
    s.add_argument("--by", help=by)
    s.set_defaults(fn=lambda a: cmd_survey(a, open_db, load_rules))
