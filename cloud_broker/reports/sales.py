"""Sales reports: over time (day, Jalali week, month, year), by store, by product group and by
SKU, members against anonymous customers, and what was given (discounts, points, cashback).

Every figure is a sum over the daily tables the reconciler keeps in the transaction that
applies each record (``sales_daily``, ``category_daily``, ``sku_daily``, and the monthly
roll-ups of the last two; see cloud_broker.ledger.daily), so a report costs a few rows a
day (a row a month for whole months) whatever the number of sales, and equals the records
to the Rial (``ledger check`` recomputes the tables from them).

Filters: product group (category) and tier (the member's tier when the sale was applied)
read ``category_daily``, whose figures are per line (there is no count of sales in a
product group, only of units); without them ``sales_daily``.  The SKUs are chain-wide
(``sku_daily`` has no store or tier: a row per SKU and day keeps it small)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloud_broker.ledger.db import Database, Tx
from cloud_broker.reports import periods
from cloud_broker.reports.periods import Period

ANONYMOUS = ""  # the tier column of category_daily for a sale without a member


@dataclass(frozen=True)
class Filters:
    store: str | None = None
    category: str | None = None
    tier: str | None = None  # ANONYMOUS for anonymous customers only

    @property
    def by_line(self) -> bool:
        return self.category is not None or self.tier is not None


@dataclass
class Table:
    """A report's table: column keys, their English headers (pages translate them), rows
    of values (ints are Rials, counts or points as the column says), and totals."""

    columns: list[str]
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    totals: list[Any] | None = None
    money: set[str] = field(default_factory=set)


SALES_COLS = ("sales", "gross", "discount", "wallet_used", "revenue", "points_earned",
              "points_redeemed", "cashback", "refunds", "refunded")  # fmt: skip
LINE_COLS = ("qty", "gross", "discount", "revenue", "points_earned", "cashback", "returned_qty",
             "refunded")  # fmt: skip
SKU_COLS = ("qty", "gross", "discount", "revenue", "returned_qty", "refunded")
HEADERS = {
    "period": "Period", "store": "Store", "category": "Product group", "sku": "SKU",
    "sales": "Sales", "gross": "Gross", "discount": "Discounts", "wallet_used": "Wallet used",
    "revenue": "Revenue", "points_earned": "Points given", "points_redeemed": "Points redeemed",
    "cashback": "Cashback", "refunds": "Refunds", "refunded": "Refunded", "qty": "Units",
    "returned_qty": "Units returned", "member_sales": "Members' sales",
    "member_revenue": "Members' revenue", "anonymous_sales": "Anonymous sales",
    "anonymous_revenue": "Anonymous revenue", "share": "Share of revenue",
}  # fmt: skip
MONEY = {"gross", "discount", "wallet_used", "revenue", "cashback", "refunded",
         "member_revenue", "anonymous_revenue"}  # fmt: skip


def _filter(f: Filters, table: str) -> tuple[str, list[Any]]:
    """The WHERE of the filters that ``table`` has columns for."""
    sql, args = [], []
    if f.store and table != "sku":
        sql.append("store = ?")
        args.append(f.store)
    if f.category is not None and table != "sales":
        sql.append("category = ?")
        args.append(f.category)
    if f.tier is not None and table == "category":
        sql.append("tier = ?")
        args.append(f.tier)
    return "".join(f" AND {x}" for x in sql), args


def _split(period: Period) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """The period as ranges of days read from a daily table and a range of whole Jalali
    months read from its monthly roll-up: a year costs twelve rows per key, not 365."""
    months = [m for m in periods.buckets(period, "month")
              if m >= period.first and periods.month_end(m) <= period.last]  # fmt: skip
    if not months:
        return [(period.first, period.last)], None
    days = []
    if period.first < months[0]:
        days.append((period.first, months[0] - 1))
    end = periods.month_end(months[-1])
    if end < period.last:
        days.append((end + 1, period.last))
    return days, (months[0], months[-1])


def _union(table: str, select: str, cols: tuple[str, ...], period: Period, f: Filters,
           monthly: bool = True) -> tuple[str, list[Any]]:  # fmt: skip
    """A subquery of ``select`` and ``cols`` (``day`` first) over the daily table and, for
    whole months, the monthly one (its ``month`` as ``day``)."""
    where, fargs = _filter(f, table)
    days, months = (
        _split(period) if monthly and table != "sales" else ([(period.first, period.last)], None)
    )
    parts, args = [], []
    names = ", ".join(cols)
    if days:
        ranges = " OR ".join("(day >= ? AND day <= ?)" for _ in days)
        parts.append(f"SELECT day, {select}, {names} FROM {table}_daily WHERE ({ranges}){where}")
        args += [x for r in days for x in r] + fargs
    if months:
        parts.append(f"SELECT month AS day, {select}, {names} FROM {table}_monthly WHERE "
                     f"month >= ? AND month <= ?{where}")  # fmt: skip
        args += [months[0], months[1], *fargs]
    return " UNION ALL ".join(parts), args


def _sums(cols: tuple[str, ...]) -> str:
    return ", ".join(f"COALESCE(SUM({c}), 0)" for c in cols)


def _ints(rows: list[Any], keys: int) -> list[list[Any]]:
    """Rows with their sums as ints (PostgreSQL's SUM of a bigint is a numeric)."""
    return [[*(str(x) for x in r[:keys]), *(int(x) for x in r[keys:])] for r in rows]


def over_time(db: Database, period: Period, grain: str, f: Filters = Filters()) -> Table:
    """One row per bucket of the period (empty buckets too, so a chart has no holes): sales
    and what they carried, members' apart from anonymous customers'."""
    lines = f.by_line
    cols = LINE_COLS if lines else SALES_COLS
    table = "category" if lines else "sales"
    member_col = "CASE WHEN tier <> '' THEN 1 ELSE 0 END" if lines else "member"
    sub, args = _union(table, f"{member_col} AS m", cols, period, f, grain in ("month", "year"))

    def run(tx: Tx) -> list[Any]:
        return tx.all(f"SELECT day, m, {_sums(cols)} FROM ({sub}) t GROUP BY day, m", args)

    rows = db.run(run, write=False)
    starts = periods.buckets(period, grain)
    index = {s: i for i, s in enumerate(starts)}
    extra = ["member_revenue", "anonymous_revenue"] + ([] if lines else ["member_sales"])
    width = len(cols) + len(extra)
    acc = [[0] * width for _ in starts]
    rev = cols.index("revenue")
    for day, m, *vals in rows:
        b = acc[index[periods.start(max(int(day), period.first), grain)]]
        for i, v in enumerate(vals):
            b[i] += int(v)
        b[len(cols) + (0 if int(m) else 1)] += int(vals[rev])
        if not lines and int(m):
            b[len(cols) + 2] += int(vals[0])
    columns = ["period", *cols, *extra]
    out = Table(columns, [HEADERS[c] for c in columns], money=MONEY)
    out.rows = [[periods.label(s, grain), *acc[i]] for i, s in enumerate(starts)]
    out.totals = ["", *[sum(r[i] for r in acc) for i in range(width)]]
    return out


def _grouped(db: Database, period: Period, f: Filters, keys: tuple[str, ...], table: str,
             cols: tuple[str, ...], limit: int) -> list[list[Any]]:  # fmt: skip
    group = ", ".join(keys)
    sub, args = _union(table, group, cols, period, f)

    def run(tx: Tx) -> list[Any]:
        return tx.all(
            f"SELECT {group}, {_sums(cols)} FROM ({sub}) t GROUP BY {group} "
            f"ORDER BY COALESCE(SUM(revenue), 0) DESC LIMIT {int(limit)}",
            args,
        )

    return _ints(db.run(run, write=False), len(keys))


def _with_share(columns: list[str], rows: list[list[Any]], rev_at: int) -> Table:
    total = sum(int(r[rev_at]) for r in rows) or 1
    for r in rows:
        r.append(int(r[rev_at]) * 10_000 // total)  # basis points
    columns = [*columns, "share"]
    t = Table(columns, [HEADERS[c] for c in columns], rows, money=MONEY)
    t.totals = ["" if not isinstance(rows[0][i], int) else sum(int(r[i]) for r in rows)
                for i in range(len(columns) - 1)] + [10_000] if rows else None  # fmt: skip
    return t


def by_store(db: Database, period: Period, f: Filters = Filters(), limit: int = 500) -> Table:
    if f.by_line:
        rows = _grouped(db, period, f, ("store",), "category", LINE_COLS, limit)
        return _with_share(["store", *LINE_COLS], rows, 1 + 3)
    rows = _grouped(db, period, f, ("store",), "sales", SALES_COLS, limit)
    return _with_share(["store", *SALES_COLS], rows, 1 + 4)


def by_category(db: Database, period: Period, f: Filters = Filters(), limit: int = 500) -> Table:
    table = "category" if f.store or f.tier is not None else "sku"  # the smaller one
    cols = LINE_COLS if table == "category" else SKU_COLS
    rows = _grouped(db, period, f, ("category",), table, cols, limit)
    return _with_share(["category", *cols], rows, 1 + 3)


def by_sku(db: Database, period: Period, f: Filters = Filters(), limit: int = 200) -> Table:
    """The best-selling SKUs chain-wide (``sku_daily`` has no store or tier: one row per SKU
    and day keeps it small)."""
    rows = _grouped(db, period, f, ("sku", "category"), "sku", SKU_COLS, limit)
    return _with_share(["sku", "category", *SKU_COLS], rows, 2 + 3)


def stores(db: Database) -> list[str]:
    """The stores a report can be filtered by: those registered, and any that sold."""
    return [str(r[0]) for r in db.read(
        "SELECT store FROM stores UNION SELECT DISTINCT store FROM devices "
        "ORDER BY 1")]  # fmt: skip


def categories(db: Database, period: Period) -> list[str]:
    """The product groups sold in the period (``sku_daily``: a row per SKU and day)."""
    return [str(r[0]) for r in db.read(
        "SELECT DISTINCT category FROM sku_daily WHERE day >= ? AND day <= ? ORDER BY 1",
        (period.first, period.last))]  # fmt: skip
