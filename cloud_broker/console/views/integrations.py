"""Integrations (admin): the public API's keys (made here, shown once; revoked), the webhook
endpoints and their deliveries, each replayable (cloud_broker.api)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cloud_broker.api import keys, webhooks
from cloud_broker.console.web import Ctx, int_field


async def overview(ctx: Ctx, request: Request, made: str | None = None) -> Response:
    await ctx.operator(request, "operators")
    db = ctx.db()
    state = request.query_params.get("state") or None
    return ctx.render(
        request, "integrations.html", keys=await ctx.call(keys.listing, db),
        scopes=keys.SCOPES, hooks=await ctx.call(webhooks.listing, db),
        deliveries=await ctx.call(webhooks.deliveries, db, state), state=state, made=made,
    )  # fmt: skip


async def create_key(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "operators")
    f = await request.form()
    scopes = [str(s) for s in f.getlist("scopes")]
    rate = int_field(f.get("rate") or "600", "rate", "سرعت", allow_empty=False)
    _, key = await ctx.call(keys.create, ctx.db(), op, str(f.get("name") or ""), scopes, rate)
    return await overview(ctx, request, made=key)  # shown this once, never again


async def revoke_key(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "operators")
    kid = int_field(request.path_params["id"], "key", "کلید", allow_empty=False)
    await ctx.call(keys.revoke, ctx.db(), op, kid)
    return ctx.back("/integrations", "Key revoked.", "کلید باطل شد.")


async def replay(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "operators")
    did = int_field(request.path_params["id"], "delivery", "ارسال", allow_empty=False)
    await ctx.call(webhooks.replay, ctx.db(), op, did)
    return ctx.back("/integrations#deliveries", "Queued again.", "دوباره در صف ارسال است.")
