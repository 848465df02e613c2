"""The preview of a draft: sample baskets and a typed one, for a chosen member, under the
programme in force and under the draft side by side; and the 30-day estimate.  It changes
nothing (saving a sample basket aside)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from cloud_broker.club import changes
from cloud_broker.club.errors import ClubError
from cloud_broker.console import i18n
from cloud_broker.console.web import Ctx, int_field
from cloud_broker.programme import drafts, forms, preview
from cloud_broker.programme.validate import Problem, check


def _basket(form: FormData, unit: str) -> dict[str, Any] | None:
    """The typed basket (rows of SKU, category, quantity, unit price), or None if empty."""
    lines = []
    rows = zip(form.getlist("sku"), form.getlist("category"), form.getlist("qty"),
               form.getlist("price"), strict=False)  # fmt: skip
    for sku, cat, qty, price in rows:
        if not str(sku).strip():
            continue
        where = f"basket.{sku}"
        lines.append({
            "sku": str(sku).strip(), "category": str(cat).strip() or "general",
            "qty": forms.whole(qty, where, "qty") or 1,
            "unit_price": forms.money(price, unit, where, "unit_price") or 0,
        })  # fmt: skip
    if not lines:
        return None
    basket: dict[str, Any] = {"lines": lines}
    store = str(form.get("store") or "").strip()
    if store:
        basket["store"] = store
    codes = forms.value_of(forms.Field("coupons", "codes", "", ""), form, unit, "basket")
    if codes:
        basket["coupons"] = codes
    redeem = str(form.get("redeem_points") or "").strip()
    if redeem:
        basket["redeem_points"] = (
            "max" if redeem == "max" else forms.whole(redeem, "basket", "redeem_points")
        )
    return basket


async def page(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    did = int_field(request.path_params["id"], "draft", "پیش‌نویس", False)
    db = ctx.db()
    d = await ctx.call(drafts.get, db, did)
    saved = await ctx.call(preview.samples, db)
    data: dict[str, Any] = {"d": d, "samples": saved, "results": [], "estimate": None,
                            "member": "", "chosen": []}  # fmt: skip
    if request.method == "POST":
        form = await request.form()
        unit = str(form.get("unit") or i18n.unit())
        draft_rs = check(d.doc)
        if isinstance(draft_rs, Problem):
            raise ClubError("invalid", draft_rs.en, draft_rs.fa)
        current = ctx.rs(fresh=True)
        member_text = str(form.get("member") or "").strip()
        member = None
        if member_text:
            member = (member_text if member_text.startswith("card:")
                      else changes.phone_member(member_text))  # fmt: skip
        chosen = [int(str(x)) for x in form.getlist("sample") if str(x).isdigit()]
        baskets = [(s["name"], s["basket"]) for s in saved if s["id"] in chosen]
        typed = _basket(form, unit)
        if typed is not None:
            baskets.append((str(form.get("sample_name") or "") or "—", typed))
            if form.get("save_sample") and form.get("sample_name"):
                op = await ctx.operator(request, "programme")
                await ctx.call(preview.save_sample, db, op, str(form.get("sample_name")), typed)
        for name, basket in baskets:
            now, then = await ctx.call(preview.quote_side_by_side, db, current, draft_rs,
                                       basket, member)  # fmt: skip
            data["results"].append({"name": name, "basket": basket, "current": now,
                                    "draft": then})  # fmt: skip
        if form.get("estimate"):
            data["estimate"] = await ctx.call(preview.estimate, db, draft_rs)
        data.update(member=member_text, chosen=chosen, current_version=current.version)
    return ctx.render(request, "programme_preview.html", **data)
