"""Fixtures for the tax hand-off: a test CA, the taxpayer's credentials, the fake system."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from cloud_broker.tax.client import MoadianClient
from cloud_broker.tax.invoice import Invoice, Seller
from cloud_broker.tax.lines import InvoiceLine
from tests.tax.fake_moadian import FakeMoadian
from tests.tax.pki import Authority, new_key

MEMORY_ID = "A1B2C3"
ECONOMIC_CODE = "14003778990"
# 2024-03-21 10:15:00 Tehran (2 Farvardin 1403)
SALE_MS = int(datetime(2024, 3, 21, 6, 45, tzinfo=UTC).timestamp() * 1000)

CLIENT_TIMEOUT_S = 2.0

T = TypeVar("T")


@dataclass(frozen=True)
class Pki:
    ca: Authority
    taxpayer_key: rsa.RSAPrivateKey
    taxpayer_cert: x509.Certificate
    rogue_ca: Authority
    rogue_cert: x509.Certificate  # the taxpayer's key, vouched for by an untrusted CA
    server_key: rsa.RSAPrivateKey
    spare_server_key: rsa.RSAPrivateKey


@pytest.fixture(scope="session")
def pki() -> Pki:
    ca = Authority.create("Test intermediate CA")
    rogue = Authority.create("Rogue CA")
    key = new_key()
    return Pki(
        ca=ca,
        taxpayer_key=key,
        taxpayer_cert=ca.issue(key, "Test store"),
        rogue_ca=rogue,
        rogue_cert=rogue.issue(key, "Test store"),
        server_key=new_key(),
        spare_server_key=new_key(),
    )


@pytest.fixture
def fake(pki: Pki) -> Iterator[FakeMoadian]:
    with FakeMoadian(pki.ca.certificate, server_key=pki.server_key) as server:
        yield server


@pytest.fixture
def client(fake: FakeMoadian, pki: Pki) -> Iterator[MoadianClient]:
    with MoadianClient(
        fake.base_url, MEMORY_ID, pki.taxpayer_key, pki.taxpayer_cert, timeout=CLIENT_TIMEOUT_S
    ) as made:
        yield made


SELLER = Seller(MEMORY_ID, ECONOMIC_CODE)


def make_invoice(serial: int, *, lines: int = 2, issued_at_ms: int = SALE_MS) -> Invoice:
    """A plain retail invoice with ``lines`` lines."""
    items = [
        InvoiceLine(
            sstid="2720000166053",
            description=f"کالای {n}",
            qty_milli=1000 * n,
            unit_price=125_000 + n,
            vat_rate_bp=1000,
            discount=n * 10,
        )
        for n in range(1, lines + 1)
    ]
    return Invoice.create(SELLER, serial, issued_at_ms, items)


def poll_until(probe: Callable[[], T], done: Callable[[T], bool], *, deadline_s: float = 30.0) -> T:
    """Call ``probe`` until ``done`` holds for its result, or fail at the deadline."""
    stop = time.monotonic() + deadline_s
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > stop:
            pytest.fail(f"still not done after {deadline_s} s: {value!r}")
        time.sleep(0.02)  # the polling step; the deadline above bounds a failure
