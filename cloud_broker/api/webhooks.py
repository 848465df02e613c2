"""Webhooks: the chain registers URLs for events; head office delivers each event to each URL
that wants it, signed, retried, logged, and replayable from the console.

Events (``type``): ``member.enrolled``, ``sale.reconciled``, ``tier.changed``,
``points.expiring`` (members whose points expire in the next 7 days, once per member and
expiry day) and ``coupon.redeemed``.  The dispatcher (``python -m cloud_broker webhooks run``)
reads them from the ledger behind marks (journals, tier changes), each once (``ref`` is
unique), and fans each out to a delivery per endpoint (unique per endpoint and event).

A delivery is a POST of ``{"id", "type", "created", "data"}`` with
``X-Loyalty-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` keyed by the
endpoint's secret; a receiver checks the signature and that ``t`` is recent, and dedupes on
``id``.  2xx is delivered; anything else, a timeout or a refused connection is retried after
30 s, doubling to an hour, with jitter, until 25 hours have passed (then ``failed``).  Each
attempt's status and the start of the answer are kept.

An endpoint's secret is never stored: it is HMAC(master key, "webhook:<id>"), the master key
in a file of mode 0600 or ``$LOYALTY_WEBHOOK_KEY`` (shown once when the endpoint is added)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from edge.core import record as R
from edge.protocol.record import parse
from edge.sanitize import clean

log = logging.getLogger("cloud_broker.webhooks")
EVENTS = ("member.enrolled", "sale.reconciled", "tier.changed", "points.expiring",
          "coupon.redeemed")  # fmt: skip
FIRST_RETRY_S = 30
MAX_RETRY_S = 3600
GIVE_UP_S = 25 * 3600
EXPIRING_DAYS = 7
OFFSET_MIN = 210


def _now() -> int:
    return int(time.time() * 1000)


def secret_for(master: bytes, webhook_id: int) -> str:
    return hmac.new(master, f"webhook:{webhook_id}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, ts: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(ts).encode() + b"." + body, hashlib.sha256)
    return f"t={ts},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now_s: int, tolerance_s: int = 300) -> bool:
    """What a receiver does (and the tests' receiver): the signature and its age."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        ts = int(parts.get("t", ""))
    except ValueError:
        return False
    want = sign(secret, ts, body).split("v1=")[1]
    return abs(now_s - ts) <= tolerance_s and hmac.compare_digest(want, parts.get("v1", ""))


def add(db: Database, master: bytes, actor: Operator, url: str, events: list[str]
        ) -> tuple[int, str]:  # fmt: skip
    """Register ``url`` for ``events``; (its id, its secret: shown this once)."""
    actor.require("operators")
    u = urlsplit(url)
    if u.scheme not in ("https", "http") or not u.netloc or len(url) > 500:
        raise ClubError("bad_url", "an http(s) URL", "نشانی باید با http یا https آغاز شود.")
    bad = [e for e in events if e not in EVENTS]
    if bad or not events:
        raise ClubError("bad_event", f"events are some of {', '.join(EVENTS)}",
                        "نام رویداد نامعتبر است.")  # fmt: skip

    def run(tx: Tx) -> int:
        wid = tx.next_id("webhooks")
        tx.execute("INSERT INTO webhooks (id, url, events, created_by, created_at) VALUES "
                   "(?, ?, ?, ?, ?)", (wid, url, json.dumps(sorted(set(events))),
                                       actor.username, _now()))  # fmt: skip
        audit.record(tx, actor.username, "webhook.add", f"webhook:{wid}",
                     {"url": url, "events": sorted(set(events))})  # fmt: skip
        return wid

    wid = db.run(run)
    return wid, secret_for(master, wid)


def listing(db: Database) -> list[dict[str, Any]]:
    rows = db.read("SELECT id, url, events, created_by, created_at, disabled_at FROM webhooks "
                   "ORDER BY id")  # fmt: skip
    keys = ("id", "url", "events", "created_by", "created_at", "disabled_at")
    out = [dict(zip(keys, r, strict=True)) for r in rows]
    for w in out:
        w["events"] = json.loads(w["events"])
    return out


def disable(db: Database, actor: Operator, webhook_id: int) -> None:
    actor.require("operators")

    def run(tx: Tx) -> None:
        tx.execute("UPDATE webhooks SET disabled_at = ? WHERE id = ?", (_now(), webhook_id))
        tx.execute("UPDATE webhook_deliveries SET state = 'cancelled' WHERE webhook_id = ? AND "
                   "state = 'queued'", (webhook_id,))  # fmt: skip
        audit.record(tx, actor.username, "webhook.disable", f"webhook:{webhook_id}", {})

    db.run(run)


def replay(db: Database, actor: Operator, delivery_id: int) -> None:
    """Send a delivery again (after a receiver's bug is fixed): queued now, its attempts and
    its 25 hours counted afresh."""
    actor.require("operators")

    def run(tx: Tx) -> None:
        done = tx.execute("UPDATE webhook_deliveries SET state = 'queued', attempts = 0, "
                          "queued_at = ?, next_at = ? WHERE id = ?",
                          (_now(), _now(), delivery_id)).rowcount  # fmt: skip
        if done != 1:
            raise ClubError("no_delivery", "no such delivery", "چنین ارسالی نیست.")
        audit.record(tx, actor.username, "webhook.replay", f"delivery:{delivery_id}", {})

    db.run(run)


def deliveries(db: Database, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    where, args = ("WHERE d.state = ?", [state]) if state else ("", [])
    rows = db.read(
        "SELECT d.id, d.webhook_id, w.url, e.event, e.ref, d.state, d.attempts, d.next_at, "
        "d.last_status, d.last_response, d.last_at, d.delivered_at FROM webhook_deliveries d "
        f"JOIN webhooks w ON w.id = d.webhook_id JOIN webhook_events e ON e.id = d.event_id "
        f"{where} ORDER BY d.id DESC LIMIT ?",
        (*args, limit),
    )
    keys = ("id", "webhook_id", "url", "event", "ref", "state", "attempts", "next_at",
            "last_status", "last_response", "last_at", "delivered_at")  # fmt: skip
    return [dict(zip(keys, r, strict=True)) for r in rows]


# -- events from the ledger -----------------------------------------------------------------


def _mark(tx: Tx, name: str) -> int:
    row = tx.one("SELECT value FROM webhook_marks WHERE name = ?", (name,))
    return int(row[0]) if row else 0


def _set_mark(tx: Tx, name: str, value: int) -> None:
    tx.execute("INSERT INTO webhook_marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO "
               "UPDATE SET value = excluded.value", (name, value))  # fmt: skip


def _emit(tx: Tx, ref: str, event: str, data: dict[str, Any]) -> None:
    """One event (once per ``ref``) and a delivery to every live endpoint that wants it."""
    eid = tx.next_id("webhook_events")
    got = tx.execute(
        "INSERT INTO webhook_events (id, ref, event, payload, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (ref) DO NOTHING",
        (eid, ref, event, json.dumps(data, ensure_ascii=False, sort_keys=True), _now()),
    ).rowcount
    if got != 1:
        return
    for wid, events in tx.all("SELECT id, events FROM webhooks WHERE disabled_at IS NULL"):
        if event in json.loads(events):
            tx.execute("INSERT INTO webhook_deliveries (webhook_id, event_id, state, queued_at, "
                       "next_at) VALUES (?, ?, 'queued', ?, ?) ON CONFLICT DO NOTHING",
                       (int(wid), eid, _now(), _now()))  # fmt: skip


def scan(db: Database, batch: int = 500) -> int:
    """New events since the marks: enrolments, sales and coupon uses (journals), tier
    changes; how many were read."""

    def run(tx: Tx) -> int:
        last = _mark(tx, "journal")
        rows = tx.all(
            "SELECT j.id, j.kind, j.device, j.seq, j.member, j.day, r.raw, r.store FROM "
            "journals j LEFT JOIN records r ON r.journal_id = j.id WHERE j.id > ? AND j.kind IN "
            "('enroll', 'sale') ORDER BY j.id LIMIT ?",
            (last, batch),
        )
        top = int(tx.one("SELECT COALESCE(MAX(id), 0) FROM journals")[0])
        for _jid, kind, device, seq, member, day, raw, store in rows:
            if kind == "enroll" and member:
                _emit(tx, f"enroll:{member}", "member.enrolled",
                      {"member": member, "store": store, "day": int(day)})  # fmt: skip
            elif kind == "sale" and raw is not None:
                p = parse(bytes(raw)).payload
                a, pts = p[R.K_AMOUNTS], p[R.K_POINTS]
                _emit(tx, f"sale:{device}:{seq}", "sale.reconciled", {
                    "device": device, "seq": int(seq), "store": store, "member": member,
                    "subtotal": a[R.A_GROSS], "discount": a[R.A_DISCOUNT],
                    "paid": a[R.A_PAID], "points_earned": pts[R.P_EARNED],
                    "points_redeemed": pts[R.P_REDEEMED], "day": int(day)})  # fmt: skip
                used = tx.all("SELECT code FROM coupon_uses WHERE device = ? AND seq = ?",
                              (device, seq))  # fmt: skip
                for (code,) in used:
                    data = {"code": code, "member": member, "device": device, "seq": int(seq)}
                    _emit(tx, f"coupon:{code}:{device}:{seq}", "coupon.redeemed", data)
        # journals of other kinds move the mark too (the batch may hold none of ours)
        _set_mark(tx, "journal", int(rows[-1][0]) if len(rows) == batch else top)
        t_last = _mark(tx, "tier")
        tiers = tx.all("SELECT id, member, day, from_tier, to_tier, up FROM tier_changes WHERE "
                       "id > ? ORDER BY id LIMIT ?", (t_last, batch))  # fmt: skip
        for tid, member, day, frm, to, up in tiers:
            _emit(tx, f"tier:{tid}", "tier.changed", {"member": member, "from": frm, "to": to,
                                                      "up": bool(up), "day": int(day)})  # fmt: skip
        if tiers:
            _set_mark(tx, "tier", int(tiers[-1][0]))
        return len(rows) + len(tiers)

    return db.run(run)


def scan_expiring(db: Database, today: int) -> int:
    """Members whose points expire in the next week, once per member and expiry day."""

    def run(tx: Tx) -> int:
        rows = tx.all(
            "SELECT member, MIN(expires_day), SUM(remaining) FROM lots WHERE "
            "kind != 'overdraft' AND remaining > 0 AND expires_day > ? AND expires_day <= ? "
            "GROUP BY member",
            (today, today + EXPIRING_DAYS),
        )
        for member, day, points in rows:
            _emit(tx, f"expiring:{member}:{int(day)}", "points.expiring",
                  {"member": member, "points": int(points), "expires_day": int(day)})  # fmt: skip
        return len(rows)

    return db.run(run)


# -- delivery -------------------------------------------------------------------------------


def _backoff(attempts: int, rng: random.Random) -> int:
    base = min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** max(0, attempts - 1))
    return int(base * 1000 * (0.8 + 0.4 * rng.random()))


def deliver_due(
    db: Database,
    master: bytes,
    client: httpx.Client,
    limit: int = 50,
    rng: random.Random | None = None,
    now: Callable[[], int] = _now,
) -> int:
    """Send the deliveries that are due (each claimed first, so two dispatchers never send
    the same one at once); how many were attempted."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
    due = db.read(
        "SELECT d.id, d.attempts, w.id, w.url, e.id, e.event, e.payload, e.created_at, "
        "d.queued_at FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN "
        "webhook_events e ON e.id = d.event_id WHERE d.state = 'queued' AND d.next_at <= ? "
        "ORDER BY d.next_at LIMIT ?",
        (now(), limit),
    )
    done = 0
    for did, attempts, wid, url, eid, event, payload, created, queued_at in due:
        lease = now() + 60_000  # claimed for a minute: a dispatcher killed mid-send lets go

        def claim(tx: Tx, did: int = int(did), attempts: int = int(attempts),
                  lease: int = lease) -> int:  # fmt: skip
            return int(tx.execute(
                "UPDATE webhook_deliveries SET next_at = ?, attempts = ? WHERE id = ? AND "
                "state = 'queued' AND attempts = ?", (lease, attempts + 1, did, attempts),
            ).rowcount)  # fmt: skip

        got = db.run(claim)
        if got != 1:
            continue
        body = json.dumps({"id": f"evt_{eid}", "type": event,
                           "created": int(created) // 1000, "data": json.loads(payload)},
                          ensure_ascii=False, sort_keys=True).encode()  # fmt: skip
        ts = now() // 1000
        headers = {"Content-Type": "application/json", "User-Agent": "loyalty-webhooks/1",
                   "X-Loyalty-Event": event, "X-Loyalty-Delivery": str(did),
                   "X-Loyalty-Signature": sign(secret_for(master, int(wid)), ts, body)}  # fmt: skip
        status: int | None = None
        try:
            resp = client.post(str(url), content=body, headers=headers)
            status, text = resp.status_code, resp.text[:500]
        except httpx.HTTPError as e:
            text = f"{type(e).__name__}: {e}"[:500]
        ok = status is not None and 200 <= status < 300
        first = int(queued_at)
        if ok:
            state, next_at = "delivered", now()
        elif now() - first > GIVE_UP_S * 1000:
            state, next_at = "failed", now()
        else:
            state, next_at = "queued", now() + _backoff(attempts + 1, rng)
        row = (state, next_at, status, clean(text, 500), now(), now() if ok else None, did)

        def record(tx: Tx, row: tuple[Any, ...] = row) -> None:
            tx.execute(
                "UPDATE webhook_deliveries SET state = ?, next_at = ?, last_status = ?, "
                "last_response = ?, last_at = ?, delivered_at = ? WHERE id = ?",
                row,
            )

        db.run(record)
        if not ok:
            log.info("webhook %s to %s: %s (%s)", event, clean(str(url), 80), status, state)
        done += 1
    return done


def run(db: Database, master: bytes, stop: threading.Event, every_s: float = 1.0,
        timeout_s: float = 10.0) -> None:  # fmt: skip
    """The dispatcher's loop: read events, send what is due, until ``stop``."""
    last_daily = 0.0
    with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
        while not stop.is_set():
            try:
                scan(db)
                if time.monotonic() - last_daily > 600:
                    last_daily = time.monotonic()
                    scan_expiring(db, int((time.time() + OFFSET_MIN * 60) // 86400))
                busy = deliver_due(db, master, client)
            except Exception:
                log.exception("webhook dispatcher step failed (tried again)")
                busy = 0
            if not busy:
                stop.wait(every_s)
