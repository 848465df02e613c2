"""The daily tables the reports read instead of the records, kept by the reconciler in the
transaction that applies each record (so they are exactly the ledger, and a report costs a
few rows a day), and recomputed from the records by ``ledger check`` with the same
functions:

* ``sales_daily``: each store's sales, refunds, points and cashback per Tehran day, for
  members and for anonymous customers apart;
* ``category_daily``: the lines of each store per day, product group and tier (the member's
  tier when the record was applied; ``''`` for anonymous customers);
* ``sku_daily``: the lines of the whole chain per day and SKU;
* ``category_monthly`` and ``sku_monthly``: the same per Jalali month (``month``: its first
  day), so a report over a year reads twelve rows per key rather than 365."""

from __future__ import annotations

from typing import Any

from cloud_broker.ledger.db import Tx
from edge.core import jalali
from edge.core import record as R


def local_day(payload: dict[int, Any]) -> int:
    """The day (since 1970-01-01) of a record in its own time zone: the day it happened."""
    t = payload[R.K_TIME]
    return int((t[R.T_WALL] // 1000 + t[R.T_OFFSET] * 60) // 86400)


DAILY_COLUMNS = (
    "sales",
    "gross",
    "discount",
    "wallet_used",
    "revenue",
    "points_earned",
    "points_redeemed",
    "cashback",
    "refunds",
    "refunded",
)
DailyKey = tuple[str, str, int, int]  # tenant, store, day, 1 for a member's (0 anonymous)


def daily_figures(p: dict[int, Any]) -> list[int]:
    """What one sale, refund or void adds to its day's row of ``sales_daily`` (the same
    function serves the reconciler and ``ledger check``'s recomputation)."""
    a, pts, w = p[R.K_AMOUNTS], p[R.K_POINTS], p[R.K_WALLET]
    if p[R.K_TYPE] == "sale":
        return [
            1,
            a[R.A_GROSS],
            a[R.A_DISCOUNT],
            a[R.A_WALLET],
            a[R.A_PAID],
            pts[R.P_EARNED],
            pts[R.P_REDEEMED],
            w[R.W_CASHBACK],
            0,
            0,
        ]
    # a refund or void: what it gives back comes off the day of the refund
    return [
        0,
        0,
        0,
        0,
        0,
        -pts[R.P_EARNED],
        -pts[R.P_REDEEMED],
        -w[R.W_CASHBACK],
        1,
        a[R.A_PAID],
    ]


CATEGORY_COLUMNS = ("qty", "gross", "discount", "revenue", "points_earned", "cashback",
                    "returned_qty", "refunded")  # fmt: skip
SKU_COLUMNS = ("qty", "gross", "discount", "revenue", "returned_qty", "refunded")
CategoryKey = tuple[str, str, int, str, str]  # tenant, store, day, tier ('' anonymous), category
SkuKey = tuple[str, int, str, str]  # tenant, day, sku, category


def line_figures(kind: str, ln: dict[int, Any]) -> list[int]:
    """What one line adds to its ``category_daily`` row (CATEGORY_COLUMNS); a returned line
    takes its points and cashback back and counts its units and money as returned."""
    qty, paid = ln[R.L_QTY], ln[R.L_PAID]
    if kind == "sale":
        gross = qty * ln[R.L_UNIT_PRICE]
        return [qty, gross, ln[R.L_DISCOUNT], paid, ln[R.L_POINTS], ln[R.L_CASHBACK], 0, 0]
    return [0, 0, 0, 0, -ln[R.L_POINTS], -ln[R.L_CASHBACK], qty, paid]


_MONTHS: dict[int, int] = {}


def month_of(day: int) -> int:
    """The first day of the Jalali month holding ``day`` (remembered: a batch asks often)."""
    m = _MONTHS.get(day)
    if m is None:
        y, mo, _ = jalali.from_days(day)
        m = _MONTHS[day] = int(jalali.to_days(y, mo, 1))
    return m


class DailyBook:
    """A batch's additions to the daily tables, written at its end by ``flush``."""

    def __init__(self) -> None:
        self.sales: dict[DailyKey, list[int]] = {}
        self.categories: dict[CategoryKey, list[int]] = {}
        self.skus: dict[SkuKey, list[int]] = {}
        self.category_months: dict[CategoryKey, list[int]] = {}
        self.sku_months: dict[SkuKey, list[int]] = {}

    def count(self, p: dict[int, Any], day: int, tier: str | None) -> None:
        """Add a sale, refund or void applied on ``day``; ``tier``: the member's tier then,
        ``None`` for an anonymous customer."""
        tenant, store = str(p[R.K_TENANT]), str(p[R.K_STORE])
        row = self.sales.setdefault((tenant, store, day, int(tier is not None)),
                                    [0] * len(DAILY_COLUMNS))  # fmt: skip
        for i, v in enumerate(daily_figures(p)):
            row[i] += v
        kind = str(p[R.K_TYPE])
        month = month_of(day)
        for ln in p.get(R.K_LINES) or []:
            cat, sku = str(ln[R.L_CATEGORY]), str(ln[R.L_SKU])
            fig = line_figures(kind, ln)
            sku_fig = (fig[0], fig[1], fig[2], fig[3], fig[6], fig[7])
            for table, d in ((self.categories, day), (self.category_months, month)):
                crow = table.setdefault((tenant, store, d, tier or "", cat),
                                        [0] * len(CATEGORY_COLUMNS))  # fmt: skip
                for i, v in enumerate(fig):
                    crow[i] += v
            for stable, d in ((self.skus, day), (self.sku_months, month)):
                srow = stable.setdefault((tenant, d, sku, cat), [0] * len(SKU_COLUMNS))
                for i, v in enumerate(sku_fig):
                    srow[i] += v

    def after(self, cut: int) -> DailyBook:
        """The figures of the days after ``cut`` (and of the months that start after it):
        the records of days up to ``cut`` are archived, so only these can be recomputed."""
        out = DailyBook()
        out.sales = {k: v for k, v in self.sales.items() if k[2] > cut}
        out.categories = {k: v for k, v in self.categories.items() if k[2] > cut}
        out.category_months = {k: v for k, v in self.category_months.items() if k[2] > cut}
        out.skus = {k: v for k, v in self.skus.items() if k[1] > cut}
        out.sku_months = {k: v for k, v in self.sku_months.items() if k[1] > cut}
        return out

    def flush(self, tx: Tx) -> None:
        """Add the batch's figures to the tables (one upsert per row touched)."""
        _upsert(tx, "sales_daily", ("tenant", "store", "day", "member"), DAILY_COLUMNS,
                self.sales)  # fmt: skip
        _upsert(tx, "category_daily", ("tenant", "store", "day", "tier", "category"),
                CATEGORY_COLUMNS, self.categories)  # fmt: skip
        _upsert(tx, "sku_daily", ("tenant", "day", "sku", "category"), SKU_COLUMNS, self.skus)
        _upsert(tx, "category_monthly", ("tenant", "store", "month", "tier", "category"),
                CATEGORY_COLUMNS, self.category_months)  # fmt: skip
        _upsert(tx, "sku_monthly", ("tenant", "month", "sku", "category"), SKU_COLUMNS,
                self.sku_months)  # fmt: skip
        self.sales, self.categories, self.skus = {}, {}, {}
        self.category_months, self.sku_months = {}, {}


_KEY_TYPES = {"tenant": "text", "store": "text", "day": "int", "member": "int",
              "tier": "text", "category": "text", "sku": "text", "month": "int"}  # fmt: skip


def _upsert(tx: Tx, table: str, key: tuple[str, ...], cols: tuple[str, ...],
            rows: dict[Any, list[int]]) -> None:  # fmt: skip
    sets = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in cols)
    tx.insert_many(
        table,
        [(k, _KEY_TYPES[k]) for k in key] + [(c, "bigint") for c in cols],
        [(*k, *v) for k, v in sorted(rows.items())],
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}",
    )


