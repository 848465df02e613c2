"""Every report and KPI against a slow, obvious recomputation from the raw records of a
synthetic chain, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from cloud_broker.club import today as today_
from cloud_broker.club.errors import ClubError
from cloud_broker.ledger import daily
from cloud_broker.ledger.books import expire_points
from cloud_broker.reports import invoice, kpis, periods, sales
from cloud_broker.reports.periods import Period
from edge.core import record as R
from tests.helpers.chain import Chain


def _day(p: dict[int, Any]) -> int:
    return daily.local_day(p)


def _slow_sales(ch: Chain, period: Period) -> dict[str, dict[str, int]]:
    """Per day: sales, revenue, members' sales and revenue, points, refunds, from records."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in ch.records:
        p, d = r.payload, _day(r.payload)
        if not period.first <= d <= period.last:
            continue
        row = out[str(d)]
        if r.type == "sale":
            row["sales"] += 1
            row["revenue"] += p[R.K_AMOUNTS][R.A_PAID]
            row["gross"] += p[R.K_AMOUNTS][R.A_GROSS]
            row["points"] += p[R.K_POINTS][R.P_EARNED]
            if p.get(R.K_MEMBER):
                row["m_sales"] += 1
                row["m_revenue"] += p[R.K_AMOUNTS][R.A_PAID]
        else:
            row["refunds"] += 1
            row["refunded"] += p[R.K_AMOUNTS][R.A_PAID]
            row["points"] -= p[R.K_POINTS][R.P_EARNED]
    return out


@pytest.mark.parametrize("grain", periods.GRAINS)
def test_sales_over_time_equal_the_records(chain: Chain, grain: str) -> None:
    period = Period(chain.first, chain.last)
    t = sales.over_time(chain.ho.db, period, grain)
    slow = _slow_sales(chain, period)
    want: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d, row in slow.items():
        b = want[periods.start(int(d), grain)]
        for k, v in row.items():
            b[k] += v
    starts = periods.buckets(period, grain)
    assert [r[0] for r in t.rows] == [periods.label(s, grain) for s in starts]
    col = {c: i for i, c in enumerate(t.columns)}
    for s, r in zip(starts, t.rows, strict=True):
        w = want.get(s, {})
        assert r[col["sales"]] == w.get("sales", 0)
        assert r[col["revenue"]] == w.get("revenue", 0)
        assert r[col["gross"]] == w.get("gross", 0)
        assert r[col["member_sales"]] == w.get("m_sales", 0)
        assert r[col["member_revenue"]] == w.get("m_revenue", 0)
        assert r[col["anonymous_revenue"]] == w.get("revenue", 0) - w.get("m_revenue", 0)
        assert r[col["points_earned"]] == w.get("points", 0)
        assert r[col["refunded"]] == w.get("refunded", 0)
    assert t.totals is not None
    assert t.totals[col["sales"]] == sum(w.get("sales", 0) for w in slow.values()) > 500


