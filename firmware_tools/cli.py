"""The field technician's command line (and head office's rules, broker and PKI helpers).

On the terminal, in order (docs/provisioning.md)::

    python -m firmware_tools init --config /etc/loyalty/edge.toml --tenant T --store S \\
        --device pos-0001 --rules-key rules.pub.pem --broker mqtts://mq:8883 --ca ca.pem \\
        --cert pos-0001.pem --tls-key pos-0001.key --attach nfc:card:pn532:/dev/ttyS1
    python -m firmware_tools enroll --config /etc/loyalty/edge.toml --token ABCD-...
    python -m firmware_tools selftest --config /etc/loyalty/edge.toml
    python -m firmware_tools rotate-key --config /etc/loyalty/edge.toml
    python -m firmware_tools decommission --config /etc/loyalty/edge.toml [--destroy-key]
    python -m firmware_tools resume --config /etc/loyalty/edge.toml --checkpoint FILE

At head office::

    python -m cloud_broker enroll-token --tenant T --store S [--device D] [--ttl 24h]
    python -m firmware_tools rules keygen|sign|verify|publish|endorse|publish-keys ...
    python -m firmware_tools broker-config --tenant T --out DIR --cafile F --certfile F \\
        --keyfile F
    python -m firmware_tools pki ca|server|client ...

Every message is printed in English and in Persian.  Exit status:

    0  done; every check that ran passed
    1  a check failed, or head office (or the broker) refused
    2  usage or configuration error (also: the agent is running and must be stopped first,
       or a file the command names cannot be read or written)
    3  head office or the broker did not answer in time: check the network and retry
"""

from __future__ import annotations

import argparse
import logging
import sys
import tomllib
from pathlib import Path
from typing import Any

from edge.config import load
from edge.core.errors import CoreError
from edge.errors import ConfigError, LoyaltyError
from edge.protocol.mqtt import BrokerConfig
from firmware_tools import brokerconf, client, device, pki, resume, rules, selftest
from firmware_tools.ui import FAILED, OK, USAGE, Out, ToolError


def _attach(text: str) -> device.DeviceSpec:
    parts = text.split(":", 3)
    if len(parts) != 4 or not all(parts):
        raise argparse.ArgumentTypeError(f"use NAME:KIND:DRIVER:PORT, got {text!r}")
    return device.DeviceSpec(parts[0], parts[1], parts[2], parts[3])


def _option(text: str) -> tuple[str, str, Any]:
    target, eq, value = text.partition("=")
    name, dot, key = target.partition(".")
    if not (eq and dot and name and key):
        raise argparse.ArgumentTypeError(f"use NAME.KEY=VALUE, got {text!r}")
    try:
        parsed: Any = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word: a string ("000000" stays a string too)
    return name, key, parsed


def cmd_init(args: argparse.Namespace, out: Out) -> int:
    specs = {d.name: d for d in args.attach}
    for name, key, value in args.option:
        if name not in specs:
            raise ConfigError(f"--option {name}.{key}", f"no --attach {name}:...")
        specs[name].options[key] = value
    spec = device.InitSpec(
        config=Path(args.config),
        tenant=args.tenant,
        store=args.store,
        device=args.device,
        rules_key=Path(args.rules_key),
        broker=args.broker,
        ca=Path(args.ca) if args.ca else None,
        cert=Path(args.cert) if args.cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        rules_bundle=Path(args.rules_bundle) if args.rules_bundle else None,
        data_dir=args.data_dir,
        utc_offset=args.utc_offset,
        pos_listen=args.pos_listen,
        pos_token=args.pos_token,
        devices=tuple(specs.values()),
        force=args.force,
    )
    device.init(spec, out)
    return OK


def cmd_enroll(args: argparse.Namespace, out: Out) -> int:
    token = str(args.token)
    if token == "-":  # noqa: S105 - not a password: read the token from standard input
        token = sys.stdin.readline().strip()
    if not token:
        raise ConfigError("--token", "empty")
    client.enroll(load(args.config), token, out, args.timeout)
    return OK


def cmd_selftest(args: argparse.Namespace, out: Out) -> int:
    steps = selftest.run(
        load(args.config), out, wait=args.wait, timeout=args.timeout, skip=tuple(args.skip)
    )
    return FAILED if any(s.status == "FAIL" for s in steps) else OK


def cmd_rotate(args: argparse.Namespace, out: Out) -> int:
    client.rotate(load(args.config), out, args.timeout)
    return OK


