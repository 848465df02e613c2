"""The chaos and attack suites share one world: three stores with bank terminals, checking
out through a private Mosquitto into head office's reconciler."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_broker.local_broker import LocalMosquitto
from tests.chaos.test_chaos import World


@pytest.fixture
def world(tmp_path: Path, broker: LocalMosquitto) -> Iterator[World]:
    w = World(tmp_path, broker)
    yield w
    w.close()
