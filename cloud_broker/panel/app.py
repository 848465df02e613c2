"""The member panel (``python -m cloud_broker panel --listen 127.0.0.1:8600``): a members'
own web app, phone-first, Persian and right to left first, served apart from the operators'
console (its own process, sessions and cookie).

Pages: sign-in (phone, then the code sent by SMS), the card (the rotating QR the till
scans, points, wallet, tier and what is left to the next, points expiring soon, coupons,
the referral code and link, open surveys), purchases with their receipts, messages, and the
profile (name, birthday, wedding anniversary, SMS opt-out).  Every read and write is a club
function; forms carry the session's CSRF token."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import segno
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cloud_broker.club import changes, lookup, members
from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.console import i18n
from cloud_broker.console.app import vendor_mounts
from cloud_broker.ledger.db import PerThread
from cloud_broker.ledger.rulebooks import Newest, RuleBooks
from cloud_broker.messages.gateway import Gateway
from cloud_broker.messaging import outbox
from cloud_broker.panel import access, surveys
from cloud_broker.programme import keys as rules_keys
from cloud_broker.reports import invoice
from edge.core.ruleset import RuleSet
from edge.protocol import memberqr
from edge.sanitize import clean

log = logging.getLogger("cloud_broker.panel")
HERE = Path(__file__).resolve().parent
COOKIE = "club_member"
LANG_COOKIE = "club_member_lang"
QR_EVERY_S = 60


@dataclass
class PanelConfig:
    ledger_url: str
    secret: bytes  # HMACs of the codes
    gateway: Gateway
    seed_rules: RuleSet
    rules_key_dir: Path | None
    public_url: str = ""  # for the referral link
    secure_cookies: bool = True


class Panel:
    def __init__(self, cfg: PanelConfig) -> None:
        self.cfg = cfg
        self.db = PerThread(cfg.ledger_url)
        self.rules = RuleBooks(self.db(), seed=cfg.seed_rules)
        self.rs = Newest(self.rules)
        self.keydir = rules_keys.KeyDir(cfg.rules_key_dir) if cfg.rules_key_dir else None
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                      autoescape=True, extensions=["jinja2.ext.i18n"])  # fmt: skip
        self.env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
        self.env.filters.update(i18n.filters())

    def render(self, request: Request, name: str, status: int = 200, **data: Any) -> HTMLResponse:
        ctx = {"lang": i18n.lang(), "dir": i18n.direction(), "path": request.url.path, **data}
        return HTMLResponse(self.env.get_template(name).render(ctx), status_code=status)

    def qr(self, member: str) -> tuple[str, int, str]:
        """A fresh membership QR (SVG), when it expires, and the code it carries."""
        signer = rules_keys.signer(self.db(), self.keydir)
        now = int(time.time())
        code = memberqr.make(signer.key, self.rs().tenant, member, now)
        svg = segno.make(code, error="m").svg_inline(scale=4, border=2)
        return svg, now + memberqr.LIFETIME_S, code


Page = Callable[[Panel, Request, access.Session], Awaitable[Response]]


def _address(request: Request) -> str:
    return request.client.host if request.client else "-"


def page(p: Panel, fn: Page, write: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A signed-in page: the session (else to sign-in), the language, CSRF on writes, errors
    in the member's language."""

    async def endpoint(request: Request) -> Response:
        i18n.use(request.cookies.get(LANG_COOKIE) or "fa", "rial")
        token = request.cookies.get(COOKIE) or ""
        s = await run_in_threadpool(access.session, p.db(), token)
        if s is None:
            return RedirectResponse("/login", 303)
        try:
            if write:
                form = await request.form()
                if not hmac.compare_digest(str(form.get("csrf") or "").encode(), s.csrf.encode()):
                    raise ClubError("csrf", "the form is stale: reload the page",
                                    "فرم کهنه است؛ صفحه را دوباره باز کنید.")  # fmt: skip
            return await fn(p, request, s)
        except ClubError as e:
            return p.render(request, "error.html", 400, text=e.fa if i18n.lang() == "fa" else e.en)

    return endpoint


async def login_form(p: Panel, request: Request) -> Response:
    i18n.use(request.cookies.get(LANG_COOKIE) or "fa", "rial")
    return p.render(request, "login.html", phone="", error=None)


async def login(p: Panel, request: Request) -> Response:
    i18n.use(request.cookies.get(LANG_COOKIE) or "fa", "rial")
    form = await request.form()
    phone = str(form.get("phone") or "")
    try:
        normal = await run_in_threadpool(access.request_code, p.db(), p.cfg.gateway,
                                          p.cfg.secret, phone, _address(request))  # fmt: skip
    except ClubError as e:
        return p.render(request, "login.html", 400, phone=clean(phone, 20),
                        error=e.fa if i18n.lang() == "fa" else e.en)  # fmt: skip
    return p.render(request, "code.html", phone=normal, error=None)


async def sign_in(p: Panel, request: Request) -> Response:
    i18n.use(request.cookies.get(LANG_COOKIE) or "fa", "rial")
    form = await request.form()
    phone = str(form.get("phone") or "")
    try:
        token, _ = await run_in_threadpool(access.sign_in, p.db(), p.cfg.secret, phone,
                                           str(form.get("code") or ""))  # fmt: skip
    except ClubError as e:
        return p.render(request, "code.html", 400, phone=clean(phone, 20),
                        error=e.fa if i18n.lang() == "fa" else e.en)  # fmt: skip
    resp = RedirectResponse("/", 303)
    resp.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=p.cfg.secure_cookies,
                    max_age=access.SESSION_MS // 1000)  # fmt: skip
    return resp


