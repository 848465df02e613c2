"""Every text the console shows has its Persian; numbers, money and dates as people in
Iran read them."""

from __future__ import annotations

import re

from cloud_broker.club import operators
from cloud_broker.console import i18n
from cloud_broker.console.views import reports
from cloud_broker.reports import periods, sales, scores
from edge.core.dates import days_from_civil

TEMPLATES = i18n.HERE / "templates"
PANEL = i18n.HERE.parent / "panel" / "templates"  # the member panel shares the catalogue
LITERAL = re.compile(r"""_\(\s*(?:"([^"]+)"|'([^']+)')\s*\)""")
# values the pages pass through _() at run time (kinds, states, actions)
RUNTIME = (
    *operators.ROLES,
    *(f"perm:{p}" for p in operators.PERMISSIONS),
    "earn", "adjust", "overdraft", "sale", "refund", "void", "adjustment", "merge", "expiry",
    "enroll", "warning", "critical", "active", "revoked", "online", "offline", "admitted",
    "dismissed", "member.adjust", "member.link_card", "member.edit", "device.register",
    "device.revoke", "token.issue", "store.save", "operator.add", "operator.disable",
    "operator.enable", "operator.locked", "session.start", "alert.ack", "quarantine.admit",
    "quarantine.dismiss", "editing", "submitted", "published", "discarded", "next", "retired",
    "added", "removed", "changed", "programme.start", "programme.edit", "programme.submit",
    "programme.reopen", "programme.discard", "programme.publish", "programme.sample",
    "rules_key.adopt", "rules_key.prepare", "rules_key.switch", "referral", "member.referrer",
    "coupon.issue", "coupon.revoke", "programme.budget", "budget_80", "budget_spent",
    "adjustment_without_member", "anonymous_benefits", "chain_conflict", "coupon_reuse",
    "overdraft_recovered", "points_overdraft", "referral_refused", "refund_beyond_sale",
    "refund_without_sale", "rules_unknown", "wallet_overdraft", "info",
    "queued", "sending", "sent", "delivered", "undelivered", "blocked", "failed", "skipped",
    "cancelled", "ambiguous", "draft", "scheduled", "done", "opted_out", "capped", "expired",
    "quiet_hours", "no_member", "template_off", "paused", "campaign cancelled", "welcome",
    "thanks", "tier_up", "expiring", "birthday", "anniversary", "campaign", "occasion:nowruz",
    "occasion:yalda", "occasion:mothers_day", "sms_paused", "messages.settings",
    "messages.template", "messages.occasion", "messages.occasion_date", "campaign.create",
    "campaign.schedule", "campaign.cancel", "member.sms_opt_out",
    *sales.HEADERS.values(), *reports.TITLES.values(), *(f"grain:{g}" for g in periods.GRAINS),
    *(f"rfm:{s}" for s in scores.SEGMENTS), "recipients", "control", "segment.save",
    "segment.delete", "api_key.create", "api_key.revoke", "webhook.add", "webhook.disable",
    "webhook.replay", "tax.store", "tax.product", "tax.resend", "survey.add",
    *(f"tax:{s}" for s in ("queued", "sending", "sent", "accepted", "failed", "rejected",
                           "blocked")),
    "Members' revenue", "Anonymous revenue", "Revenue", "Members", "Total",
)  # fmt: skip


def _used() -> set[str]:
    out: set[str] = set()
    for path in [*TEMPLATES.glob("*.html"), *PANEL.glob("*.html")]:
        for a, b in LITERAL.findall(path.read_text("utf-8")):
            out.add(a or b)
    return out


def test_every_text_has_its_persian() -> None:
    fa = i18n.catalog("fa")
    used = _used() | set(RUNTIME)
    assert len(used) > 150
    missing = sorted(t for t in used if not fa.get(t))
    assert missing == []
    untranslated = sorted(t for t in used if fa[t] == t)
    assert untranslated == []


def test_no_text_in_the_catalogue_is_left_over() -> None:
    stale = sorted(set(i18n.catalog("fa")) - _used() - set(RUNTIME))
    assert stale == []


def test_numbers_money_and_dates() -> None:
    i18n.use("fa", "rial")
    assert i18n.num(1_234_567) == "۱٬۲۳۴٬۵۶۷"
    assert i18n.money(-12_500) == "-۱۲٬۵۰۰ ریال"
    i18n.use("fa", "toman")
    assert i18n.money(12_505) == "۱٬۲۵۰٫۵ تومان"  # never a float: the Rial digit kept
    i18n.use("en", "toman")
    assert i18n.money(12_500) == "1,250 Toman"
    i18n.use("en", "rial")
    assert i18n.money("12") == ""  # not an integer amount: nothing, never a guess
    nowruz = days_from_civil(2026, 3, 21)
    assert i18n.jday(nowruz) == "1405/01/01"
    assert i18n.jday(nowruz, with_month=True) == "1 Farvardin 1405"
    i18n.use("fa", "rial")
    assert i18n.jday(nowruz, with_month=True) == "۱ فروردین ۱۴۰۵"
    assert i18n.jdate(nowruz * 86_400_000 - 210 * 60_000 + 9 * 3_600_000) == "۱۴۰۵/۰۱/۰۱ ۰۹:۰۰"
    i18n.use("xx", "gold")  # unknown preferences fall back to Persian and Rials
    assert (i18n.lang(), i18n.unit(), i18n.direction()) == ("fa", "rial", "rtl")
