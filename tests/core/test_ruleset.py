"""A bad rules bundle is refused with the rule and the reason; the good one stays in force."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from edge.core.errors import RuleError
from edge.core.ruleset import KINDS, RuleBook, compile_rules
from tests.core.helpers import EARN, bundle, rule


def test_demo_rules_compile(rules_doc: dict[str, Any]) -> None:
    rs = compile_rules(rules_doc)
    assert rs.version == 1
    assert [t.id for t in rs.tiers] == ["regular", "bronze", "silver", "gold"]
    assert rs.redeem is not None and rs.redeem.id == "redeem"
    assert "WELCOME10" in rs.by_code
    assert [r.id for r in rs.by_category["nuts"]] == ["nowruz-nuts"]


BAD: list[tuple[dict[str, Any], str, str]] = [
    (rule("r", "double_points", pct=200), "r", "unknown kind 'double_points'"),
    (rule("r", "pct_off", bp=-5), "r", "below the minimum"),
    (rule("r", "pct_off", bp=15000), "r", "above the sane maximum 10000"),
    (rule("r", "pct_off", bp=10.5), "r", "must be an integer"),
    (rule("r", "earn_rate", points=100, per_rials=50), "r", "absurd"),
    (rule("r", "earn_multiplier", pct=5000), "r", "above the sane maximum 1000"),
    (rule("r", "cashback", bp=9000), "r", "above the sane maximum 5000"),
    (rule("r", "pct_off", bp=100, catgories=["x"]), "r", "unknown field 'catgories'"),
    (
        rule("r", "pct_off", bp=100, when={"dates": {"from": "2026-03-10", "until": "2026-03-01"}}),
        "r",
        "window ends (2026-03-01) before it starts (2026-03-10)",
    ),
    (
        rule("r", "pct_off", bp=100, when={"dates": {"from": "1404-12-30", "calendar": "jalali"}}),
        "r",
        "no such Jalali date",
    ),
    (rule("r", "pct_off", bp=100, when={"dates": {"from": "2026-02-30"}}), "r", "no such date"),
    (rule("r", "pct_off", bp=100, when={"hours": ["10:00", "10:00"]}), "r", "window is empty"),
    (rule("r", "pct_off", bp=100, when={"hours": ["25:00", "10:00"]}), "r", "no such time"),
    (rule("r", "pct_off", bp=100, when={"weekdays": ["friday"]}), "r", "unknown weekday"),
    (rule("r", "pct_off", bp=100, when={"tiers": ["platinum"]}), "r", "unknown tier"),
    (rule("r", "pct_off", bp=100, groups=["nope"]), "r", "unknown group 'nope'"),
    (rule("r", "basket_threshold", min_spend=100, off_rials=500), "r", "exceeds the threshold"),
    (rule("r", "basket_threshold", min_spend=100, bp=10, off_rials=5), "r", "not both"),
    (rule("r", "redeem_points", mode="cash"), "r", "mode must be"),
    (rule("r", "earn_visit", points=5, skus=["A"]), "r", "takes no skus"),
    ({"kind": "pct_off", "bp": 1, "name": {"fa": "x", "en": "x"}}, "?", "rule id"),
    ({**rule("r", "pct_off", bp=1), "kind": ["pct_off"]}, "r", "unknown kind ['pct_off']"),
    ({**rule("r", "pct_off", bp=1), "kind": {"pct_off": 1}}, "r", "unknown kind {"),
    (rule("r", "pct_off", bp=100, name={"fa": "", "en": "x"}), "r", "name.fa"),
]


@pytest.mark.parametrize(("bad", "where", "reason"), BAD, ids=[b[2][:30] for b in BAD])
def test_bad_rule_refused_with_name_and_reason(
    bad: dict[str, Any], where: str, reason: str
) -> None:
    with pytest.raises(RuleError) as info:
        compile_rules(bundle(EARN, bad))
    assert info.value.rule == where
    assert reason in str(info.value)


def test_overlapping_exclusive_groups_refused() -> None:
    doc = bundle(
        rule("r", "pct_off", bp=100, groups=["a", "b"]),
        groups={"a": {"exclusive": True}, "b": {"exclusive": True}},
    )
    with pytest.raises(RuleError, match="two exclusive groups"):
        compile_rules(doc)
    doc["groups"]["b"]["exclusive"] = False  # one exclusive + one stackable is fine
    assert compile_rules(doc).by_id["r"].exclusive == "a"


def test_duplicates_refused() -> None:
    with pytest.raises(RuleError, match="duplicate rule id"):
        compile_rules(bundle(EARN, EARN))
    with pytest.raises(RuleError, match="also in rule"):
        compile_rules(
            bundle(rule("a", "coupon", codes=["X"], bp=1), rule("b", "coupon", codes=["x"], bp=1))
        )


@pytest.mark.parametrize(
    ("tiers", "reason"),
    [
        ({"levels": [{"id": "a", "min_spend": 5, "name": {"fa": "a", "en": "a"}}]}, "start at"),
        (
            {
                "levels": [
                    {"id": "a", "min_spend": 0, "name": {"fa": "a", "en": "a"}},
                    {"id": "b", "min_spend": 0, "name": {"fa": "b", "en": "b"}},
                ]
            },
            "increase",
        ),
        (
            {
                "levels": [
                    {"id": "a", "min_spend": 0, "earn_pct": 50, "name": {"fa": "a", "en": "a"}}
                ]
            },
            "below the minimum",
        ),
        ({"window_days": 0, "levels": []}, "below the minimum"),
    ],
)
def test_bad_tiers_refused(tiers: dict[str, Any], reason: str) -> None:
    with pytest.raises(RuleError, match=reason):
        compile_rules(bundle(EARN, tiers=tiers))


def test_bundle_level_errors() -> None:
    with pytest.raises(RuleError, match="currency"):
        compile_rules(bundle(EARN, currency="USD"))
    with pytest.raises(RuleError, match="version"):
        compile_rules({"rules": []})
    with pytest.raises(RuleError, match="unknown field 'rule'"):
        compile_rules({"version": 1, "rule": []})
    with pytest.raises(RuleError, match="must be an object"):
        compile_rules([])  # type: ignore[arg-type]


def test_rulebook_keeps_the_good_set_when_a_new_one_is_refused() -> None:
    book = RuleBook(bundle(EARN))
    good = book.current
    broken = bundle(EARN, rule("x", "pct_off", bp=0), version=2)
    with pytest.raises(RuleError):
        book.replace(broken)
    assert book.current is good
    with pytest.raises(RuleError, match="not newer"):
        book.replace(bundle(EARN, version=1))
    assert book.current is good
    newer = book.replace(bundle(EARN, version=2))
    assert book.current is newer and newer.version == 2


def test_rulebook_put_takes_a_compiled_set_with_the_same_version_rule() -> None:
    book = RuleBook()
    one = compile_rules(bundle(EARN))
    assert book.put(one) is one and book.current is one
    with pytest.raises(RuleError, match="not newer"):
        book.put(compile_rules(bundle(EARN)))
    assert book.current is one
    again = compile_rules(bundle(EARN))
    assert book.put(again, allow_same=True) is again
    with pytest.raises(RuleError, match="version 1 is not newer than the rules in force \\(2\\)"):
        book.put(compile_rules(bundle(EARN, version=2)))
        book.put(compile_rules(bundle(EARN, version=1)), allow_same=True)
    assert book.current.version == 2


# Values of every JSON type (and a few plausible-looking texts) put in place of each
# field, one at a time: the compiler refuses them with RuleError, never a TypeError.
ODD: list[Any] = [None, True, 1.5, -1, 10**20, "", "x", "10:00", [], ["a", 1], [[]], {}, {"a": 1}]


# a valid rule of every kind with every field it takes
EVERY_KIND = [
    rule("k1", "earn_rate", points=1, per_rials=100),
    rule("k2", "earn_multiplier", pct=200),
    rule("k3", "earn_visit", points=1),
    rule("k4", "welcome_bonus", points=1),
    rule("k5", "pct_off", bp=1, max_rials=1),
    rule("k6", "basket_threshold", min_spend=10, off_rials=1, max_rials=1),
    rule("k7", "buy_x_get_y", buy=1, get=1, bp=1),
    rule("k8", "coupon", codes=["K8"], single_use=True, member_bound=True, bp=1, max_rials=1),
    rule("k9", "coupon", codes=["K9"], off_rials=1, points=1),
    rule("k10", "birthday", days_before=1, days_after=1, once_a_year=True, bp=1, points=1),
    rule("k11", "cashback", bp=1),
    rule("k12", "redeem_points", mode="step", step_points=1, step_bp=1, max_steps=1, max_bp=1),
    rule("k13", "redeem_points", mode="value", rials_per_point=1, min_points=1, max_rials=1),
    rule("k14", "wallet", max_bp=1),
]


def _every_kind() -> list[dict[str, Any]]:
    out = copy.deepcopy(EVERY_KIND)
    assert {r["kind"] for r in out} == set(KINDS)
    when = {
        "dates": {"from": "1405-01-01", "until": "1405-02-01", "calendar": "jalali"},
        "weekdays": ["mon"],
        "hours": ["10:00", "11:00"],
        "tiers": ["gold"],
        "stores": ["s"],
        "min_subtotal": 1,
        "members_only": True,
    }
    out.append(rule("w", "pct_off", bp=1, groups=["nowruz"], skus=["A"], when=when))
    return out


def _paths(o: Any, p: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [p] if p else []
    if isinstance(o, dict):
        for k in o:
            out += _paths(o[k], (*p, k))
    elif isinstance(o, list):
        for i in range(len(o)):
            out += _paths(o[i], (*p, i))
    return out


def test_no_field_of_any_type_escapes_as_anything_but_rule_error(
    rules_doc: dict[str, Any],
) -> None:
    doc = copy.deepcopy(rules_doc)
    doc["rules"] += _every_kind()
    compile_rules(doc)
    escaped = []
    for path in _paths(doc):
        for v in ODD:
            d = copy.deepcopy(doc)
            target = d
            for k in path[:-1]:
                target = target[k]
            target[path[-1]] = v
            try:
                compile_rules(d)
            except RuleError:
                pass
            except Exception as e:  # what the test looks for
                escaped.append((path, v, repr(e)))
    assert escaped == []


def test_source_document_is_not_modified(rules_doc: dict[str, Any]) -> None:
    before = copy.deepcopy(rules_doc)
    compile_rules(rules_doc)
    assert rules_doc == before
