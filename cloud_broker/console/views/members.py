"""Members: search, a member's whole story, and the changes a support agent makes."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cloud_broker.club import changes, members
from cloud_broker.club.changes import Done
from cloud_broker.club.errors import ClubError
from cloud_broker.console.web import Ctx, int_field
from cloud_broker.messaging import outbox


def _url(member: str) -> str:
    return "/members/" + quote(member, safe="")


async def search(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    q = request.query_params.get("q", "").strip()
    partial = bool(request.headers.get("hx-request"))
    template = "members_results.html" if partial else "members.html"
    try:
        found = await ctx.call(members.search, ctx.db(), q) if q else []
    except ClubError as e:  # said where the results go, not as a page of its own
        return ctx.render(request, template, 400 if not partial else 200, q=q, found=[], error=e)
    if len(found) == 1 and request.query_params.get("go") == "1":
        return RedirectResponse(_url(found[0].member), status_code=303)
    return ctx.render(request, template, q=q, found=found, url=_url)


async def member(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    key = request.path_params["member"]
    before = request.query_params.get("before")
    page = await ctx.call(
        members.page,
        ctx.db(),
        ctx.rs(),
        key,
        int(before) if before and before.isdigit() else None,
    )
    sms = await ctx.call(outbox.log, ctx.db(), key, None, 20)
    return ctx.render(request, "member.html", m=page, url=_url, sms=sms)


def _said(done: Done, en: str, fa: str) -> tuple[str, str]:
    if done.repeated:
        return (
            "This was done already (the form was sent twice): nothing more was changed.",
            "این کار پیش‌تر انجام شده بود (فرم دو بار فرستاده شد)؛ تغییر دیگری داده نشد.",
        )
    return en, fa


async def adjust(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "adjust")
    form = await request.form()
    key = request.path_params["member"]
    points = int_field(form.get("points"), "points", "امتیاز")
    wallet = int_field(form.get("wallet"), "wallet Rials", "کیف پول (ریال)")
    if form.get("unit") == "toman":
        wallet *= 10
    done = await ctx.call(
        changes.adjust,
        ctx.db(),
        ctx.rs(),
        op,
        key,
        points,
        wallet,
        str(form.get("reason") or ""),
        str(form.get("idem") or "") or None,
    )
    en, fa = _said(
        done,
        "Adjusted. The member's stores get it with their next snapshot.",
        "تغییر ثبت شد و با به‌روزرسانی بعدی به فروشگاه‌ها می‌رسد.",
    )
    return ctx.back(_url(key), en, fa)


async def link_card(ctx: Ctx, request: Request) -> Response:
    """From a phone member's page: a card to link; from a card member's page: the phone
    to merge it into."""
    op = await ctx.operator(request, "link_card")
    form = await request.form()
    key = request.path_params["member"]
    if key.startswith("card:"):
        card, phone = key, str(form.get("phone") or "")
    else:
        card, phone = str(form.get("card") or ""), key
    done = await ctx.call(
        changes.link_card,
        ctx.db(),
        ctx.rs(),
        op,
        card,
        phone,
        str(form.get("reason") or ""),
        str(form.get("idem") or "") or None,
    )
    en, fa = _said(
        done,
        "Linked: one member now, balances and history together.",
        "اتصال انجام شد: اکنون یک عضو، با موجودی و سوابق یکجا.",
    )
    return ctx.back(_url(done.member), en, fa)


async def referrer(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "member_edit")
    form = await request.form()
    key = request.path_params["member"]
    done = await ctx.call(
        changes.set_referrer, ctx.db(), op, key, str(form.get("code") or ""),
        str(form.get("idem") or "") or None,
    )  # fmt: skip
    en, fa = _said(done, "Saved: both get the referral points with the first purchase.",
                   "ذخیره شد؛ با نخستین خرید هر دو امتیاز معرفی می‌گیرند.")  # fmt: skip
    return ctx.back(_url(key), en, fa)


async def edit(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "member_edit")
    form = await request.form()
    key = request.path_params["member"]
    done = await ctx.call(
        changes.edit_profile,
        ctx.db(),
        op,
        key,
        str(form.get("name") or ""),
        str(form.get("birthday") or ""),
        str(form.get("anniversary") or ""),
        form.get("sms_opt_out") == "on",
        str(form.get("idem") or "") or None,
    )
    en, fa = _said(done, "Saved.", "ذخیره شد.")
    return ctx.back(_url(key), en, fa)
