"""The nightly scores of every member: RFM (recency, frequency, monetary, each 1 to 5 by
quintile among the members who bought) and the named segment they fall in, the chance
they are still a customer and what they are expected to spend in the next twelve months.

The chance and the expectation come from the standard models of non-contractual customers:
BG/NBD for when they buy and Gamma-Gamma for how much, fitted by ``lifetimes`` on the
members' purchase days (``member_spend``: one row per member and day with a sale), then
written to ``member_scores`` in one transaction (readers see yesterday's or today's scores,
never half).  ``python -m cloud_broker reports refresh`` runs it; docs/reports.md has the
definitions."""

from __future__ import annotations

import bisect
import hashlib
import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

from cloud_broker.ledger.db import Database, Tx

log = logging.getLogger("cloud_broker.reports")

SEGMENTS = ("champions", "loyal", "potential", "new", "promising", "attention", "at_risk",
            "cant_lose", "hibernating", "lost", "no_purchase")  # fmt: skip
FIT_SAMPLE = 50_000  # members the models are fitted on (all of them are scored)
HORIZON_DAYS = 365


@dataclass
class History:
    """A member's purchase days: first and last day, days with a sale, spend."""

    member: str
    first: int
    last: int
    days: int
    spend: int
    first_spend: int


def segment_of(r: int, f: int) -> str:  # noqa: PLR0911 - the grid reads best as returns
    """The named segment of recency and frequency scores (the usual RFM grid)."""
    if r >= 4 and f >= 4:
        return "champions"
    if r == 1 and f == 5:
        return "cant_lose"
    if r <= 2 and f >= 3:
        return "at_risk"
    if r == 3 and f >= 4:
        return "loyal"
    if r >= 4 and f >= 2:
        return "potential"
    if r >= 4:
        return "new"
    if r == 3 and f == 3:
        return "attention"
    if r == 3:
        return "promising"
    if r == 2:
        return "hibernating"
    return "lost"


