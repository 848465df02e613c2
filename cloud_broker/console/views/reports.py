"""Reports: sales over time and by store, product group and SKU with their charts and
exports; the key figures; RFM segments and saved segments; a sale's invoice
(cloud_broker.reports)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cloud_broker.club import today as today_
from cloud_broker.club.errors import ClubError
from cloud_broker.console import i18n
from cloud_broker.console.web import Ctx, int_field
from cloud_broker.reports import export, kpis, periods, sales, scores, segments
from cloud_broker.reports import invoice as invoice_

VIEWS = ("time", "stores", "categories", "skus")
TITLES = {
    "time": "Sales over time",
    "stores": "Sales by store",
    "categories": "Sales by product group",
    "skus": "Best-selling SKUs",
}


def _json(data: Any) -> str:
    """JSON to sit inside a <script> element: no "<" (a store named </script> stays text)."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def _filters(q: Any) -> tuple[periods.Period, str, sales.Filters, dict[str, str]]:
    day = today_.local_day()
    period = periods.parse_period(q.get("from") or None, q.get("to") or None, day)
    grain = q.get("by") or (
        "day" if period.days <= 45 else "week" if period.days <= 200 else "month"
    )
    if grain not in periods.GRAINS:
        raise ClubError("bad_grain", "no such grouping", "گروه‌بندی نامعتبر است.")
    tier = q.get("tier")
    f = sales.Filters(
        store=q.get("store") or None,
        category=q.get("category") or None,
        tier=None if tier in (None, "", "*") else ("" if tier == "-" else tier),
    )
    shown = {
        "from": periods.show(period.first),
        "to": periods.show(period.last),
        "by": grain,
        "store": f.store or "",
        "category": f.category or "",
        "tier": tier or "",
    }
    return period, grain, f, shown


def _table(
    ctx: Ctx, view: str, period: periods.Period, grain: str, f: sales.Filters
) -> sales.Table:
    db = ctx.db()
    if view == "stores":
        return sales.by_store(db, period, f)
    if view == "categories":
        return sales.by_category(db, period, f)
    if view == "skus":
        return sales.by_sku(db, period, f)
    return sales.over_time(db, period, grain, f)


def _chart(table: sales.Table, view: str) -> dict[str, Any]:
    """What the page's chart draws (static/reports.js): labels and the series."""
    col = {c: i for i, c in enumerate(table.columns)}
    rows = table.rows if view == "time" else table.rows[:15]
    labels = [str(r[0]) for r in rows]
    if view == "time" and "member_revenue" in col:
        series = [
            {
                "label": i18n.gettext("Members' revenue"),
                "data": [r[col["member_revenue"]] for r in rows],
            },
            {
                "label": i18n.gettext("Anonymous revenue"),
                "data": [r[col["anonymous_revenue"]] for r in rows],
            },
        ]
        return {"type": "bar", "stacked": True, "labels": labels, "series": series}
    series = [{"label": i18n.gettext("Revenue"), "data": [r[col["revenue"]] for r in rows]}]
    return {
        "type": "bar",
        "stacked": False,
        "labels": labels,
        "series": series,
        "horizontal": view != "time",
    }


