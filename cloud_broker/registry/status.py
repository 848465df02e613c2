"""What terminals say of themselves on ``loyalty/v1/{tenant}/status/{device}`` (retained:
online with its outbox depth, ``applied_through`` and the rules version in force, or the
last will ``offline``), kept in ``device_status`` for the console's pages."""

from __future__ import annotations

import time

from cloud_broker.ledger.db import Database, Tx
from edge.errors import DecodeError
from edge.protocol import messages, topics
from edge.sanitize import clean


def record(db: Database, topic: str, payload: bytes) -> bool:
    """Keep one status message; False (nothing kept) for one that does not parse or names
    a device head office does not know."""
    where = topics.parse_status(topic)
    if where is None:
        return False
    try:
        st = messages.decode_status(payload)
    except DecodeError:
        return False
    device = where[1]

    def step(tx: Tx) -> bool:
        if tx.one("SELECT 1 FROM devices WHERE device = ?", (device,)) is None:
            return False
        tx.execute(
            "INSERT INTO device_status (device, state, reason, depth, applied_through, "
            "rules_version, device_wall_ms, received_at, rules_key) VALUES (?, ?, ?, ?, ?, ?, ?, "
            "?, ?) "
            "ON CONFLICT (device) DO UPDATE SET state = excluded.state, reason = "
            "excluded.reason, depth = excluded.depth, applied_through = "
            "excluded.applied_through, rules_version = COALESCE(excluded.rules_version, "
            "device_status.rules_version), device_wall_ms = excluded.device_wall_ms, "
            "received_at = excluded.received_at, rules_key = COALESCE(excluded.rules_key, "
            "device_status.rules_key)",
            (
                device,
                str(st.get("state")),
                clean(str(st.get("reason", "")), 40) or None,
                _int(st.get("depth")),
                _int(st.get("applied_through")),
                _int(st.get("rules_version")),
                _int(st.get("wall_ms")),
                int(time.time() * 1000),
                _int(st.get("rules_key")),
            ),
        )
        return True

    return db.run(step)


def _int(v: object) -> int | None:
    return v if type(v) is int and 0 <= v < 2**63 else None
