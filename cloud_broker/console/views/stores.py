"""Stores and devices: the registry, enrolment tokens, revocation, key history."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cloud_broker.club import stores
from cloud_broker.console.web import Ctx, int_field


def _tenant(ctx: Ctx) -> str:
    return ctx.rs().tenant


async def overview(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    data = await ctx.call(stores.overview, ctx.db())
    device = request.query_params.get("keys")
    keys = await ctx.call(stores.key_history, ctx.db(), device) if device else None
    return ctx.render(request, "stores.html", s=data, keys_of=device, keys=keys)


async def save_store(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "stores")
    f = await request.form()
    await ctx.call(
        stores.save_store,
        ctx.db(),
        op,
        str(f.get("store") or "").strip(),
        str(f.get("name_fa") or "").strip(),
        str(f.get("name_en") or "").strip(),
        str(f.get("city") or "").strip(),
        _tenant(ctx),
    )
    return ctx.back("/stores", "Store saved.", "فروشگاه ذخیره شد.")


async def token(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "stores")
    f = await request.form()
    store = str(f.get("store") or "").strip()
    tok, expires = await ctx.call(
        stores.issue_token,
        ctx.db(),
        op,
        _tenant(ctx),
        store,
        str(f.get("device") or "").strip() or None,
        str(f.get("ttl") or "24h"),
    )
    # shown once, on this page only: head office keeps its hash
    data = await ctx.call(stores.overview, ctx.db())
    return ctx.render(
        request, "stores.html", s=data, keys_of=None, keys=None, new_token=tok, token_store=store,
        token_expires=expires,
    )  # fmt: skip


async def revoke(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "stores")
    f = await request.form()
    after = str(f.get("after_seq") or "").strip()
    last = await ctx.call(
        stores.revoke,
        ctx.db(),
        op,
        request.path_params["device"],
        str(f.get("reason") or ""),
        int_field(after, "after seq", "پس از شماره") if after else None,
    )
    return ctx.back(
        "/stores",
        f"Revoked: records after seq {last} are refused.",
        f"باطل شد: رکوردهای پس از شماره {last} پذیرفته نمی‌شوند.",
    )
