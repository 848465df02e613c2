from typing import Any

MAX_AMOUNT: int
MAX_POINTS: int
KINDS: dict[str, tuple[int, tuple[str, ...], bool]]

class Tier:
    def __init__(
        self, tid: str, min_spend: int, earn_pct: int, cashback_bp: int, fa: str, en: str
    ) -> None: ...
    id: str
    min_spend: int
    earn_pct: int
    cashback_bp: int
    fa: str
    en: str

class Rule:
    def __init__(
        self,
        rid: str,
        kind: str,
        phase: int,
        fa: str,
        en: str,
        priority: int,
        p: dict[str, Any],
    ) -> None: ...
    id: str
    kind: str
    phase: int
    fa: str
    en: str
    priority: int
    p: dict[str, Any]

class RuleSet:
    version: int
    tenant: str
    tiers: list[Tier]
    window_days: int
    limits: dict[str, int]
    policy: dict[str, Any]
    rules: list[Rule]
    by_id: dict[str, Rule]
    by_code: dict[str, Rule]
    doc: dict[str, Any]
    def tier_for_spend(self, spend: int) -> Tier: ...

def compile_rules(doc: dict[str, Any]) -> RuleSet: ...

class RuleBook:
    current: RuleSet | None
    def __init__(self, doc: dict[str, Any] | None = None) -> None: ...
    def put(self, rs: RuleSet, allow_same: bool = False) -> RuleSet: ...
    def replace(self, doc: dict[str, Any], allow_same: bool = False) -> RuleSet: ...
