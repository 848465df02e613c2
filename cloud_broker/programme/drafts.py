"""Drafts of the programme: edited section by section, always valid, approved by a second
admin, signed and published.

There is at most one open draft: it starts as a copy of the newest published bundle with
the next version number, and every change (a rule, the tiers, the policy, the limits, the
groups) is checked by the engine's own validator before it is kept, so a draft can always
be previewed and a refusal names its field (cloud_broker.programme.validate).  Everyone who
changed it is remembered; the author submits it with a note, and an operator with the
``publish`` permission (admin) who did not edit it approves it: head office then signs it
with the active rules key (cloud_broker.programme.keys), keeps it in ``rule_bundles`` and
queues it in ``rules_outbox``, from which the reconciler service publishes it retained on
the rules topic, all in one transaction.  A draft whose base is no longer the newest
version (another was published meanwhile) is refused at approval: start again.

Rolling back is a draft too: the content of an old version under the next number, which
goes through the same approval (tills never accept an older version).  Every step is
audited.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from typing import Any

from cloud_broker.club.errors import ClubError, ProgrammeError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit, rulebooks
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.programme.validate import Problem, check
from edge.core.ruleset import RuleSet
from edge.protocol import topics

OPEN = ("editing", "submitted")


@dataclass(frozen=True, slots=True)
class Draft:
    id: int
    tenant: str
    base_version: int
    doc: dict[str, Any]
    state: str
    note: str | None
    rollback_of: int | None
    editors: tuple[str, ...]
    created_by: str
    created_at: int
    updated_at: int
    submitted_by: str | None
    approved_by: str | None
    published_version: int | None

    @property
    def version(self) -> int:
        return int(self.doc["version"])

    def rule(self, rule_id: str) -> dict[str, Any] | None:
        return next((r for r in self.doc.get("rules", []) if r.get("id") == rule_id), None)


_COLS = (
    "id, tenant, base_version, doc, state, note, rollback_of, editors, created_by, "
    "created_at, updated_at, submitted_by, approved_by, published_version"
)


def _draft(r: Any) -> Draft:
    return Draft(
        int(r[0]), str(r[1]), int(r[2]), json.loads(r[3]), str(r[4]), r[5],
        None if r[6] is None else int(r[6]), tuple(json.loads(r[7])), str(r[8]), int(r[9]),
        int(r[10]), r[11], r[12], None if r[13] is None else int(r[13]),
    )  # fmt: skip


def _now() -> int:
    return int(time.time() * 1000)


def latest(db: Database, seed: RuleSet | None = None) -> RuleSet:
    """The newest bundle head office keeps (``seed`` until it keeps one)."""
    return rulebooks.RuleBooks(db, seed=seed).latest


def open_draft(db: Database) -> Draft | None:
    rows = db.read(
        f"SELECT {_COLS} FROM programme_drafts WHERE state IN ('editing', 'submitted') "
        "ORDER BY id DESC LIMIT 1"
    )
    return _draft(rows[0]) if rows else None


def get(db: Database, draft_id: int) -> Draft:
    rows = db.read(f"SELECT {_COLS} FROM programme_drafts WHERE id = ?", (draft_id,))
    if not rows:
        raise ClubError("no_draft", "no such draft", "چنین پیش‌نویسی نیست.")
    return _draft(rows[0])


def history(db: Database, limit: int = 50) -> list[Draft]:
    return [
        _draft(r)
        for r in db.read(f"SELECT {_COLS} FROM programme_drafts ORDER BY id DESC LIMIT ?", (limit,))
    ]


def start(db: Database, current: RuleSet, actor: Operator, rollback_of: int | None = None) -> Draft:
    """A new draft from the newest bundle (or, rolling back, from version ``rollback_of``)
    with the next version number; ClubError if a draft is open already."""
    actor.require("programme")

    def step(tx: Tx) -> int:
        if tx.one("SELECT id FROM programme_drafts WHERE state IN ('editing', 'submitted')"):
            raise ClubError(
                "draft_open",
                "a draft is open already: finish or discard it first",
                "یک پیش‌نویس باز است؛ نخست آن را تمام یا رها کنید.",
            )
        top = tx.one("SELECT MAX(version) FROM rule_bundles WHERE tenant = ?", (current.tenant,))
        newest = max(int(top[0] or 0), current.version)
        if rollback_of is None:
            doc = copy.deepcopy(_doc_of(tx, current.tenant, newest) or current.doc)
        else:
            old = _doc_of(tx, current.tenant, rollback_of)
            if old is None:
                raise ClubError("no_version", "no such version", "چنین نسخه‌ای نیست.")
            doc = copy.deepcopy(old)
        doc["version"] = newest + 1
        did = tx.next_id("programme_drafts")
        now = _now()
        tx.execute(
            "INSERT INTO programme_drafts (id, tenant, base_version, doc, state, rollback_of, "
            "editors, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, 'editing', ?, ?, "
            "?, ?, ?)",
            (did, current.tenant, newest, _text(doc), rollback_of, json.dumps([actor.username]),
             actor.username, now, now),
        )  # fmt: skip
        audit.record(
            tx, actor.username, "programme.start", f"draft:{did}",
            {"base": newest, "rollback_of": rollback_of},
        )  # fmt: skip
        return did

    return get(db, db.run(step))


def _doc_of(tx: Tx, tenant: str, version: int) -> dict[str, Any] | None:
    row = tx.one("SELECT doc FROM rule_bundles WHERE tenant = ? AND version = ?", (tenant, version))
    return None if row is None else dict(json.loads(row[0]))


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True)


def change(
    db: Database, actor: Operator, draft_id: int, what: str, edit: Any, detail: dict[str, Any]
) -> Draft:
    """Apply ``edit`` (a function changing a copy of the draft's document in place) if the
    result passes the validator; ProgrammeError naming the field otherwise.  ``what``
    names the change for the audit log (``rule:ID``, ``tiers``, ``policy``...)."""
    actor.require("programme")
    d = get(db, draft_id)
    if d.state != "editing":
        raise ClubError(
            "not_editing",
            "this draft is submitted or closed: it can no longer be changed",
            "این پیش‌نویس فرستاده یا بسته شده و دیگر تغییر نمی‌کند.",
        )
    doc = copy.deepcopy(d.doc)
    edit(doc)
    doc["version"] = d.version
    found = check(doc)
    if isinstance(found, Problem):
        raise ProgrammeError(found)

    def step(tx: Tx) -> None:
        editors = sorted({*d.editors, actor.username})
        n = tx.execute(
            "UPDATE programme_drafts SET doc = ?, editors = ?, updated_at = ? WHERE id = ? AND "
            "state = 'editing' AND updated_at = ?",
            (_text(doc), json.dumps(editors), max(_now(), d.updated_at + 1), d.id, d.updated_at),
        ).rowcount
        if n != 1:  # another operator saved in between: theirs stands
            raise ClubError(
                "draft_moved",
                "someone else changed this draft meanwhile: reload it and make your change again",
                "کس دیگری در این فاصله پیش‌نویس را تغییر داد؛ صفحه را دوباره باز کنید.",
            )
        audit.record(
            tx, actor.username, "programme.edit", f"draft:{d.id}", {"what": what, **detail}
        )

    db.run(step)
    return get(db, draft_id)


def set_rule(db: Database, actor: Operator, draft_id: int, rule: dict[str, Any],
             replaces: str | None = None) -> Draft:  # fmt: skip
    """Add ``rule`` or replace the rule ``replaces`` with it."""

    def edit(doc: dict[str, Any]) -> None:
        rules = doc.setdefault("rules", [])
        if replaces is not None:
            at = next((i for i, r in enumerate(rules) if r.get("id") == replaces), None)
            if at is None:
                raise ClubError("no_rule", "no such rule in the draft", "چنین قانونی نیست.")
            rules[at] = rule
        else:
            rules.append(rule)

    return change(db, actor, draft_id, f"rule:{rule.get('id')}", edit, {"rule": rule})


def delete_rule(db: Database, actor: Operator, draft_id: int, rule_id: str) -> Draft:
    def edit(doc: dict[str, Any]) -> None:
        before = len(doc.get("rules", []))
        doc["rules"] = [r for r in doc.get("rules", []) if r.get("id") != rule_id]
        if len(doc["rules"]) == before:
            raise ClubError("no_rule", "no such rule in the draft", "چنین قانونی نیست.")

    return change(db, actor, draft_id, f"rule:{rule_id}", edit, {"deleted": True})


def set_section(
    db: Database, actor: Operator, draft_id: int, section: str, value: dict[str, Any]
) -> Draft:
    """Replace ``tiers``, ``policy``, ``limits`` or ``groups`` whole."""
    if section not in ("tiers", "policy", "limits", "groups"):
        raise ClubError("bad_section", "no such section", "چنین بخشی نیست.")

    def edit(doc: dict[str, Any]) -> None:
        doc[section] = value

    return change(db, actor, draft_id, section, edit, {section: value})


def submit(db: Database, actor: Operator, draft_id: int, note: str) -> Draft:
    """The author asks for approval, saying what changed and why."""
    actor.require("programme")
    text = note.strip()
    if not text:
        raise ClubError(
            "no_note", "say what changes and why: the approver reads it",
            "بنویسید چه چیزی و چرا تغییر می‌کند؛ تأییدکننده آن را می‌خواند.",
        )  # fmt: skip
    return _move(db, actor, draft_id, "editing", "submitted", "programme.submit", text)


def reopen(db: Database, actor: Operator, draft_id: int) -> Draft:
    """Back to editing (the author changes their mind, or an approver asks for changes)."""
    actor.require("programme")
    return _move(db, actor, draft_id, "submitted", "editing", "programme.reopen", None)


def discard(db: Database, actor: Operator, draft_id: int) -> Draft:
    actor.require("programme")
    d = get(db, draft_id)
    return _move(db, actor, draft_id, d.state, "discarded", "programme.discard", None)


def _move(db: Database, actor: Operator, draft_id: int, frm: str, to: str, action: str,
          note: str | None) -> Draft:  # fmt: skip
    def step(tx: Tx) -> None:
        n = tx.execute(
            "UPDATE programme_drafts SET state = ?, note = COALESCE(?, note), updated_at = ?, "
            "submitted_by = CASE WHEN ? = 'submitted' THEN ? ELSE submitted_by END "
            "WHERE id = ? AND state = ?",
            (to, note, _now(), to, actor.username, draft_id, frm),
        ).rowcount
        if n != 1 or frm not in OPEN:
            raise ClubError(
                "bad_state", f"the draft is not {frm}", "پیش‌نویس در این وضعیت نیست.",
            )  # fmt: skip
        audit.record(tx, actor.username, action, f"draft:{draft_id}", {}, note)

    db.run(step)
    return get(db, draft_id)


Signer = Any  # cloud_broker.programme.keys.Signer: signs a document with the active key


def approve(db: Database, actor: Operator, draft_id: int, signer: Signer) -> RuleSet:
    """A second admin approves: signed, kept, queued for publication; the bundle."""
    actor.require("publish")
    d = get(db, draft_id)
    if d.state != "submitted":
        raise ClubError(
            "not_submitted", "only a submitted draft can be approved",
            "فقط پیش‌نویس فرستاده‌شده تأیید می‌شود.",
        )  # fmt: skip
    if actor.username in d.editors:
        raise ClubError(
            "four_eyes",
            "a draft is approved by a second admin who did not edit it",
            "پیش‌نویس را باید مدیر دیگری که آن را ویرایش نکرده تأیید کند.",
        )
    found = check(d.doc)
    if isinstance(found, Problem):  # the validator of this head office changed meanwhile
        raise ProgrammeError(found)
    rs = found
    raw = signer.sign(d.doc)

    def step(tx: Tx) -> None:
        top = tx.one("SELECT MAX(version) FROM rule_bundles WHERE tenant = ?", (d.tenant,))
        if int(top[0] or 0) != d.base_version:
            raise ClubError(
                "stale_draft",
                f"version {int(top[0] or 0)} was published after this draft began: discard it "
                "and start again from the newest",
                "پس از شروع این پیش‌نویس نسخه تازه‌تری منتشر شد؛ آن را رها کنید و از نو شروع کنید.",
            )
        n = tx.execute(
            "UPDATE programme_drafts SET state = 'published', approved_by = ?, approved_at = ?, "
            "published_version = ?, updated_at = ? WHERE id = ? AND state = 'submitted' AND "
            "updated_at = ?",
            (actor.username, _now(), rs.version, _now(), d.id, d.updated_at),
        ).rowcount
        if n != 1:
            raise ClubError("draft_moved", "the draft changed meanwhile: reload it",
                            "پیش‌نویس در این فاصله تغییر کرد؛ صفحه را دوباره باز کنید.")  # fmt: skip
        rulebooks.store_tx(tx, rs, d.doc, raw)
        queue(tx, topics.rules(rs.tenant), raw)
        audit.record(
            tx, actor.username, "programme.publish", f"draft:{d.id}",
            {"version": rs.version, "key": signer.number, "rollback_of": d.rollback_of}, d.note,
        )  # fmt: skip

    db.run(step)
    return rs


def queue(tx: Tx, topic: str, raw: bytes) -> None:
    """A retained publication for the reconciler service (it publishes, then deletes)."""
    tx.execute(
        "INSERT INTO rules_outbox (id, topic, raw, queued_at) VALUES (?, ?, ?, ?)",
        (tx.next_id("rules_outbox"), topic, raw, _now()),
    )


def versions(db: Database, tenant: str) -> list[dict[str, Any]]:
    """Every kept version, newest first, with who approved it and the note."""
    rows = db.read(
        "SELECT b.version, b.stored_at, b.raw IS NOT NULL, d.created_by, d.approved_by, d.note, "
        "d.rollback_of FROM rule_bundles b LEFT JOIN programme_drafts d ON d.tenant = b.tenant "
        "AND d.published_version = b.version WHERE b.tenant = ? ORDER BY b.version DESC",
        (tenant,),
    )
    keys = ("version", "stored_at", "signed", "author", "approver", "note", "rollback_of")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def version_doc(db: Database, tenant: str, version: int) -> dict[str, Any]:
    doc = db.run(lambda tx: _doc_of(tx, tenant, version), write=False)
    if doc is None:
        raise ClubError("no_version", "no such version", "چنین نسخه‌ای نیست.")
    return doc


def rollout(db: Database) -> list[dict[str, Any]]:
    """Which rules version and key the devices say they run (their status messages):
    one row per (version, key) with how many devices, and how many of them are online."""
    rows = db.read(
        "SELECT s.rules_version, s.rules_key, COUNT(*), SUM(CASE WHEN s.state = 'online' "
        "THEN 1 ELSE 0 END) FROM devices d LEFT JOIN device_status s ON s.device = d.device "
        "WHERE d.status = 'active' GROUP BY s.rules_version, s.rules_key "
        "ORDER BY s.rules_version DESC"
    )
    return [
        {"version": r[0], "key": r[1], "devices": int(r[2]), "online": int(r[3] or 0)} for r in rows
    ]
