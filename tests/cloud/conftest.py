"""Head-office fixtures: a ledger on SQLite and on PostgreSQL, and test terminals."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal

PG_DSN = os.environ.get("LOYALTY_TEST_PG", "postgresql://127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=3) as c:
            c.execute("SELECT 1")
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None


_PG_PROBLEM = _pg_available()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ledger.db"
        return
    if _PG_PROBLEM is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_DSN} is required under CI=true: {_PG_PROBLEM}")
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN} ({_PG_PROBLEM}); runs under CI=true")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_DSN}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def ho(ledger_url: str) -> Iterator[HO]:
    h = HO(ledger_url)
    yield h
    h.close()


@pytest.fixture
def pos(tmp_path: Path, ho: HO) -> Terminal:
    t = Terminal(tmp_path)
    ho.register(t)
    return t
