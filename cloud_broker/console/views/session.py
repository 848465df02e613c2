"""Logging in and out, and the language and money-unit switches."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cloud_broker.club import operators
from cloud_broker.club.errors import ClubError
from cloud_broker.console import i18n
from cloud_broker.console.web import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    UNIT_COOKIE,
    CsrfError,
    Ctx,
    safe_next,
)


async def login_form(ctx: Ctx, request: Request) -> Response:
    token = secrets.token_urlsafe(24)
    resp = ctx.render(
        request,
        "login.html",
        login_csrf=token,
        next=safe_next(request.query_params.get("next")),
    )
    resp.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=ctx.cfg.secure_cookies
    )
    return resp


async def login(ctx: Ctx, request: Request) -> Response:
    form = await request.form()
    given, expected = str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE) or ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfError
    nxt = safe_next(str(form.get("next") or "/"))
    try:
        op = await ctx.call(
            operators.authenticate,
            ctx.db(),
            str(form.get("username") or "").strip(),
            str(form.get("password") or ""),
        )
    except ClubError as e:
        token = secrets.token_urlsafe(24)
        page = ctx.render(request, "login.html", 401, error=e, login_csrf=token, next=nxt)
        page.set_cookie(
            LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=ctx.cfg.secure_cookies
        )
        return page
    sid, _csrf = await ctx.call(operators.start_session, ctx.db(), op)
    resp = RedirectResponse(nxt, status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        ctx.signer.dumps(sid),
        httponly=True,
        samesite="lax",
        secure=ctx.cfg.secure_cookies,
        max_age=operators.SESSION_MS // 1000,
    )
    resp.delete_cookie(LOGIN_COOKIE)
    return resp


async def logout(ctx: Ctx, request: Request) -> Response:
    await ctx.operator(request)  # the CSRF token too: a link elsewhere cannot log you out
    raw = request.cookies.get(SESSION_COOKIE, "")
    sid = ctx.signer.loads(raw)
    await ctx.call(operators.end_session, ctx.db(), str(sid))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp


async def switch(ctx: Ctx, request: Request) -> Response:
    """``/switch?lang=en`` or ``?unit=toman``: a preference cookie, back where you were."""
    resp = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    lang, unit = request.query_params.get("lang"), request.query_params.get("unit")
    if lang in i18n.LANGS:
        resp.set_cookie(LANG_COOKIE, lang, samesite="lax", max_age=365 * 86400)
    if unit in ("rial", "toman"):
        resp.set_cookie(UNIT_COOKIE, unit, samesite="lax", max_age=365 * 86400)
    return resp
