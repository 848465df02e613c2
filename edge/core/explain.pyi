NOTICES: dict[str, tuple[str, str]]
COUPON_REASONS: dict[str, tuple[str, str]]
