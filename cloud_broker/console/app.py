"""The head-office console: a Starlette app with Jinja2 pages and htmx, served by uvicorn
as its own process beside the reconciler (``python -m cloud_broker console``).

Stack (chosen for a small team that must keep it running): Starlette, a small ASGI
framework with sessions-free routing we control; Jinja2 templates extended from one layout;
htmx for the few live parts (search as you type) without a JavaScript build; Tabler's CSS,
whose right-to-left stylesheet makes Persian pages first-class, and the Vazirmatn font; all
served by the console itself from ``assets/node_modules`` (``./dev`` installs them with
``npm ci``): it works with no internet and no CDN.  Every page calls cloud_broker.club;
none holds SQL.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cloud_broker import keyfile
from cloud_broker.club.errors import ClubError
from cloud_broker.console import i18n
from cloud_broker.console.views import (
    admin,
    coupons,
    incidents,
    integrations,
    members,
    messages,
    programme,
    programme_forms,
    programme_preview,
    reports,
    session,
    stores,
    tax,
    today,
)
from cloud_broker.console.web import LANG_COOKIE, UNIT_COOKIE, ConsoleConfig, Ctx, page
from edge.errors import ConfigError

log = logging.getLogger("cloud_broker.console")
HERE = Path(__file__).resolve().parent
ASSETS = HERE / "assets" / "node_modules"
VENDOR = {
    "tabler": ASSETS / "@tabler" / "core" / "dist",
    "vazirmatn": ASSETS / "vazirmatn",
    "htmx": ASSETS / "htmx.org" / "dist",
    "chartjs": ASSETS / "chart.js" / "dist",
    "jdp": ASSETS / "@majidh1" / "jalalidatepicker" / "dist",
}


def vendor_mounts() -> list[Mount]:
    missing = [str(p) for p in VENDOR.values() if not p.is_dir()]
    if missing:
        raise ConfigError(
            "console assets",
            f"{missing[0]} is missing: run ./dev setup (it installs them with npm ci)",
        )
    return [Mount(f"/vendor/{name}", StaticFiles(directory=path)) for name, path in VENDOR.items()]


def create_app(cfg: ConsoleConfig) -> Starlette:
    ctx = Ctx(cfg)

    def get(path: str, fn: object) -> Route:
        return Route(path, page(ctx, fn), methods=["GET"])  # type: ignore[arg-type]

    def post(path: str, fn: object) -> Route:
        return Route(path, page(ctx, fn), methods=["POST"])  # type: ignore[arg-type]

    routes = [
        get("/", today.dashboard),
        get("/login", session.login_form),
        post("/login", session.login),
        post("/logout", session.logout),
        get("/switch", session.switch),
        get("/members", members.search),
        get("/members/{member}", members.member),
        post("/members/{member}/adjust", members.adjust),
        post("/members/{member}/link", members.link_card),
        post("/members/{member}/edit", members.edit),
        post("/members/{member}/referrer", members.referrer),
        post("/members/{member}/coupons/revoke", coupons.revoke),
        get("/coupons", coupons.overview),
        post("/coupons", coupons.issue),
        get("/stores", stores.overview),
        post("/stores", stores.save_store),
        post("/stores/token", stores.token),
        post("/devices/{device}/revoke", stores.revoke),
        get("/incidents", incidents.overview),
        post("/alerts/{id}/ack", incidents.acknowledge),
        post("/quarantine/{id}/resolve", incidents.resolve),
        get("/programme", programme.overview),
        post("/programme/draft", programme.start),
        post("/programme/budget", programme.budget),
        get("/programme/draft/{id}", programme.draft),
        post("/programme/draft/{id}/rule", programme_forms.save_rule),
        get("/programme/draft/{id}/rule/new", programme_forms.rule_form),
        get("/programme/draft/{id}/rule/{rule}", programme_forms.rule_form),
        post("/programme/draft/{id}/rule/{rule}/delete", programme_forms.delete_rule),
        post("/programme/draft/{id}/section/{section}", programme_forms.save_section),
        get("/programme/draft/{id}/preview", programme_preview.page),
        post("/programme/draft/{id}/preview", programme_preview.page),
        post("/programme/draft/{id}/{action}", programme.lifecycle),
        get("/programme/versions/{a}/{b}", programme.versions_diff),
        post("/programme/keys/{action}", programme.keys_action),
        get("/messages", messages.overview),
        get("/messages/measure", messages.measure),
        get("/messages/log", messages.log_page),
        post("/messages/template/{key}", messages.save_template),
        post("/messages/settings", messages.save_settings),
        post("/messages/occasions", messages.add_occasion),
        post("/messages/occasions/date", messages.occasion_date),
        get("/campaigns/new", messages.new_campaign),
        post("/campaigns", messages.create_campaign),
        get("/campaigns/{id}", messages.campaign),
        post("/campaigns/{id}/schedule", messages.schedule),
        post("/campaigns/{id}/cancel", messages.cancel),
        get("/reports", reports.sales_page),
        get("/reports/kpis", reports.kpis_page),
        get("/reports/segments", reports.segments_page),
        post("/reports/segments", reports.save_segment),
        get("/reports/segments/{id}", reports.segment_page),
        post("/reports/segments/{id}/delete", reports.delete_segment),
        get("/sales/{device}/{seq}", reports.invoice_page),
        get("/integrations", integrations.overview),
        post("/integrations/keys", integrations.create_key),
        post("/integrations/keys/{id}/revoke", integrations.revoke_key),
        post("/integrations/deliveries/{id}/replay", integrations.replay),
        get("/tax", tax.overview),
        post("/tax/products", tax.save_product),
        post("/tax/invoices/{id}/resend", tax.resend),
        get("/audit", admin.audit_log),
        get("/operators", admin.operator_list),
        post("/operators", admin.operator_add),
        post("/operators/{username}/disable", admin.operator_disable),
        Mount("/static", StaticFiles(directory=HERE / "static")),
        *vendor_mounts(),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        i18n.use(request.cookies.get(LANG_COOKIE, "fa"), request.cookies.get(UNIT_COOKIE, "rial"))
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            err = ClubError(
                "method", "this address does not take that method", "این روش مجاز نیست."
            )
        elif status == 404:
            err = ClubError("not_found", "no such page", "چنین صفحه‌ای وجود ندارد.")
        else:
            log.error("console: %s", exc)
            err = ClubError(
                "internal", "something went wrong: see the log", "خطای داخلی؛ گزارش را ببینید."
            )
        return ctx.render(request, "error.html", status, error=err)

    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found, 500: not_found})
    app.state.ctx = ctx
    return app


def load_secret(path: Path | None) -> bytes:
    """The key that signs the console's cookies: ``$LOYALTY_CONSOLE_SECRET``, or a file of
    mode 0600 (made on first use).  Never stored in the ledger."""
    if path is None and not os.environ.get("LOYALTY_CONSOLE_SECRET"):
        raise ConfigError("console secret", "give --secret-file or $LOYALTY_CONSOLE_SECRET")
    return keyfile.load(path, "LOYALTY_CONSOLE_SECRET", "console secret", "it signs sessions")
