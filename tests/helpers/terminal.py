"""A scriptable test terminal: records with exact amounts, on a clock the test controls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.clock import Clock
from edge.core import record as R
from edge.core.dates import days_from_civil
from edge.ledger_cache.outbox import Identity, Outbox
from edge.protocol import topics
from edge.protocol.keys import public_raw
from edge.protocol.record import Record, Sealer

DAY0 = days_from_civil(2026, 3, 20)


class FakeTime:
    def __init__(self, day: int = DAY0) -> None:
        self.t = day * 86400.0 + 6 * 3600  # 09:30 Tehran

    def __call__(self) -> float:
        return self.t

    def to_day(self, day: int) -> None:
        self.t = day * 86400.0 + 6 * 3600


def sale_body(
    subtotal: int,
    *,
    discount: int = 0,
    wallet: int = 0,
    earned: int = 0,
    redeemed: int = 0,
    cashback: int = 0,
    coupon: str | None = None,
    birthday_year: int | None = None,
    rules_version: int = 1,
) -> dict[int, Any]:
    payable = subtotal - discount - wallet
    line = {
        "sku": "SKU-1",
        "category": "general",
        "qty": 1,
        "unit_price": subtotal,
        "discount": discount,
        "wallet": wallet,
        "paid": payable,
        "points": earned,
        "redeemed": redeemed,
        "cashback": cashback,
    }
    applied: list[dict[str, Any]] = []
    if coupon:
        applied.append(
            {"rule": "coupon-welcome", "kind": "coupon", "discount": discount, "coupon": coupon}
        )
    if birthday_year:
        applied.append({"rule": "birthday", "kind": "birthday", "birthday_year": birthday_year})
    return R.sale_body(
        {
            "subtotal": subtotal,
            "discount": discount,
            "wallet_used": wallet,
            "payable": payable,
            "points_earned": earned,
            "points_redeemed": redeemed,
            "wallet_earned": cashback,
            "rules_version": rules_version,
            "lines": [line],
            "applied": applied,
        }
    )


def refund_body(
    sale: Record,
    *,
    gross: int,
    refunded: int,
    discount: int = 0,
    wallet: int = 0,
    reversed_: int = 0,
    returned: int = 0,
    cb_reversed: int = 0,
) -> dict[int, Any]:
    line = {
        "line": 0,
        "sku": "SKU-1",
        "qty": 1,
        "gross": gross,
        "discount": discount,
        "net": gross - discount,
        "wallet": wallet,
        "paid": refunded,
        "points": reversed_,
        "redeemed": returned,
        "cashback": cb_reversed,
    }
    return R.refund_body(
        {
            "gross": gross,
            "discount": discount,
            "wallet_returned": wallet,
            "refund_amount": refunded,
            "points_reversed": reversed_,
            "points_returned": returned,
            "wallet_reversed": cb_reversed,
            "rules_version": 1,
            "lines": [line],
        },
        sale.device,
        sale.seq,
        sale.hash,
    )


class Terminal:
    def __init__(
        self, tmp: Path, device: str = "pos-1", store: str = "s1", tenant: str = "hypershahr"
    ) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.identity = Identity(tenant, store, device)
        self.time = FakeTime()
        self.db = tmp / f"{device}.db"
        self.outbox = Outbox(
            self.db, self.identity, Sealer(self.key, device), Clock(210, wall=self.time)
        )

    @property
    def device(self) -> str:
        return self.identity.device

    @property
    def topic(self) -> str:
        return topics.records(self.identity.tenant, self.identity.store, self.identity.device)

    @property
    def public_key(self) -> bytes:
        return public_raw(self.key)

    def sale(self, member: str | None, subtotal: int = 1_000_000, **kw: Any) -> Record:
        m = R.member_field("phone", member) if member else None
        return self.outbox.commit("sale", sale_body(subtotal, **kw), member=m, charged=True)

    def refund(self, member: str | None, sale: Record, **kw: Any) -> Record:
        m = R.member_field("phone", member) if member else None
        return self.outbox.commit("refund", refund_body(sale, **kw), member=m, charged=True)

    def enroll(self, member: str, card: str | None = None, birthday: str | None = None) -> Record:
        extra: dict[int, Any] = {0: "card" if card else "phone", 1: card or member}
        if birthday:
            extra[2] = birthday
        return self.outbox.commit(
            "enroll", {R.K_EXTRA: extra}, member=R.member_field("phone", member)
        )

    def adjust(self, member: str, points: int = 0, wallet: int = 0) -> Record:
        return self.outbox.commit(
            "adjustment",
            {R.K_EXTRA: {0: "goodwill", 1: points, 2: wallet}},
            member=R.member_field("phone", member),
        )

    def heartbeat(self) -> Record:
        return self.outbox.commit("heartbeat", {R.K_EXTRA: {0: 0, 1: 0}})
