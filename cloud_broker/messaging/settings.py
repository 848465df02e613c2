"""What marketing decides about messages: the templates of the automated messages (each on
or off), the rules every message obeys (quiet hours, the frequency cap), the occasions
(the calendar's and their own, each year's date overridable), the price of an SMS part.

Kept in the ledger database (``sms_templates``, ``sms_settings``, ``sms_occasions``,
``sms_occasion_dates``), changed through these functions only, every change audited.  A
template is checked when it is saved (cloud_broker.messages.text.Template.compile: unknown
placeholders refused, the opt-out footer added), so the sender never meets a bad one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.messages.text import Template, TemplateError
from edge.core import jalali
from edge.core.errors import CoreError
from edge.sanitize import clean, is_clean

# the automated messages: key -> (English, Persian, the default text, extra placeholders)
TRIGGERS: dict[str, tuple[str, str, str]] = {
    "welcome": ("Welcome, on joining", "خوش‌آمد، هنگام عضویت",
                "{name} عزیز، به باشگاه مشتریان خوش آمدید."),
    "thanks": ("Thank you, after a purchase", "تشکر، پس از خرید",
               "{name} عزیز، از خرید شما در {store} سپاس. {earned} امتیاز گرفتید؛ "
               "امتیاز شما {points} و سطح شما {tier} است."),
    "tier_up": ("A higher tier", "ارتقای سطح", "{name} عزیز، تبریک! سطح شما {tier} شد."),
    "expiring": ("Points about to expire", "امتیازهای رو به انقضا",
                 "{name} عزیز، {expiring} امتیاز شما در {expires} منقضی می‌شود."),
    "birthday": ("Birthday", "تولد", "{name} عزیز، تولدتان مبارک!"),
    "anniversary": ("Wedding anniversary", "سالگرد ازدواج", "{name} عزیز، سالگرد ازدواجتان مبارک!"),
    "occasion:nowruz": ("Nowruz", "نوروز", "{name} عزیز، نوروزتان پیروز!"),
    "occasion:yalda": ("Yalda", "یلدا", "{name} عزیز، شب یلدا خوش!"),
    "occasion:mothers_day": ("Mother's Day", "روز مادر", "روز مادر مبارک!"),
}  # fmt: skip
DEFAULTS: dict[str, int] = {
    "quiet_start": 2200,  # HHMM, Tehran time
    "quiet_end": 800,
    "cap_count": 4,  # at most this many marketing messages ...
    "cap_days": 7,  # ... per member in this many days
    "expiry_notice_days": 7,  # the notice of points about to expire
    "part_price_rials": 1230,  # what one SMS part costs (campaign estimates)
    "send_rate_per_min": 600,  # the sender's pace for campaigns, unless a campaign says less
    "stale_hours": 48,  # an automated message not sent within this is dropped, not late
}


@dataclass(frozen=True, slots=True)
class Settings:
    values: dict[str, int]

    def __getitem__(self, key: str) -> int:
        return self.values[key]

    def quiet(self) -> tuple[str, str]:
        s, e = self.values["quiet_start"], self.values["quiet_end"]
        return f"{s // 100:02d}:{s % 100:02d}", f"{e // 100:02d}:{e % 100:02d}"


def _now() -> int:
    return int(time.time() * 1000)


def read(db: Database) -> Settings:
    return db.run(read_tx, write=False)


def read_tx(tx: Tx) -> Settings:
    values = dict(DEFAULTS)
    for k, v in tx.all("SELECT key, value FROM sms_settings"):
        if k in values and str(v).lstrip("-").isdigit():
            values[str(k)] = int(v)
    return Settings(values)


def save(db: Database, actor: Operator, values: dict[str, int]) -> Settings:
    actor.require("messages")
    for k, v in values.items():
        if k not in DEFAULTS or type(v) is not int or v < 0:
            raise ClubError("bad_setting", f"{clean(k, 40)}: a whole number", "مقدار نامعتبر است.")
        if k in ("quiet_start", "quiet_end") and (v // 100 > 23 or v % 100 > 59):
            raise ClubError("bad_time", "a time like 22:00", "ساعتی مانند ۲۲:۰۰ وارد کنید.")
    if values.get("cap_days", 1) == 0 or values.get("send_rate_per_min", 1) == 0:
        raise ClubError("bad_setting", "the cap's days and the pace must be above zero",
                        "بازه سقف و سرعت ارسال باید بیش از صفر باشد.")  # fmt: skip

    def step(tx: Tx) -> None:
        for k, v in values.items():
            tx.execute(
                "INSERT INTO sms_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO "
                "UPDATE SET value = excluded.value",
                (k, str(v)),
            )
        audit.record(tx, actor.username, "messages.settings", "messages", dict(values))

    db.run(step)
    return read(db)


# -- templates --------------------------------------------------------------------------


def templates(db: Database) -> dict[str, dict[str, Any]]:
    """Every automated message (and custom occasion): its text (the default until saved),
    on or off, its worst-case length."""
    saved = {str(r[0]): (str(r[1]), bool(r[2])) for r in db.read(
        "SELECT key, text, enabled FROM sms_templates")}  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    keys = list(TRIGGERS) + [f"occasion:{o['key']}" for o in occasions(db)]
    for key in keys:
        en, fa, default = TRIGGERS.get(key, (key, key, "{name} عزیز، ..."))
        text, on = saved.get(key, (default, False))
        out[key] = {"en": en, "fa": fa, "text": text, "enabled": on, "length": length_of(text)}
    return out


def length_of(text: str) -> dict[str, Any]:
    """How long a template's messages get at worst (every placeholder at its widest)."""
    try:
        worst = Template.compile(text).worst_case()
    except TemplateError as e:
        return {"error_en": e.en, "error_fa": e.fa}
    return {"units": worst.units, "parts": worst.parts, "encoding": worst.encoding,
            "remaining": worst.remaining}  # fmt: skip


