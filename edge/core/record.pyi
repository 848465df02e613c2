from typing import Any

SCHEMA: int
K_V: int
K_TYPE: int
K_TENANT: int
K_STORE: int
K_DEVICE: int
K_SEQ: int
K_PREV: int
K_TIME: int
K_MEMBER: int
K_AMOUNTS: int
K_LINES: int
K_POINTS: int
K_WALLET: int
K_RULES: int
K_BANK: int
K_OFFLINE: int
K_ORIG: int
K_APPLIED: int
K_BASKET: int
K_EXTRA: int
TYPES: tuple[str, ...]
ZERO_HASH: bytes
LINE_FIGURES: tuple[str, ...]

def time_field(wall_ms: int, offset_min: int, mono_ms: int, boot: bytes) -> dict[int, Any]: ...
def member_field(how: str, ref: str | None) -> dict[int, str] | None: ...
def bank_field(bank: dict[str, Any] | None) -> dict[int, Any] | None: ...
def sale_body(quote: dict[str, Any]) -> dict[int, Any]: ...
def refund_body(
    refund: dict[str, Any], orig_device: str, orig_seq: int, orig_hash: bytes
) -> dict[int, Any]: ...
def build(
    kind: str,
    tenant: str,
    store: str,
    device: str,
    seq: int,
    prev: bytes,
    time: dict[int, Any],
    body: dict[int, Any],
    member: dict[int, str] | None = None,
    bank: dict[int, Any] | None = None,
    offline: bool = False,
    basket: str | None = None,
) -> dict[int, Any]: ...