def cmd_decommission(args: argparse.Namespace, out: Out) -> int:
    client.decommission(
        load(args.config),
        out,
        timeout=args.timeout,
        drain_timeout=args.drain_timeout,
        force=args.force,
        destroy_key=args.destroy_key,
    )
    return OK


def cmd_resume(args: argparse.Namespace, out: Out) -> int:
    resume.resume(load(args.config), Path(args.checkpoint), out)
    return OK


def cmd_rules(args: argparse.Namespace, out: Out) -> int:
    files = [Path(f) for f in args.file]
    if args.action == "keygen":
        rules.keygen(Path(args.key), Path(args.pub), out)
    elif args.action == "sign":
        rules.sign(files[0], Path(args.key), Path(args.out), out)
    elif args.action == "verify":
        rules.verify(files[0], Path(args.pub), out, args.tenant)
    elif args.action == "endorse":
        rules.endorse(Path(args.key), Path(args.new_pub), args.number, args.tenant,
                      Path(args.out), out)  # fmt: skip
    else:
        broker = BrokerConfig.from_url(
            args.broker, ca_file=args.ca, cert_file=args.cert, key_file=args.tls_key
        )
        if args.action == "publish":
            rules.publish(
                files[0], Path(args.pub), broker, out, timeout=args.timeout,
                client_id=args.client_id,
            )  # fmt: skip
        else:
            rules.publish_keys(
                files, broker, args.tenant, out, pub_path=Path(args.pub) if args.pub else None,
                timeout=args.timeout, client_id=args.client_id,
            )  # fmt: skip
    return OK


def cmd_broker_config(args: argparse.Namespace, out: Out) -> int:
    out_dir = Path(args.out)
    settings = brokerconf.BrokerSettings(
        tenants=tuple(args.tenant),
        cafile=str(Path(args.cafile).resolve()),
        certfile=str(Path(args.certfile).resolve()),
        keyfile=str(Path(args.keyfile).resolve()),
        acl_file=str(Path(args.acl_file or out_dir / "loyalty.acl").resolve()),
        port=args.port,
        bind=args.bind,
        head_office=tuple(args.head_office or ["head-office"]),
        persistence_dir=None if args.no_persistence else args.persistence_dir,
        log_file=args.log_file,
        crlfile=args.crlfile,
        user=args.user,
        bind_client_id=not args.no_bind_client_id,
        tls_version=args.tls_version,
    )
    conf, acl = brokerconf.write(settings, out_dir, args.conf_name)
    ho = ", ".join(settings.head_office)
    out.say(
        f"wrote {conf} and {acl}: TLS on port {settings.port}, client certificates required, "
        f"tenants {', '.join(settings.tenants)}, head office identities {ho}",
        f"{conf} و {acl} نوشته شد: TLS روی درگاه {settings.port}، گواهی کلاینت الزامی، "
        f"مستأجرها {', '.join(settings.tenants)}، هویت‌های دفتر مرکزی {ho}",
    )
    return OK


def cmd_pki(args: argparse.Namespace, out: Out) -> int:
    if args.action == "ca":
        key, cert = pki.make_ca(args.cn or "Loyalty broker CA", args.days or 3650)
        d = Path(args.dir)
        pki.write_key(d / "ca.key", key)
        pki.write_cert(d / "ca.pem", cert)
        out.say(
            f"CA written: {d / 'ca.pem'} (give it to brokers and terminals) and {d / 'ca.key'} "
            "(mode 0600; keep it offline)",
            f"مرجع گواهی نوشته شد: {d / 'ca.pem'} (برای کارگزار و پایانه‌ها) و {d / 'ca.key'} "
            "(دسترسی 0600؛ آفلاین نگه دارید)",
        )
        return OK
    if not args.cn or not args.out:
        raise ConfigError(f"pki {args.action}", "needs --cn and --out")
    ca_key, ca_cert = pki.load_ca(Path(args.ca_dir))
    hosts = args.host if args.action == "server" else None
    if args.action == "server" and not hosts:
        raise ConfigError("pki server", "needs at least one --host (DNS name or IP address)")
    key, cert = pki.issue(ca_key, ca_cert, args.cn, hosts=hosts, days=args.days or 825)
    cert_path, key_path = pki.write_pair(Path(args.out), key, cert)
    out.say(
        f"{args.action} certificate for {args.cn}: {cert_path}, key {key_path} (mode 0600)",
        f"گواهی {args.action} برای {args.cn}: {cert_path}، کلید {key_path} (دسترسی 0600)",
    )
    return OK


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="the agent's configuration (edge.toml)")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for head office")


def parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one block per command
    ap = argparse.ArgumentParser(
        prog="python -m firmware_tools",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="log what happens underneath")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("init", help="new device key and the agent's configuration")
    p.add_argument("--config", required=True, help="where to write edge.toml")
    p.add_argument("--tenant", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--device", required=True, help="this terminal's id, e.g. pos-0001")
    p.add_argument("--rules-key", required=True, help="head office's rules public key (PEM)")
    p.add_argument("--broker", help="mqtts://HOST:PORT (leave out for an offline terminal)")
    p.add_argument("--ca", help="the broker's CA certificate")
    p.add_argument("--cert", help="this terminal's TLS certificate (CN = the device id)")
    p.add_argument("--tls-key", help="this terminal's TLS key")
    p.add_argument("--rules-bundle", help="a signed rules bundle to install at first start")
    p.add_argument("--data-dir", default="data", help="where the outbox lives (edge.db)")
    p.add_argument("--utc-offset", type=int, default=210, help="minutes; Iran: 210")
    p.add_argument("--pos-listen", default="127.0.0.1:8765")
    p.add_argument("--pos-token", help="shared secret for the POS API")
    p.add_argument("--attach", type=_attach, action="append", default=[],
                   metavar="NAME:KIND:DRIVER:PORT",
                   help="a device, e.g. nfc:card:pn532:/dev/ttyS1 (repeatable)")  # fmt: skip
    p.add_argument("--option", type=_option, action="append", default=[],
                   metavar="NAME.KEY=VALUE",
                   help="a driver option, e.g. bank.password=000000")  # fmt: skip
    p.add_argument("--force", action="store_true", help="rewrite the configuration (keeps the key)")
    p.set_defaults(fn=cmd_init)

    p = sub.add_parser("enroll", help="register this terminal at head office with a token")
    _config_arg(p)
    p.add_argument("--token", required=True, help="the one-time token ('-': read it from stdin)")
    p.set_defaults(fn=cmd_enroll)

    p = sub.add_parser("selftest", help="check devices, broker, clock, disk, a heartbeat")
    _config_arg(p)
    p.add_argument("--wait", type=float, default=10.0,
                   help="seconds to present a card, scan or type (0: skip those)")  # fmt: skip
    p.add_argument("--skip", action="append", default=[], help="a step or device name to skip")
    p.set_defaults(fn=cmd_selftest)

    p = sub.add_parser("rotate-key", help="new device key, accepted by head office")
    _config_arg(p)
    p.set_defaults(fn=cmd_rotate)

    p = sub.add_parser("decommission", help="drain, have head office revoke, destroy the key")
    _config_arg(p)
    p.add_argument("--drain-timeout", type=float, default=60.0)
    p.add_argument("--force", action="store_true", help="even with records not acknowledged")
    p.add_argument("--destroy-key", action="store_true", help="overwrite and remove the key")
    p.set_defaults(fn=cmd_decommission)

    p = sub.add_parser(
        "resume", help="a reinstalled terminal continues head office's chain (checkpoint)"
    )
    _config_arg(p)
    p.add_argument("--checkpoint", required=True,
                   help="the file from: python -m cloud_broker devices checkpoint")  # fmt: skip
    p.set_defaults(fn=cmd_resume)

    p = sub.add_parser("rules", help="head office: sign, check and publish rules bundles")
    actions = ["keygen", "sign", "verify", "publish", "endorse", "publish-keys"]
    p.add_argument("action", choices=actions)
    p.add_argument("file", nargs="*", metavar="FILE",
                   help="rules JSON (sign), a bundle (verify, publish), or endorsements, "
                   "oldest first (publish-keys)")  # fmt: skip
    p.add_argument("--key", help="head office's rules private key (keygen, sign; endorse: the "
                   "key in force)")  # fmt: skip
    p.add_argument("--pub", help="head office's rules public key (keygen, verify; publish and "
                   "publish-keys: the key terminals were provisioned with)")  # fmt: skip
    p.add_argument("--new-pub", help="the next rules public key (endorse)")
    p.add_argument("--number", type=int, help="the next key's number, 2 or more (endorse)")
    p.add_argument("--out", help="the signed bundle (sign), the endorsement (endorse)")
    p.add_argument("--tenant",
                   help="the tenant the bundle must be for (verify), of the keys (endorse, "
                   "publish-keys)")  # fmt: skip
    p.add_argument("--broker", help="mqtts://HOST:PORT (publish, publish-keys)")
    p.add_argument("--ca")
    p.add_argument("--cert", help="head office's client certificate (publish)")
    p.add_argument("--tls-key", help="its key")
    p.add_argument("--client-id", default="loyalty-rules-publisher")
    p.add_argument("--timeout", type=float, default=10.0)
    p.set_defaults(fn=cmd_rules)

    p = sub.add_parser("broker-config", help="head office: Mosquitto TLS configuration and ACL")
    p.add_argument("--tenant", action="append", required=True)
    p.add_argument("--out", required=True, help="directory for loyalty.conf and loyalty.acl")
    p.add_argument("--conf-name", default="loyalty.conf")
    p.add_argument("--cafile", required=True)
    p.add_argument("--certfile", required=True, help="the broker's certificate")
    p.add_argument("--keyfile", required=True, help="the broker's key")
    p.add_argument("--acl-file", help="where the ACL goes (default OUT/loyalty.acl)")
    p.add_argument("--port", type=int, default=8883)
    p.add_argument("--bind", default="0.0.0.0")  # noqa: S104 - documented default
    p.add_argument("--head-office", action="append", help="a head-office certificate CN")
    p.add_argument("--persistence-dir", default="/var/lib/mosquitto/")
    p.add_argument("--no-persistence", action="store_true")
    p.add_argument("--log-file", help="default: syslog")
    p.add_argument("--crlfile", help="revoked client certificates (PEM CRL)")
    p.add_argument("--user", help="the system user mosquitto runs as")
    p.add_argument("--no-bind-client-id", action="store_true",
                   help="do not force the client id to the certificate's CN")  # fmt: skip
    p.add_argument("--tls-version", default="tlsv1.2", choices=["tlsv1.2", "tlsv1.3"])
    p.set_defaults(fn=cmd_broker_config)

    p = sub.add_parser("pki", help="a small CA for the broker's TLS (tests, small chains)")
    p.add_argument("action", choices=["ca", "server", "client"])
    p.add_argument("--dir", default="pki", help="where the CA lives (ca)")
    p.add_argument("--ca-dir", default="pki", help="the CA to issue from (server, client)")
    p.add_argument("--cn", help="common name: the device id for terminals")
    p.add_argument("--host", action="append", help="DNS name or IP of the broker (server)")
    p.add_argument("--out", help="PREFIX: writes PREFIX.pem and PREFIX.key")
    p.add_argument("--days", type=int)
    p.set_defaults(fn=cmd_pki)
    return ap


def _need(args: argparse.Namespace) -> None:
    """Per-action arguments argparse cannot express."""
    if args.cmd != "rules":
        return
    need = {
        "keygen": ("key", "pub"),
        "sign": ("file", "key", "out"),
        "verify": ("file", "pub"),
        "publish": ("file", "pub", "broker"),
        "endorse": ("key", "new_pub", "number", "tenant", "out"),
        "publish-keys": ("file", "broker", "tenant"),
    }[args.action]
    missing = [n for n in need if getattr(args, n) in (None, "", [])]
    if missing:
        raise ConfigError(
            f"rules {args.action}",
            "needs " + ", ".join(f"--{n.replace('_', '-')}" for n in missing),
        )
    if args.action in ("sign", "verify", "publish") and len(args.file) > 1:
        raise ConfigError(f"rules {args.action}", "takes one file")
    if args.action == "endorse" and args.file:
        raise ConfigError("rules endorse", "takes no file: --new-pub names the next key")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    out = Out()
    try:
        _need(args)
        code: int = args.fn(args, out)
    except ToolError as e:
        out.error(e.en, e.fa)
        return e.exit_code
    except ConfigError as e:
        out.error(f"usage or configuration: {e}", f"خطای فرمان یا پیکربندی: {e}")
        return USAGE
    except (LoyaltyError, CoreError) as e:
        out.error(str(getattr(e, "en", e)), str(getattr(e, "fa", e)))
        return FAILED
    except OSError as e:  # a file or directory the command named cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        why = e.strerror or str(e)
        out.error(f"cannot use {where}{why}", f"دسترسی به پرونده ممکن نیست: {where}{why}")
        return USAGE
    return code
