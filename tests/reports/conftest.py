"""Reports fixtures: a synthetic chain's four months, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_broker.club import today as today_
from tests.cloud.conftest import ho, ledger_url, pos  # noqa: F401 - re-exported fixtures
from tests.helpers import chain as chain_
from tests.helpers.headoffice import HO


@pytest.fixture
def chain(ho: HO, tmp_path: Path) -> chain_.Chain:  # noqa: F811 - the re-exported fixture
    return chain_.build(ho, tmp_path, today_.local_day())
