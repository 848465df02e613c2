"""Member panel fixtures: the ledger on both databases with a member, the fake Kavenegar."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud_broker.messages.gateway import Secret
from cloud_broker.messages.kavenegar import Kavenegar
from tests.cloud.conftest import ho, ledger_url, pos  # noqa: F401 - re-exported fixtures
from tests.messages.conftest import KEY
from tests.messages.fakes import FakeKavenegar


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
