"""Alerts and quarantine: what needs a look, and its resolution."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cloud_broker.club import incidents
from cloud_broker.console.web import Ctx, int_field


async def overview(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    everything = request.query_params.get("all") == "1"
    alerts = await ctx.call(incidents.alerts, ctx.db(), not everything)
    quarantine = await ctx.call(incidents.quarantine, ctx.db(), not everything)
    return ctx.render(
        request, "incidents.html", alerts=alerts, quarantine=quarantine, everything=everything
    )


async def acknowledge(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "alerts")
    f = await request.form()
    aid = int_field(request.path_params["id"], "alert", "هشدار", allow_empty=False)
    await ctx.call(incidents.acknowledge, ctx.db(), op, aid, str(f.get("note") or ""))
    return ctx.back("/incidents", "Alert acknowledged.", "هشدار تأیید شد.")


async def resolve(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "quarantine")
    f = await request.form()
    qid = int_field(request.path_params["id"], "entry", "مورد", allow_empty=False)
    how = str(f.get("how") or "")

    said = await ctx.call(
        incidents.resolve, ctx.db(), ctx.rs(), op, qid, how, str(f.get("reason") or "")
    )
    return ctx.back("/incidents", f"#{qid} {said}.", f"مورد {qid}: انجام شد.")
