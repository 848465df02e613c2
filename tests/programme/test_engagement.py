"""Coupons members hold, referrals and survey points at head office, on SQLite and
PostgreSQL."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from cloud_broker.club import changes, members
from cloud_broker.club.errors import ClubError, NotAllowedError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import rulebooks
from cloud_broker.programme import campaigns, coupons, engagement
from cloud_broker.reconcile.service import build_snapshots
from edge.core import record as R
from edge.core.ruleset import compile_rules
from tests.console.conftest import ALI, seed
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal, sale_body

MINA = Operator(1, "mina", "Mina", "marketing")
SARA = Operator(2, "sara", "Sara", "support")
VIEWER = Operator(3, "vida", "Vida", "viewer")
REZA = "+989351112233"


def _referral_rules(ho: HO) -> None:
    """Version 2: the programme with referral points; sales below name it."""
    doc = copy.deepcopy(ho.rs.doc)
    doc["version"] = 2
    doc["policy"] = {**doc["policy"], "referral_referrer_points": 400,
                     "referral_referee_points": 150}  # fmt: skip
    rulebooks.store(ho.db, doc)
    compile_rules(doc)


def test_giving_a_coupon_to_a_list(ho: HO, tmp_path: Path) -> None:
    seed(ho, tmp_path)
    with pytest.raises(ClubError) as e:  # a public code is no holding
        coupons.issue(ho.db, ho.rs, MINA, "WELCOME10", ALI)
    assert e.value.code == "not_a_member_coupon"
    with pytest.raises(ClubError) as e:
        coupons.issue(ho.db, ho.rs, MINA, "VIP-7F3K", "09121234567\n0912-abc\n1234\n")
    assert e.value.code == "bad_recipients" and "2" in e.value.en  # refused whole, lines named
    assert ho.one("SELECT COUNT(*) FROM member_coupons") == 0
    with pytest.raises(NotAllowedError):
        coupons.issue(ho.db, ho.rs, VIEWER, "VIP-7F3K", ALI)
    csv_text = "phone,name\n۰۹۱۲۱۲۳۴۵۶۷,علی\n+98 935 111 2233,رضا\n09120000009,نامعلوم\n"
    done = coupons.issue(ho.db, ho.rs, MINA, "vip-7f3k", csv_text, "1406/01/01", idem="b1")
    assert (done.issued, done.already, done.not_members) == (2, 0, ["+989120000009"])
    again = coupons.issue(ho.db, ho.rs, MINA, "VIP-7F3K", csv_text, idem="b1")  # form resent
    assert again.issued == 2 and ho.one("SELECT COUNT(*) FROM member_coupons") == 2
    more = coupons.issue(ho.db, ho.rs, MINA, "VIP-7F3K", "09121234567")
    assert (more.issued, more.already) == (0, 1)
    snap = dict(ho.db.run(lambda tx: build_snapshots(tx, [ALI], 365), write=False))
    assert snap["hypershahr"].coupons == ("VIP-7F3K",)
    version = snap["hypershahr"].version
    coupons.revoke(ho.db, MINA, ALI, "VIP-7F3K", "sent by mistake")
    snap = dict(ho.db.run(lambda tx: build_snapshots(tx, [ALI], 365), write=False))
    assert snap["hypershahr"].coupons == () and snap["hypershahr"].version > version
    assert [b["held"] for b in coupons.batches(ho.db)] == [2]


def test_a_coupon_used_twice_by_one_member_is_owed(ho: HO, pos: Terminal) -> None:
    def with_vip(t: Terminal, member: str) -> object:
        body = sale_body(1_000_000, earned=1100)
        body[R.K_APPLIED] = [{R.AP_RULE: "coupon-vip", R.AP_KIND: "coupon", R.AP_POINTS: 1000,
                              R.AP_COUPON: "VIP-7F3K"}]  # fmt: skip
        return t.outbox.commit("sale", body, member=R.member_field("phone", member), charged=True)

    ho.feed(pos, [pos.sale(ALI, earned=50)])
    coupons.issue(ho.db, ho.rs, MINA, "VIP-7F3K", f"{ALI}\n{REZA}")
    ho.feed(pos, [with_vip(pos, ALI), with_vip(pos, ALI), with_vip(pos, REZA)])  # type: ignore[list-item]
    assert ho.member(ALI)[0] == 50 + 1100 + 1100 - 1000
    assert ho.member(REZA)[0] == 1100  # another holder of the same code: no reuse
    assert ho.q("SELECT severity, kind, member FROM alerts") == [("critical", "coupon_reuse", ALI)]
    assert ho.one("SELECT used_seq FROM member_coupons WHERE member = ?", (ALI,)) == 2
    assert ho.check() == []


def test_a_referral_rewards_both_once(ho: HO, pos: Terminal) -> None:
    _referral_rules(ho)
    ho.feed(pos, [pos.sale(ALI, earned=10, rules_version=2)])
    code = ho.one("SELECT referral_code FROM members WHERE member = ?", (ALI,))
    assert code and len(code) == 7
    enrol = pos.outbox.commit(
        "enroll", {R.K_EXTRA: {R.EN_HOW: "phone", R.EN_REF: REZA, R.EN_REFERRAL: code.lower()}},
        member=R.member_field("phone", REZA),
    )  # fmt: skip
    ho.feed(pos, [enrol])
    assert ho.one("SELECT referred_by FROM members WHERE member = ?", (REZA,)) == ALI
    ho.feed(pos, [pos.sale(REZA, earned=20, rules_version=2),
                  pos.sale(REZA, earned=20, rules_version=2)])  # fmt: skip
    assert ho.member(REZA)[0] == 20 + 20 + 150
    assert ho.member(ALI)[0] == 10 + 400  # once, with the first sale
    page = members.page(ho.db, ho.rs, ALI)
    assert [r["member"] for r in page["referral"]["referred"]] == [REZA]
    newcomer = "+989190000001"
    unknown_code = {R.EN_HOW: "phone", R.EN_REF: newcomer, R.EN_REFERRAL: "ZZZZZZZ"}
    self_ref = pos.outbox.commit(
        "enroll", {R.K_EXTRA: unknown_code}, member=R.member_field("phone", newcomer)
    )
    ho.feed(pos, [self_ref])
    assert ho.q("SELECT kind FROM alerts") == [("referral_refused",)]
    assert ho.check() == []


def test_a_referral_named_at_enrolment_rewards_a_first_sale_in_the_same_batch(
    ho: HO, pos: Terminal
) -> None:
    """The reconciler reads who referred a member with the member's row; an enrolment that
    names the referrer and the first sale in one batch still rewards both."""
    _referral_rules(ho)
    ho.feed(pos, [pos.sale(ALI, earned=10, rules_version=2)])
    code = ho.one("SELECT referral_code FROM members WHERE member = ?", (ALI,))
    enrol = pos.outbox.commit(
        "enroll", {R.K_EXTRA: {R.EN_HOW: "phone", R.EN_REF: REZA, R.EN_REFERRAL: code}},
        member=R.member_field("phone", REZA),
    )  # fmt: skip
    ho.feed(pos, [enrol, pos.sale(REZA, earned=20, rules_version=2)])
    assert ho.member(REZA)[0] == 20 + 150
    assert ho.member(ALI)[0] == 10 + 400
    assert ho.check() == []


def test_many_new_members_in_a_batch_get_distinct_codes(ho: HO, pos: Terminal) -> None:
    phones = [f"+98912000{i:04d}" for i in range(40)]
    ho.feed(pos, [pos.sale(p, earned=1) for p in phones])
    codes = [r[0] for r in ho.q("SELECT referral_code FROM members ORDER BY member")]
    assert len(codes) == 40 and len(set(codes)) == 40
    assert all(c and len(c) == 7 for c in codes)


def test_a_support_agent_names_the_referrer_of_a_new_member(ho: HO, pos: Terminal) -> None:
    _referral_rules(ho)
    ho.feed(pos, [pos.sale(ALI, earned=10, rules_version=2), pos.enroll(REZA)])
    code = ho.one("SELECT referral_code FROM members WHERE member = ?", (ALI,))
    with pytest.raises(ClubError) as e:
        changes.set_referrer(ho.db, SARA, REZA, REZA)  # no such code
    assert e.value.code == "referral_refused" and e.value.fa
    changes.set_referrer(ho.db, SARA, REZA, code)
    with pytest.raises(ClubError):  # once only
        changes.set_referrer(ho.db, SARA, REZA, code)
    with pytest.raises(ClubError):  # a member with purchases already
        changes.set_referrer(ho.db, SARA, ALI, code)
    ho.feed(pos, [pos.sale(REZA, earned=20, rules_version=2)])
    assert ho.member(ALI)[0] == 410


def test_survey_points_once_per_member_and_survey(ho: HO, tmp_path: Path) -> None:
    seed(ho, tmp_path)
    first = engagement.reward(ho.db, ho.rs, SARA, ALI, "nps-1405-azar", 200)
    again = engagement.reward(ho.db, ho.rs, SARA, ALI, "nps-1405-azar", 200)
    assert again.repeated and again.journal == first.journal
    engagement.reward(ho.db, ho.rs, SARA, REZA, "nps-1405-azar", 200)
    assert ho.member(ALI)[0] == 300 + 200 and ho.member(REZA)[0] == 50 + 200
    for bad in ("", "two words", "x" * 70):
        with pytest.raises(ClubError):
            engagement.reward(ho.db, ho.rs, SARA, ALI, bad, 10)
    with pytest.raises(ClubError):
        engagement.reward(ho.db, ho.rs, SARA, ALI, "s2", 0)
    assert ho.check() == []


def test_a_campaign_budget_is_watched(ho: HO, pos: Terminal) -> None:
    with pytest.raises(ClubError):
        campaigns.set_budget(ho.db, ho.rs, MINA, "no-such-rule", 1000)
    with pytest.raises(NotAllowedError):
        campaigns.set_budget(ho.db, ho.rs, SARA, "coupon-welcome", 1000)
    campaigns.set_budget(ho.db, ho.rs, MINA, "coupon-welcome", 250_000)

    def sale(member: str) -> object:
        return pos.sale(member, discount=100_000, coupon="WELCOME10")

    ho.feed(pos, [sale(ALI), sale(REZA)])  # 200,000 of 250,000: past 80%
    assert ho.q("SELECT severity, kind FROM alerts WHERE kind LIKE 'budget%'") == [
        ("warning", "budget_80")
    ]
    ho.feed(pos, [sale("+989190000002"), sale("+989190000003")])  # past 100%, then beyond
    assert ho.q("SELECT severity, kind FROM alerts WHERE kind LIKE 'budget%' ORDER BY id") == [
        ("warning", "budget_80"), ("critical", "budget_spent")
    ]  # fmt: skip
    row = campaigns.table(ho.db, ho.rs)["coupon-welcome"]
    assert (row["rials"], row["cost"], row["share_bp"]) == (400_000, 400_000, 16_000)
    campaigns.set_budget(ho.db, ho.rs, MINA, "coupon-welcome", None)
    assert campaigns.table(ho.db, ho.rs) == {}
