"""Inputs of the protocol test vectors (docs/protocol.md).  The expected bytes live in
records.json, written once by make.py and read by a person before committing."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.core import record as R

# RFC 8032 §7.1, TEST 1
SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
TENANT, STORE, DEVICE = "hypershahr", "tehran-01", "pos-0001"
BOOT = bytes.fromhex("0102030405060708")


def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(SEED)


def time_at(seq: int) -> dict[int, Any]:
    # 2026-03-20T21:00:00+03:30 plus a minute per record; monotonic ms since boot
    return R.time_field(1774027800000 + seq * 60000, 210, 3_600_000 + seq * 60000, BOOT)


SALE_QUOTE: dict[str, Any] = {
    "subtotal": 1_350_000,
    "discount": 450_000,
    "wallet_used": 0,
    "payable": 900_000,
    "points_earned": 90,
    "points_redeemed": 0,
    "wallet_earned": 0,
    "rules_version": 1,
    "lines": [
        {
            "sku": "DRK-COLA-1.5",
            "category": "drinks",
            "qty": 3,
            "unit_price": 450_000,
            "discount": 450_000,
            "wallet": 0,
            "paid": 900_000,
            "points": 90,
            "redeemed": 0,
            "cashback": 0,
        }
    ],
    "applied": [
        {"rule": "cola-3for2", "kind": "buy_x_get_y", "discount": 450_000},
        {"rule": "base-earn", "kind": "earn_rate", "points": 90},
    ],
}
REFUND: dict[str, Any] = {
    "gross": 450_000,
    "discount": 150_000,
    "wallet_returned": 0,
    "refund_amount": 300_000,
    "points_reversed": 30,
    "points_returned": 0,
    "wallet_reversed": 0,
    "rules_version": 1,
    "lines": [
        {
            "line": 0,
            "sku": "DRK-COLA-1.5",
            "qty": 1,
            "gross": 450_000,
            "discount": 150_000,
            "net": 300_000,
            "wallet": 0,
            "paid": 300_000,
            "points": 30,
            "redeemed": 0,
            "cashback": 0,
        }
    ],
}
PHONE = "+989121234567"
BASKET = "POS-7781"
BANK_INFO: dict[str, Any] = {  # what the bank terminal reported for the sale
    "terminal_id": "52001234",
    "trace": 1771,
    "receipt": 88,
    "amount": 900_000,
    "card_type": "Shetab",
    "auth_code": "A1B2C3",
    "result": "00",
}
MEMBER = R.member_field("phone", PHONE)
BANK = R.bank_field(BANK_INFO)


def payloads(hashes: list[bytes]) -> list[tuple[str, dict[int, Any]]]:
    """The three records; ``hashes`` are the hashes of the records before each one."""
    out = []
    out.append(
        (
            "heartbeat",
            R.build(
                "heartbeat",
                TENANT,
                STORE,
                DEVICE,
                1,
                R.ZERO_HASH,
                time_at(1),
                {R.K_EXTRA: {0: 0, 1: 0}},
            ),
        )
    )
    if len(hashes) >= 1:
        out.append(
            (
                "sale",
                R.build(
                    "sale",
                    TENANT,
                    STORE,
                    DEVICE,
                    2,
                    hashes[0],
                    time_at(2),
                    R.sale_body(SALE_QUOTE),
                    MEMBER,
                    BANK,
                    False,
                    BASKET,
                ),
            )
        )
    if len(hashes) >= 2:
        out.append(
            (
                "refund",
                R.build(
                    "refund",
                    TENANT,
                    STORE,
                    DEVICE,
                    3,
                    hashes[1],
                    time_at(3),
                    R.refund_body(REFUND, DEVICE, 2, hashes[1]),
                    MEMBER,
                ),
            )
        )
    return out
