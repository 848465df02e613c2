"""Who a terminal is: the tenant (the chain), the store and the device id.  The address of
its topics (edge.protocol.topics), the fields every record carries, and the key its outbox
database is bound to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Identity:
    tenant: str
    store: str
    device: str
