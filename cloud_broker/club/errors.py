"""The club's refusals: each names what was wrong in both languages and never changes
anything.  ``code`` lets a page or an API choose its answer (a form field, an HTTP status)."""

from __future__ import annotations

from typing import Any

from edge.errors import LoyaltyError


class ClubError(LoyaltyError):
    """A request the club refuses: ``code`` for the caller, ``en``/``fa`` for the person."""

    def __init__(self, code: str, en: str, fa: str) -> None:
        super().__init__(en, fa=fa)
        self.code = code


class NotAllowedError(ClubError):
    """The operator's role may not do this."""

    def __init__(self, what_en: str, what_fa: str) -> None:
        super().__init__(
            "forbidden",
            f"your role may not {what_en}",
            f"نقش شما اجازه {what_fa} را ندارد.",
        )


class ProgrammeError(ClubError):
    """A change to the programme the engine's validator refuses; ``problem`` names the rule
    or section and the field (cloud_broker.programme.validate.Problem)."""

    def __init__(self, problem: Any) -> None:
        super().__init__("invalid_programme", problem.en, problem.fa)
        self.problem = problem
