"""Provisioning fixtures: one head office (TLS broker with the generated configuration,
the reconciler service) shared by the tests that need it, and the ledger on both engines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cloud.conftest import ledger_url  # noqa: F401 - re-exported fixture
from tests.provisioning.world import World


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("headoffice"))
    yield w
    w.close()
