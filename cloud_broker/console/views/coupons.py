"""Coupons members hold: issuing a coupon of the programme to members, the batches issued,
taking a holding back (cloud_broker.programme.coupons)."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from cloud_broker.club.errors import ClubError
from cloud_broker.console.views.members import _url as member_url
from cloud_broker.console.web import Ctx
from cloud_broker.programme import coupons
from cloud_broker.reports import segments

MAX_UPLOAD = 8 * 1024 * 1024


async def overview(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)
    rs = ctx.rs(fresh=True)
    sid = request.query_params.get("segment") or ""
    segment, to = None, ""
    if sid.isdigit():  # a saved segment's members, by phone, filled in for issuing
        segment = await ctx.call(segments.get, ctx.db(), int(sid))
        to = "\n".join(await ctx.call(segments.phones, ctx.db(), segment["definition"],
                                       coupons.MAX_RECIPIENTS))  # fmt: skip
    return ctx.render(
        request,
        "coupons.html",
        offers=coupons.member_coupons(rs),
        batches=await ctx.call(coupons.batches, ctx.db()),
        issued=None,
        segment=segment,
        to=to,
    )


async def issue(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "programme")
    form = await request.form()
    to = str(form.get("to") or "")
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise ClubError(
                "too_big", "the file is larger than 8 MB", "پرونده بزرگ‌تر از ۸ مگابایت است."
            )
        try:
            to += "\n" + data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ClubError(
                "bad_file", "the file is not UTF-8 text (save the CSV as UTF-8)",
                "پرونده متن UTF-8 نیست (CSV را با UTF-8 ذخیره کنید).",
            ) from None  # fmt: skip
    done = await ctx.call(
        coupons.issue, ctx.db(), ctx.rs(fresh=True), op, str(form.get("code") or ""), to,
        str(form.get("valid_until") or ""), str(form.get("idem") or "") or None,
    )  # fmt: skip
    return ctx.render(
        request,
        "coupons.html",
        offers=coupons.member_coupons(ctx.rs()),
        batches=await ctx.call(coupons.batches, ctx.db()),
        issued=done,
    )


async def revoke(ctx: Ctx, request: Request) -> Response:
    op = await ctx.operator(request, "programme")
    form = await request.form()
    member = request.path_params["member"]
    await ctx.call(coupons.revoke, ctx.db(), op, member, str(form.get("code") or ""),
                   str(form.get("reason") or ""))  # fmt: skip
    return ctx.back(member_url(member), "The coupon was taken back.", "کد تخفیف پس گرفته شد.")
