"""``ledger check``: the invariants of the master ledger, each a query.

1. every journal's entries add up to zero per unit;
2. every member's points equal the sum of their lots and of their points entries, and
   their wallet equals the sum of their wallet entries;
3. every lot's remaining equals the sum of its moves; earned lots stay within
   0..earned, overdraft lots at or below zero;
4. every device's records are contiguous from 1 to ``applied_through`` and each one's
   ``prev`` is the hash of the one before (seq 1: zeros); its ``last_hash`` is the hash
   of its last applied record; nothing is held at or below ``applied_through``;
5. every applied record has its journal, and so has every record admitted from quarantine;
6. no quarantined record that a registered device signed validly (``conflict``,
   ``broken_chain``, ``orphaned``, ``revoked``) is left unresolved: it may be a paid sale,
   and a ledger missing one is not OK until it is admitted or dismissed with a reason.

7. the daily tables (``sales_daily``, ``category_daily``, ``sku_daily``, kept by the
   reconciler in the transaction that applies each record) equal what the records
   themselves add up to.

Each failure is reported with the rows that break it (up to ``limit`` of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloud_broker.ledger.daily import (
    CATEGORY_COLUMNS,
    DAILY_COLUMNS,
    SKU_COLUMNS,
    archived_through,
    recompute,
)
from cloud_broker.ledger.db import Database, Tx
from edge.core import record as R


@dataclass(frozen=True, slots=True)
class Failure:
    invariant: str
    detail: str


def _rows(tx: Tx, sql: str, limit: int) -> list[tuple[object, ...]]:
    return [tuple(r) for r in tx.all(sql + f" LIMIT {int(limit)}")]


def check(db: Database, limit: int = 20) -> tuple[list[Failure], dict[str, int]]:
    def run(tx: Tx) -> tuple[list[Failure], dict[str, int]]:
        out: list[Failure] = []

        def fail(name: str, rows: list[tuple[object, ...]], fmt: str) -> None:
            out.extend(Failure(name, fmt.format(*r)) for r in rows)

        fail(
            "journals balance",
            _rows(
                tx,
                "SELECT journal_id, unit, SUM(amount) FROM entries GROUP BY journal_id, unit "
                "HAVING SUM(amount) != 0",
                limit,
            ),
            "journal {0}: {1} entries add up to {2}",
        )
        fail(
            "member points = lots",
            _rows(
                tx,
                "SELECT m.member, m.points, COALESCE(SUM(l.remaining), 0) FROM members m "
                "LEFT JOIN lots l ON l.member = m.member GROUP BY m.member, m.points "
                "HAVING m.points != COALESCE(SUM(l.remaining), 0)",
                limit,
            ),
            "member {0}: balance {1}, lots {2}",
        )
        for unit, col in (("PTS", "points"), ("IRR", "wallet")):
            fail(
                f"member {col} = entries",
                _rows(
                    tx,
                    f"SELECT m.member, m.{col}, COALESCE(e.total, 0) FROM members m LEFT JOIN "
                    "(SELECT account, SUM(amount) AS total FROM (SELECT account, amount FROM "
                    f"entries WHERE unit = '{unit}' AND account LIKE 'M:%' UNION ALL SELECT "
                    "account, amount FROM archived_balances WHERE "
                    f"unit = '{unit}' AND account LIKE 'M:%') u GROUP BY account) e ON e.account = "
                    f"('M:' || m.member || ':{unit}') WHERE m.{col} != COALESCE(e.total, 0)",
                    limit,
                ),
                f"member {{0}}: {col} {{1}}, entries {{2}}",
            )
        fail(
            "lot = its moves",
            _rows(
                tx,
                "SELECT l.id, l.remaining, COALESCE(SUM(mv.points), 0) + COALESCE(a.points, 0) "
                "FROM lots l LEFT JOIN lot_moves mv ON mv.lot_id = l.id LEFT JOIN archived_lots "
                "a ON a.lot_id = l.id GROUP BY l.id, l.remaining, a.points "
                "HAVING l.remaining != COALESCE(SUM(mv.points), 0) + COALESCE(a.points, 0)",
                limit,
            ),
            "lot {0}: remaining {1}, moves add up to {2}",
        )
        fail(
            "lot bounds",
            _rows(
                tx,
                "SELECT id, kind, remaining, earned FROM lots WHERE (kind = 'overdraft' AND "
                "remaining > 0) OR (kind != 'overdraft' AND (remaining < 0 OR remaining > earned))",
                limit,
            ),
            "lot {0} ({1}): remaining {2} of {3}",
        )
        fail(
            "applied_through contiguous",
            _rows(
                tx,
                "SELECT d.device, d.applied_through, COUNT(r.seq) + COALESCE(ac.records, 0), "
                "COALESCE(MAX(r.seq), ac.through_seq, 0) FROM devices d LEFT JOIN "
                "archived_chains ac ON ac.device = d.device LEFT JOIN records r ON r.device = "
                "d.device GROUP BY d.device, d.applied_through, ac.records, ac.through_seq "
                "HAVING COUNT(r.seq) + COALESCE(ac.records, 0) != d.applied_through OR "
                "COALESCE(MAX(r.seq), ac.through_seq, 0) != d.applied_through OR "
                "COALESCE(MIN(r.seq), COALESCE(ac.through_seq, 0) + 1) != "
                "COALESCE(ac.through_seq, 0) + 1 OR COALESCE(ac.records, 0) != "
                "COALESCE(ac.through_seq, 0)",
                limit,
            ),
            "device {0}: applied_through {1}, {2} records, highest seq {3}",
        )
        fail(
            "hash chain",
            _rows(
                tx,
                "SELECT r.device, r.seq FROM records r LEFT JOIN records p ON p.device = "
                "r.device AND p.seq = r.seq - 1 LEFT JOIN archived_chains ac ON ac.device = "
                "r.device AND ac.through_seq = r.seq - 1 WHERE (r.seq = 1 AND r.prev != ?) OR "
                "(r.seq > 1 AND COALESCE(p.hash, ac.last_hash) IS NULL) OR (r.seq > 1 AND "
                "COALESCE(p.hash, ac.last_hash) != r.prev)".replace("?", _zero(tx)),
                limit,
            ),
            "device {0} seq {1}: prev is not the previous record's hash",
        )
        fail(
            "last hash",
            _rows(
                tx,
                "SELECT d.device FROM devices d LEFT JOIN records r ON r.device = d.device AND "
                "r.seq = d.applied_through LEFT JOIN archived_chains ac ON ac.device = "
                "d.device AND ac.through_seq = d.applied_through WHERE COALESCE(r.hash, "
                "ac.last_hash) IS NOT NULL AND (d.last_hash IS NULL OR d.last_hash != "
                "COALESCE(r.hash, ac.last_hash))",
                limit,
            ),
            "device {0}: last_hash is not its last applied record's hash",
        )
        fail(
            "nothing held behind",
            _rows(
                tx,
                "SELECT h.device, h.seq FROM held h JOIN devices d ON d.device = h.device "
                "WHERE h.seq <= d.applied_through",
                limit,
            ),
            "device {0} seq {1}: held although applied",
        )
        fail(
            "records have journals",
            _rows(
                tx,
                "SELECT r.device, r.seq FROM records r LEFT JOIN journals j ON j.id = "
                "r.journal_id WHERE j.id IS NULL OR j.device != r.device OR j.seq != r.seq",
                limit,
            ),
            "device {0} seq {1}: no matching journal",
        )
        fail(
            "admitted records have journals",
            _rows(
                tx,
                "SELECT a.device, a.seq FROM admitted a LEFT JOIN journals j ON j.id = "
                "a.journal_id WHERE j.id IS NULL",
                limit,
            ),
            "admitted record {0} seq {1}: no journal",
        )
        fail(
            "quarantine resolved",
            _rows(
                tx,
                "SELECT id, device, seq, code FROM quarantine WHERE resolved_at IS NULL AND "
                "code IN ('conflict', 'broken_chain', 'orphaned', 'revoked') ORDER BY id",
                limit,
            ),
            "quarantine #{0}: {1} seq {2} ({3}) is validly signed and may be a paid sale: "
            "admit or dismiss it (cloud_broker quarantine admit|dismiss)",
        )
        out.extend(_daily(tx, limit))
        stats = {}
        for name, sql in (
            ("devices", "SELECT COUNT(*) FROM devices"),
            ("records", "SELECT COUNT(*) FROM records"),
            ("journals", "SELECT COUNT(*) FROM journals"),
            ("entries", "SELECT COUNT(*) FROM entries"),
            ("members", "SELECT COUNT(*) FROM members"),
            ("lots", "SELECT COUNT(*) FROM lots"),
            ("held", "SELECT COUNT(*) FROM held"),
            ("quarantine", "SELECT COUNT(*) FROM quarantine"),
            ("admitted", "SELECT COUNT(*) FROM admitted"),
            ("alerts", "SELECT COUNT(*) FROM alerts"),
            ("archived months", "SELECT COUNT(*) FROM archived_months"),
        ):
            stats[name] = int(tx.one(sql)[0])
        return out, stats

    return db.run(run, write=False)


def _zero(tx: Tx) -> str:
    hexed = R.ZERO_HASH.hex()
    return f"'\\x{hexed}'::bytea" if tx.dialect == "postgresql" else f"X'{hexed}'"


def _daily(tx: Tx, limit: int) -> list[Failure]:
    """The daily tables against their recomputation from every sale, refund and void
    applied.  ``category_daily`` is compared over its tiers added together (the records do
    not name the tier their member held)."""
    want = recompute(tx)
    out: list[Failure] = []
    cut = archived_through(tx)
    if cut is not None:  # days with archived sales were checked before they were archived
        want = want.after(cut)
    have_sales = {
        (str(r[0]), str(r[1]), int(r[2]), int(r[3])): [int(x) for x in r[4:]]
        for r in tx.all(
            f"SELECT tenant, store, day, member, {', '.join(DAILY_COLUMNS)} FROM sales_daily"
            + _after(cut, "day")
        )
    }
    out += _compare("daily sales = records", want.sales, have_sales, len(DAILY_COLUMNS), limit)
    for table, have_key, want_cats in (
        ("category_daily", "day", want.categories),
        ("category_monthly", "month", want.category_months),
    ):
        want_cat: dict[tuple[str, str, int, str], list[int]] = {}
        for (tenant, store, day, _, cat), v in want_cats.items():
            row = want_cat.setdefault((tenant, store, day, cat), [0] * len(CATEGORY_COLUMNS))
            for i, x in enumerate(v):
                row[i] += x
        have_cat = {
            (str(r[0]), str(r[1]), int(r[2]), str(r[3])): [int(x) for x in r[4:]]
            for r in tx.all(
                f"SELECT tenant, store, {have_key}, category, {_sums(CATEGORY_COLUMNS)} FROM "
                f"{table}{_after(cut, have_key)} GROUP BY tenant, store, {have_key}, category"
            )
        }
        name = "daily" if table.endswith("daily") else "monthly"
        out += _compare(f"{name} product groups = records", want_cat, have_cat,
                        len(CATEGORY_COLUMNS), limit)  # fmt: skip
    for table, have_key, want_skus in (
        ("sku_daily", "day", want.skus),
        ("sku_monthly", "month", want.sku_months),
    ):
        have_sku = {
            (str(r[0]), int(r[1]), str(r[2]), str(r[3])): [int(x) for x in r[4:]]
            for r in tx.all(
                f"SELECT tenant, {have_key}, sku, category, {', '.join(SKU_COLUMNS)} FROM {table}"
                + _after(cut, have_key)
            )
        }
        name = "daily" if table.endswith("daily") else "monthly"
        out += _compare(f"{name} SKUs = records", want_skus, have_sku, len(SKU_COLUMNS), limit)
    want_exp = {
        (str(r[0]), int(r[1])): [int(r[2])]
        for r in tx.all(
            "SELECT j.tenant, j.day, SUM(e.amount) FROM journals j JOIN entries e ON "
            "e.journal_id = j.id WHERE j.kind = 'expiry' AND e.account LIKE "
            "'S:%:points_expired' GROUP BY j.tenant, j.day"
        )
    }
    rows = tx.all("SELECT tenant, day, points FROM points_expired_daily")
    have_exp = {(str(r[0]), int(r[1])): [int(r[2])] for r in rows}
    if cut is not None:
        have_exp = {k: v for k, v in have_exp.items() if k[1] > cut}
        want_exp = {k: v for k, v in want_exp.items() if k[1] > cut}
    out += _compare("points expired per day = expiry journals", want_exp, have_exp, 1, limit)
    return out


def _after(cut: int | None, key: str) -> str:
    return "" if cut is None else f" WHERE {key} > {int(cut)}"


def _sums(cols: tuple[str, ...]) -> str:
    return ", ".join(f"SUM({c})" for c in cols)


def _compare(name: str, want: dict[Any, list[int]], have: dict[Any, list[int]], width: int,
             limit: int) -> list[Failure]:  # fmt: skip
    zero = [0] * width
    bad = [k for k in sorted(set(want) | set(have)) if want.get(k, zero) != have.get(k, zero)]
    return [
        Failure(
            name,
            f"{' '.join(str(x) for x in k)}: table {have.get(k, zero)}, "
            f"records {want.get(k, zero)}",
        )
        for k in bad[:limit]
    ]
