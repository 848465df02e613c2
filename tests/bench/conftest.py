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


@pytest.fixture
def pg_url_factory() -> object:
    """Fresh PostgreSQL schemas for benchmarks, dropped afterwards."""
    import uuid

    import psycopg

    from tests.cloud.conftest import PG_DSN

    made: list[str] = []

    def make() -> str:
        schema = f"b_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_DSN, autocommit=True) as c:
            c.execute(f"CREATE SCHEMA {schema}")
        made.append(schema)
        return f"{PG_DSN}?options=-csearch_path%3D{schema}"

    yield make
    with psycopg.connect(PG_DSN, autocommit=True) as c:
        for s in made:
            c.execute(f"DROP SCHEMA {s} CASCADE")
