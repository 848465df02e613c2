"""What a draft would do, before anyone publishes it.

* :func:`quote_side_by_side`: a basket for a member (or no member) quoted under the
  programme in force and under the draft, by the engine the tills run
  (``edge.core.engine.quote``), with the member as head office knows them: points, wallet,
  visits, birthday, the spend that sets their tier, the coupons they hold and have used.
* :func:`estimate`: what the draft would have given over the last 30 days of real sales,
  against what was given.  Re-quoting a chain's million sales takes minutes, so it quotes a
  uniform random sample of them (2,000 by default) under the draft and scales up; the
  answer carries the sample size and a 95% margin for the difference.  Each sampled sale is
  quoted as it happened: its lines, its time, its coupons, the points and wallet credit the
  customer chose to spend, the member's tier from their spend before that day and whether it
  was their first purchase.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx, chunks, marks
from edge.core import engine
from edge.core import record as R
from edge.core.dates import format_date, format_timestamp, parse_timestamp
from edge.core.errors import CoreError
from edge.core.inputs import Basket
from edge.core.ruleset import RuleSet
from edge.protocol.record import parse
from edge.sanitize import clean

OFFSET_MIN = 210
FIGURES = ("discount", "points_earned", "wallet_earned")


def _today() -> int:
    return int((time.time() + OFFSET_MIN * 60) // 86400)


def now_iso() -> str:
    return str(format_timestamp(int(time.time()), OFFSET_MIN))


def member_input(tx: Tx, member: str, day: int, window_days: int, before_journal: int | None = None
                 ) -> dict[str, Any] | None:  # fmt: skip
    """The engine's member input for ``member`` on ``day`` as head office knows them."""
    row = tx.one(
        "SELECT points, wallet, visits, birthday, birthday_claimed, anniversary, "
        "anniversary_claimed FROM members WHERE member = ?",
        (member,),
    )
    if row is None:
        return None
    spend = tx.all(
        "SELECT day, amount FROM member_spend WHERE member = ? AND day < ? AND day >= ?",
        (member, day, day - window_days),
    )
    visits = int(row[2])
    if before_journal is not None:  # as it was: how many sales came before this one
        visits = int(tx.one(
            "SELECT COUNT(*) FROM journals WHERE member = ? AND id < ? AND kind = 'sale'",
            (member, before_journal),
        )[0])  # fmt: skip
    held = [
        str(r[0])
        for r in tx.all(
            "SELECT code FROM member_coupons WHERE member = ? AND used_at IS NULL AND "
            "revoked_at IS NULL AND (valid_until IS NULL OR valid_until >= ?)",
            (member, day),
        )
    ]
    used = [str(r[0]) for r in tx.all("SELECT code FROM coupon_uses WHERE member = ?", (member,))]
    out: dict[str, Any] = {
        "ref": member,
        "points": max(0, int(row[0])),
        "wallet": max(0, int(row[1])),
        "visits": visits,
        "spend": [[format_date(int(d)), int(a)] for d, a in spend],
        "coupons": sorted(set(held)),
        "used_coupons": sorted(set(used)),
        "birthday_claimed": int(row[4]),
        "anniversary_claimed": int(row[6]),
        "today": {"date": format_date(day), "discount": 0, "points": 0},
    }
    if row[3]:
        out["birthday"] = str(row[3])
    if row[5]:
        out["anniversary"] = str(row[5])
    return out


@dataclass(frozen=True, slots=True)
class Side:
    quote: dict[str, Any] | None
    error_en: str = ""
    error_fa: str = ""


def _quote(rs: RuleSet, basket: dict[str, Any], member: dict[str, Any] | None, at: str) -> Side:
    try:
        return Side(engine.quote(rs, basket, member, at))
    except CoreError as e:
        return Side(None, str(e), e.fa or str(e))


def quote_side_by_side(
    db: Database, current: RuleSet, draft: RuleSet, basket: dict[str, Any], member: str | None,
    at: str | None = None,
) -> tuple[Side, Side]:  # fmt: skip
    """``basket`` under the programme in force and under the draft."""
    when = at or now_iso()

    def run(tx: Tx) -> dict[str, Any] | None:
        if member is None:
            return None
        m = member_input(tx, member, _today(), max(current.window_days, draft.window_days))
        if m is None:
            raise ClubError("unknown_member", "no such member", "چنین عضوی در باشگاه نیست.")
        return m

    m = db.run(run, write=False)
    return _quote(current, basket, m, when), _quote(draft, basket, m, when)


