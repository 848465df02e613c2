"""The programme's life at head office, on SQLite and PostgreSQL: drafts always valid, four
eyes, signed and queued for publication in one transaction, stale drafts refused, rolling
back, the rules keys rotated; the preview and the 30-day estimate."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.club.errors import ClubError, NotAllowedError, ProgrammeError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit, rulebooks
from cloud_broker.programme import diff, drafts, keys, preview
from edge.core.ruleset import compile_rules
from edge.errors import SignatureError
from edge.protocol import bundles, topics
from edge.protocol import keys as pkeys
from tests.console.conftest import ALI, seed
from tests.helpers.headoffice import HO

MARKETING = Operator(1, "mina", "Mina", "marketing")
ADMIN = Operator(2, "arash", "Arash", "admin")
ADMIN2 = Operator(3, "bita", "Bita", "admin")


@pytest.fixture
def hq(ho: HO, tmp_path: Path) -> Iterator[tuple[HO, keys.KeyDir]]:
    seed(ho, tmp_path)
    rulebooks.store(ho.db, ho.rs.doc)
    pkeys.generate(tmp_path / "rules.key")
    kd = keys.KeyDir(tmp_path / "keys")
    keys.adopt(ho.db, kd, "hypershahr", tmp_path / "rules.key", "test")
    yield ho, kd


def _nuts(d: drafts.Draft) -> dict[str, Any]:
    rule = copy.deepcopy(d.rule("nowruz-nuts"))
    assert rule is not None
    return rule


def _cola(ho: HO) -> dict[str, Any]:
    return next(r for r in ho.rs.doc["rules"] if r["id"] == "cola-3for2")


def test_a_draft_is_always_valid_and_needs_a_second_admin(hq: tuple[HO, keys.KeyDir]) -> None:
    ho, kd = hq
    d = drafts.start(ho.db, ho.rs, MARKETING)
    assert (d.version, d.base_version, d.state) == (2, 1, "editing")
    with pytest.raises(ClubError) as e:
        drafts.start(ho.db, ho.rs, ADMIN)
    assert e.value.code == "draft_open"
    bad = {**_nuts(d), "bp": 15000}
    with pytest.raises(ProgrammeError) as pe:
        drafts.set_rule(ho.db, MARKETING, d.id, bad, replaces="nowruz-nuts")
    assert (pe.value.problem.where, pe.value.problem.field) == ("nowruz-nuts", "bp")
    assert drafts.get(ho.db, d.id).rule("nowruz-nuts") == _nuts(d)  # nothing kept
    d = drafts.set_rule(ho.db, MARKETING, d.id, {**_nuts(d), "bp": 2000}, replaces="nowruz-nuts")
    d = drafts.delete_rule(ho.db, ADMIN, d.id, "cola-3for2")  # a second editor
    assert d.editors == ("arash", "mina")
    changes = [(c.where, c.what, c.field, c.old, c.new) for c in diff.diff(ho.rs.doc, d.doc)]
    assert ("rule:nowruz-nuts", "changed", "bp", 1500, 2000) in changes
    assert ("rule:cola-3for2", "removed", "", _cola(ho), None) in changes
    with pytest.raises(ClubError):
        drafts.submit(ho.db, MARKETING, d.id, "  ")
    d = drafts.submit(ho.db, MARKETING, d.id, "Nowruz nuts 20%, cola offer over")
    with pytest.raises(ClubError):  # submitted: no more changes
        drafts.set_rule(ho.db, MARKETING, d.id, {**_nuts(d), "bp": 2500}, replaces="nowruz-nuts")
    signer = keys.signer(ho.db, kd)
    with pytest.raises(NotAllowedError):
        drafts.approve(ho.db, MARKETING, d.id, signer)
    with pytest.raises(ClubError) as e:
        drafts.approve(ho.db, ADMIN, d.id, signer)  # arash edited it
    assert e.value.code == "four_eyes"
    assert ho.q("SELECT version FROM rule_bundles ORDER BY version") == [(1,)]
    rs = drafts.approve(ho.db, ADMIN2, d.id, signer)
    assert rs.version == 2
    raw = ho.one("SELECT raw FROM rule_bundles WHERE version = 2")
    ring = bundles.KeyRing.pinned(keys.KeyDir.load(kd, 1).public_key())
    opened, number = bundles.open_bundle(bytes(raw), ring, "hypershahr")
    assert (opened.version, number) == (2, 1)
    assert ho.q("SELECT topic FROM rules_outbox") == [(topics.rules("hypershahr"),)]
    assert drafts.get(ho.db, d.id).state == "published"
    acts = [e.action for e in audit.entries(ho.db, target=f"draft:{d.id}")]
    assert acts[0] == "programme.publish" and "programme.submit" in acts


def test_a_stale_draft_is_refused_and_a_rollback_is_a_new_version(
    hq: tuple[HO, keys.KeyDir],
) -> None:
    ho, kd = hq
    d = drafts.start(ho.db, ho.rs, MARKETING)
    d = drafts.set_rule(ho.db, MARKETING, d.id, {**_nuts(d), "bp": 2000}, replaces="nowruz-nuts")
    drafts.submit(ho.db, MARKETING, d.id, "more")
    keys.prepare_next(ho.db, kd, ADMIN)
    keys.switch(ho.db, kd, ho.rs, ADMIN)  # publishes v2 signed with key 2
    with pytest.raises(ClubError) as e:
        drafts.approve(ho.db, ADMIN2, d.id, keys.signer(ho.db, kd))
    assert e.value.code == "stale_draft"
    drafts.discard(ho.db, MARKETING, d.id)
    back = drafts.start(ho.db, ho.rs, MARKETING, rollback_of=1)
    assert back.version == 3 and back.rollback_of == 1
    drafts.submit(ho.db, MARKETING, back.id, "back to version 1")
    rs = drafts.approve(ho.db, ADMIN2, back.id, keys.signer(ho.db, kd))
    v1 = drafts.version_doc(ho.db, "hypershahr", 1)
    v3 = drafts.version_doc(ho.db, "hypershahr", 3)
    assert rs.version == 3 and {k: v for k, v in v3.items() if k != "version"} == {
        k: v for k, v in v1.items() if k != "version"
    }
    assert [v["version"] for v in drafts.versions(ho.db, "hypershahr")] == [3, 2, 1]


def test_rotating_the_rules_key(hq: tuple[HO, keys.KeyDir]) -> None:
    ho, kd = hq
    with pytest.raises(ClubError):
        keys.adopt(ho.db, kd, "hypershahr", kd.file(1), "test")
    with pytest.raises(NotAllowedError):
        keys.prepare_next(ho.db, kd, MARKETING)
    assert keys.prepare_next(ho.db, kd, ADMIN) == 2
    with pytest.raises(ClubError):
        keys.prepare_next(ho.db, kd, ADMIN)  # one announcement at a time
    assert oct(kd.file(2).stat().st_mode & 0o777) == "0o600"
    published = ho.q("SELECT topic, raw FROM rules_outbox ORDER BY id")
    assert published[0][0] == topics.rules_keys("hypershahr")
    ring = bundles.KeyRing.pinned(kd.load(1).public_key())
    assert ring.extend(bundles.decode_endorsements(bytes(published[0][1])), "hypershahr") == 1
    rs = keys.switch(ho.db, kd, ho.rs, ADMIN)
    assert [(r["number"], r["state"]) for r in keys.table(ho.db)] == [(1, "retired"), (2, "active")]
    raw = bytes(ho.one("SELECT raw FROM rule_bundles WHERE version = ?", (rs.version,)))
    _, number = bundles.open_bundle(raw, ring, "hypershahr")
    assert number == 2 and ring.accept(2)
    old = bundles.sign({**ho.rs.doc, "version": 9}, kd.load(1))  # the retired key
    with pytest.raises(SignatureError):
        bundles.open_bundle(old, ring, "hypershahr")
    assert keys.signer(ho.db, kd).number == 2


def test_preview_and_the_30_day_estimate(hq: tuple[HO, keys.KeyDir]) -> None:
    ho, _kd = hq
    doc = copy.deepcopy(ho.rs.doc)
    base = next(r for r in doc["rules"] if r["id"] == "base-earn")
    base["points"] = 200  # double points on every purchase
    draft = compile_rules({**doc, "version": 2})
    basket = {"lines": [{"sku": "RICE", "category": "grocery", "qty": 1, "unit_price": 3_000_000}]}
    now, then = preview.quote_side_by_side(ho.db, ho.rs, draft, basket, ALI)
    assert now.quote is not None and then.quote is not None
    assert now.quote["member"]["points_before"] == 300  # head office's balance
    # 100 more points per million Rials on 3,000,000; the visit bonus unchanged
    assert then.quote["points_earned"] - now.quote["points_earned"] == 300
    est = preview.estimate(ho.db, draft, sample=50, seed=1)
    assert (est.sales, est.sampled, est.refused) == (4, 4, 0)  # every sale of the seed
    assert est.given == {"discount": 0, "points_earned": 420, "wallet_earned": 10_000}
    assert est.draft["points_earned"] > est.given["points_earned"]
    sid = preview.save_sample(ho.db, MARKETING, "سبد برنج", basket)
    assert preview.samples(ho.db)[0] == {"id": sid, "name": "سبد برنج", "basket": basket}
    with pytest.raises(ClubError):
        preview.save_sample(ho.db, MARKETING, "bad", {"lines": [{"sku": "", "qty": 1}]})
