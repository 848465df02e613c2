"""Benchmarks: run by ./dev bench (pytest -m bench --benchmark-enable), never by ./dev test."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/bench/" in str(item.fspath):
            item.add_marker(pytest.mark.bench)


def percentile(data: list[float], pct: float) -> float:
    xs = sorted(data)
    return xs[min(len(xs) - 1, int(len(xs) * pct / 100))]
