"""What every page of the console shares: the ledger connection per worker thread, the
operator behind the request, CSRF, the language, rendering, flash messages and the one
place bad input becomes a clear page instead of a server error.

* **Who**: a session id in a signed, HttpOnly, SameSite=Lax cookie (itsdangerous);
  cloud_broker.club.operators keeps its hash, its CSRF token and its life.  A page needs
  a live session; a request without one goes to the login page (its ``next`` kept).
* **CSRF**: every POST carries the session's token (a hidden ``csrf`` field, or the
  ``X-CSRF-Token`` header htmx sends), compared in constant time; the login form has its
  own double-submit token.  A missing or forged token changes nothing and says so.
* **Permissions**: each view names the permission it needs (``Ctx.operator(request,
  "adjust")``); the role table is club.operators'.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from cloud_broker.club import operators, today
from cloud_broker.club.errors import ClubError, NotAllowedError
from cloud_broker.club.operators import Operator
from cloud_broker.console import i18n
from cloud_broker.ledger.db import PerThread
from cloud_broker.ledger.rulebooks import Newest, RuleBooks
from cloud_broker.ledger.schema import MIGRATIONS
from cloud_broker.programme.keys import KeyDir
from cloud_broker.reports import kpis
from edge.core.ruleset import RuleSet
from edge.errors import LoyaltyError

log = logging.getLogger("cloud_broker.console")
HERE = Path(__file__).resolve().parent
T = TypeVar("T")

SESSION_COOKIE = "club_session"
LOGIN_COOKIE = "club_login"
FLASH_COOKIE = "club_flash"
LANG_COOKIE = "club_lang"
UNIT_COOKIE = "club_unit"


class NeedLogin(Exception):  # noqa: N818 - control flow inside the web layer only
    """No live session: the page sends the browser to the login form."""


class CsrfError(ClubError):
    def __init__(self) -> None:
        super().__init__(
            "csrf",
            "this form is out of date or did not come from the console: nothing was changed; "
            "reload the page and try again",
            "این فرم منقضی شده یا از کنسول نیامده است؛ چیزی تغییر نکرد. صفحه را دوباره باز کنید.",
        )


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    ledger_url: str
    secret: bytes  # signs the cookies; from a 0600 file or the environment, never the ledger
    secure_cookies: bool = False  # behind TLS: cookies only over HTTPS
    seed_rules: RuleSet | None = None  # the bundle to use until the ledger holds one
    rules_key_dir: Path | None = None  # the private rules keys: approving signs with them


class Ctx:
    """The console's state: configuration, a ledger connection per worker thread, the
    rules bundles, the templates."""

    def __init__(self, cfg: ConsoleConfig) -> None:
        self.cfg = cfg
        self.db = PerThread(cfg.ledger_url)
        db = self.db()
        db.migrate(MIGRATIONS)
        self.rules = RuleBooks(db, seed=cfg.seed_rules)
        self.rs = Newest(self.rules)  # the newest programme; rs(fresh=True) after publishing
        self.signer = URLSafeTimedSerializer(cfg.secret, salt="club-console")
        self.keydir = KeyDir(cfg.rules_key_dir) if cfg.rules_key_dir is not None else None
        # the members' totals for Today, counted in the background so no page waits for
        # a scan of every member
        self.totals = today.Totals(max_age_s=90)
        self.member_figures = kpis.MemberFigures(max_age_s=90)  # refreshed with the totals
        threading.Thread(target=self._count_members, name="totals", daemon=True).start()
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            extensions=["jinja2.ext.i18n"],
        )
        self.env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
        self.env.filters.update(i18n.filters())

    def _count_members(self) -> None:
        while True:
            try:
                self.totals.refresh(self.db())
                self.member_figures.refresh(self.db(), today.local_day())
            except Exception as e:  # noqa: BLE001 - a lost connection must not end the loop
                log.warning("counting members failed (tried again in a minute): %s", e)
            time.sleep(60)

    def tier_name(self, tier: str) -> str:
        """A tier id as people read it, in the page's language."""
        found = next((t for t in self.rs().tiers if t.id == tier), None)
        if found is None:
            return tier
        return found.fa if i18n.lang() == "fa" else found.en

    async def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run a club function (it blocks on the ledger) in a worker thread."""
        return await run_in_threadpool(fn, *args, **kw)

    # -- who is asking ----------------------------------------------------------------------

    async def who(self, request: Request) -> tuple[Operator, str] | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            sid = self.signer.loads(raw, max_age=operators.SESSION_MS // 1000)
        except BadSignature:
            return None
        if not isinstance(sid, str):
            return None
        return await self.call(lambda: operators.session(self.db(), sid))

    async def operator(self, request: Request, permission: str = "read") -> Operator:
        """The operator behind a request that needs ``permission``; for a POST its CSRF
        token is checked first."""
        found = await self.who(request)
        if found is None:
            raise NeedLogin
        op, csrf = found
        request.state.operator, request.state.csrf = op, csrf
        if request.method == "POST":
            form = await request.form()
            given = str(form.get("csrf") or request.headers.get("x-csrf-token") or "")
            if not hmac.compare_digest(given.encode(), csrf.encode()):
                log.warning("forged or stale CSRF token from %s", op.username)
                raise CsrfError
        op.require(permission)
        return op

    # -- answers ----------------------------------------------------------------------------

    def render(
        self, request: Request, template: str, status: int = 200, **data: Any
    ) -> HTMLResponse:
        flash = _flash(request, self.signer)
        ctx = {
            "request": request,
            "lang": i18n.lang(),
            "dir": i18n.direction(),
            "unit": i18n.unit(),
            "operator": getattr(request.state, "operator", None),
            "csrf": getattr(request.state, "csrf", ""),
            "flash": flash,
            "new_key": lambda: secrets.token_urlsafe(16),
            "tier_name": self.tier_name,
            "path": request.url.path,
            **data,
        }
        resp = HTMLResponse(self.env.get_template(template).render(ctx), status_code=status)
        if flash is not None:
            resp.delete_cookie(FLASH_COOKIE)
        return resp

    def back(self, url: str, text_en: str, text_fa: str, kind: str = "success") -> Response:
        """Redirect after a POST, with a message for the next page (303: the browser GETs)."""
        resp = RedirectResponse(url, status_code=303)
        text = text_fa if i18n.lang() == "fa" else text_en
        resp.set_cookie(
            FLASH_COOKIE,
            self.signer.dumps({"kind": kind, "text": text}),
            httponly=True,
            samesite="lax",
            secure=self.cfg.secure_cookies,
        )
        return resp


def _flash(request: Request, signer: URLSafeTimedSerializer) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        value = signer.loads(raw, max_age=120)
    except BadSignature:
        return None
    return value if isinstance(value, dict) else None


Handler = Callable[[Request], Awaitable[Response]]


def page(ctx: Ctx, fn: Callable[[Ctx, Request], Awaitable[Response]]) -> Handler:
    """A view with the console's manners: the language and unit of the request, login when
    the session is gone, and every refusal (a role, a form, a value) a page, not a 500."""

    async def handler(request: Request) -> Response:
        i18n.use(request.cookies.get(LANG_COOKIE, "fa"), request.cookies.get(UNIT_COOKIE, "rial"))
        t0 = time.perf_counter()
        resp = await _answer(ctx, fn, request)
        # the time this request took in the console, for a browser's tools and the
        # benchmarks (docs/benchmarks.md): not the network's
        resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.2f}"
        return resp

    return handler


async def _answer(
    ctx: Ctx, fn: Callable[[Ctx, Request], Awaitable[Response]], request: Request
) -> Response:
    """The view's answer, or the page that says why it cannot be given."""
    try:
        return await fn(ctx, request)
    except NeedLogin:
        if request.method == "GET":
            nxt = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
            return RedirectResponse(f"/login?next={nxt}", status_code=303)
        return ctx.render(request, "error.html", 401, error=_expired())
    except (NotAllowedError, CsrfError) as e:
        return ctx.render(request, "error.html", 403, error=e)
    except ClubError as e:
        return ctx.render(request, "error.html", 400, error=e)
    except LoyaltyError as e:
        log.warning("console: %s", e)
        return ctx.render(request, "error.html", 400, error=e)


def _expired() -> ClubError:
    return ClubError(
        "session",
        "your session has ended: log in again (nothing was changed)",
        "نشست شما پایان یافته است؛ دوباره وارد شوید (چیزی تغییر نکرد).",
    )


def safe_next(url: str | None) -> str:
    """Only a path of this console (never another site) to go back to after login."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return "/"


def int_field(value: object, en: str, fa: str, allow_empty: bool = True) -> int:
    """A whole number typed in a form: Persian, Arabic-Indic or Latin digits, separators
    and a sign allowed; ClubError naming the field otherwise."""
    text = str(value or "").strip()
    text = text.translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩−", "01234567890123456789-"))
    text = text.replace(",", "").replace("٬", "").replace(" ", "")
    if not text and allow_empty:
        return 0
    body = text[1:] if text[:1] in "+-" else text
    if not body.isdigit() or len(body) > 16:
        raise ClubError("bad_number", f"{en}: a whole number", f"{fa}: یک عدد صحیح وارد کنید.")
    return int(text)
