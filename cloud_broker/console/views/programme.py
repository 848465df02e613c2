"""The programme: what is in force and on which devices, the versions, the open draft and
its life (start, edit, submit, approve, discard), rolling back, the rules keys."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cloud_broker.console import i18n
from cloud_broker.console.web import Ctx, int_field
from cloud_broker.programme import campaigns, diff, drafts, forms, keys


async def overview(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    rs = ctx.rs(fresh=True)
    db = ctx.db()
    return ctx.render(
        request,
        "programme.html",
        rs=rs,
        doc=rs.doc,
        kinds=forms.KINDS,
        draft=await ctx.call(drafts.open_draft, db),
        versions=await ctx.call(drafts.versions, db, rs.tenant),
        rollout=await ctx.call(drafts.rollout, db),
        keys=await ctx.call(keys.table, db),
        budgets=await ctx.call(campaigns.table, db, rs),
    )


async def budget(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "programme")
    form = await request.form()
    rials = forms.money(form.get("budget"), str(form.get("unit") or i18n.unit()), "budget",
                        "budget")  # fmt: skip
    await ctx.call(campaigns.set_budget, ctx.db(), ctx.rs(fresh=True), op,
                   str(form.get("rule") or ""), rials)  # fmt: skip
    return ctx.back("/programme", "Budget saved.", "بودجه ذخیره شد.")


def _draft_url(draft_id: int) -> str:
    return f"/programme/draft/{draft_id}"


async def start(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "programme")
    form = await request.form()
    back = form.get("rollback_of")
    rollback_of = int_field(back, "version", "نسخه") if back else None
    d = await ctx.call(drafts.start, ctx.db(), ctx.rs(fresh=True), op, rollback_of)
    return ctx.back(_draft_url(d.id), "A draft is open.", "پیش‌نویس باز شد.")


async def draft(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request)
    d = await ctx.call(
        drafts.get, ctx.db(), int_field(request.path_params["id"], "draft", "پیش‌نویس", False)
    )
    base = await ctx.call(drafts.version_doc, ctx.db(), d.tenant, d.base_version)
    unit = i18n.unit()
    return ctx.render(
        request,
        "programme_draft.html",
        d=d,
        kinds=forms.KINDS,
        changes=diff.diff(base, d.doc),
        policy=forms.section_view("policy", d.doc, unit),
        limits=forms.section_view("limits", d.doc, unit),
        policy_fields=forms.POLICY,
        limit_fields=forms.LIMITS,
        show_money=forms.show_money,
        show_percent=forms.show_percent,
        may_approve=op.can("publish") and op.username not in d.editors,
        problem=getattr(request.state, "problem", None),
    )


async def lifecycle(ctx: Ctx, request: Request) -> Response:
    """submit, reopen, discard or approve the draft."""
    action = request.path_params["action"]
    op = await ctx.operator(request, "publish" if action == "approve" else "programme")
    form = await request.form()
    did = int_field(request.path_params["id"], "draft", "پیش‌نویس", False)
    db = ctx.db()
    if action == "submit":
        await ctx.call(drafts.submit, db, op, did, str(form.get("note") or ""))
        return ctx.back(_draft_url(did), "Sent for approval.", "برای تأیید فرستاده شد.")
    if action == "reopen":
        await ctx.call(drafts.reopen, db, op, did)
        return ctx.back(_draft_url(did), "Back to editing.", "به ویرایش برگشت.")
    if action == "discard":
        await ctx.call(drafts.discard, db, op, did)
        return ctx.back("/programme", "The draft was discarded.", "پیش‌نویس کنار گذاشته شد.")
    if action == "approve":
        signer = await ctx.call(keys.signer, db, ctx.keydir)
        rs = await ctx.call(drafts.approve, db, op, did, signer)
        ctx.rs(fresh=True)
        return ctx.back(
            "/programme",
            f"Version {rs.version} is approved and on its way to the stores.",
            f"نسخه {rs.version} تأیید شد و به فروشگاه‌ها فرستاده می‌شود.",
        )
    return RedirectResponse(_draft_url(did), status_code=303)


async def versions_diff(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    rs = ctx.rs()
    a = int_field(request.path_params["a"], "version", "نسخه", False)
    b = int_field(request.path_params["b"], "version", "نسخه", False)
    doc_a = await ctx.call(drafts.version_doc, ctx.db(), rs.tenant, a)
    doc_b = await ctx.call(drafts.version_doc, ctx.db(), rs.tenant, b)
    return ctx.render(request, "programme_diff.html", a=a, b=b, changes=diff.diff(doc_a, doc_b))


async def keys_action(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "publish")
    action = request.path_params["action"]
    if ctx.keydir is None:
        await ctx.call(keys.signer, ctx.db(), None)  # says what is missing
    assert ctx.keydir is not None
    if action == "prepare":
        n = await ctx.call(keys.prepare_next, ctx.db(), ctx.keydir, op)
        return ctx.back(
            "/programme#keys",
            f"Key {n} is announced: the stores learn it now; switch when they all have it.",
            f"کلید {n} اعلام شد؛ وقتی همه فروشگاه‌ها آن را گرفتند به آن تغییر دهید.",
        )
    rs = await ctx.call(keys.switch, ctx.db(), ctx.keydir, ctx.rs(fresh=True), op)
    ctx.rs(fresh=True)
    return ctx.back(
        "/programme#keys",
        f"The new key signs from now on; version {rs.version} is signed with it.",
        f"از این پس کلید تازه امضا می‌کند؛ نسخه {rs.version} با آن امضا شد.",
    )