@dataclass(frozen=True, slots=True)
class Estimate:
    days: int
    sales: int  # sales in those days (sales_daily)
    sampled: int
    given: dict[str, int]  # discount, points_earned, wallet_earned: what was given (scaled)
    draft: dict[str, int]  # what the draft would have given (scaled)
    margin: dict[str, int]  # 95% margin of the difference
    refused: int  # sampled sales the draft refused to quote (e.g. a coupon it drops)
    seconds: float


def _sample(tx: Tx, first_day: int, n: int, rng: random.Random) -> list[Any]:
    lo = tx.one(
        "SELECT MIN(id), MAX(id) FROM journals WHERE kind = 'sale' AND id >= (SELECT "
        "COALESCE(MIN(id), 0) FROM journals WHERE kind = 'sale' AND day >= ?)",
        (first_day,),
    )
    if lo is None or lo[0] is None:
        return []
    first, last = int(lo[0]), int(lo[1])
    span = last - first + 1
    picks = sorted(rng.sample(range(first, last + 1), min(span, n * 2)))
    rows: list[Any] = []
    for i in range(0, len(picks), 500):
        part = picks[i : i + 500]
        rows += tx.all(
            "SELECT j.id, j.member, r.raw FROM journals j JOIN records r ON r.device = j.device "
            f"AND r.seq = j.seq WHERE j.id IN ({marks(len(part))}) AND j.kind = 'sale' AND "
            "j.day >= ?",
            (*part, first_day),
        )
        if len(rows) >= n:
            break
    return rows[:n]


def _as_then(
    tx: Tx, sales: list[tuple[int, str, int]], window_days: int
) -> dict[int, dict[str, Any]]:
    """The engine's member input for each sampled sale (journal id, member, day), as of
    that sale, in a few queries for all of them (a query per sale costs seconds on a
    networked database): balance, spend before that day, purchases before it, birthday,
    coupons held and used."""
    members = sorted({m for _, m, _ in sales})
    rows: dict[str, Any] = {}
    spend: dict[str, list[tuple[int, int]]] = {}
    sold_ids: dict[str, list[int]] = {}
    used: dict[str, set[str]] = {}
    held: dict[str, set[str]] = {}
    low = min((d for _, _, d in sales), default=0) - window_days
    for part in chunks(members):
        q = marks(len(part))
        for r in tx.all(
            "SELECT member, points, wallet, birthday, birthday_claimed, anniversary, "
            f"anniversary_claimed FROM members WHERE member IN ({q})",
            part,
        ):
            rows[str(r[0])] = r
        for m, d, a in tx.all(
            f"SELECT member, day, amount FROM member_spend WHERE member IN ({q}) AND day >= ?",
            (*part, low),
        ):
            spend.setdefault(str(m), []).append((int(d), int(a)))
        for m, j in tx.all(
            f"SELECT member, id FROM journals WHERE member IN ({q}) AND kind = 'sale'", part
        ):
            sold_ids.setdefault(str(m), []).append(int(j))
        for m, c in tx.all(f"SELECT member, code FROM coupon_uses WHERE member IN ({q})", part):
            used.setdefault(str(m), set()).add(str(c))
        for m, c in tx.all(
            f"SELECT member, code FROM member_coupons WHERE member IN ({q}) AND revoked_at IS NULL",
            part,
        ):
            held.setdefault(str(m), set()).add(str(c))
    out: dict[int, dict[str, Any]] = {}
    for jid, m, day in sales:
        r = rows.get(m)
        if r is None:
            continue
        inp: dict[str, Any] = {
            "ref": m,
            "points": max(0, int(r[1])),
            "wallet": max(0, int(r[2])),
            "visits": sum(1 for j in sold_ids.get(m, ()) if j < jid),
            "spend": [
                [format_date(d), a] for d, a in spend.get(m, ()) if day - window_days <= d < day
            ],
            "coupons": sorted(held.get(m, ())),
            "used_coupons": sorted(used.get(m, ())),
            "birthday_claimed": int(r[4]),
            "anniversary_claimed": int(r[6]),
            "today": {"date": format_date(day), "discount": 0, "points": 0},
        }
        if r[3]:
            inp["birthday"] = str(r[3])
        if r[5]:
            inp["anniversary"] = str(r[5])
        out[jid] = inp
    return out


