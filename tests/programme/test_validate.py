"""Every refusal of the engine's validator has its Persian, and names its field."""

from __future__ import annotations

import ast
import copy
import json
from typing import Any

import pytest

from cloud_broker.programme.validate import Problem, check, explain
from edge.core.errors import RuleError
from tests.conftest import ROOT, RULES_PATH

SOURCE = ROOT / "edge" / "core" / "ruleset.py"


def _formats() -> list[str]:
    """The reason of every ``_fail(where, reason)`` in the validator, as a format string."""
    out = []
    for node in ast.walk(ast.parse(SOURCE.read_text("utf-8"))):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "_fail"):
            continue
        if len(node.args) < 2:
            continue
        arg = node.args[1]
        if isinstance(arg, ast.BinOp):
            arg = arg.left
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            out.append(arg.value)
    return out


def _sample(fmt: str) -> str:
    return fmt.replace("%r", "'bp'").replace("%s", "bp").replace("%d", "7")


def test_every_refusal_has_its_persian() -> None:
    formats = _formats()
    assert len(formats) > 40
    generic = [f for f in formats if explain(RuleError("r1", _sample(f))).fa.startswith("«r1»")]
    assert generic == []


@pytest.mark.parametrize(
    ("change", "where", "field", "fa"),
    [
        (lambda d: d["rules"][4].update(bp=20000), "nowruz-nuts", "bp", "درصد تخفیف"),
        (lambda d: d["rules"][4].update(catgories=["x"]), "nowruz-nuts", "catgories", "ناشناخته"),
        (lambda d: d["rules"][0].update(points=20000), "base-earn", "points", "بیش از حد"),
        (lambda d: d["tiers"]["levels"][2].update(min_spend=1), "tiers.levels[2]", "min_spend",
         "بیشتر"),
        (lambda d: d["rules"][4]["when"]["dates"].update(until="1404-12-01"), "nowruz-nuts",
         "dates", "پیش از تاریخ شروع"),
        (lambda d: d["policy"].update(refund_clawback="maybe"), "policy", "refund_clawback",
         "بازپس‌گیری"),
        (lambda d: d["rules"][1]["when"].update(weekdays=["someday"]), "dairy-tuesday",
         "weekdays", "روز هفته"),
    ],
)  # fmt: skip
def test_a_problem_names_the_rule_and_field(
    change: Any, where: str, field: str | None, fa: str
) -> None:
    doc = copy.deepcopy(json.loads(RULES_PATH.read_text("utf-8")))
    change(doc)
    p = check(doc)
    assert isinstance(p, Problem), p
    assert p.where == where and p.field == field and fa in p.fa, p
    assert p.en.startswith(where)


def test_a_good_programme_compiles() -> None:
    rs = check(json.loads(RULES_PATH.read_text("utf-8")))
    assert not isinstance(rs, Problem) and rs.version == 1