def template(tx: Tx, key: str) -> Template | None:
    """The enabled template of ``key``, compiled; None when it is off."""
    row = tx.one("SELECT text, enabled FROM sms_templates WHERE key = ?", (key,))
    if row is None or not row[1]:
        return None
    return Template.compile(str(row[0]))


def save_template(db: Database, actor: Operator, key: str, text: str, enabled: bool) -> None:
    actor.require("messages")
    if key not in TRIGGERS and not key.startswith("occasion:"):
        raise ClubError("bad_template", "no such message", "چنین پیامی نیست.")
    try:
        Template.compile(text)
    except TemplateError as e:
        raise ClubError("bad_template", e.en, e.fa) from e

    def step(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO sms_templates (key, text, enabled, updated_by, updated_at) VALUES "
            "(?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET text = excluded.text, enabled = "
            "excluded.enabled, updated_by = excluded.updated_by, updated_at = "
            "excluded.updated_at",
            (key, text, int(enabled), actor.username, _now()),
        )
        audit.record(tx, actor.username, "messages.template", f"template:{key}",
                     {"enabled": enabled, "text": text})  # fmt: skip

    db.run(step)


# -- occasions --------------------------------------------------------------------------


def occasions(db: Database) -> list[dict[str, Any]]:
    """The operator's own occasions (the calendar's are built in)."""
    rows = db.read("SELECT key, fa, en, month, day, year FROM sms_occasions ORDER BY month, day")
    return [dict(zip(("key", "fa", "en", "month", "day", "year"), r, strict=True)) for r in rows]


def add_occasion(db: Database, actor: Operator, key: str, fa: str, en: str, date: str,
                 every_year: bool) -> None:  # fmt: skip
    """An occasion of the operator's (a store's anniversary, a campaign day): a Jalali date,
    every year or once."""
    actor.require("messages")
    k = key.strip().lower()
    if (
        not k
        or not is_clean(k, 32)
        or not all(c.isalnum() or c in "_-" for c in k)
        or not (k.isascii())
    ):
        raise ClubError("bad_key", "a short id: letters, digits, - and _", "شناسه کوتاه لاتین.")
    if k in ("nowruz", "yalda", "mothers_day"):
        raise ClubError("exists", "that occasion is built in", "این مناسبت از پیش هست.")
    y, m, d = parse_jalali(date)
    if not (fa.strip() and en.strip()):
        raise ClubError("no_name", "name it in Persian and English", "نام فارسی و انگلیسی.")

    def step(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO sms_occasions (key, fa, en, month, day, year) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET fa = excluded.fa, en = excluded.en, month = "
            "excluded.month, day = excluded.day, year = excluded.year",
            (k, clean(fa, 60), clean(en, 60), m, d, None if every_year else y),
        )
        audit.record(tx, actor.username, "messages.occasion", f"occasion:{k}",
                     {"date": f"{y}/{m}/{d}", "every_year": every_year})  # fmt: skip

    db.run(step)


def override_date(db: Database, actor: Operator, key: str, year: int, date: str) -> None:
    """This year's date of ``key`` set by hand (Mother's Day by moon sighting)."""
    actor.require("messages")
    y, m, d = parse_jalali(date)
    if y != year:
        raise ClubError("bad_year", "the date is in another year", "تاریخ در سال دیگری است.")

    def step(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO sms_occasion_dates (key, year, day) VALUES (?, ?, ?) ON CONFLICT "
            "(key, year) DO UPDATE SET day = excluded.day",
            (key, year, int(jalali.to_days(y, m, d))),
        )
        audit.record(tx, actor.username, "messages.occasion_date", f"occasion:{key}",
                     {"year": year, "date": f"{y}/{m}/{d}"})  # fmt: skip

    db.run(step)


def date_overrides(tx: Tx) -> dict[tuple[str, int], int]:
    return {(str(r[0]), int(r[1])): int(r[2]) for r in tx.all(
        "SELECT key, year, day FROM sms_occasion_dates")}  # fmt: skip


def parse_jalali(text: str) -> tuple[int, int, int]:
    t = text.strip().translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")).replace("/", "-")
    try:
        y, m, d = (int(x) for x in t.split("-"))
        jalali.to_days(y, m, d)
    except (ValueError, CoreError):
        raise ClubError("bad_date", "a Jalali date like 1405/09/30",
                        "تاریخی مانند ۱۴۰۵/۰۹/۳۰ وارد کنید.") from None  # fmt: skip
    return y, m, d
