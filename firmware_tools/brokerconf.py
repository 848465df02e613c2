"""The production Mosquitto configuration: TLS with client certificates, one identity per
device, and an ACL so that a device writes only its own topics and reads only its own
acks, gap requests and provisioning replies, plus its tenant's rules and snapshots.

The broker takes the client certificate's common name as the user name
(``use_identity_as_username``) and, by default, as the client id too
(``use_username_as_clientid``), so one device cannot take over another's MQTT session.
Each process then needs a certificate of its own: every terminal (CN = device id), the
reconciler, a second reconciler, the rules publisher (listed with ``--head-office``).

For each tenant T the ACL has (``%u`` is the CN)::

    pattern write loyalty/v1/T/records/+/%u
    pattern write loyalty/v1/T/status/%u
    pattern write loyalty/v1/T/enroll/%u
    pattern read  loyalty/v1/T/enroll/%u/reply
    pattern read  loyalty/v1/T/ack/%u
    pattern read  loyalty/v1/T/gap/%u
    pattern read  loyalty/v1/T/rules
    pattern read  loyalty/v1/T/rules_keys
    pattern read  loyalty/v1/T/snapshot
    pattern read  loyalty/v1/T/progress
    pattern read  loyalty/v1/head_office/+

and each head-office identity ``user HO`` / ``topic readwrite loyalty/v1/#``.  A device's
records name its store in the topic; head office checks the store against its registry
(a record on the wrong store's topic is quarantined as ``topic_mismatch``).

    python -m firmware_tools broker-config --tenant hypershahr --out /etc/mosquitto/conf.d \\
        --cafile /etc/mosquitto/certs/ca.pem --certfile ... --keyfile ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.errors import ConfigError
from edge.protocol import topics
from firmware_tools.device import write_file

ROOT = topics.ROOT


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    tenants: tuple[str, ...]
    cafile: str
    certfile: str
    keyfile: str
    acl_file: str
    port: int = 8883
    bind: str = "0.0.0.0"  # noqa: S104 - a broker listens for terminals on the network
    head_office: tuple[str, ...] = ("head-office",)
    persistence_dir: str | None = "/var/lib/mosquitto/"
    log_file: str | None = None  # None: syslog
    crlfile: str | None = None
    user: str | None = None
    bind_client_id: bool = True
    tls_version: str = "tlsv1.2"
    max_queued_messages: int = 1_000_000

    def check(self) -> None:
        if not self.tenants:
            raise ConfigError("--tenant", "at least one tenant")
        for t in self.tenants:
            topics.check_id(t, "tenant")
        for h in self.head_office:
            topics.check_id(h, "head-office identity")
        if not 0 < self.port < 65536:
            raise ConfigError("--port", "1..65535")
        for value, what in (
            (self.cafile, "--cafile"),
            (self.certfile, "--certfile"),
            (self.keyfile, "--keyfile"),
            (self.acl_file, "--acl-file"),
        ):
            if not value or "\n" in value:
                raise ConfigError(what, "a file path on one line")
        if self.tls_version not in ("tlsv1.2", "tlsv1.3"):
            raise ConfigError("--tls-version", "tlsv1.2 (1.2 and later) or tlsv1.3")


def render_conf(s: BrokerSettings) -> str:
    s.check()
    lines = [
        "# Mosquitto for the loyalty club: written by python -m firmware_tools broker-config.",
        "# TLS with client certificates; the certificate's CN is the MQTT user (the device id).",
        "per_listener_settings false",
        "allow_anonymous false",
        f"listener {s.port} {s.bind}",
        "protocol mqtt",
        f"cafile {s.cafile}",
        f"certfile {s.certfile}",
        f"keyfile {s.keyfile}",
        f"tls_version {s.tls_version}",
        "require_certificate true",
        "use_identity_as_username true",
    ]
    if s.crlfile:
        lines.append(f"crlfile {s.crlfile}")
    if s.bind_client_id:
        lines += [
            "# the client id is the certificate's CN: no device can take over another's session",
            "use_username_as_clientid true",
        ]
    lines += [
        f"acl_file {s.acl_file}",
        "",
        "# records are at most 64 KiB, rules bundles 1 MiB",
        "max_packet_size 2097152",
        "# head office's persistent session holds records while it is down; terminals",
        "# resend anything dropped, but a large queue avoids resends",
        f"max_queued_messages {s.max_queued_messages}",
    ]
    if s.persistence_dir:
        lines += [
            "persistence true",
            f"persistence_location {s.persistence_dir.rstrip('/')}/",
            "autosave_interval 1",
        ]
    else:
        lines.append("persistence false")
    if s.user:
        lines.append(f"user {s.user}")
    lines += ([f"log_dest file {s.log_file}"] if s.log_file else ["log_dest syslog"]) + [
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages true",
    ]
    return "\n".join(lines) + "\n"


def render_acl(s: BrokerSettings) -> str:
    s.check()
    lines = [
        "# ACL for the loyalty club: written by python -m firmware_tools broker-config.",
        "# %u is the client certificate's CN: the device id for terminals.",
    ]
    for t in s.tenants:
        base = f"{ROOT}/{t}"
        lines += [
            "",
            f"# terminals of tenant {t}",
            f"pattern write {base}/records/+/%u",
            f"pattern write {base}/status/%u",
            f"pattern write {base}/enroll/%u",
            f"pattern read {base}/enroll/%u/reply",
            f"pattern read {base}/ack/%u",
            f"pattern read {base}/gap/%u",
            f"pattern read {base}/rules",
            f"pattern read {base}/rules_keys",
            f"pattern read {base}/snapshot",
            f"pattern read {base}/progress",
        ]
    lines += [
        "",
        "# every terminal: head office's processes online or not (their retained statuses)",
        f"pattern read {ROOT}/head_office/+",
    ]
    for h in s.head_office:
        lines += ["", f"# head office: {h}", f"user {h}", f"topic readwrite {ROOT}/#"]
    return "\n".join(lines) + "\n"


def write(s: BrokerSettings, out_dir: Path, conf_name: str = "loyalty.conf") -> tuple[Path, Path]:
    """Write the ACL, then the configuration into ``out_dir`` (so a configuration never
    names an ACL that could not be written); returns their paths."""
    conf = out_dir / conf_name
    acl = Path(s.acl_file)
    conf_text, acl_text = render_conf(s), render_acl(s)
    write_file(acl, acl_text.encode())
    write_file(conf, conf_text.encode())
    return conf, acl
