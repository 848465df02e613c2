"""A provisioned test terminal: key, sealer, outbox, and records of every type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.checkout import sale_delta
from edge.clock import Clock
from edge.core import record as R
from edge.core.engine import quote
from edge.core.refund import refund
from edge.core.ruleset import compile_rules
from edge.ledger_cache.outbox import Identity, Limits, Outbox
from edge.protocol import ed25519
from edge.protocol.record import Record, Sealer
from tests.conftest import RULES_PATH

AT = "2026-03-20T21:00:00+03:30"


@dataclass
class Device:
    key: ed25519.PrivateKey  # cryptography's, or the terminal's own (edge.protocol.ed25519)
    identity: Identity
    outbox: Outbox
    db: Path

    @property
    def id(self) -> str:
        return self.identity.device


def make_device(
    tmp: Path,
    device: str = "dev-1",
    store: str = "s1",
    tenant: str = "acme",
    limits: Limits | None = None,
    key: ed25519.PrivateKey | None = None,
) -> Device:
    key = key or Ed25519PrivateKey.generate()
    ident = Identity(tenant, store, device)
    db = tmp / f"{device}.db"
    ob = Outbox(db, ident, Sealer(key, device), Clock(210), limits)
    return Device(key, ident, ob, db)


def sample_quote(i: int = 0) -> dict[str, Any]:
    import json

    rs = compile_rules(json.loads(RULES_PATH.read_text("utf-8")))
    basket = {
        "lines": [
            {"sku": f"SKU-{i}", "category": "dairy", "qty": 1 + i % 3, "unit_price": 380_000},
            {"sku": "DRK-COLA-1.5", "category": "drinks", "qty": 3, "unit_price": 450_000},
        ]
    }
    member = {"ref": "+989121234567", "points": 3400, "wallet": 100_000, "visits": 3}
    return quote(rs, basket | {"redeem_points": "max", "use_wallet": "max"}, member, AT)


BANK = {
    "terminal_id": "52001234",
    "trace": 1771,
    "receipt": 88,
    "amount": 0,
    "card_type": "Shetab",
    "auth_code": "A1B2C3",
    "result": "00",
}


def commit_sale(dev: Device, i: int = 0, offline: bool = False) -> Record:
    q = sample_quote(i)
    bank = dict(BANK, amount=q["payable"], trace=1000 + i)
    delta = sale_delta("+989121234567", q)
    return dev.outbox.commit(
        "sale",
        R.sale_body(q),
        member=R.member_field("phone", "+989121234567"),
        bank=R.bank_field(bank),
        offline=offline,
        basket=f"POS-{i}",
        delta=delta,
        charged=True,
    )


def commit_all_types(dev: Device) -> list[Record]:
    """One record of each type, in a plausible order."""
    out = [
        dev.outbox.commit(
            "enroll",
            {R.K_EXTRA: {0: "phone", 1: "+989121234567"}},
            member=R.member_field("phone", "+989121234567"),
        )
    ]
    sale = commit_sale(dev, 1)
    out.append(sale)
    q = sample_quote(1)
    out.append(
        dev.outbox.commit(
            "refund",
            R.refund_body(
                refund(q, {"lines": [{"line": 1, "qty": 1}]}), dev.id, sale.seq, sale.hash
            ),
            member=R.member_field("phone", "+989121234567"),
        )
    )
    out.append(
        dev.outbox.commit(
            "void",
            R.refund_body(
                refund(q, {}, [{"line": 1, "qty": 1}], kind="void"), dev.id, sale.seq, sale.hash
            ),
        )
    )
    out.append(
        dev.outbox.commit(
            "adjustment",
            {R.K_EXTRA: {0: "goodwill", 1: 500, 2: 0}},
            member=R.member_field("card", "04A1B2C3D4E5F6"),
        )
    )
    out.append(dev.outbox.commit("heartbeat", {R.K_EXTRA: {0: 5, 1: 0}}))
    return out
