"""Member panel fixtures: the ledger on both databases with a member, the fake Kavenegar
(the messaging tests' own fixtures)."""

from __future__ import annotations

from tests.cloud.conftest import ho, ledger_url, pos  # noqa: F401 - re-exported fixtures
from tests.messaging.conftest import kn, kn_fake  # noqa: F401 - re-exported fixtures
