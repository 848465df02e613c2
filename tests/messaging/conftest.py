"""Messaging fixtures: the ledger on both databases with members, and the fake gateways."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud_broker.messages.gateway import Secret
from cloud_broker.messages.ippanel import IPPanel
from cloud_broker.messages.kavenegar import Kavenegar
from tests.cloud.conftest import ho, ledger_url, pos  # noqa: F401 - re-exported fixtures
from tests.messages.conftest import IPPANEL_LINE, KEY
from tests.messages.fakes import FakeIPPanel, FakeKavenegar


@pytest.fixture
def kn_fake() -> Iterator[FakeKavenegar]:
    fake = FakeKavenegar(KEY)
    yield fake
    fake.close()


@pytest.fixture
def kn(kn_fake: FakeKavenegar) -> Iterator[Kavenegar]:
    gw = Kavenegar(Secret(KEY), base_url=kn_fake.base_url, sender="10004346", timeout=2.0)
    yield gw
    gw.close()


@pytest.fixture
def ip_fake() -> Iterator[FakeIPPanel]:
    fake = FakeIPPanel(KEY)
    yield fake
    fake.close()


@pytest.fixture
def ip(ip_fake: FakeIPPanel) -> Iterator[IPPanel]:
    gw = IPPanel(Secret(KEY), base_url=ip_fake.base_url + "/v1", sender=IPPANEL_LINE, timeout=2.0)
    yield gw
    gw.close()
