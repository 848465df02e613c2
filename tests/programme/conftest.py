"""Programme fixtures: the ledger on both databases (tests/cloud/conftest.py)."""

from tests.cloud.conftest import ho, ledger_url, pos  # noqa: F401 - re-exported fixtures