async def sales_page(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request, "reports")
    q = request.query_params
    view = q.get("view") or "time"
    if view not in VIEWS:
        view = "time"
    period, grain, f, shown = _filters(q)
    table = await ctx.call(_table, ctx, view, period, grain, f)
    fmt = q.get("format")
    if fmt in ("csv", "xlsx"):
        name = f"{view}-{shown['from']}-{shown['to']}".replace("/", "")
        if fmt == "csv":
            return Response(
                export.to_csv(table, i18n.gettext),
                media_type=export.CSV_TYPE,
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        body = await ctx.call(export.to_xlsx, table, view, i18n.gettext, i18n.lang() == "fa")
        return Response(
            body,
            media_type=export.XLSX_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    db = ctx.db()
    return ctx.render(
        request,
        "reports.html",
        view=view,
        views=VIEWS,
        titles=TITLES,
        table=table,
        shown=shown,
        grains=periods.GRAINS,
        tiers=ctx.rs().tiers,
        stores=await ctx.call(sales.stores, db),
        categories=await ctx.call(sales.categories, db, period),
        chart=_json(_chart(table, view)),
        query=request.url.query,
    )


async def kpis_page(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request, "reports")
    period, _, f, shown = _filters(request.query_params)
    day = today_.local_day()
    figures = await ctx.call(
        kpis.figures, ctx.db(), ctx.rs(), period, day, f.store, ctx.totals, ctx.member_figures
    )
    results = await ctx.call(
        kpis.campaign_results, ctx.db(), periods.Period(period.first - 60, period.last)
    )
    chart = {
        "type": "doughnut",
        "labels": [ctx.tier_name(t["tier"]) for t in figures["tiers"]],
        "series": [
            {"label": i18n.gettext("Members"), "data": [t["members"] for t in figures["tiers"]]}
        ],
    }
    return ctx.render(
        request,
        "reports_kpis.html",
        k=figures,
        shown=shown,
        results=results,
        stores=await ctx.call(sales.stores, ctx.db()),
        chart=_json(chart),
    )


async def segments_page(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request, "reports")
    db = ctx.db()
    grid = await ctx.call(scores.grid, db)
    saved = await ctx.call(segments.listing, db)
    for s in saved:
        s["members"] = await ctx.call(segments.count, db, s["definition"])
    return ctx.render(
        request,
        "reports_segments.html",
        grid=grid,
        saved=saved,
        names=scores.SEGMENTS[:-1],
        tiers=ctx.rs().tiers,
    )


def _definition(form: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "rfm": [s for s in form.getlist("rfm") if s],
        "tiers": [t for t in form.getlist("tiers") if t],
    }
    churn = int_field(form.get("churn_pct"), "churn risk", "ریسک ریزش")
    if churn:
        d["churn_at_least"] = churn * 100
    for key, en, fa in (
        ("value_at_least", "expected value", "ارزش پیش‌بینی‌شده"),
        ("min_points", "points at least", "حداقل امتیاز"),
    ):
        v = int_field(form.get(key), en, fa)
        if v:
            d[key] = v * (10 if key == "value_at_least" and i18n.unit() == "toman" else 1)
    return d


async def save_segment(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "messages")
    form = await request.form()
    sid = await ctx.call(
        segments.save,
        ctx.db(),
        op,
        str(form.get("name") or ""),
        _definition(form),
        [t.id for t in ctx.rs().tiers],
    )
    return ctx.back(f"/reports/segments/{sid}", "Segment saved.", "بخش ذخیره شد.")


async def segment_page(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request, "reports")
    sid = int_field(request.path_params["id"], "segment", "بخش", allow_empty=False)
    db = ctx.db()
    seg = await ctx.call(segments.get, db, sid)
    after = request.query_params.get("after") or ""
    rows = await ctx.call(segments.members, db, seg["definition"], after, 50)
    count = await ctx.call(segments.count, db, seg["definition"])
    return ctx.render(request, "reports_segment.html", seg=seg, rows=rows, count=count)


async def delete_segment(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "messages")
    sid = int_field(request.path_params["id"], "segment", "بخش", allow_empty=False)
    await ctx.call(segments.delete, ctx.db(), op, sid)
    return ctx.back("/reports/segments", "Segment deleted.", "بخش حذف شد.")


async def invoice_page(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    seq = int_field(request.path_params["seq"], "number", "شماره", allow_empty=False)
    inv = await ctx.call(invoice_.invoice, ctx.db(), request.path_params["device"], seq)
    size = "80mm" if request.query_params.get("size") == "80mm" else "a4"
    return ctx.render(request, "invoice.html", inv=inv, size=size)
