"""Tax invoices: built from records (the VAT split, the tax id), signed (JWS RS256) and
encrypted (JWE RSA-OAEP-256 + A256GCM) per second, next to the raw RSA work alone (an
RS256 signature of the same bytes and an RSA-OAEP-256 wrap of a key plus AES-GCM) measured
in the same run."""

from __future__ import annotations

import os
import random
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cloud_broker.invoicing import build
from cloud_broker.tax.invoice import Seller
from cloud_broker.tax.jose import ServerKey, TaxpayerCredentials, seal
from cloud_broker.tax.wirejson import encode_json
from edge.core import record as R
from tests.tax.pki import Authority, new_key

N = 300


def _payloads(rng: random.Random) -> list[dict[int, Any]]:
    out = []
    for _ in range(N):
        lines = []
        for j in range(rng.randint(1, 6)):
            qty, price = rng.randint(1, 4), rng.randint(50_000, 3_000_000)
            lines.append({R.L_SKU: f"SKU-{j}", R.L_CATEGORY: "dairy", R.L_QTY: qty,
                          R.L_UNIT_PRICE: price, R.L_DISCOUNT: 0, R.L_WALLET: 0,
                          R.L_PAID: qty * price, R.L_POINTS: 0, R.L_REDEEMED: 0,
                          R.L_CASHBACK: 0})  # fmt: skip
        paid = sum(x[R.L_PAID] for x in lines)
        out.append({R.K_TYPE: "sale", R.K_LINES: lines, R.K_AMOUNTS: {R.A_PAID: paid},
                    R.K_TIME: {R.T_WALL: 1_764_874_000_000, R.T_OFFSET: 210}})  # fmt: skip
    return out


def test_invoices_built_signed_and_encrypted_a_second(benchmark: Any) -> None:
    ca = Authority.create("Bench CA")
    key = new_key()
    creds = TaxpayerCredentials(key, ca.issue(key, "Bench store"))
    server = new_key()
    skey = ServerKey("bench", server.public_key())
    seller = Seller("A1B2C3", "14003778990")
    table = {("category", "dairy"): ("2720000166053", "لبنیات", None)}
    payloads = _payloads(random.Random(2))
    figures: dict[str, float] = {}

    def run() -> None:
        t0 = time.perf_counter()
        sizes = []
        for i, p in enumerate(payloads):
            inv = build.invoice(seller, i + 1, p, table)
            body = encode_json(inv.to_packet())
            sizes.append(len(body))
            seal(body, creds, skey)
        figures["ours_per_s"] = N / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for n in sizes:
            data = os.urandom(n)
            sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
            cek = os.urandom(32)
            oaep = padding.OAEP(
                mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
            )
            server.public_key().encrypt(cek, oaep)
            AESGCM(cek).encrypt(os.urandom(12), data + sig, None)
        figures["raw_rsa_per_s"] = N / (time.perf_counter() - t0)

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({
        "invoices": N, "ours_per_s": round(figures["ours_per_s"]),
        "raw_rsa_per_s": round(figures["raw_rsa_per_s"]),
        "ratio": round(figures["ours_per_s"] / figures["raw_rsa_per_s"], 2),
    })  # fmt: skip
