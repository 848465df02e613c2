"""The programme's forms: every rule of the embedded programme survives the round trip
form -> rule, in Rials and in Toman; typed values in Persian digits; no float."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.datastructures import FormData

from cloud_broker.club.errors import ProgrammeError
from cloud_broker.programme import forms
from edge.core.ruleset import compile_rules
from tests.conftest import RULES_PATH

DOC = json.loads(RULES_PATH.read_text("utf-8"))


def _form(view: dict[str, Any]) -> FormData:
    items: list[tuple[str, str]] = []
    for k, v in view.items():
        if isinstance(v, list):
            items += [(k, str(x)) for x in v]
        elif k == "members_only":
            items.append(("members_only_shown", "1"))
            if v:
                items.append(("members_only", "on"))
        elif v not in (None, ""):
            items.append((k, str(v)))
    return FormData(items)


def _normal(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule as the engine reads it: defaults spelled out the way the form writes them."""
    out = json.loads(json.dumps(rule))
    dates = (out.get("when") or {}).get("dates")
    if dates is not None:
        dates.setdefault("calendar", "gregorian")
    if out.get("when", {}).get("members_only") is True:
        del out["when"]["members_only"]
    if out["kind"] == "birthday":
        out.setdefault("once_a_year", True)
    return out


@pytest.mark.parametrize("unit", ["rial", "toman"])
@pytest.mark.parametrize("rule", DOC["rules"], ids=[r["id"] for r in DOC["rules"]])
def test_every_rule_survives_its_form(rule: dict[str, Any], unit: str) -> None:
    back = forms.rule_from_form(_form(forms.rule_view(rule, unit)), rule["kind"], unit)
    assert _normal(back) == _normal(rule)
    doc = {**DOC, "rules": [back if r["id"] == rule["id"] else r for r in DOC["rules"]]}
    compile_rules(doc)


def test_what_people_type() -> None:
    f = FormData([("id", "yalda"), ("name_fa", "شب یلدا"), ("name_en", "Yalda"),
                  ("bp", "۱۲٫۵"), ("max_rials", "۱۵۰٬۰۰۰٫۵"), ("categories", "nuts، fruit"),
                  ("date_from", "۱۴۰۵/۰۹/۲۵"), ("date_until", "1405/09/30"),
                  ("weekdays", "thu"), ("hour_from", "۱۸:۰۰"), ("hour_until", "23:00"),
                  ("members_only_shown", "1")])  # fmt: skip
    rule = forms.rule_from_form(f, "pct_off", "toman")
    assert rule["bp"] == 1250 and rule["max_rials"] == 1_500_005  # Toman with its Rial digit
    assert rule["categories"] == ["nuts", "fruit"]
    assert rule["when"] == {
        "dates": {"calendar": "jalali", "from": "1405-09-25", "until": "1405-09-30"},
        "weekdays": ["thu"], "hours": ["18:00", "23:00"], "members_only": False,
    }  # fmt: skip
    compile_rules({**DOC, "rules": [*DOC["rules"], rule]})


@pytest.mark.parametrize(
    ("field", "typed"),
    [("bp", "12.345"), ("bp", "ten"), ("max_rials", "1e6"), ("max_rials", "1.5"),
     ("date_from", "1405-13"), ("priority", "1.0")],
)  # fmt: skip
def test_a_value_that_is_not_a_number_names_its_field(field: str, typed: str) -> None:
    f = FormData([("id", "r1"), ("name_fa", "x"), ("name_en", "x"), ("bp", "10"), (field, typed)])
    with pytest.raises(ProgrammeError) as e:
        forms.rule_from_form(f, "pct_off", "rial")
    assert e.value.problem.field in (field, "dates") and e.value.fa


def test_sections_and_tiers() -> None:
    f = FormData([("points_expiry_days", "۱۸۰"), ("offline_points_limit", "3000"),
                  ("offline_wallet_limit", "200000"), ("refund_clawback", "overdraft"),
                  ("point_value_rials", "70"), ("adjust_overdraft", "on")])  # fmt: skip
    policy = forms.section_from_form("policy", f, "toman")
    assert policy == {"points_expiry_days": 180, "offline_points_limit": 3000,
                      "offline_wallet_limit": 2_000_000, "refund_clawback": "overdraft",
                      "point_value_rials": 700, "adjust_overdraft": 1}  # fmt: skip
    tiers = forms.section_from_form("tiers", FormData([
        ("tier_id", "regular"), ("tier_fa", "عادی"), ("tier_en", "Regular"), ("tier_min", "0"),
        ("tier_earn", "100"), ("tier_cashback", "0"),
        ("tier_id", "gold"), ("tier_fa", "طلایی"), ("tier_en", "Gold"), ("tier_min", "50000000"),
        ("tier_earn", "150"), ("tier_cashback", "2.5"),
        ("tier_id", ""), ("tier_fa", ""), ("tier_en", ""), ("tier_min", ""), ("tier_earn", ""),
        ("tier_cashback", ""), ("window_days", "180"),
    ]), "rial")  # fmt: skip
    assert tiers["window_days"] == 180 and [t["id"] for t in tiers["levels"]] == ["regular", "gold"]
    assert tiers["levels"][1]["cashback_bp"] == 250
    compile_rules({"version": 1, "tiers": tiers, "policy": policy})
