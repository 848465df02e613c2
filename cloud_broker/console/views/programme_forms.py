"""Editing a draft: one rule's form, and the tiers, policy, limits and groups.

A form the validator refuses comes back as it was typed, with the problem beside its field
(cloud_broker.programme.validate), status 400; nothing is kept."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from cloud_broker.club.errors import ClubError, ProgrammeError
from cloud_broker.console import i18n
from cloud_broker.console.views.programme import draft as draft_page
from cloud_broker.console.web import Ctx, int_field
from cloud_broker.programme import drafts, forms


def _did(request: Request) -> int:
    return int_field(request.path_params["id"], "draft", "پیش‌نویس", False)


def _render_rule(ctx: Ctx, request: Request, d: drafts.Draft, values: dict[str, Any],
                 replaces: str | None, problem: Any = None) -> Response:  # fmt: skip
    kind = values["kind"]
    if kind not in forms.KINDS:
        raise ClubError("bad_kind", "no such kind of rule", "چنین نوع قانونی نیست.")
    return ctx.render(
        request, "programme_rule.html", 400 if problem else 200,
        d=d, v=values, kind=forms.KINDS[kind], replaces=replaces, problem=problem,
        weekdays=forms.WEEKDAYS, tiers=d.doc.get("tiers", {}).get("levels", []),
        groups=sorted((d.doc.get("groups") or {}).keys()),
    )  # fmt: skip


async def rule_form(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request, "programme")
    d = await ctx.call(drafts.get, ctx.db(), _did(request))
    rid = request.path_params.get("rule")
    if rid is None:
        kind = request.query_params.get("kind", "")
        n = 1 + sum(1 for r in d.doc.get("rules", []) if r.get("kind") == kind)
        values = forms.rule_view({"id": f"{kind.replace('_', '-')}-{n}", "kind": kind},
                                 i18n.unit())  # fmt: skip
        return _render_rule(ctx, request, d, values, None)
    rule = d.rule(rid)
    if rule is None:
        raise ClubError("no_rule", "no such rule in the draft", "چنین قانونی نیست.")
    return _render_rule(ctx, request, d, forms.rule_view(rule, i18n.unit()), rid)


def _typed(form: FormData) -> dict[str, Any]:
    """The form as typed, to show it again."""
    out: dict[str, Any] = {k: form.get(k) for k in form}
    for multi in ("groups", "weekdays", "tiers"):
        out[multi] = form.getlist(multi)
    out["members_only"] = bool(form.get("members_only"))
    return out


async def save_rule(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "programme")
    form = await request.form()
    did = _did(request)
    kind = str(form.get("kind") or "")
    replaces = str(form.get("replaces") or "") or None
    try:
        rule = forms.rule_from_form(form, kind, str(form.get("unit") or i18n.unit()))
        await ctx.call(drafts.set_rule, ctx.db(), op, did, rule, replaces)
    except ProgrammeError as e:
        d = await ctx.call(drafts.get, ctx.db(), did)
        return _render_rule(ctx, request, d, _typed(form), replaces, e.problem)
    return ctx.back(f"/programme/draft/{did}", "Rule saved in the draft.",
                    "قانون در پیش‌نویس ذخیره شد.")  # fmt: skip


async def delete_rule(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "programme")
    did = _did(request)
    await ctx.call(drafts.delete_rule, ctx.db(), op, did, request.path_params["rule"])
    return ctx.back(f"/programme/draft/{did}", "Rule removed from the draft.",
                    "قانون از پیش‌نویس حذف شد.")  # fmt: skip


async def save_section(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "programme")
    form = await request.form()
    did = _did(request)
    section = request.path_params["section"]
    try:
        value = forms.section_from_form(section, form, str(form.get("unit") or i18n.unit()))
        await ctx.call(drafts.set_section, ctx.db(), op, did, section, value)
    except ProgrammeError as e:
        request.state.problem = e.problem
        resp = await draft_page(ctx, request)
        resp.status_code = 400
        return resp
    return ctx.back(f"/programme/draft/{did}#{section}", "Saved in the draft.",
                    "در پیش‌نویس ذخیره شد.")  # fmt: skip