def _as_sold(p: dict[int, Any]) -> tuple[dict[str, Any], str, dict[str, int]]:
    """A sale record as a basket, its time and what it gave."""
    basket: dict[str, Any] = {
        "store": p[R.K_STORE],
        "lines": [
            {"sku": ln[R.L_SKU], "category": ln.get(R.L_CATEGORY) or "general",
             "qty": ln[R.L_QTY], "unit_price": ln.get(R.L_UNIT_PRICE) or 1}
            for ln in p[R.K_LINES]
        ],
    }  # fmt: skip
    coupons = [a[R.AP_COUPON] for a in p.get(R.K_APPLIED, ()) if a.get(R.AP_COUPON)]
    if coupons:
        basket["coupons"] = coupons
    redeemed, used = p[R.K_POINTS][R.P_REDEEMED], p[R.K_WALLET][R.W_USED]
    if redeemed:
        basket["redeem_points"] = redeemed
    if used:
        basket["use_wallet"] = used
    t = p[R.K_TIME]
    at = format_timestamp(t[R.T_WALL] // 1000, t[R.T_OFFSET])
    given = {
        "discount": p[R.K_AMOUNTS][R.A_DISCOUNT],
        "points_earned": p[R.K_POINTS][R.P_EARNED],
        "wallet_earned": p[R.K_WALLET][R.W_CASHBACK],
    }
    return basket, at, given


def estimate(
    db: Database, draft: RuleSet, days: int = 30, sample: int = 2000, seed: int | None = None
) -> Estimate:
    """See the module docstring."""
    t0 = time.perf_counter()
    rng = random.Random(seed)  # noqa: S311 - a statistical sample, not a secret
    first = _today() - days + 1

    def run(tx: Tx) -> tuple[int, list[tuple[dict[str, int], dict[str, int] | None]]]:
        total = int(tx.one(
            "SELECT COALESCE(SUM(sales), 0) FROM sales_daily WHERE day >= ?", (first,)
        )[0])  # fmt: skip
        pairs: list[tuple[dict[str, int], dict[str, int] | None]] = []
        sold = []
        for jid, member, raw in _sample(tx, first, sample, rng):
            basket, at, given = _as_sold(parse(bytes(raw)).payload)
            day = int(parse_timestamp(at)["day"])
            sold.append((int(jid), None if member is None else str(member), day, basket, at, given))
        inputs = _as_then(tx, [(j, m, d) for j, m, d, *_ in sold if m], draft.window_days)
        for jid, _member, _day, basket, at, given in sold:
            m = inputs.get(jid)
            try:
                q = engine.quote(draft, basket, m, at)
                pairs.append((given, {k: int(q[k]) for k in FIGURES}))
            except CoreError:
                pairs.append((given, None))
        return total, pairs

    total, pairs = db.run(run, write=False)
    ok = [(g, d) for g, d in pairs if d is not None]
    n = len(ok)
    given: dict[str, int] = {}
    would: dict[str, int] = {}
    margin: dict[str, int] = {}
    for k in FIGURES:  # integers throughout: sums scaled by total/n, the margin by isqrt
        diffs = [d[k] - g[k] for g, d in ok]
        given[k] = sum(g[k] for g, _ in ok) * total // n if n else 0
        would[k] = sum(d[k] for _, d in ok) * total // n if n else 0
        if n > 1:
            spread = n * sum(x * x for x in diffs) - sum(diffs) ** 2  # n(n-1) x variance
            margin[k] = 196 * total * math.isqrt(spread // (n - 1)) // (100 * n)
        else:
            margin[k] = 0
    return Estimate(days, total, n, given, would, margin, len(pairs) - n,
                    time.perf_counter() - t0)  # fmt: skip


def samples(db: Database) -> list[dict[str, Any]]:
    """The saved sample baskets the preview quotes."""
    return [
        {"id": int(r[0]), "name": str(r[1]), "basket": json.loads(r[2])}
        for r in db.read("SELECT id, name, basket FROM programme_samples ORDER BY id")
    ]


def save_sample(db: Database, actor: Any, name: str, basket: dict[str, Any]) -> int:
    """Keep ``basket`` (validated by the engine's own basket check) as a sample."""
    actor.require("programme")
    title = clean(name, 80).strip()
    if not title:
        raise ClubError("no_name", "name the sample basket", "برای سبد نمونه نامی بنویسید.")
    try:
        Basket(basket)
    except CoreError as e:
        raise ClubError("bad_basket", str(e), e.fa or str(e)) from e

    def step(tx: Tx) -> int:
        sid = tx.next_id("programme_samples")
        tx.execute(
            "INSERT INTO programme_samples (id, name, basket, created_by, created_at) VALUES "
            "(?, ?, ?, ?, ?)",
            (sid, title, json.dumps(basket, ensure_ascii=False), actor.username,
             int(time.time() * 1000)),
        )  # fmt: skip
        audit.record(tx, actor.username, "programme.sample", f"sample:{sid}", {"name": title})
        return sid

    return db.run(step)
