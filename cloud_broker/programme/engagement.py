"""Points for what members do besides buying: answering a survey, writing a review.

Granted by head office through the same adjustment as the console's (a journal with a lot
and the programme's expiry, audited, in the member's next snapshot), and idempotent per
member and survey: the survey tool, the member panel or the API may report an answer as
often as it likes; it is rewarded once."""

from __future__ import annotations

from cloud_broker.club import changes
from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger.db import Database
from edge.core.ruleset import MAX_POINTS, RuleSet
from edge.sanitize import clean, is_clean


def reward(
    db: Database, rs: RuleSet, actor: Operator, member: str, survey: str, points: int
) -> changes.Done:
    """``points`` to ``member`` for survey (or review) ``survey``; the first grant's result
    again, changing nothing, for the same member and survey."""
    sid = survey.strip()
    if not sid or not is_clean(sid, 64) or " " in sid:
        raise ClubError("bad_survey", "a survey id: letters and digits, no spaces",
                        "شناسه نظرسنجی نامعتبر است.")  # fmt: skip
    if type(points) is not int or not 0 < points <= MAX_POINTS:
        raise ClubError("bad_points", "a positive number of points", "امتیاز باید مثبت باشد.")
    return changes.adjust(
        db, rs, actor, member, points, 0, f"survey {clean(sid, 64)}",
        idem=f"survey:{sid}:{member}",
    )  # fmt: skip
