"""The audit log and the operators."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cloud_broker.club import operators
from cloud_broker.console.web import Ctx
from cloud_broker.ledger import audit


async def audit_log(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request, "audit")
    before = request.query_params.get("before")
    target = request.query_params.get("target") or None
    entries = await ctx.call(
        audit.entries, ctx.db(), target, int(before) if before and before.isdigit() else None
    )
    return ctx.render(request, "audit.html", entries=entries, target=target)


async def operator_list(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request, "operators")
    ops = await ctx.call(operators.list_all, ctx.db())
    return ctx.render(
        request, "operators.html", ops=ops, roles=operators.ROLES, perms=operators.PERMISSIONS
    )


async def operator_add(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "operators")
    f = await request.form()
    await ctx.call(
        operators.add,
        ctx.db(),
        str(f.get("username") or "").strip(),
        str(f.get("name") or "").strip(),
        str(f.get("role") or ""),
        str(f.get("password") or ""),
        op.username,
    )
    return ctx.back("/operators", "Operator added.", "کاربر افزوده شد.")


async def operator_disable(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "operators")
    f = await request.form()
    await ctx.call(
        operators.set_disabled,
        ctx.db(),
        op,
        request.path_params["username"],
        f.get("disable") == "1",
    )
    return ctx.back("/operators", "Saved.", "ذخیره شد.")