async def home(p: Panel, request: Request, s: access.Session) -> Response:
    db, rs = p.db(), p.rs()
    m = await run_in_threadpool(lookup.summary, db, rs, None, None, s.member)
    full = await run_in_threadpool(members.page, db, rs, s.member, None, 5)
    svg, until, _ = await run_in_threadpool(p.qr, s.member)
    return p.render(request, "home.html", m=m, coupons=full.get("coupons", []), qr=svg,
                    qr_until=until, csrf=s.csrf, tiers=rs.tiers,
                    surveys=await run_in_threadpool(surveys.open_for, db, s.member),
                    link=f"{p.cfg.public_url}/join?ref={m['referral_code'] or ''}",
                    every=QR_EVERY_S)  # fmt: skip


async def qr(p: Panel, request: Request, s: access.Session) -> Response:
    svg, until, code = await run_in_threadpool(p.qr, s.member)
    return JSONResponse({"svg": svg, "expires": until, "code": code},
                        headers={"Cache-Control": "no-store"})  # fmt: skip


async def history(p: Panel, request: Request, s: access.Session) -> Response:
    full = await run_in_threadpool(members.page, p.db(), p.rs(), s.member, None, 50)
    return p.render(request, "history.html", purchases=full["purchases"])


async def receipt(p: Panel, request: Request, s: access.Session) -> Response:
    try:
        seq = int(request.path_params["seq"])
    except ValueError:
        raise ClubError("no_sale", "no such purchase", "چنین خریدی پیدا نشد.") from None
    inv = await run_in_threadpool(invoice.invoice, p.db(), request.path_params["device"], seq)
    if inv.get("member") != s.member:  # only one's own: the same answer as a missing one
        raise ClubError("no_sale", "no such purchase", "چنین خریدی پیدا نشد.")
    return p.render(request, "receipt.html", inv=inv)


async def messages(p: Panel, request: Request, s: access.Session) -> Response:
    rows = await run_in_threadpool(outbox.log, p.db(), s.member, None, 50)
    return p.render(request, "messages.html", rows=[r for r in rows if r["text"]])


async def profile(p: Panel, request: Request, s: access.Session) -> Response:
    full = await run_in_threadpool(members.page, p.db(), p.rs(), s.member, None, 1)
    return p.render(
        request, "profile.html", m=full, csrf=s.csrf, saved=request.query_params.get("saved")
    )


async def save_profile(p: Panel, request: Request, s: access.Session) -> Response:
    f = await request.form()
    me = Operator(0, f"member:{access.masked(s.member)}", "member", "support")
    await run_in_threadpool(
        changes.edit_profile, p.db(), me, s.member, str(f.get("name") or ""),
        str(f.get("birthday") or ""), str(f.get("anniversary") or ""), f.get("sms_opt_out") == "on",
    )  # fmt: skip
    return RedirectResponse("/profile?saved=1", 303)


async def answer(p: Panel, request: Request, s: access.Session) -> Response:
    f = await request.form()
    try:
        rating = int(str(f.get("rating") or "0").translate(access._DIGITS))
    except ValueError:
        rating = 0
    await run_in_threadpool(surveys.answer, p.db(), p.rs(), s.member, str(f.get("survey") or ""),
                            rating, str(f.get("comment") or ""))  # fmt: skip
    return RedirectResponse("/?thanks=1", 303)


async def logout(p: Panel, request: Request, s: access.Session) -> Response:
    await run_in_threadpool(access.sign_out, p.db(), request.cookies.get(COOKIE) or "")
    resp = RedirectResponse("/login", 303)
    resp.delete_cookie(COOKIE)
    return resp


async def switch(p: Panel, request: Request) -> Response:
    lang = "en" if request.query_params.get("lang") == "en" else "fa"
    resp = RedirectResponse("/", 303)
    resp.set_cookie(LANG_COOKIE, lang, samesite="lax", max_age=365 * 86400)
    return resp


def create_app(cfg: PanelConfig) -> Starlette:
    p = Panel(cfg)

    def plain(
        fn: Callable[[Panel, Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await fn(p, request)

        return endpoint

    routes = [
        Route("/login", plain(login_form), methods=["GET"]),
        Route("/login", plain(login), methods=["POST"]),
        Route("/login/code", plain(sign_in), methods=["POST"]),
        Route("/lang", plain(switch), methods=["GET"]),
        Route("/", page(p, home), methods=["GET"]),
        Route("/qr", page(p, qr), methods=["GET"]),
        Route("/history", page(p, history), methods=["GET"]),
        Route("/receipts/{device}/{seq}", page(p, receipt), methods=["GET"]),
        Route("/messages", page(p, messages), methods=["GET"]),
        Route("/profile", page(p, profile), methods=["GET"]),
        Route("/profile", page(p, save_profile, write=True), methods=["POST"]),
        Route("/surveys", page(p, answer, write=True), methods=["POST"]),
        Route("/logout", page(p, logout, write=True), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static")),
        *vendor_mounts(),
    ]
    app = Starlette(routes=routes)
    app.state.panel = p
    return app
