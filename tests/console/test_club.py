"""Head office's one read and write model (cloud_broker.club) on SQLite and PostgreSQL:
search, a member's page, adjustments, a card linked to a phone, the audit log, operators,
sessions and the day's figures."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cloud_broker.club import changes, members, operators, stores, today
from cloud_broker.club.errors import ClubError, NotAllowedError
from cloud_broker.ledger import audit
from edge.core.ruleset import compile_rules
from tests.console.conftest import ALI, CARD, seed
from tests.helpers.console import PASSWORD
from tests.helpers.headoffice import HO
from tests.helpers.store import rules_doc

SUPPORT = operators.Operator(1, "sara", "Sara", "support")
VIEWER = operators.Operator(2, "vida", "Vida", "viewer")


@pytest.fixture
def club(ho: HO, tmp_path: Path) -> HO:
    seed(ho, tmp_path)
    return ho


@pytest.mark.parametrize(
    "typed",
    ["09121234567", "۰۹۱۲ ۱۲۳ ۴۵۶۷", "٠٩١٢١٢٣٤٥٦٧", "+989121234567", "00989121234567",
     "9121234567"],
)  # fmt: skip
def test_search_by_phone_in_any_form(club: HO, typed: str) -> None:
    assert [f.member for f in members.search(club.db, typed)] == [ALI]


def test_search_by_card_and_by_name(club: HO) -> None:
    for typed in (CARD, f"card:{CARD}", f"LC1:{CARD}", CARD.lower()):
        assert [f.member for f in members.search(club.db, typed)] == [f"card:{CARD}"], typed
    changes.edit_profile(club.db, SUPPORT, ALI, "علي  كريمي", "", "", False)  # Arabic ي and ك
    assert [f.member for f in members.search(club.db, "علی کریمی")] == [ALI]
    assert [f.member for f in members.search(club.db, "علی")] == [ALI]
    assert members.search(club.db, "رضا") == []
    assert members.search(club.db, "\x1b[31m'; DROP TABLE members; --") == []  # nobody
    with pytest.raises(ClubError) as e:
        members.search(club.db, "  \t ")
    assert e.value.code == "empty_query" and e.value.fa


def test_member_page_tells_the_whole_story(club: HO) -> None:
    page = members.page(club.db, club.rs, ALI)
    assert (page["points"], page["wallet"], page["visits"]) == (300, 10_000, 2)
    assert [lot["remaining"] for lot in page["lots"]] == [200, 100]
    assert all(lot["expires_day"] for lot in page["lots"])
    assert [p["paid"] for p in page["purchases"]] == [1_000_000, 2_000_000]
    assert page["purchases"][0]["lines"][0]["sku"] == "SKU-1"
    assert page["stores"] == [
        {"store": "s1", "visits": 2, "last_day": page["stores"][0]["last_day"]}
    ]
    prog = page["progress"]
    assert prog["rolling_spend"] == 3_000_000 and prog["left"] == prog["left"] >= 0
    with pytest.raises(ClubError) as e:
        members.page(club.db, club.rs, "+989000000000")
    assert e.value.code == "unknown_member"


def test_adjust_is_a_journal_once_per_key_and_never_overdraws(club: HO) -> None:
    done = changes.adjust(club.db, club.rs, SUPPORT, ALI, 50, -4_000, "goodwill", idem="k1")
    assert club.member(ALI)[:2] == (350, 6_000)
    again = changes.adjust(club.db, club.rs, SUPPORT, ALI, 50, -4_000, "goodwill", idem="k1")
    assert again.repeated and again.journal == done.journal and club.member(ALI)[:2] == (350, 6_000)
    with pytest.raises(ClubError) as e:  # the key of another change
        changes.edit_profile(club.db, SUPPORT, ALI, "x", "", "", False, idem="k1")
    assert e.value.code == "key_reused"
    with pytest.raises(ClubError) as e:
        changes.adjust(club.db, club.rs, SUPPORT, ALI, -351, 0, "too much")
    assert e.value.code == "overdraw" and club.member(ALI)[0] == 350
    with pytest.raises(ClubError) as e:
        changes.adjust(club.db, club.rs, SUPPORT, ALI, 10, 0, "   ")
    assert e.value.code == "no_reason"
    with pytest.raises(NotAllowedError):
        changes.adjust(club.db, club.rs, VIEWER, ALI, 10, 0, "I want points")
    # the new points are a lot with the programme's expiry, like points earned at a till
    lots = members.page(club.db, club.rs, ALI)["lots"]
    assert any(
        lot["kind"] == "adjust" and lot["remaining"] == 50 and lot["expires_day"] for lot in lots
    )
    entry = audit.entries(club.db, target=f"member:{ALI}")[0]
    assert (entry.actor, entry.action, entry.reason) == ("sara", "member.adjust", "goodwill")
    assert entry.detail == {"points": 50, "wallet": -4_000}
    assert club.one("SELECT COUNT(*) FROM snapshot_queue WHERE member = ?", (ALI,)) == 1
    assert club.check() == []


def test_a_policy_may_allow_overdrawing(ho: HO, tmp_path: Path) -> None:
    doc = rules_doc(2)
    doc["policy"] = {**doc.get("policy", {}), "adjust_overdraft": 1}
    seed(ho, tmp_path)
    rs = compile_rules(doc)
    changes.adjust(ho.db, rs, SUPPORT, ALI, -500, 0, "fraud reversed")
    assert ho.member(ALI)[0] == -200
    assert ho.check() == []


def test_linking_a_card_merges_its_member_exactly_once(club: HO) -> None:
    before = (club.member(ALI), club.member(f"card:{CARD}"))
    assert before[1][0] == 70
    done = changes.link_card(club.db, club.rs, SUPPORT, f"card:{CARD}", "۰۹۱۲۱۲۳۴۵۶۷", "asked")
    assert done.member == ALI and done.journal is not None
    points, wallet, _tier, visits = club.member(ALI)
    assert (points, wallet, visits) == (370, 10_000, 3)
    assert club.member(f"card:{CARD}")[:2] == (0, 0)
    assert club.one("SELECT member FROM member_cards WHERE card = ?", (CARD,)) == ALI
    assert club.one("SELECT COUNT(*) FROM lots WHERE member = ?", (f"card:{CARD}",)) == 0
    assert club.check() == []
    # the same card again (another form, another key): nothing more moves
    changes.link_card(club.db, club.rs, SUPPORT, CARD, ALI, "asked twice")
    assert club.member(ALI)[0] == 370
    assert club.one("SELECT COUNT(*) FROM member_merges") == 1
    # the card's page says where it went; changes to it are refused
    assert members.page(club.db, club.rs, f"card:{CARD}")["merged_into"] == ALI
    with pytest.raises(ClubError) as e:
        changes.adjust(club.db, club.rs, SUPPORT, f"card:{CARD}", 10, 0, "x")
    assert e.value.code == "merged"
    # the phone member's page holds the card's history too
    page = members.page(club.db, club.rs, ALI)
    assert len(page["purchases"]) == 3 and page["merged_from"] == [f"card:{CARD}"]
    # a card held by another member is not taken from them
    with pytest.raises(ClubError) as e:
        changes.link_card(club.db, club.rs, SUPPORT, CARD, "09351112233", "wrong person")
    assert e.value.code == "card_taken"
    with pytest.raises(ClubError) as e:
        changes.link_card(club.db, club.rs, SUPPORT, "NEWCARD", "0912", "bad phone")
    assert e.value.code == "bad_phone" and e.value.fa


def test_a_new_card_for_a_new_phone_makes_the_member(club: HO) -> None:
    changes.link_card(club.db, club.rs, SUPPORT, "FRESH01", "09120000001", "new customer")
    assert club.one("SELECT member FROM member_cards WHERE card = 'FRESH01'") == "+989120000001"
    assert club.member("+989120000001")[:2] == (0, 0)
    assert club.check() == []


def test_the_audit_log_is_append_only(club: HO) -> None:
    changes.adjust(club.db, club.rs, SUPPORT, ALI, 1, 0, "one")
    for sql in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            club.db.run(lambda tx, sql=sql: tx.execute(sql))
    assert club.one("SELECT actor FROM audit_log WHERE action = 'member.adjust'") == "sara"


def test_operators_passwords_lockout_and_sessions(ho: HO) -> None:
    operators.add(ho.db, "sara", "Sara", "support", PASSWORD, "test")
    stored = ho.one("SELECT password_hash FROM operators WHERE username = 'sara'")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    for bad in (("", "Sara", "support", PASSWORD), ("x y", "X", "support", PASSWORD),
                ("bob", "Bob", "root", PASSWORD), ("bob", "Bob", "viewer", "short")):  # fmt: skip
        with pytest.raises(ClubError):
            operators.add(ho.db, *bad, actor="test")
    op = operators.authenticate(ho.db, "sara", PASSWORD)
    assert op.role == "support" and op.can("adjust") and not op.can("operators")
    sid, csrf = operators.start_session(ho.db, op)
    assert operators.session(ho.db, sid) == (op, csrf)
    assert ho.one("SELECT COUNT(*) FROM console_sessions WHERE sid_hash = ?", (sid,)) == 0
    ho.db.run(lambda tx: tx.execute("UPDATE console_sessions SET last_seen_at = 0"))
    assert operators.session(ho.db, sid) is None  # idle too long
    for _ in range(operators.MAX_FAILURES):
        with pytest.raises(ClubError) as e:
            operators.authenticate(ho.db, "sara", "wrong wrong wrong")
        assert e.value.code == "bad_login"
    with pytest.raises(ClubError) as e:
        operators.authenticate(ho.db, "sara", PASSWORD)
    assert e.value.code == "locked"
    with pytest.raises(ClubError) as e:  # an unknown name reads the same as a wrong password
        operators.authenticate(ho.db, "nobody", PASSWORD)
    assert e.value.code == "bad_login"
    admin = operators.Operator(9, "root", "Root", "admin")
    operators.add(ho.db, "vida", "Vida", "viewer", PASSWORD, "test")
    vida = operators.authenticate(ho.db, "vida", PASSWORD)
    vsid, _ = operators.start_session(ho.db, vida)
    operators.set_disabled(ho.db, admin, "vida", True)
    assert operators.session(ho.db, vsid) is None  # disabling ends the session at once
    with pytest.raises(ClubError):
        operators.authenticate(ho.db, "vida", PASSWORD)
    assert [e.action for e in audit.entries(ho.db, target="operator:vida")][:1] == [
        "operator.disable"
    ]


def test_todays_figures_and_liability(club: HO) -> None:
    t = today.figures(club.db, club.rs)
    assert t["today"]["revenue"] == 4_200_000 and t["today"]["sales"] == 4
    assert t["today"]["member_sales"] == 4
    assert t["members"] == 3 and t["new_today"] == 3
    liab = t["liability"]
    assert (liab["points"], liab["wallet"]) == (420, 10_000)
    assert liab["total_rials"] == 420 * club.rs.policy["point_value_rials"] + 10_000
    fleet = t["fleet"]  # no status heard yet: offline, and on the list that needs a look
    assert (fleet["online"], fleet["offline"], fleet["revoked"]) == (0, 1, 0)
    assert [d["device"] for d in fleet["attention"]] == ["pos-1"]


def test_stores_tokens_and_revocation_are_audited(club: HO) -> None:
    admin = operators.Operator(9, "root", "Root", "admin")
    stores.save_store(club.db, admin, "s1", "شعبه ونک", "Vanak", "تهران", "hypershahr")
    token, expires = stores.issue_token(club.db, admin, "hypershahr", "s1", "", "2h")
    assert len(token) > 20 and expires > time.time() * 1000
    assert token not in str(club.q("SELECT * FROM enroll_tokens"))  # only its hash is kept
    with pytest.raises(NotAllowedError):
        stores.revoke(club.db, SUPPORT, "pos-1", "stolen", None)
    stores.revoke(club.db, admin, "pos-1", "stolen", None)
    actions = [e.action for e in audit.entries(club.db)]
    assert {"store.save", "token.issue", "device.revoke"} <= set(actions)
