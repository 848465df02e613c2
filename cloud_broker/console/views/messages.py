"""Messages to members: the automated messages (templates, on and off), the rules (quiet
hours, the cap), the occasions, the campaigns (create, count and price, schedule, follow),
the message log (cloud_broker.messaging)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cloud_broker.club.errors import ClubError
from cloud_broker.console import i18n
from cloud_broker.console.web import Ctx, int_field
from cloud_broker.messaging import campaigns, outbox, settings
from cloud_broker.programme import forms
from cloud_broker.reports import segments
from edge.core import jalali


async def overview(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    db = ctx.db()
    return ctx.render(
        request,
        "messages.html",
        templates=await ctx.call(settings.templates, db),
        conf=await ctx.call(settings.read, db),
        occasions=await ctx.call(settings.occasions, db),
        counts=await ctx.call(outbox.counts, db),
        campaigns=await ctx.call(campaigns.listing, db),
    )


async def measure(ctx: Ctx, request: Request) -> Response:
    """The length of what is being typed (htmx, as one types)."""
    await ctx.operator(request)
    text = request.query_params.get("text") or ""
    return ctx.render(request, "_measure.html", length=settings.length_of(text))


async def save_template(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "messages")
    form = await request.form()
    key = request.path_params["key"]
    await ctx.call(settings.save_template, ctx.db(), op, key, str(form.get("text") or ""),
                   form.get("enabled") == "on")  # fmt: skip
    return ctx.back("/messages#templates", "Saved.", "ذخیره شد.")


def _hhmm(text: object, en: str, fa: str) -> int:
    t = str(text or "").translate(forms.DIGITS).strip()
    h, _, m = t.partition(":")
    if not (h.isdigit() and m.isdigit() and int(h) < 24 and int(m) < 60):
        raise ClubError("bad_time", f"{en}: a time like 22:00", f"{fa}: ساعتی مانند ۲۲:۰۰")
    return int(h) * 100 + int(m)


async def save_settings(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "messages")
    f = await request.form()
    values = {
        "quiet_start": _hhmm(f.get("quiet_start"), "quiet from", "سکوت از"),
        "quiet_end": _hhmm(f.get("quiet_end"), "quiet until", "سکوت تا"),
    }
    for k in ("cap_count", "cap_days", "expiry_notice_days", "part_price_rials",
              "send_rate_per_min", "stale_hours"):  # fmt: skip
        values[k] = int_field(f.get(k), k, k, allow_empty=False)
    await ctx.call(settings.save, ctx.db(), op, values)
    return ctx.back("/messages#rules", "Saved.", "ذخیره شد.")


async def add_occasion(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "messages")
    f = await request.form()
    await ctx.call(settings.add_occasion, ctx.db(), op, str(f.get("key") or ""),
                   str(f.get("fa") or ""), str(f.get("en") or ""), str(f.get("date") or ""),
                   f.get("every_year") == "on")  # fmt: skip
    return ctx.back("/messages#occasions", "Occasion saved.", "مناسبت ذخیره شد.")


async def occasion_date(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "messages")
    f = await request.form()
    date = str(f.get("date") or "")
    year = int_field(date.translate(forms.DIGITS)[:4], "year", "سال", allow_empty=False)
    await ctx.call(settings.override_date, ctx.db(), op, str(f.get("key") or ""), year, date)
    return ctx.back("/messages#occasions", "This year's date is set.", "تاریخ امسال تعیین شد.")


async def log_page(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    state = request.query_params.get("state") or None
    before = request.query_params.get("before")
    rows = await ctx.call(outbox.log, ctx.db(), None, state, 100,
                          int(before) if before and before.isdigit() else None)  # fmt: skip
    return ctx.render(request, "messages_log.html", rows=rows, state=state)


def _audience(f: Any) -> dict[str, Any]:
    if f.get("audience") == "all":
        return {"all": True}
    if f.get("audience") == "saved":
        sid = int_field(f.get("segment"), "segment", "بخش", allow_empty=False)
        return {"segment": sid}
    out: dict[str, Any] = {}
    tiers = [t for t in f.getlist("tiers") if t]
    if tiers:
        out["tiers"] = tiers
    for k in ("min_points", "active_days", "joined_days"):
        v = int_field(f.get(k), k, k)
        if v:
            out[k] = v
    return out or {"all": True}


async def new_campaign(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request, "messages")
    chosen = request.query_params.get("segment") or ""
    return ctx.render(request, "campaign_new.html", tiers=ctx.rs().tiers,
                      segments=await ctx.call(segments.listing, ctx.db()),
                      chosen=int(chosen) if chosen.isdigit() else None)  # fmt: skip


async def create_campaign(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "messages")
    f = await request.form()
    cid = await ctx.call(
        campaigns.create, ctx.db(), ctx.rs(), op, str(f.get("name") or ""),
        str(f.get("text") or ""), _audience(f), str(f.get("coupon") or ""),
        int_field(f.get("rate_per_min") or "600", "pace", "سرعت", allow_empty=False),
        str(f.get("phones") or "") if f.get("audience") == "list" else "",
        int_field(f.get("control_pct") or "0", "control group", "گروه کنترل") * 100,
    )  # fmt: skip
    return ctx.back(f"/campaigns/{cid}", "The campaign is a draft: check it and schedule it.",
                    "کمپین پیش‌نویس شد؛ بررسی و زمان‌بندی کنید.")  # fmt: skip


async def campaign(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    cid = int_field(request.path_params["id"], "campaign", "کمپین", allow_empty=False)
    db = ctx.db()
    c = await ctx.call(campaigns.get, db, cid)
    est = await ctx.call(campaigns.estimate, db, cid) if c["state"] == "draft" else None
    template = "_campaign_progress.html" if request.headers.get("hx-request") else "campaign.html"
    return ctx.render(request, template, c=c, est=est,
                      progress=await ctx.call(campaigns.progress, db, cid))  # fmt: skip


async def schedule(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "messages")
    f = await request.form()
    cid = int_field(request.path_params["id"], "campaign", "کمپین", allow_empty=False)
    at = None
    date = str(f.get("date") or "").strip()
    if date:
        y, m, d = settings.parse_jalali(date)
        hhmm = _hhmm(f.get("time") or "10:00", "time", "ساعت")
        day = int(jalali.to_days(y, m, d))
        at = (day * 86400 - 210 * 60 + (hhmm // 100) * 3600 + (hhmm % 100) * 60) * 1000
    est = await ctx.call(campaigns.schedule, ctx.db(), op, cid, at)
    return ctx.back(f"/campaigns/{cid}",
                    f"Scheduled for {est.recipients:,} members.",
                    f"برای {i18n.num(est.recipients)} عضو زمان‌بندی شد.")  # fmt: skip


async def cancel(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "messages")
    cid = int_field(request.path_params["id"], "campaign", "کمپین", allow_empty=False)
    await ctx.call(campaigns.cancel, ctx.db(), op, cid)
    return ctx.back(f"/campaigns/{cid}", "Cancelled: nothing more is sent.",
                    "لغو شد؛ پیام دیگری فرستاده نمی‌شود.")  # fmt: skip
