"""MQTT topics, all under ``loyalty/v1/{tenant}/``.  docs/protocol.md has the table.

| topic | direction | QoS | retained | payload |
|---|---|---|---|---|
| records/{store}/{device} | device -> HO | 1 | no | a record (COSE_Sign1) |
| ack/{device} | HO -> device | 1 | yes | CBOR {0: applied_through, 1: hash} |
| gap/{device} | HO -> device | 1 | no | CBOR {0: [[first, last], ...]} |
| progress | HO -> devices | 0 | no | CBOR {0: wall_ms, 1: applied, 2: queued} while busy |

And one topic outside the tenants, for every head-office process (``loyalty/v1/head_office/
{client id}``, retained, CBOR status ``{0: "online" | "offline"}``, the offline one its last
will): terminals hold their resend timer while every head-office process they know of is
offline (the broker keeps their records for head office's session meanwhile).
| rules | HO -> devices | 1 | yes | signed rules bundle |
| rules_keys | HO -> devices | 1 | yes | CBOR array of rules key endorsements (bundles.py) |
| snapshot | HO -> devices | 1 | no | member balance snapshots (edge.protocol.snapshots) |
| status/{device} | device -> HO | 1 | yes | CBOR status; last will {0: "offline"} |
| reconciled/{store} | HO -> consumers | 1 | no | reconciled stream entries |
| enroll/{device} | device -> HO | 1 | no | provisioning request (edge.protocol.provisioning) |
| enroll/{device}/reply | HO -> device | 1 | no | CBOR reply to a provisioning request |
"""

from __future__ import annotations

from edge.errors import ConfigError

ROOT = "loyalty/v1"


def check_id(value: str, what: str) -> str:
    """Ids appear in topic levels: no wildcards, separators or control characters."""
    if not value or len(value) > 64:
        raise ConfigError(what, "must be 1..64 characters")
    for c in value:
        if not (c.isascii() and (c.isalnum() or c in "-_.")):
            raise ConfigError(what, f"{value!r} may only use ASCII letters, digits and - _ .")
    return value


def records(tenant: str, store: str, device: str) -> str:
    return f"{ROOT}/{tenant}/records/{store}/{device}"


def records_all(tenant: str = "+") -> str:
    return f"{ROOT}/{tenant}/records/+/+"


def ack(tenant: str, device: str) -> str:
    return f"{ROOT}/{tenant}/ack/{device}"


def gap(tenant: str, device: str) -> str:
    return f"{ROOT}/{tenant}/gap/{device}"


def progress(tenant: str) -> str:
    """Head office's heartbeat while it drains records (messages.encode_progress)."""
    return f"{ROOT}/{tenant}/progress"


def head_office(client_id: str) -> str:
    """A head-office process's retained online/offline status (its last will: offline)."""
    return f"{ROOT}/head_office/{client_id}"


def head_office_all() -> str:
    return f"{ROOT}/head_office/+"


def rules(tenant: str) -> str:
    return f"{ROOT}/{tenant}/rules"


def rules_keys(tenant: str) -> str:
    """Head office's rules key endorsements (edge.protocol.bundles), retained."""
    return f"{ROOT}/{tenant}/rules_keys"


def snapshot(tenant: str) -> str:
    return f"{ROOT}/{tenant}/snapshot"


def status(tenant: str, device: str) -> str:
    return f"{ROOT}/{tenant}/status/{device}"


def reconciled(tenant: str, store: str) -> str:
    return f"{ROOT}/{tenant}/reconciled/{store}"


def status_all(tenant: str = "+") -> str:
    return f"{ROOT}/{tenant}/status/+"


def parse_status(topic: str) -> tuple[str, str] | None:
    """(tenant, device) of a status topic, or None."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != ROOT or parts[3] != "status":
        return None
    return parts[2], parts[4]


def parse_records(topic: str) -> tuple[str, str, str] | None:
    """(tenant, store, device) of a records topic, or None if it is not one."""
    parts = topic.split("/")
    if len(parts) != 6 or f"{parts[0]}/{parts[1]}" != ROOT or parts[3] != "records":
        return None
    return parts[2], parts[4], parts[5]


def enroll(tenant: str, device: str) -> str:
    """Provisioning requests (enroll, rotate, decommission) of one device."""
    return f"{ROOT}/{tenant}/enroll/{device}"


def enroll_reply(tenant: str, device: str) -> str:
    return f"{ROOT}/{tenant}/enroll/{device}/reply"


def enroll_all(tenant: str = "+") -> str:
    return f"{ROOT}/{tenant}/enroll/+"


def parse_enroll(topic: str) -> tuple[str, str] | None:
    """(tenant, device) of a provisioning request topic, or None if it is not one."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != ROOT or parts[3] != "enroll":
        return None
    return parts[2], parts[4]
