"""Contract tests generated from the API's own OpenAPI document (schemathesis) against the
running server with a key of every scope: fuzzed input never makes a server error, and
every answer matches the document's status codes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cloud_broker.api import keys
from tests.api.conftest import ADMIN, ApiServer, seed
from tests.helpers.headoffice import HO

counter = itertools.count()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, str]]:
    tmp: Path = tmp_path_factory.mktemp("contract")
    ho = HO(f"sqlite:///{tmp}/ledger.db")
    seed(ho, tmp)
    key = keys.create(ho.db, ADMIN, "fuzzer", list(keys.SCOPES), 100_000)[1]
    server = ApiServer(ho.db.url, tmp)
    yield server, key
    server.stop()


def test_no_server_error_on_fuzzed_input(served: tuple[ApiServer, str]) -> None:
    """Every operation of the document, 60 generated requests each (positive and negative
    cases: wrong types, missing fields, odd strings)."""
    server, key = served
    schema = schemathesis.openapi.from_url(server.url + "/v1/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) == 6
    seen: dict[int, int] = {}
    for op in operations:

        @settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=op.as_strategy())
        def fuzz(case: Any) -> None:
            headers = {"Authorization": f"Bearer {key}"}
            if case.method == "POST":
                headers["Idempotency-Key"] = f"fuzz-{next(counter)}"
            response = case.call(base_url=server.url, headers=headers)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, (case.method, case.path, response.text)
            case.validate_response(response, checks=[
                not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance])  # fmt: skip

        fuzz()
    assert sum(seen.values()) >= 6 * 20 and any(400 <= s < 500 for s in seen)