def _slow_lines(ch: Chain, period: Period, key: Any) -> dict[Any, dict[str, int]]:
    out: dict[Any, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in ch.records:
        p = r.payload
        if not period.first <= _day(p) <= period.last:
            continue
        for ln in p[R.K_LINES]:
            row = out[key(p, ln)]
            if r.type == "sale":
                row["qty"] += ln[R.L_QTY]
                row["revenue"] += ln[R.L_PAID]
                row["gross"] += ln[R.L_QTY] * ln[R.L_UNIT_PRICE]
            else:
                row["returned_qty"] += ln[R.L_QTY]
                row["refunded"] += ln[R.L_PAID]
    return out


def test_by_store_category_and_sku_equal_the_records(chain: Chain) -> None:
    db = chain.ho.db
    period = Period(chain.last - 44, chain.last)  # a month and a half, not the whole chain
    by_cat = sales.by_category(db, period)
    slow = _slow_lines(chain, period, lambda p, ln: ln[R.L_CATEGORY])
    col = {c: i for i, c in enumerate(by_cat.columns)}
    got = {r[0]: r for r in by_cat.rows}
    assert set(got) == set(slow)
    for cat, w in slow.items():
        for k in ("qty", "revenue", "gross", "returned_qty", "refunded"):
            assert got[cat][col[k]] == w[k], (cat, k)
    assert sum(r[col["share"]] for r in by_cat.rows) in range(9_990, 10_001)
    # best sellers first
    revenues = [r[col["revenue"]] for r in by_cat.rows]
    assert revenues == sorted(revenues, reverse=True)

    by_sku = sales.by_sku(db, period)
    slow_sku = _slow_lines(chain, period, lambda p, ln: ln[R.L_SKU])
    col = {c: i for i, c in enumerate(by_sku.columns)}
    assert {r[0]: r[col["qty"]] for r in by_sku.rows} == {k: v["qty"] for k, v in slow_sku.items()}

    by_store = sales.by_store(db, period)
    slow_store = _slow_sales_by_store(chain, period)
    col = {c: i for i, c in enumerate(by_store.columns)}
    assert {r[0]: (r[col["sales"]], r[col["revenue"]]) for r in by_store.rows} == slow_store

    # filters: one store's dairy, and the tiers adding up to the members' lines
    f = sales.Filters(store="store-a", category="dairy")
    one = sales.over_time(db, period, "month", f)
    slow_f = _slow_lines(chain, period, lambda p, ln: (p[R.K_STORE], ln[R.L_CATEGORY]))
    assert one.totals is not None
    assert one.totals[one.columns.index("revenue")] == slow_f[("store-a", "dairy")]["revenue"]
    anon = sales.over_time(db, period, "year", sales.Filters(tier=sales.ANONYMOUS))
    slow_anon = _slow_lines(chain, period, lambda p, ln: p.get(R.K_MEMBER) is None)
    assert anon.totals is not None
    assert anon.totals[anon.columns.index("revenue")] == slow_anon[True]["revenue"]
    tiers = {str(r[0]) for r in chain.ho.q("SELECT DISTINCT tier FROM members")}
    total = 0
    for tier in tiers:
        t = sales.over_time(db, period, "year", sales.Filters(tier=tier))
        assert t.totals is not None
        total += t.totals[t.columns.index("revenue")]
    assert total == slow_anon[False]["revenue"]


def _slow_sales_by_store(ch: Chain, period: Period) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in ch.records:
        p = r.payload
        if r.type == "sale" and period.first <= _day(p) <= period.last:
            out[p[R.K_STORE]][0] += 1
            out[p[R.K_STORE]][1] += p[R.K_AMOUNTS][R.A_PAID]
    return {k: (v[0], v[1]) for k, v in out.items()}


def _replayed_tiers(ch: Chain) -> tuple[int, int, set[str]]:
    """Upgrades and downgrades as the records imply them: after each batch, each member of
    the batch at the tier of their spend so far (every sale is inside the 365-day window)."""
    rs = ch.ho.rs
    rank = {t.id: i for i, t in enumerate(rs.tiers)}
    spend: dict[str, int] = defaultdict(int)
    tier: dict[str, str] = {}
    ups = downs = 0
    climbers: set[str] = set()
    for batch in ch.batches:
        touched = set()
        for r in batch:
            m = ch.ho.q("SELECT member FROM records WHERE device = ? AND seq = ?",
                        (r.device, r.seq))[0][0]  # fmt: skip
            if m is None:
                continue
            a = r.payload[R.K_AMOUNTS]
            spend[m] += a[R.A_PAID] if r.type == "sale" else -(a[R.A_PAID] + a.get(4, 0))
            touched.add(m)
        for m in touched:
            new = rs.tier_for_spend(spend[m]).id
            old = tier.get(m)
            if old is not None and old != new:
                ups += rank[new] > rank[old]
                downs += rank[new] < rank[old]
                if rank[new] > rank[old]:
                    climbers.add(m)
            tier[m] = new
    return ups, downs, climbers


def test_kpis_equal_a_slow_recomputation(chain: Chain) -> None:
    db, ho = chain.ho.db, chain.ho
    today = chain.last
    period = Period(chain.first, chain.last)
    k = kpis.figures(db, ho.rs, period, today)
    slow = _slow_sales(chain, period)
    n_sales = sum(r.get("sales", 0) for r in slow.values())
    m_sales = sum(r.get("m_sales", 0) for r in slow.values())
    rev = sum(r.get("revenue", 0) for r in slow.values())
    m_rev = sum(r.get("m_revenue", 0) for r in slow.values())
    assert k["participation_sales_bp"] == m_sales * 10_000 // n_sales
    assert k["participation_revenue_bp"] == m_rev * 10_000 // rev
    assert k["aov_members"] == m_rev // m_sales
    assert k["aov_anonymous"] == (rev - m_rev) // (n_sales - m_sales)
    # members' sale days, straight from the records
    days: dict[str, list[int]] = defaultdict(list)
    for r in chain.records:
        if r.type == "sale" and r.payload.get(R.K_MEMBER):
            m = ho.q("SELECT member FROM records WHERE device = ? AND seq = ?",
                     (r.device, r.seq))[0][0]  # fmt: skip
            days[m].append(_day(r.payload))
    for n in (30, 90, 365):
        assert k[f"active_{n}"] == sum(1 for ds in days.values() if max(ds) > today - n), n
    assert k["active_30"] < k["active_90"]  # the drifters stopped six weeks ago
    assert k["repeat_rate_bp"] == sum(len(d) >= 2 for d in days.values()) * 10_000 // len(days)
    year_sales = sum(len(d) for d in days.values())
    assert k["frequency_x100"] == year_sales * 100 // k["active_365"]
    tiers: dict[str, int] = defaultdict(int)
    for (t,) in ho.q("SELECT tier FROM members WHERE merged_into IS NULL"):
        tiers[t] += 1
    assert {x["tier"]: x["members"] for x in k["tiers"]} == tiers
    ups, downs, climbers = _replayed_tiers(chain)
    assert (k["upgrades"], k["downgrades"]) == (ups, downs)
    assert k["upgrade_rate_bp"] == len(climbers) * 10_000 // k["members"] < 10_000
    assert ups > 10
    points = sum(r.get("points", 0) for r in slow.values())
    assert k["points_issued"] == points
    held = sum(int(x[0]) for x in ho.q("SELECT points FROM members"))
    assert k["liability"]["points"] == held
    assert k["liability"]["total_rials"] == held * ho.rs.policy["point_value_rials"]
    assert k["new_members"] == len(days) == k["members"]  # all joined through this ledger now
    assert k["points_expired"] == k["breakage_bp"] == 0

    # a year and more later every lot has expired: breakage is all that was left
    later = today + 400
    db.run(lambda tx: expire_points(tx, ho.rs, later, today_.day_start_ms(later)))
    k2 = kpis.figures(db, ho.rs, Period(later, later), later)
    assert k2["points_expired"] == held > 0
    assert k2["active_365"] == 0
    assert kpis.figures(db, ho.rs, period, today)["points_expired"] == 0


def test_ledger_check_finds_a_daily_table_that_drifted_and_rebuild_mends_it(
    chain: Chain,
) -> None:
    ho = chain.ho
    assert ho.check() == []
    # a row the chain surely has (which store sold dairy on which day depends on the seed)
    store, day = ho.q("SELECT store, MAX(day) FROM category_daily WHERE category = 'dairy' "
                      "GROUP BY store ORDER BY store LIMIT 1")[0]  # fmt: skip
    changed = ho.db.run(lambda tx: tx.execute(
        "UPDATE category_daily SET revenue = revenue + 1 WHERE category = 'dairy' AND day = ? "
        "AND store = ?", (day, store)).rowcount)  # fmt: skip
    assert changed >= 1
    ho.db.run(lambda tx: tx.execute("DELETE FROM sku_daily WHERE sku = 'MILK-1L'"))
    names = {f.invariant for f in ho.check()}
    assert names == {"daily product groups = records", "daily SKUs = records"}
    counts = ho.db.run(daily.rebuild)
    assert counts["sku_daily"] > 100
    assert ho.check() == []


def test_invoice_is_the_record(chain: Chain) -> None:
    sale = next(r for r in chain.records if r.type == "sale" and len(r.payload[R.K_LINES]) > 2)
    inv = invoice.invoice(chain.ho.db, sale.device, sale.seq)
    a = sale.payload[R.K_AMOUNTS]
    assert (inv["gross"], inv["discount"], inv["paid"]) == (
        a[R.A_GROSS], a[R.A_DISCOUNT], a[R.A_PAID])  # fmt: skip
    assert [ln["sku"] for ln in inv["lines"]] == [ln[R.L_SKU] for ln in sale.payload[R.K_LINES]]
    assert sum(ln["paid"] for ln in inv["lines"]) == a[R.A_PAID]
    assert inv["number"] == f"{sale.device}-{sale.seq}"
    ref = next(r for r in chain.records if r.type == "refund")
    assert invoice.invoice(chain.ho.db, ref.device, ref.seq)["orig"]["seq"] > 0
    with pytest.raises(ClubError) as e:
        invoice.invoice(chain.ho.db, sale.device, 10**9)
    assert e.value.code == "no_sale" and "پیدا نشد" in e.value.fa


def test_reports_cli_prints_csv(chain: Chain, capsys: pytest.CaptureFixture[str]) -> None:
    from cloud_broker import cli

    url = chain.ho.db.url
    first = periods.show(chain.last - 6).replace("/", "-")
    assert cli.main(["--ledger", url, "reports", "stores", "--from", first]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Store,Sales,Gross")
    assert len(out) == 1 + 3 + 1  # three stores and the total
    assert cli.main(["--ledger", url, "reports", "kpis"]) == 0
    assert "participation_sales_bp" in capsys.readouterr().out
    assert cli.main(["--ledger", url, "ledger", "rebuild-daily"]) == 0
    assert "category_daily" in capsys.readouterr().out
