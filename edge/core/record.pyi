from typing import Any

BANK_NAMES: tuple[str, ...]
T_WALL: int
T_OFFSET: int
T_MONO: int
T_BOOT: int
M_HOW: int
M_REF: int
A_GROSS: int
A_DISCOUNT: int
A_WALLET: int
A_PAID: int
A_WITHHELD: int
P_EARNED: int
P_REDEEMED: int
P_FORGIVEN: int
W_USED: int
W_CASHBACK: int
W_FORGIVEN: int
L_SKU: int
L_CATEGORY: int
L_QTY: int
L_UNIT_PRICE: int
L_DISCOUNT: int
L_WALLET: int
L_PAID: int
L_POINTS: int
L_REDEEMED: int
L_CASHBACK: int
L_LINE: int
B_TERMINAL: int
B_TRACE: int
B_RECEIPT: int
B_AMOUNT: int
B_CARD: int
B_AUTH: int
B_RESULT: int
O_DEVICE: int
O_SEQ: int
O_HASH: int
AP_RULE: int
AP_KIND: int
AP_DISCOUNT: int
AP_POINTS: int
AP_WALLET: int
AP_COUPON: int
AP_BIRTHDAY: int
AP_ANNIVERSARY: int
EN_HOW: int
EN_REF: int
EN_BIRTHDAY: int
EN_REFERRAL: int
ADJ_REASON: int
ADJ_POINTS: int
ADJ_WALLET: int
HB_DEPTH: int
HB_APPLIED: int

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
