"""Head office operator commands.

    python -m cloud_broker serve --broker mqtt://HOST:PORT --ledger sqlite:///PATH
    python -m cloud_broker devices list|register|revoke|export-keys ...
    python -m cloud_broker enroll-token --tenant T --store S [--device D] [--ttl 24h]
    python -m cloud_broker member show PHONE | adjust PHONE --points N --wallet R --reason W
    python -m cloud_broker member link PHONE --card UID --reason W
    python -m cloud_broker operators add USERNAME --name N --role R | list | disable USERNAME
    python -m cloud_broker console --listen 127.0.0.1:8400 --secret-file PATH [--rules-key-dir D]
    python -m cloud_broker programme adopt-key --key KEY --rules-key-dir D | keys
    python -m cloud_broker coupons issue CODE --to FILE [--until 1405/01/13]
    python -m cloud_broker survey reward PHONE --survey ID --points N
    python -m cloud_broker sms run --gateway kavenegar --api-key-file KEY | status
    python -m cloud_broker devices checkpoint --device D --rules-key KEY --out FILE
    python -m cloud_broker quarantine list [--open] | admit|dismiss ID... --reason R --by WHO
    python -m cloud_broker rules list | add BUNDLE --pub KEY.pem
    python -m cloud_broker alerts list
    python -m cloud_broker ledger check
    python -m cloud_broker ledger expire
    python -m cloud_broker ledger rebuild-daily       (the reports' daily tables from the records)
    python -m cloud_broker reports refresh|sales|stores|categories|skus|kpis
    python -m cloud_broker api serve|keys|online-store ...   (the public API, docs/api.md)
    python -m cloud_broker webhooks add|list|deliveries|replay|disable|run
    python -m cloud_broker panel --listen ...; surveys add ID ...  (the member panel)
    python -m cloud_broker tax taxid|store|product|run|status    (tax invoices)
    python -m cloud_broker archive month 1404-01 --dir D | list | verify FILE | partitions

Every change is written to the audit log as done by ``--by`` or ``cli:<login>``.
``--ledger`` defaults to $LOYALTY_LEDGER or sqlite:///var/ledger.db; ``--rules`` to the
embedded rules bundle.  Exit status: 0 ok, 1 a check failed or something was refused,
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from cloud_broker.api import cli as api_cli
from cloud_broker.club import changes, members, operators, stores
from cloud_broker.club.errors import ClubError
from cloud_broker.console import cli as console_cli
from cloud_broker.invoicing import cli as tax_cli
from cloud_broker.ledger import cli as archive_cli
from cloud_broker.ledger import daily, rulebooks
from cloud_broker.ledger.check import check
from cloud_broker.ledger.db import Database, redact
from cloud_broker.ledger.schema import MIGRATIONS
from cloud_broker.messaging import cli as messaging_cli
from cloud_broker.panel import cli as panel_cli
from cloud_broker.programme import cli as programme_cli
from cloud_broker.reconcile import admission
from cloud_broker.reconcile.reconciler import Reconciler, run_expiry
from cloud_broker.reconcile.service import Service, ServiceConfig
from cloud_broker.registry import devices as registry
from cloud_broker.registry import enrollment
from cloud_broker.reports import cli as reports_cli
from edge.core import jalali
from edge.core.dates import days_from_civil, format_timestamp
from edge.core.phone import normalise
from edge.core.ruleset import RuleSet, compile_rules
from edge.errors import ConfigError, CoreError, LoyaltyError, ProtocolError
from edge.protocol.keys import load_private, public_from_pem, public_raw
from edge.protocol.mqtt import BrokerConfig
from edge.sanitize import clean, clean_bytes

log = logging.getLogger("cloud_broker")


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(what, f"cannot read {path}: {e.strerror or e}") from None


def load_rules_doc(path: str | None) -> dict[str, Any]:
    try:
        if path is None:
            text = resources.files("edge.data").joinpath("rules.json").read_text("utf-8")
        else:
            text = _read(path, "rules").decode("utf-8")
        doc = json.loads(text)
        compile_rules(doc)
    except (ValueError, CoreError) as e:  # UnicodeDecodeError and JSONDecodeError too
        raise ConfigError("rules", str(e)) from e
    if not isinstance(doc, dict):
        raise ConfigError("rules", "a rules document is a JSON object")
    return doc


def load_rules(path: str | None) -> RuleSet:
    return compile_rules(load_rules_doc(path))


def _ledger_url(args: argparse.Namespace, create: bool = False) -> str:
    """--ledger, $LOYALTY_LEDGER or the default; with ``create`` a SQLite file's folder is
    created."""
    url: str = args.ledger or os.environ.get("LOYALTY_LEDGER") or "sqlite:///var/ledger.db"
    if url.startswith("sqlite:///") and create:
        folder = Path(url[len("sqlite:///") :]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError("ledger", f"cannot create {folder}: {e.strerror or e}") from None
    return url


def _db(args: argparse.Namespace, create: bool = False) -> Database:
    """The ledger; only ``serve`` (``create``) makes a new one: any other command on a
    ledger that does not exist is a mistake (a wrong --ledger), not a new empty ledger."""
    url = _ledger_url(args)
    if url.startswith("sqlite:///") and not create:
        path = Path(url[len("sqlite:///") :])
        if not path.exists():
            raise ConfigError(
                "ledger",
                f"{path} does not exist: give --ledger or $LOYALTY_LEDGER (only `serve` "
                "creates a new ledger)",
            )
    db = Database(url)
    db.migrate(MIGRATIONS)
    return db


def _out(args: argparse.Namespace, data: Any, table: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        print("\n".join(table))


def cmd_serve(args: argparse.Namespace) -> int:
    doc = load_rules_doc(args.rules)
    rs = compile_rules(doc)
    pub = public_from_pem(_read(args.rules_pub, "rules-pub")) if args.rules_pub else None
    db = _db(args, create=True)
    try:  # the bundle head office starts with is kept like every other
        rulebooks.store(db, doc)
    except CoreError as e:
        log.warning("%s; the ledger's own v%d stays in force", e, rs.version)
    db.close()
    cfg = ServiceConfig(
        broker=BrokerConfig.from_url(
            args.broker, ca_file=args.ca, cert_file=args.cert, key_file=args.key
        ),
        ledger_url=_ledger_url(args, create=True),
        client_id=args.client_id,
        share_group=args.share_group,
        batch_max=args.batch,
        verify_threads=args.verify_threads,
        screen_workers=args.screen_workers,
        rules_pub=pub,
    )
    svc = Service(cfg, rs)
    signal.signal(signal.SIGTERM, lambda *_a: svc.stop())
    signal.signal(signal.SIGINT, lambda *_a: svc.stop())
    log.info(
        "reconciler: ledger %s, broker %s, rules v%d",
        redact(cfg.ledger_url),
        cfg.broker.url,
        rs.version,
    )
    svc.start()
    print("serving", flush=True)
    svc.run()
    log.info("stopped: %s", svc.stats)
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    db = _db(args)
    if args.action == "checkpoint":
        return _checkpoint(args, db)
    if args.action == "list":
        rows = registry.list_devices(db)
        _out(
            args,
            rows,
            [f"{'device':<20} {'tenant':<12} {'store':<14} {'status':<8} applied"]
            + [
                f"{clean(r['device'], 20):<20} {clean(r['tenant'], 12):<12} "
                f"{clean(r['store'], 14):<14} {r['status']:<8} {r['applied_through']}"
                for r in rows
            ],
        )
    elif args.action == "register":
        if not (args.device and args.tenant and args.store and args.pem):
            raise ConfigError("devices register", "needs --device --tenant --store --pem")
        key = public_from_pem(_read(args.pem, "pem"))
        by = operators.command_line(args.by).username
        registry.register(db, args.device, args.tenant, args.store, public_raw(key), by=by)
        print(f"registered {args.device} ({args.tenant}/{args.store})")
    elif args.action == "revoke":
        if not args.device:
            raise ConfigError("devices revoke", "needs --device")
        actor = operators.command_line(args.by)
        last = stores.revoke(
            db, actor, args.device, args.reason or "revoked by operator", args.after_seq
        )
        print(f"revoked {args.device}: records after seq {last} are refused")
    elif args.action == "export-keys":
        sys.stdout.write(registry.export_pem(db, args.device))
    return 0


def _checkpoint(args: argparse.Namespace, db: Database) -> int:
    if not args.device or not args.rules_key or not args.out:
        raise ConfigError("devices checkpoint", "give --device, --rules-key and --out")
    key = load_private(Path(args.rules_key))
    raw = admission.checkpoint(db, args.device, key)
    Path(args.out).write_bytes(raw)
    left = admission.open_entries(db, args.device)
    print(
        f"checkpoint of {clean(args.device, 40)} written to {clean(args.out, 200)}: give it to "
        f"the technician (python -m firmware_tools resume --checkpoint FILE); {len(left)} "
        "quarantined records of this device wait to be admitted or dismissed"
    )
    return 0


def cmd_enroll_token(args: argparse.Namespace) -> int:
    """A one-time enrollment token for a technician (docs/provisioning.md); only its hash
    is stored, so it is printed this once."""
    ttl = enrollment.parse_ttl(args.ttl)
    db = _db(args)
    by = operators.command_line(args.by).username
    token, expires = enrollment.issue_token(db, args.tenant, args.store, args.device, ttl, by=by)
    until = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(expires // 1000))
    who = f" (device {args.device} only)" if args.device else ""
    who_fa = f" (فقط دستگاه {args.device})" if args.device else ""
    print(token)
    print(
        f"one-time enrollment token for {args.tenant}/{args.store}{who}, valid until {until}; "
        "it is shown only this once",
        file=sys.stderr,
    )
    print(
        f"توکن یک‌بارمصرف ثبت دستگاه برای {args.tenant}/{args.store}{who_fa}، معتبر تا {until}؛ "
        "فقط همین یک بار نمایش داده می‌شود",
        file=sys.stderr,
    )
    return 0


def _rules_now(args: argparse.Namespace, db: Database) -> RuleSet:
    """The newest bundle the ledger keeps (the embedded or --rules one until it keeps any)."""
    return rulebooks.RuleBooks(db, seed=load_rules(args.rules)).latest


def _member_key(text: str) -> str:
    try:
        return normalise(text)
    except CoreError:
        return text.strip()  # a card member, "card:UID"


def cmd_member(args: argparse.Namespace) -> int:
    db = _db(args)
    rs = _rules_now(args, db)
    actor = operators.command_line(args.by)
    if args.action == "adjust":
        if not args.reason:
            raise ConfigError("member adjust", "give --reason: it is kept with the change")
        done = changes.adjust(
            db, rs, actor, _member_key(args.member), args.points, args.wallet, args.reason
        )
        print(f"adjusted {_who(done.member)}: journal {done.journal}, audit #{done.audit}")
        return 0
    if args.action == "link":
        if not args.card or not args.reason:
            raise ConfigError("member link", "give --card UID and --reason")
        done = changes.link_card(db, rs, actor, args.card, args.member, args.reason)
        print(f"card {clean(args.card, 40)} is {_who(done.member)}'s (audit #{done.audit})")
        return 0
    try:
        view = members.page(db, rs, _member_key(args.member), history=args.history)
    except ClubError as e:
        print(f"{e.en} / {e.fa}", file=sys.stderr)
        return 1
    _out(args, view, member_lines(view))
    return 0


def member_lines(view: dict[str, Any]) -> list[str]:
    """A member for an operator's terminal: Jalali dates and times, Rials, stores; a field
    with nothing to say is left out."""
    since = time.gmtime(int(view["created_at"]) // 1000 + 210 * 60)
    name = f"  {clean(view['name'], 40)}" if view.get("name") else ""
    head = (
        f"member {_who(view['member'])}{name}  tier {view['tier'] or '-'}  visits "
        f"{view['visits']}  since "
        f"{jalali.format_date(days_from_civil(since.tm_year, since.tm_mon, since.tm_mday))}"
    )
    lines = [head, f"points {view['points']:,}   wallet {view['wallet']:,} IRR"]
    prog = view["progress"]
    if prog["next"]:
        lines.append(f"{prog['left']:,} IRR more spend to tier {prog['next']}")
    if view["merged_into"]:
        lines.append(f"merged into {_who(view['merged_into'])}")
    if view["cards"]:
        lines.append("cards " + ", ".join(clean(c, 24) for c in view["cards"]))
    if view.get("birthday"):
        lines.append(f"birthday {clean(str(view['birthday']), 12)}")
    if view["lots"]:
        lines.append("points by lot:")
        for lot in view["lots"]:
            exp = lot["expires_day"]
            until = f"  expires {jalali.format_date(int(exp))}" if exp is not None else ""
            src = f"  from {clean(lot['device'], 20)}/{lot['seq']}" if lot["device"] else ""
            lines.append(
                f"  {lot['kind']:<9} {lot['remaining']:>10,} of {lot['earned']:>10,}{until}{src}"
            )
    if view["history"]:
        lines.append("history (newest first):")
        lines += [_history_line(h) for h in view["history"]]
    return lines


def _who(member: str) -> str:
    """The operator asked for this member by number: shown whole, as Iranians write it."""
    return "0" + member[3:] if member.startswith("+98") else clean(member, 40)


def _history_line(h: dict[str, Any]) -> str:
    if "wall_ms" in h:
        when = format_timestamp(int(h["wall_ms"]) // 1000, int(h["offset_min"]))
        day = jalali.format_date(days_from_civil(*(int(x) for x in when[:10].split("-"))))
        stamp = f"{day} {when[11:16]}"
    else:
        stamp = jalali.format_date(int(h["day"]))
    where = " ".join(
        x
        for x in (
            clean(h["store"] or "", 20),
            f"{clean(h['device'], 20)}/{h['seq']}" if h["device"] else "",
        )
        if x
    )
    money = f"  paid {h['amount']:,} IRR" if h.get("amount") else ""
    parts = [f"  {stamp:<16} {h['kind']:<10} {where}{money}"]
    if h["points"]:
        parts.append(f"points {h['points']:+,}")
    if h["wallet"]:
        parts.append(f"wallet {h['wallet']:+,} IRR")
    return "  ".join(parts)


def cmd_quarantine(args: argparse.Namespace) -> int:
    db = _db(args)
    if args.action in ("admit", "dismiss"):
        return _resolve_quarantine(args, db)
    if args.open:
        entries = admission.open_entries(db)
        _out(
            args,
            entries,
            [
                f"#{e['id']} {e['code']:<13} {clean(str(e['device']), 20)}/{e['seq']}  "
                f"{clean(str(e['reason']), 100)}"
                for e in entries
            ]
            or ["nothing to resolve"],
        )
        return 0
    rows = db.read(
        "SELECT id, received_at, topic, device, seq, code, reason, raw FROM "
        "quarantine ORDER BY id DESC LIMIT ?",
        (args.limit,),
    )
    data = [
        {
            "id": r[0],
            "received_at": r[1],
            "topic": r[2],
            "device": r[3],
            "seq": r[4],
            "code": r[5],
            "reason": r[6],
            "raw_hex": bytes(r[7])[:64].hex(),
        }
        for r in rows
    ]
    _out(
        args,
        data,
        [
            f"#{r[0]} {r[5]:<16} {clean(r[3] or '-', 20)}/{r[4]}  {clean(r[6], 100)}"
            f"  [{clean_bytes(bytes(r[7])[:16], 32)}]"
            for r in rows
        ],
    )
    return 0


def _resolve_quarantine(args: argparse.Namespace, db: Database) -> int:
    if not args.ids or not args.reason or not args.by:
        raise ConfigError(args.action, "give the entries' ids, --reason and --by")
    admit = args.action == "admit"
    rc = Reconciler(db, load_rules(args.rules), verify_threads=1) if admit else None
    status = 0
    for qid in args.ids:
        try:
            if rc is not None:
                a = admission.admit(rc, qid, args.by, args.reason)
                what = "already in the ledger" if a.journal is None else f"journal {a.journal}"
                print(f"#{qid} admitted: {clean(a.device, 20)} seq {a.seq} {a.kind} ({what})")
            else:
                admission.dismiss(db, qid, args.by, args.reason)
                print(f"#{qid} dismissed")
        except admission.ResolveError as e:
            print(f"#{qid} refused: {e.en} / {e.fa}", file=sys.stderr)
            status = 1
    return status


def cmd_rules(args: argparse.Namespace) -> int:
    db = _db(args)
    if args.action == "add":
        if not args.bundle or not args.pub:
            raise ConfigError("rules add", "give the signed BUNDLE file and --pub KEY.pem")
        pinned = public_from_pem(_read(args.pub, "pub"))
        try:
            rs = rulebooks.store_signed(db, _read(args.bundle, "bundle"), pinned)
        except (CoreError, ProtocolError) as e:
            print(f"refused: {e}", file=sys.stderr)
            return 1
        print(f"rules bundle v{rs.version} of {rs.tenant} kept ({len(rs.rules)} rules)")
        return 0
    rows = db.read("SELECT tenant, version, stored_at, raw IS NOT NULL FROM rule_bundles")
    data = [
        {"tenant": r[0], "version": int(r[1]), "stored_at": int(r[2]), "signed": bool(r[3])}
        for r in rows
    ]
    _out(
        args,
        data,
        [
            f"v{d['version']:<5} {clean(str(d['tenant']), 30)}  "
            f"{'signed' if d['signed'] else 'from a file'}"
            for d in data
        ]
        or ["no bundles kept yet (serve keeps the one it starts with)"],
    )
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    db = _db(args)
    rows = db.read(
        "SELECT id, severity, kind, member, device, seq, detail FROM alerts "
        "ORDER BY id DESC LIMIT ?",
        (args.limit,),
    )
    data = [
        dict(zip(("id", "severity", "kind", "member", "device", "seq", "detail"), r, strict=True))
        for r in rows
    ]
    _out(
        args,
        data,
        [
            f"#{r[0]} {r[1]:<8} {r[2]:<20} {clean(r[3] or '-', 24)} "
            f"{clean(r[4] or '-', 20)}/{r[5]}  {clean(r[6], 100)}"
            for r in rows
        ],
    )
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    db = _db(args)
    if args.action == "expire":
        done = run_expiry(db, load_rules(args.rules))
        print(f"expired {sum(done.values())} points of {len(done)} members")
        return 0
    if args.action == "rebuild-daily":
        counts = db.run(daily.rebuild)
        print("rebuilt " + ", ".join(f"{t}: {n:,} rows" for t, n in counts.items()))
        return 0
    failures, stats = check(db)
    for f in failures:
        print(f"FAIL {f.invariant}: {clean(f.detail, 200)}")
    print(
        ("ledger check: OK " if not failures else f"ledger check: {len(failures)} failures ")
        + json.dumps(stats)
    )
    return 1 if failures else 0


def parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one block per command
    ap = argparse.ArgumentParser(
        prog="python -m cloud_broker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--ledger", help="sqlite:///PATH or postgresql://... ($LOYALTY_LEDGER)")
    ap.add_argument("--rules", help="rules bundle JSON (default: the embedded one)")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the reconciler")
    s.add_argument("--broker", required=True, help="mqtt://HOST:PORT or mqtts://HOST:PORT")
    s.add_argument("--ca")
    s.add_argument("--cert")
    s.add_argument("--key")
    s.add_argument(
        "--rules-pub",
        help="head office's rules public key (PEM): keep the signed bundles published on "
        "the rules topics, so each record is booked under the bundle it names",
    )
    s.add_argument("--client-id", default="loyalty-reconciler")
    s.add_argument("--share-group", help="run several reconcilers: $share/GROUP/...")
    s.add_argument("--batch", type=int, default=1000)
    s.add_argument("--verify-threads", type=int, default=2)
    s.add_argument(
        "--screen-workers",
        type=int,
        default=max(1, (os.cpu_count() or 2) - 1),
        help="processes that decode and verify (0: in the main process)",
    )
    s.set_defaults(fn=cmd_serve)
    d = sub.add_parser("devices", help="the device registry")
    d.add_argument("action", choices=["list", "register", "revoke", "export-keys", "checkpoint"])
    d.add_argument("--rules-key", help="head office's rules signing key (checkpoint)")
    d.add_argument("--out", help="where to write the signed checkpoint (checkpoint)")
    d.add_argument("--device")
    d.add_argument("--tenant")
    d.add_argument("--store")
    d.add_argument("--pem", help="public key file (register)")
    d.add_argument("--reason")
    d.add_argument("--after-seq", type=int, help="last seq still accepted (revoke)")
    d.add_argument("--json", action="store_true")
    d.add_argument("--by", help="who does it, for the audit log (default: cli:$USER)")
    d.set_defaults(fn=cmd_devices)
    e = sub.add_parser("enroll-token", help="a one-time token to enroll a new terminal")
    e.add_argument("--tenant", required=True)
    e.add_argument("--store", required=True)
    e.add_argument("--device", help="the only device id the token may enroll")
    e.add_argument("--ttl", default="24h", help="how long it is valid: 90s, 30m, 24h, 7d")
    e.add_argument("--by", help="who does it, for the audit log (default: cli:$USER)")
    e.set_defaults(fn=cmd_enroll_token)
    m = sub.add_parser("member", help="a member's balance, lots and history")
    m.add_argument("action", choices=["show", "adjust", "link"])
    m.add_argument("member", help="phone number (any form) or card:UID")
    m.add_argument("--history", type=int, default=20)
    m.add_argument("--points", type=int, default=0, help="points to grant, negative to remove")
    m.add_argument("--wallet", type=int, default=0, help="wallet Rials to grant or remove")
    m.add_argument("--card", help="the card to make this phone member's (link)")
    m.add_argument("--reason", help="why (adjust, link): kept in the audit log")
    m.add_argument("--json", action="store_true")
    m.add_argument("--by", help="who does it, for the audit log (default: cli:$USER)")
    m.set_defaults(fn=cmd_member)
    q = sub.add_parser("quarantine", help="refused messages")
    q.add_argument("action", choices=["list", "admit", "dismiss"])
    q.add_argument("ids", nargs="*", type=int, help="quarantine entry ids (admit, dismiss)")
    q.add_argument("--open", action="store_true", help="only what may be a paid sale")
    q.add_argument("--reason", help="why (admit, dismiss): kept with the entry")
    q.add_argument("--by", help="who resolves it (admit, dismiss)")
    q.add_argument("--limit", type=int, default=50)
    q.add_argument("--json", action="store_true")
    q.set_defaults(fn=cmd_quarantine)
    r = sub.add_parser("rules", help="the rules bundles head office books records under")
    r.add_argument("action", choices=["list", "add"])
    r.add_argument("bundle", nargs="?", help="a signed bundle file (add)")
    r.add_argument("--pub", help="head office's rules public key, PEM (add)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=cmd_rules)
    a = sub.add_parser("alerts", help="overdrafts, coupon reuse, refunds without sales ...")
    a.add_argument("action", choices=["list"])
    a.add_argument("--limit", type=int, default=50)
    a.add_argument("--json", action="store_true")
    a.set_defaults(fn=cmd_alerts)
    lg = sub.add_parser("ledger", help="invariants and the expiry job")
    lg.add_argument("action", choices=["check", "expire", "rebuild-daily"])
    lg.set_defaults(fn=cmd_ledger)
    console_cli.add_parsers(sub, _db, _ledger_url, load_rules)
    programme_cli.add_parsers(sub, _db, load_rules)
    messaging_cli.add_parsers(sub, _db, load_rules)
    reports_cli.add_parsers(sub, _db, load_rules)
    api_cli.add_parsers(sub, _db, _ledger_url, load_rules)
    panel_cli.add_parsers(sub, _db, _ledger_url, load_rules)
    tax_cli.add_parsers(sub, _db)
    archive_cli.add_parsers(sub, _db, lambda by: operators.command_line(by).name)
    for cmd in sub.choices.values():  # --ledger and --rules after the command too
        cmd.add_argument("--ledger", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        cmd.add_argument("--rules", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.fn(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except LoyaltyError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.fa != e.en:
            print(f"خطا: {e.fa}", file=sys.stderr)
        return 1
    return code
