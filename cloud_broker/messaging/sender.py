"""The sender: takes due messages from the outbox, asks the rules (policy.py), writes each
in its template with the member's values as they are now, hands it to the gateway, and
writes down what happened; polls delivery reports.

* Retries: a transient error (rate limited, the gateway's server, the network, a timeout
  whose request may have arrived when the gateway drops repeated references) puts the
  message back with a capped exponential backoff and jitter (or the gateway's own
  ``Retry-After``); after ``MAX_ATTEMPTS`` it fails.  A permanent error (an invalid number,
  a refused request) fails it at once.  A pausing error (the key refused, no credit) puts
  it back and pauses the sender for ``PAUSE_S`` with an alert: nothing is dropped.
* Pace: campaigns go out at most at their ``rate_per_min``, every message at most at
  ``send_rate_per_min`` (settings); automated messages first, a campaign never starves them.
* Cost: what the gateway says a message cost, else its parts at ``part_price_rials``.
* A member whose number the gateway reports ``blocked`` (they answered «۱۱») is opted out.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx, chunks, marks
from cloud_broker.messages.gateway import DeliveryStatus, Gateway, GatewayError, mask_number
from cloud_broker.messages.text import Template, TemplateError, measure
from cloud_broker.messaging import outbox, policy, settings
from cloud_broker.messaging.outbox import Message
from edge.core import jalali
from edge.core.ruleset import RuleSet
from edge.core.text import fa_digits
from edge.sanitize import clean

log = logging.getLogger("cloud_broker.messaging")

MAX_ATTEMPTS = 10
BACKOFF_S = 30
BACKOFF_CAP_S = 30 * 60
PAUSE_S = 300
LEASE_MS = 120_000  # a row claimed longer than this by a sender that is gone


def backoff_ms(attempts: int, retry_after: float | None = None) -> int:
    """Capped exponential backoff with jitter (so a fleet of retries does not return at
    the same instant); the gateway's Retry-After when it gave one."""
    if retry_after is not None and retry_after > 0:
        return int(min(retry_after, BACKOFF_CAP_S) * 1000)
    base = min(BACKOFF_CAP_S, BACKOFF_S * 2 ** max(0, attempts - 1))
    return int(base * 1000 * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not a secret


@dataclass
class Bucket:
    """At most ``per_min`` events a minute, in bursts of at most a second's worth."""

    per_min: int
    tokens: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def take(self, want: int) -> int:
        now = time.monotonic()
        cap = max(1.0, self.per_min / 60)
        self.tokens = min(cap, self.tokens + (now - self.at) * self.per_min / 60)
        self.at = now
        got = min(want, int(self.tokens))
        self.tokens -= got
        return got


class Sender:
    def __init__(
        self, db: Database, gateway: Gateway, rules: Callable[[], RuleSet], worker: str,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.db = db
        self.gw = gateway
        self.rules = rules
        self.worker = worker
        self.clock = clock
        self.paused_until = 0.0
        self.buckets: dict[int | None, Bucket] = {}
        self.stats = {"sent": 0, "failed": 0, "skipped": 0, "held": 0, "retried": 0}
        self._templates: dict[str, Template | None] = {}

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- one round ----------------------------------------------------------------------

    def step(self, batch: int = 50) -> int:
        """Send what is due (at the pace allowed); how many rows were handled."""
        if self.clock() < self.paused_until:
            return 0
        conf = settings.read(self.db)
        overall = self._bucket(None, conf["send_rate_per_min"])
        allowed = overall.take(batch)
        if not allowed:
            return 0
        msgs = outbox.claim(self.db, self.worker, self.now_ms(), allowed)
        overall.tokens += allowed - len(msgs)  # what was not used is not spent
        if not msgs:
            return 0
        msgs = self._paced(msgs)
        members = self.db.run(lambda tx: outbox.members_of(tx, [m.member for m in msgs]),
                              write=False)  # fmt: skip
        rs = self.rules()
        self._templates = {}
        for m in msgs:
            if self.clock() < self.paused_until:  # a pausing error on an earlier message
                until = int(self.paused_until * 1000)
                self.db.run(partial(outbox.release, msg_id=m.id, not_before=until, reason="paused"))
                continue
            self._one(m, members.get(m.member), rs, conf)
        return len(msgs)

    def _bucket(self, campaign: int | None, per_min: int) -> Bucket:
        b = self.buckets.get(campaign)
        if b is None or b.per_min != per_min:
            b = self.buckets[campaign] = Bucket(per_min, tokens=max(1.0, per_min / 60))
        return b

    def _paced(self, msgs: list[Message]) -> list[Message]:
        """Campaign rows beyond their campaign's pace go back to the queue for a second."""
        rates = self._campaign_rates({m.campaign_id for m in msgs if m.campaign_id})
        keep, back = [], []
        for m in msgs:
            if m.campaign_id is None or self._bucket(
                m.campaign_id, rates.get(m.campaign_id, 60)
            ).take(1):
                keep.append(m)
            else:
                back.append(m)
        if back:
            later = self.now_ms() + 1000

            def step(tx: Tx) -> None:
                for m in back:
                    outbox.release(tx, m.id, later)

            self.db.run(step)
        return keep

    def _campaign_rates(self, ids: set[int]) -> dict[int, int]:
        if not ids:
            return {}
        rows = self.db.read(
            f"SELECT id, rate_per_min, state FROM sms_campaigns WHERE id IN ({marks(len(ids))})",
            sorted(ids),
        )
        return {int(r[0]): int(r[1]) if r[2] == "sending" else 0 for r in rows}

    def _template(self, tx: Tx, m: Message) -> Template | None:
        key = f"campaign:{m.campaign_id}" if m.campaign_id else m.kind
        if key not in self._templates:
            if m.campaign_id:
                row = tx.one("SELECT text FROM sms_campaigns WHERE id = ?", (m.campaign_id,))
                self._templates[key] = Template.compile(str(row[0])) if row else None
            else:
                self._templates[key] = settings.template(tx, m.kind)
        return self._templates[key]

    def _one(self, m: Message, member: Any, rs: RuleSet, conf: settings.Settings) -> None:
        now = self.now_ms()

        def prepare(tx: Tx) -> str | None:
            d = policy.decide(tx, m, member, conf, now)
            if d.act == "skip":
                outbox.close(tx, m.id, "skipped", d.reason)
                self.stats["skipped"] += 1
                return None
            if d.act == "hold":
                outbox.release(tx, m.id, d.until, d.reason)
                self.stats["held"] += 1
                return None
            tmpl = self._template(tx, m)
            if tmpl is None:
                outbox.close(tx, m.id, "skipped", "template_off")
                self.stats["skipped"] += 1
                return None
            try:
                return tmpl.render(_values(tx, m, member, rs))
            except TemplateError as e:
                outbox.close(tx, m.id, "skipped", f"template: {e.en}")
                self.stats["skipped"] += 1
                return None

        text = self.db.run(prepare)
        if text is None:
            return
        try:
            res = self.gw.send(m.phone, text, ref=f"sms-{m.id}")
        except GatewayError as e:
            self._failed(m, e)
            return
        parts = measure(text).parts
        cost = res.cost_rials if res.cost_rials is not None else parts * conf["part_price_rials"]
        self.db.run(lambda tx: outbox.close(
            tx, m.id, "sent", None, text=text, parts=parts, provider=self.gw.name,
            provider_id=res.provider_id, cost_rials=cost, status=str(res.status),
            status_at=now, sent_at=now))  # fmt: skip
        self.stats["sent"] += 1

    def _failed(self, m: Message, e: GatewayError) -> None:
        now = self.now_ms()
        why = clean(f"{e.code}: {e.en}", 200)
        if e.pauses:
            self.paused_until = self.clock() + PAUSE_S
            log.error("sms paused for %d s: %s", PAUSE_S, e.en)

            def pause(tx: Tx) -> None:
                outbox.release(tx, m.id, now + PAUSE_S * 1000, why)
                _alert(tx, "critical", "sms_paused", f"{why}; sending paused for {PAUSE_S} s")

            self.db.run(pause)
            return
        if e.ambiguous and not self.gw.refs_deduplicated:
            # the gateway may have it: sending again could reach the member twice
            self.db.run(lambda tx: outbox.close(tx, m.id, "ambiguous", why))
            self.stats["failed"] += 1
            log.warning("sms to %s ambiguous (not sent again): %s", mask_number(m.phone), why)
            return
        if (e.transient or e.ambiguous) and m.attempts < MAX_ATTEMPTS:
            later = now + backoff_ms(m.attempts, getattr(e, "retry_after", None))
            self.db.run(lambda tx: outbox.release(tx, m.id, later, why))
            self.stats["retried"] += 1
            return
        state = "failed"
        self.db.run(lambda tx: outbox.close(tx, m.id, state, why))
        self.stats["failed"] += 1
        log.warning("sms to %s %s: %s", mask_number(m.phone), state, why)

    # -- delivery reports -----------------------------------------------------------------

    def poll_reports(self, limit: int = 500) -> int:
        rows = outbox.unsettled_reports(self.db, limit)
        if not rows:
            return 0
        by_provider = {pid: mid for mid, pid in rows}
        try:
            got = self.gw.status(list(by_provider))
        except GatewayError as e:
            log.warning("delivery reports not read: %s", e.en)
            return 0
        statuses = {by_provider[pid]: str(st) for pid, st in got.items() if pid in by_provider}
        outbox.report(self.db, statuses)
        blocked = [mid for mid, st in statuses.items() if st == DeliveryStatus.BLOCKED]
        if blocked:
            self.db.run(lambda tx: _opt_out_blocked(tx, blocked))
        return len(statuses)


def _values(tx: Tx, m: Message, member: Any, rs: RuleSet) -> dict[str, object]:
    tier = next((t for t in rs.tiers if t.id == member[4]), None)
    values: dict[str, object] = {
        "name": clean(str(member[1]), 40) if member[1] else "مشتری",
        "points": int(member[2]),
        "balance": max(0, int(member[3])),
        "tier": tier.fa if tier is not None else str(member[4] or ""),
        "earned": int(m.params.get("earned", 0)),
        "expiring": int(m.params.get("expiring", 0)),
        "expires": fa_digits(jalali.format_date(int(m.params.get("expires_day", 0)))),
        "coupon": str(m.params.get("coupon", "")),
        "store": "",
    }
    store = m.params.get("store")
    if store:
        row = tx.one("SELECT name_fa FROM stores WHERE store = ?", (store,))
        values["store"] = str(row[0]) if row else str(store)
    if m.campaign_id:
        row = tx.one("SELECT coupon FROM sms_campaigns WHERE id = ?", (m.campaign_id,))
        if row and row[0]:
            values["coupon"] = str(row[0])
    return values


def _alert(tx: Tx, severity: str, kind: str, detail: str) -> None:
    tx.execute(
        "INSERT INTO alerts (at, severity, kind, member, device, seq, detail) VALUES "
        "(?, ?, ?, NULL, NULL, NULL, ?)",
        (outbox.now_ms(), severity, kind, detail),
    )


def _opt_out_blocked(tx: Tx, msg_ids: list[int]) -> None:
    for part in chunks(msg_ids):
        for (member,) in tx.all(
            f"SELECT DISTINCT member FROM sms_outbox WHERE id IN ({marks(len(part))})", part
        ):
            n = tx.execute(
                "UPDATE members SET sms_opt_out = 1 WHERE member = ? AND sms_opt_out = 0",
                (member,),
            ).rowcount
            if n:
                audit.record(
                    tx, "system", "member.sms_opt_out", f"member:{member}",
                    {"because": "the gateway reports the number blocks the line"},
                )  # fmt: skip


def run(
    sender: Sender, stop: threading.Event, jobs: Callable[[], None] | None = None,
    reports_every: float = 30.0,
) -> None:  # fmt: skip
    """Until ``stop``: recover rows a dead sender left, run ``jobs`` (triggers, campaigns),
    send, read delivery reports."""
    last_recover = last_reports = last_jobs = 0.0
    while not stop.is_set():
        now = time.monotonic()
        try:
            if now - last_recover > 10:
                last_recover = now
                n = outbox.recover(sender.db, LEASE_MS, sender.gw.refs_deduplicated)
                if n:
                    log.warning("%d messages a stopped sender held are back in the queue", n)
            if jobs is not None and now - last_jobs > 2:
                last_jobs = now
                jobs()
            done = sender.step()
            if now - last_reports > reports_every:
                last_reports = now
                sender.poll_reports()
        except sender.db.errors as e:
            log.warning("the ledger refused (tried again): %s", e)
            done = 0
        if not done:
            stop.wait(0.5)
