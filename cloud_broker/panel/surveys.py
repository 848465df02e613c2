"""Surveys and reviews members answer in their panel for points: each is a question, a
rating of 1 to 5 and an optional comment; the points are granted once per member and survey
(cloud_broker.programme.engagement, the same grant as the console's and the command line's)."""

from __future__ import annotations

import time
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.programme import engagement
from edge.core.ruleset import RuleSet
from edge.sanitize import clean, is_clean

PANEL = Operator(0, "panel", "member panel", "support")  # grants on the member's own answer


def add(db: Database, actor: Operator, sid: str, question_fa: str, question_en: str,
        points: int) -> None:  # fmt: skip
    actor.require("programme")
    if not sid or not is_clean(sid, 64) or " " in sid:
        raise ClubError("bad_survey", "a survey id: letters and digits, no spaces",
                        "شناسه نظرسنجی نامعتبر است.")  # fmt: skip
    if not question_fa.strip() or not 0 < points <= 100_000:
        raise ClubError("bad_survey", "a question and 1 to 100,000 points",
                        "پرسش و امتیاز (۱ تا ۱۰۰٬۰۰۰) لازم است.")  # fmt: skip

    def run(tx: Tx) -> None:
        tx.execute("INSERT INTO surveys (id, question_fa, question_en, points, created_at) "
                   "VALUES (?, ?, ?, ?, ?)", (sid, clean(question_fa, 300),
                                              clean(question_en or question_fa, 300), points,
                                              int(time.time() * 1000)))  # fmt: skip
        audit.record(tx, actor.username, "survey.add", f"survey:{sid}", {"points": points})

    db.run(run)


def open_for(db: Database, member: str) -> list[dict[str, Any]]:
    rows = db.read(
        "SELECT s.id, s.question_fa, s.question_en, s.points FROM surveys s WHERE s.open = 1 "
        "AND NOT EXISTS (SELECT 1 FROM survey_answers a WHERE a.survey = s.id AND "
        "a.member = ?) ORDER BY s.created_at",
        (member,),
    )
    return [dict(zip(("id", "fa", "en", "points"), r, strict=True)) for r in rows]


def answer(db: Database, rs: RuleSet, member: str, sid: str, rating: int, comment: str) -> int:
    """Keep the member's answer and grant the survey's points (once); the points."""
    if type(rating) is not int or not 1 <= rating <= 5:
        raise ClubError("bad_rating", "a rating of 1 to 5", "امتیازی از ۱ تا ۵ بدهید.")
    row = db.read("SELECT points FROM surveys WHERE id = ? AND open = 1", (sid,))
    if not row:
        raise ClubError("no_survey", "no such open survey", "چنین نظرسنجی بازی نیست.")

    def run(tx: Tx) -> None:
        now = int(time.time() * 1000)
        tx.execute("INSERT INTO survey_answers (survey, member, rating, comment, answered_at) "
                   "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                   (sid, member, rating, clean(comment, 500) or None, now))  # fmt: skip

    db.run(run)
    engagement.reward(db, rs, PANEL, member, sid, int(row[0][0]))
    return int(row[0][0])
