"""Tax invoices (admin, finance): the invoices by store, day and state, those that need a
person (blocked, failed, rejected) with the system's error and a resend, the product ids
and VAT rates, the products sold without one, each store's taxpayer
(cloud_broker.invoicing)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cloud_broker.club import today as today_
from cloud_broker.console.web import Ctx, int_field
from cloud_broker.invoicing import mapping, queue


async def overview(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request, "tax")
    db = ctx.db()
    day = today_.local_day()
    return ctx.render(
        request, "tax.html", days=await ctx.call(queue.counts, db, day - 30, day),
        problems=await ctx.call(queue.problems, db), stores=await ctx.call(mapping.stores, db),
        products=await ctx.call(mapping.listing, db),
        unmapped=await ctx.call(mapping.unmapped, db, day - 90), states=queue.STATES,
    )  # fmt: skip


async def save_product(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "tax")
    f = await request.form()
    vat = str(f.get("vat") or "").strip()
    await ctx.call(
        mapping.set_product, ctx.db(), op, str(f.get("kind") or ""), str(f.get("code") or ""),
        str(f.get("sstid") or ""), str(f.get("description") or ""),
        int_field(vat, "VAT", "نرخ مالیات") * 100 if vat else None,
    )  # fmt: skip
    return ctx.back("/tax#products", "Saved: blocked invoices of it can be sent again.",
                    "ذخیره شد؛ صورتحساب‌های معطل آن را دوباره بفرستید.")  # fmt: skip


async def resend(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "tax")
    iid = int_field(request.path_params["id"], "invoice", "صورتحساب", allow_empty=False)
    await ctx.call(queue.resend, ctx.db(), op, iid)
    return ctx.back("/tax#problems", "Queued again.", "دوباره در صف ارسال است.")
