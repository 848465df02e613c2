"""Fixtures: a fake of each gateway on a local port and an adapter pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud_broker.messages.gateway import Secret
from cloud_broker.messages.ippanel import IPPanel
from cloud_broker.messages.kavenegar import Kavenegar
from tests.messages.fakes import FakeIPPanel, FakeKavenegar

# Distinctive, so a leak into a log line or an error text cannot hide.
KEY = "Zq7Kx2Lm9Pw4Rt6-s3cr3t"
IPPANEL_LINE = "+983000505"


@pytest.fixture
def kavenegar_fake() -> Iterator[FakeKavenegar]:
    fake = FakeKavenegar(KEY)
    yield fake
    fake.close()


@pytest.fixture
def kavenegar(kavenegar_fake: FakeKavenegar) -> Iterator[Kavenegar]:
    gw = Kavenegar(Secret(KEY), base_url=kavenegar_fake.base_url, sender="10004346", timeout=3.0)
    yield gw
    gw.close()


@pytest.fixture
def ippanel_fake() -> Iterator[FakeIPPanel]:
    fake = FakeIPPanel(KEY)
    yield fake
    fake.close()


@pytest.fixture
def ippanel(ippanel_fake: FakeIPPanel) -> Iterator[IPPanel]:
    gw = IPPanel(
        Secret(KEY), base_url=ippanel_fake.base_url + "/v1", sender=IPPANEL_LINE, timeout=3.0
    )
    yield gw
    gw.close()
