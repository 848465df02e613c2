from collections.abc import Collection
from typing import Any

from edge.core.dates import Timestamp
from edge.core.ruleset import RuleSet

def quote(
    rs: RuleSet,
    basket: dict[str, Any],
    member: dict[str, Any] | None = None,
    at: str | Timestamp | None = None,
    used_codes: Collection[str] | None = None,
) -> dict[str, Any]: ...
