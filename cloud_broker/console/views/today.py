"""Today: the operator's day at a glance (cloud_broker.club.today)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cloud_broker.club import today
from cloud_broker.console.web import Ctx


async def dashboard(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    figures = await ctx.call(today.figures, ctx.db(), ctx.rs(), ctx.totals)
    return ctx.render(request, "today.html", t=figures)