def _cuts(values: list[int]) -> list[int]:
    """The 20th, 40th, 60th and 80th percentiles of ``values`` (sorted in place)."""
    values.sort()
    n = len(values)
    return [values[min(n - 1, n * q // 5)] for q in (1, 2, 3, 4)]


def score(value: int, cuts: list[int]) -> int:
    """1 to 5: one more than the number of cut points strictly below ``value``."""
    return 1 + bisect.bisect_left(cuts, value)


def histories(tx: Tx) -> list[History]:
    """Every member who bought, from ``member_spend`` (days with a positive spend)."""
    out: list[History] = []
    cur: History | None = None
    for member, day, amount in tx.all(
        "SELECT member, day, amount FROM member_spend WHERE amount > 0 ORDER BY member, day"
    ):
        m, d, a = str(member), int(day), int(amount)
        if cur is None or cur.member != m:
            cur = History(m, d, d, 0, 0, a)
            out.append(cur)
        cur.last = d
        cur.days += 1
        cur.spend += a
    return out


def _sample(hs: list[History]) -> list[History]:
    if len(hs) <= FIT_SAMPLE:
        return hs
    key = lambda h: hashlib.blake2b(h.member.encode(), digest_size=8).digest()  # noqa: E731
    return sorted(hs, key=key)[:FIT_SAMPLE]  # the same members every night


def models(hs: list[History], today: int) -> tuple[list[int | None], list[int | None], str]:
    """Per member: the chance (basis points) they are still a customer, and the Rials they
    are expected to spend in the next year; ``None`` when the models could not be fitted,
    and why."""
    import numpy as np  # noqa: PLC0415 - numpy, pandas, scipy: the nightly job's alone

    with warnings.catch_warnings():  # lifetimes sets a pandas option pandas 3 deprecates
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter  # noqa: PLC0415

    def arrays(group: list[History]) -> tuple[Any, Any, Any, Any]:
        freq = np.array([h.days - 1 for h in group], dtype=float)
        rec = np.array([h.last - h.first for h in group], dtype=float)
        age = np.array([max(today - h.first, h.last - h.first, 1) for h in group], dtype=float)
        money = np.array(
            [(h.spend - h.first_spend) / (h.days - 1) if h.days > 1 else 0.0 for h in group]
        )
        return freq, rec, age, money

    none: list[int | None] = [None] * len(hs)
    fit = _sample(hs)
    f, r, t, m = arrays(fit)
    if len(fit) < 50 or (f > 0).sum() < 20:
        return none, list(none), "too few members with repeat purchases to fit the models"
    try:
        bgf = BetaGeoFitter(penalizer_coef=0.001)
        bgf.fit(f, r, t)
        repeat = (f > 0) & (m > 0)
        ggf = GammaGammaFitter(penalizer_coef=0.001)
        ggf.fit(f[repeat], m[repeat])
    except Exception as e:  # noqa: BLE001 - any failure of the optimiser leaves scores unset
        log.warning("the member value models could not be fitted: %s", e)
        return none, list(none), f"the models could not be fitted: {type(e).__name__}"
    f, r, t, m = arrays(hs)
    alive = bgf.conditional_probability_alive(f, r, t)
    buys = bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON_DAYS, f, r, t)
    value = ggf.conditional_expected_average_profit(f, np.where(m > 0, m, 0.0))
    # a member with one purchase has no repeat value: the population mean stands in
    value = np.where(f > 0, value, float(np.mean(value[f > 0])) if (f > 0).any() else 0.0)
    p_bp: list[int | None] = [round(float(x) * 10_000) for x in np.nan_to_num(alive)]
    clv: list[int | None] = [
        round(float(x)) for x in np.nan_to_num(np.asarray(buys) * np.asarray(value))
    ]
    return p_bp, clv, ""


def refresh(db: Database, today: int, with_models: bool = True) -> dict[str, Any]:
    """Score every member and replace ``member_scores``; what was done."""
    t0 = time.monotonic()
    hs = db.run(histories, write=False)
    t_read = time.monotonic() - t0
    rec_cuts = _cuts([today - h.last for h in hs]) if hs else [0, 0, 0, 0]
    freq_cuts = _cuts([h.days for h in hs]) if hs else [0, 0, 0, 0]
    mon_cuts = _cuts([h.spend for h in hs]) if hs else [0, 0, 0, 0]
    if with_models:
        p_alive, clv, why = models(hs, today)
    else:
        p_alive, clv, why = [None] * len(hs), [None] * len(hs), "not asked"
    t_models = time.monotonic() - t0 - t_read
    rows = []
    for i, h in enumerate(hs):
        r = 6 - score(today - h.last, rec_cuts)  # fewer days since = a higher score
        f = score(h.days, freq_cuts)
        mo = score(h.spend, mon_cuts)
        rows.append((h.member, today - h.last, h.days, h.spend, r, f, mo, segment_of(r, f),
                     p_alive[i], clv[i], today))  # fmt: skip

    def write(tx: Tx) -> int:
        tx.execute("DELETE FROM member_scores")
        tx.executemany(
            "INSERT INTO member_scores (member, recency, frequency, monetary, r, f, m, segment, "
            "p_alive_bp, clv, computed_day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        for name, value in (("scores_day", today), ("scores_at", int(time.time() * 1000))):
            tx.execute(
                "INSERT INTO report_marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO "
                "UPDATE SET value = excluded.value",
                (name, value),
            )
        return len(rows)

    written = db.run(write)
    return {
        "members": written,
        "read_s": round(t_read, 2),
        "models_s": round(t_models, 2),
        "total_s": round(time.monotonic() - t0, 2),
        "models": why or "fitted",
        "cuts": {"recency": rec_cuts, "frequency": freq_cuts, "monetary": mon_cuts},
    }


_GRID: dict[tuple[str, int], dict[str, Any]] = {}  # (ledger, when scored) -> the grid


def grid(db: Database) -> dict[str, Any]:
    """Members per named segment, with their spend and expected value, and when scored (a
    count over every member: kept until the next refresh scores them again)."""
    marks = {str(k): int(v) for k, v in db.read("SELECT name, value FROM report_marks")}
    key = (db.url, marks.get("scores_at", 0))
    if key in _GRID:
        return _GRID[key]
    rows = db.read(
        "SELECT segment, COUNT(*), COALESCE(SUM(monetary), 0), COALESCE(SUM(clv), 0), "
        "COALESCE(AVG(p_alive_bp), 0) FROM member_scores GROUP BY segment"
    )
    by = {str(r[0]): r for r in rows}
    out = []
    for s in SEGMENTS[:-1]:
        r = by.get(s)
        out.append({"segment": s, "members": int(r[1]) if r else 0,
                    "spend": int(r[2]) if r else 0, "clv": int(r[3]) if r else 0,
                    "p_alive_bp": int(r[4]) if r else 0})  # fmt: skip
    value = {"segments": out, "day": marks.get("scores_day"), "at": marks.get("scores_at")}
    if key[1]:
        _GRID.clear()
        _GRID[key] = value
    return value