def recompute(tx: Tx) -> DailyBook:
    """The daily tables as the records add them up: every sale, refund and void applied or
    admitted, each at the tier its member holds now (records do not carry the tier)."""
    from edge.protocol.record import parse  # noqa: PLC0415 - parsing only when recomputing

    book = DailyBook()
    for table in ("records", "admitted"):
        for raw, member, tier in tx.all(
            f"SELECT r.raw, r.member, m.tier FROM {table} r LEFT JOIN members m ON "
            "m.member = r.member WHERE r.type IN ('sale', 'refund', 'void')"
        ):
            p = parse(bytes(raw)).payload
            book.count(p, local_day(p), None if member is None else str(tier or "?"))
    return book


def archived_through(tx: Tx) -> int | None:
    """The last day with archived sales (``archived_months.last_day``); None: none."""
    row = tx.one("SELECT MAX(last_day) FROM archived_months")
    return None if row[0] is None else int(row[0])


def rebuild(tx: Tx) -> dict[str, int]:
    """Replace the daily tables by their recomputation (a ledger from before a table
    existed, or one ``ledger check`` found wrong); rows written per table.  Once months
    are archived only the days (and months) after the last archived day are rebuilt: the
    rows before it are all that is left of the archived sales."""
    book = recompute(tx)
    cut = archived_through(tx)
    if cut is not None:
        book = book.after(cut)
    counts = {"sales_daily": len(book.sales), "category_daily": len(book.categories),
              "sku_daily": len(book.skus), "category_monthly": len(book.category_months),
              "sku_monthly": len(book.sku_months)}  # fmt: skip
    for table in counts:
        key = "month" if table.endswith("monthly") else "day"
        where = "" if cut is None else f" WHERE {key} > {cut}"
        tx.execute(f"DELETE FROM {table}{where}")
    book.flush(tx)
    return counts
