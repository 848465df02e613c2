from typing import Any

MAX_LINES: int
MAX_QTY: int
MAX_COUPONS: int

class Basket:
    subtotal: int
    def __init__(self, basket: dict[str, Any]) -> None: ...

class Member:
    ref: str
    points: int
    wallet: int
    def __init__(self, m: dict[str, Any], now_day: int, window_days: int) -> None: ...
