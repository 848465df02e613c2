from typing import Any

def refund(
    sale: dict[str, Any],
    request: dict[str, Any],
    prior: list[dict[str, int]] | None = None,
    kind: str = "refund",
) -> dict[str, Any]: ...
def settle_member(
    r: dict[str, Any], points: int, wallet: int, policy: dict[str, Any]
) -> dict[str, Any]: ...
