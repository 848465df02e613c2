"""The reconciler service: MQTT in, ledger, acks and streams out.

paho-mqtt runs its network loop in its own thread and hands messages to a queue; the
service thread takes them in batches (up to ``batch_max``, waiting ``batch_wait`` for a
batch to fill), lets :class:`~cloud_broker.reconcile.reconciler.Reconciler` commit them, and only
then

* acknowledges the MQTT messages (``manual_ack=True``: a message is PUBACKed only after
  the ledger commit, so a crash before it means the broker delivers it again);
* publishes each device's cumulative ack (retained), gap requests, the reconciled stream
  and member snapshots.

The session is persistent (``clean_start=False``, fixed client id), so records published
while head office is down wait in the broker.  With ``share_group`` several service
processes split the records (``$share/GROUP/...``); idempotency and ordering live in the
database, so that is safe.

A batch that fails with a database error is retried with back-off; a batch that fails
otherwise (a record the code cannot handle), or keeps failing, is processed one message at
a time, and a message that still fails is quarantined as ``internal_error`` so it cannot
block good records.  Screening workers that die are replaced (or, if that fails, the
service screens in its own process).

Provisioning requests (``loyalty/v1/+/enroll/+``: enroll, rotate, decommission) take a
path of their own: the paho thread queues them apart from records, the service thread
answers each in one ledger transaction (cloud_broker.registry.enrollment), publishes the reply
on ``.../enroll/{device}/reply`` and only then acknowledges the request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud_broker.ledger import partitions, rulebooks
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.ledger.schema import MIGRATIONS
from cloud_broker.reconcile.reconciler import Incoming, Outcome, Reconciler, Screened, run_expiry
from cloud_broker.reconcile.screen import ProcessScreener
from cloud_broker.registry import enrollment
from cloud_broker.registry import status as device_status
from edge.backoff import Backoff
from edge.core.ruleset import RuleSet
from edge.protocol import messages, snapshots, topics
from edge.protocol.mqtt import BrokerConfig, connect, new_client

log = logging.getLogger("cloud_broker.reconcile.service")

STREAM_BATCH = 500  # reconciled entries per stream message


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    broker: BrokerConfig
    ledger_url: str
    client_id: str = "loyalty-reconciler"
    share_group: str | None = None
    batch_max: int = 1000
    batch_wait: float = 0.02
    verify_threads: int = 2
    gap_interval: float = 3.0
    expiry_interval: float = 3600.0
    snapshots: bool = True
    snapshot_interval: float = 1.0  # members changed meanwhile go out together
    utc_offset_min: int = 210
    screen_workers: int = 1  # processes that decode and verify; 0: in this process
    progress_interval: float = 2.0  # heartbeat to terminals while records are being drained
    # head office's rules key: signed bundles seen on the rules topics are kept (rulebooks)
    rules_pub: Ed25519PublicKey | None = None


class Service:
    def __init__(self, cfg: ServiceConfig, rs: RuleSet) -> None:
        self.cfg = cfg
        self.rs = rs
        self.db = Database(cfg.ledger_url)
        self.db.migrate(MIGRATIONS)
        self.reconciler = Reconciler(
            self.db, rs, verify_threads=cfg.verify_threads, utc_offset_min=cfg.utc_offset_min
        )
        self.screener = (
            ProcessScreener(cfg.ledger_url, rs, cfg.screen_workers)
            if cfg.screen_workers > 0
            else None
        )
        self._q: queue.Queue[Incoming] = queue.Queue()
        self._prov: queue.Queue[Incoming] = queue.Queue()  # provisioning requests
        self._bundles: queue.Queue[Incoming] = queue.Queue()  # rules bundles published
        self._statuses: queue.Queue[Incoming] = queue.Queue()  # what terminals say of themselves
        self._last_outbox_scan = 0.0
        self._last_queue_scan = 0.0
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._stream_inflight: dict[int, list[int]] = {}
        self._stream_done: list[int] = []
        self._snap_pending: set[str] = set()
        self._last_snap = 0.0
        self._last_gap: dict[str, tuple[int, float]] = {}
        self._last_gap_scan = 0.0
        self._last_expiry = 0.0
        self._handled: dict[str, int] = {}  # tenant -> messages handled since the heartbeat
        self._last_progress = 0.0
        self.stats = {
            "applied": 0,
            "duplicates": 0,
            "held": 0,
            "quarantined": 0,
            "batches": 0,
            "messages": 0,
        }
        self._client = self._make_client()

    # -- MQTT -----------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        c = new_client(
            self.cfg.broker,
            self.cfg.client_id,
            manual_ack=True,
            will_topic=topics.head_office(self.cfg.client_id),
            will_payload=messages.encode_status("offline", "lost"),
        )
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(1, 2)  # one client: back within 2 s of a restarted broker
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        return c

    def _topic(self, t: str | None = None) -> str:
        t = t or topics.records_all("+")
        return f"$share/{self.cfg.share_group}/{t}" if self.cfg.share_group else t

    def _on_connect(self, c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker %s refused the connection: %s", self.cfg.broker.url, reason)
            return
        c.subscribe(self._topic(), qos=1)
        c.subscribe(self._topic(topics.enroll_all("+")), qos=1)
        if self.cfg.rules_pub is not None:  # retained: every process sees the newest
            c.subscribe(topics.rules("+"), qos=1)
        c.subscribe(topics.status_all("+"), qos=1)  # retained: each terminal's last word
        # terminals hold their resend timers while head office is offline (its last will)
        c.publish(
            topics.head_office(self.cfg.client_id),
            messages.encode_status("online"),
            qos=1,
            retain=True,
        )
        self._connected.set()
        log.info("connected to %s, subscribed to %s", self.cfg.broker.url, self._topic())

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from %s: %s (paho reconnects)", self.cfg.broker.url, reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        incoming = Incoming(msg.topic, bytes(msg.payload), (msg.mid, msg.qos))
        if topics.parse_enroll(msg.topic) is not None:
            self._prov.put(incoming)
        elif msg.topic.endswith("/rules"):
            self._bundles.put(incoming)
        elif topics.parse_status(msg.topic) is not None:
            self._statuses.put(incoming)
        else:
            self._q.put(incoming)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        with self._lock:
            ids = self._stream_inflight.pop(mid, None)
            if ids is not None:
                self._stream_done.extend(ids)

    # -- the service loop -------------------------------------------------------------------

    def start(self) -> None:
        backoff = Backoff(f"reconciler to {self.cfg.broker.url}", log, cap=10)
        while not self._stop.is_set():
            try:
                connect(self._client, self.cfg.broker)
                break
            except OSError as e:
                time.sleep(backoff.failed(str(e)))
        backoff.succeeded()
        self._client.loop_start()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Process until stop(); call start() first.

        With screening workers, batch N+1 is screened while batch N is committed: one batch
        is applied per turn, after the next one has been handed to the screeners, so that
        they never wait for the ledger (applying every batch already screened at once
        would leave them idle while it commits)."""
        self._publish_stream()
        pending: deque[tuple[list[Incoming], Future[Any] | None]] = deque()
        depth = 1 + (self.cfg.screen_workers if self.screener is not None else 0)
        while not self._stop.is_set():
            batch = self._take(0.002 if pending else 0.2)
            if batch:
                pending.append((batch, self._submit(batch)))
            if pending and (not batch or len(pending) > depth - 1 or pending[0][1] is None):
                b, f = pending.popleft()
                self._handle(b, f)
            self._provisioning()
            self._new_bundles()
            self._device_statuses()
            self._housekeeping()
        if self.screener is not None:
            self.screener.close()
        info = self._client.publish(
            topics.head_office(self.cfg.client_id),
            messages.encode_status("offline", "stopped"),
            qos=1,
            retain=True,
        )
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()
        self.reconciler.close()
        self.db.close()

    def _take(self, wait: float) -> list[Incoming]:
        try:
            first = self._q.get(timeout=wait)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.cfg.batch_wait
        while len(batch) < self.cfg.batch_max:
            try:
                batch.append(self._q.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _submit(self, batch: list[Incoming]) -> Future[Any] | None:
        """Hand a batch to the screening workers (None: it is screened here).  A pool
        whose worker died is replaced; if that fails too, screening stays here."""
        if self.screener is None:
            return None
        try:
            return self.screener.submit(batch)
        except RuntimeError as e:  # BrokenProcessPool: a worker died (OOM killer, a crash)
            log.error("the screening workers stopped (%s); starting new ones", e)
        self.screener.close()
        try:
            self.screener = ProcessScreener(self.cfg.ledger_url, self.rs, self.cfg.screen_workers)
            return self.screener.submit(batch)
        except (RuntimeError, OSError):
            log.exception("cannot start screening workers; screening in this process")
            self.screener = None
            return None

    def _screened(self, batch: list[Incoming], fut: Future[Any] | None) -> Screened:
        if fut is not None and self.screener is not None:
            try:
                return self.screener.collect(batch, fut.result())
            except Exception:
                log.exception("screening worker failed; screening this batch here")
        return self.reconciler.screen(batch)

    def _handle(self, batch: list[Incoming], fut: Future[Any] | None = None) -> None:
        screened: Screened | None = None
        backoff = Backoff("ledger commit", log, base=0.2, cap=5)
        for _attempt in range(5):
            try:
                if screened is None:
                    screened = self._screened(batch, fut)
                out = self.reconciler.apply(screened)
            except self.db.errors as e:  # the database, not the records: worth a retry
                if self._stop.is_set():
                    return
                time.sleep(backoff.failed(f"{type(e).__name__}: {e}"))
                continue
            except Exception:
                log.exception("a batch of %d fails; processing one message at a time", len(batch))
                break
            backoff.succeeded()
            self._after_commit(batch, out)
            return
        else:
            log.error("a batch of %d keeps failing; processing one message at a time", len(batch))
        for msg in batch:
            part = screened.of(msg) if screened is not None else None
            try:
                out = self.reconciler.apply(
                    part if part is not None else self.reconciler.screen([msg])
                )
            except Exception as e:
                log.exception("quarantining a message that fails processing")
                self._quarantine_internal(msg, e, part)
                out = Outcome()
            self._after_commit([msg], out)

    def _provisioning(self) -> None:
        """Answer the enroll/rotate/decommission requests that arrived."""
        while True:
            try:
                msg = self._prov.get_nowait()
            except queue.Empty:
                return
            try:
                answer = enrollment.handle(self.db, msg.topic, msg.raw)
            except Exception:
                log.exception("a provisioning request on %s failed; not answered", msg.topic)
                answer = None
            if answer is not None:
                self._client.publish(answer[0], answer[1], qos=1)
            mid, qos = msg.token
            if qos:
                self._client.ack(mid, qos)

    def _new_bundles(self) -> None:
        """Keep the rules bundles published meanwhile; apply what waited for them."""
        got = False
        while True:
            try:
                msg = self._bundles.get_nowait()
            except queue.Empty:
                break
            got = rulebooks.from_message(self.db, msg.raw, self.cfg.rules_pub) is not None or got
            mid, qos = msg.token
            if qos:
                self._client.ack(mid, qos)
        if got:
            self._retry_parked()

    def _device_statuses(self) -> None:
        while True:
            try:
                msg = self._statuses.get_nowait()
            except queue.Empty:
                return
            try:
                device_status.record(self.db, msg.topic, msg.raw)
            except self.db.errors as e:
                log.warning("a terminal's status was not kept (%s)", e)
            mid, qos = msg.token
            if qos:
                self._client.ack(mid, qos)

    def _rules_outbox(self) -> None:
        """Publish, retained, what the console queued (an approved programme bundle, the
        rules keys' endorsements), then forget it; records that waited for that bundle are
        applied now that it is kept."""
        if not self._connected.is_set():
            return
        rows = self.db.read("SELECT id, topic, raw FROM rules_outbox ORDER BY id LIMIT 20")
        for rid, topic, raw in rows:
            info = self._client.publish(str(topic), bytes(raw), qos=1, retain=True)
            info.wait_for_publish(10)
            if not info.is_published():
                log.warning("publishing %s did not complete: it is tried again", topic)
                return
            self.db.run(partial(_forget_outbox, rid=int(rid)))
            log.info("published %s (retained)", topic)
        if rows:
            self._retry_parked()

    def _queued_snapshots(self) -> None:
        """Members whose balances another process changed (the console's adjustments and
        merges): their snapshots go to the stores, then the queue rows go."""
        rows = self.db.read("SELECT id, member FROM snapshot_queue ORDER BY id LIMIT 5000")
        if not rows:
            return
        self._publish_snapshots(sorted({str(r[1]) for r in rows}))
        top = max(int(r[0]) for r in rows)
        self.db.run(lambda tx: tx.execute("DELETE FROM snapshot_queue WHERE id <= ?", (top,)))

    def _retry_parked(self) -> None:
        try:
            out = self.reconciler.retry_parked()
        except self.db.errors as e:
            log.warning("retrying held records failed (%s); next round", e)
            return
        if out.applied or out.quarantined:
            log.info("applied %d held records", out.applied)
        self._after_commit([], out)

    def _quarantine_internal(self, msg: Incoming, e: Exception, part: Screened | None) -> None:
        device: str | None = None
        seq: int | None = None
        if part is not None and part.verified:
            device, seq = part.verified[0].rec.device, part.verified[0].rec.seq
        elif part is not None and part.refused:
            device, seq = part.refused[0].device, part.refused[0].seq

        def step(tx: Tx) -> None:
            tx.execute(
                "INSERT INTO quarantine (received_at, topic, device, seq, code, reason, "
                "raw) VALUES (?, ?, ?, ?, 'internal_error', ?, ?)",
                (
                    int(time.time() * 1000),
                    msg.topic,
                    device,
                    seq,
                    f"{type(e).__name__}: {e}",
                    msg.raw,
                ),
            )

        self.db.run(step)

    def _after_commit(self, batch: list[Incoming], out: Outcome) -> None:
        c = self._client
        for msg in batch:
            if msg.token is not None:
                mid, qos = msg.token
                if qos:
                    c.ack(mid, qos)
        for device, (applied, h) in out.acks.items():
            # the registry's tenant, never a topic's: a refused message on another tenant's
            # topic that names this device must not steer its ack
            if applied:
                c.publish(
                    topics.ack(out.tenants[device], device),
                    messages.encode_ack(applied, h),
                    qos=1,
                    retain=True,
                )
        now = time.monotonic()
        for device, (first, last) in out.gaps.items():
            self._request_gap(device, first, last, now, out.tenants[device])
        if out.stream:
            self._publish_stream()
        if out.members and self.cfg.snapshots:
            self._snap_pending.update(out.members)
        for tenant in set(out.tenants.values()):
            self._handled[tenant] = self._handled.get(tenant, 0) + len(batch)
        for k in ("applied", "duplicates", "held", "quarantined"):
            self.stats[k] += getattr(out, k)
        self.stats["batches"] += 1
        self.stats["messages"] += len(batch)

    def _request_gap(self, device: str, first: int, last: int, now: float, tenant: str) -> None:
        if last < first:
            return  # the first held record is the next one: it waits for its rules
        prev = self._last_gap.get(device)
        if prev is not None and prev[0] == first and now - prev[1] < self.cfg.gap_interval:
            return
        self._last_gap[device] = (first, now)
        self._client.publish(
            topics.gap(tenant, device), messages.encode_gap([(first, last)]), qos=1
        )
        log.info("asked %s for records %d..%d", device, first, last)

    def _publish_stream(self) -> None:
        with self._lock:
            done, self._stream_done = self._stream_done, []
            inflight = {i for ids in self._stream_inflight.values() for i in ids}
        if done:  # the broker has them: nothing reads a published entry again
            marks = [(sid,) for sid in done]
            self.db.run(lambda tx: tx.executemany("DELETE FROM stream WHERE id = ?", marks))
        rows = self.db.read(
            "SELECT id, tenant, store, body FROM stream WHERE published = 0 ORDER BY id LIMIT 5000"
        )
        groups: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
        for sid, tenant, store, body in rows:
            if int(sid) not in inflight:
                groups.setdefault((tenant, store), []).append((int(sid), bytes(body)))
        for (tenant, store), items in groups.items():
            for i in range(0, len(items), STREAM_BATCH):
                chunk = items[i : i + STREAM_BATCH]
                payload = b'{"v":1,"entries":[' + b",".join(b for _, b in chunk) + b"]}"
                info = self._client.publish(topics.reconciled(tenant, store), payload, qos=1)
                with self._lock:
                    self._stream_inflight[info.mid] = [sid for sid, _ in chunk]

    def _publish_snapshots(self, members: list[str]) -> None:
        snaps = self.db.run(
            lambda tx: build_snapshots(tx, members, self.rs.window_days, self.cfg.utc_offset_min),
            write=False,
        )
        by_tenant: dict[str, list[snapshots.MemberSnapshot]] = {}
        for tenant, snap in snaps:
            by_tenant.setdefault(tenant, []).append(snap)
        now = int(time.time() * 1000)
        for tenant, items in by_tenant.items():
            for i in range(0, len(items), 500):
                self._client.publish(
                    topics.snapshot(tenant), snapshots.encode(items[i : i + 500], now), qos=1
                )

    def _heartbeat(self, now: float) -> None:
        """Tell each tenant's terminals that head office is working through records, so
        that a terminal whose records wait in the queue behind other stores' does not send
        them again when its resend timer runs out (edge.protocol.uplink).  Sent while this
        process handled that tenant's records since the last heartbeat; a tenant stays
        listed while records are still queued here."""
        if now - self._last_progress < self.cfg.progress_interval:
            return
        self._last_progress = now
        queued = self._q.qsize()
        wall = int(time.time() * 1000)
        for tenant, handled in list(self._handled.items()):
            if handled == 0 and queued == 0:
                del self._handled[tenant]  # quiet: terminals' own timers take over
                continue
            self._client.publish(
                topics.progress(tenant), messages.encode_progress(wall, handled, queued), qos=0
            )
            self._handled[tenant] = 0

    def _housekeeping(self) -> None:
        now = time.monotonic()
        self._heartbeat(now)
        if now - self._last_outbox_scan >= self.cfg.snapshot_interval:
            self._last_outbox_scan = now
            self._rules_outbox()
        if self.cfg.snapshots and now - self._last_queue_scan >= self.cfg.snapshot_interval:
            self._last_queue_scan = now
            self._queued_snapshots()
        if self._snap_pending and now - self._last_snap >= self.cfg.snapshot_interval:
            self._last_snap = now
            members, self._snap_pending = sorted(self._snap_pending), set()
            self._publish_snapshots(members)
        if now - self._last_gap_scan >= self.cfg.gap_interval:
            self._last_gap_scan = now
            self._publish_stream()
            # (a revoked device is asked only for records it signed before its cutoff)
            rows = self.db.read(
                "SELECT h.device, d.tenant, d.applied_through, MIN(h.seq) FROM "
                "held h JOIN devices d ON d.device = h.device WHERE h.seq > "
                "d.applied_through AND (d.status = 'active' OR d.applied_through < "
                "COALESCE(d.revoked_after_seq, 0)) GROUP BY h.device, d.tenant, "
                "d.applied_through"
            )
            parked = False
            for device, tenant, applied, first_held in rows:
                self._request_gap(device, int(applied) + 1, int(first_held) - 1, now, tenant)
                parked = parked or int(first_held) == int(applied) + 1
            if parked:  # a bundle may have been added by another process
                self._retry_parked()
        if now - self._last_expiry >= self.cfg.expiry_interval:
            self._last_expiry = now
            try:  # never hold the reconciler's inserts behind a long archive read
                made = self.db.run(
                    lambda tx: partitions.ensure(tx, int(time.time() * 1000), lock_timeout_ms=500),
                    retries=0,
                )
            except self.db.errors as e:  # busy: the next round tries again, months ahead
                log.warning("ledger partitions not made this time (tables busy): %s", e)
                made = []
            if made:  # PostgreSQL: the coming months' partitions, made ahead of them
                log.info("made ledger partitions %s", ", ".join(made))
            expired = run_expiry(self.db, self.rs, utc_offset_min=self.cfg.utc_offset_min)
            if expired:
                log.info("expired %d points of %d members", sum(expired.values()), len(expired))
                if self.cfg.snapshots:
                    self._publish_snapshots(sorted(expired))


def build_snapshots(
    tx: Tx, members: list[str], window_days: int, utc_offset_min: int = 210
) -> list[tuple[str, snapshots.MemberSnapshot]]:
    today = (int(time.time()) + utc_offset_min * 60) // 86400
    out = []
    for part in tx.parts(members):
        q, args = tx.among("member", part)
        rows = tx.all(
            "SELECT member, tenant, points, wallet, tier, visits, birthday, birthday_claimed, "
            "version, device_seqs, anniversary, anniversary_claimed, referral_code FROM members "
            f"WHERE {q}",
            args,
        )
        spend: dict[str, list[tuple[int, int]]] = {}
        for m, d, a in tx.all(
            f"SELECT member, day, amount FROM member_spend WHERE {q} "
            "AND day > ? ORDER BY member, day",
            (*args, today - window_days),
        ):
            spend.setdefault(m, []).append((int(d), int(a)))
        cards: dict[str, list[str]] = {}
        for m, c in tx.all(f"SELECT member, card FROM member_cards WHERE {q} ORDER BY card", args):
            cards.setdefault(m, []).append(str(c))
        coupons: dict[str, list[str]] = {}
        for m, c in tx.all(
            f"SELECT DISTINCT member, code FROM coupon_uses WHERE {q} ORDER BY code",
            args,
        ):
            coupons.setdefault(m, []).append(str(c))
        held: dict[str, list[str]] = {}
        for m, c in tx.all(
            f"SELECT member, code FROM member_coupons WHERE {q} AND used_at IS NULL "
            "AND revoked_at IS NULL AND (valid_until IS NULL OR valid_until >= ?) ORDER BY code",
            (*args, today),
        ):
            held.setdefault(m, []).append(str(c))
        for r in rows:
            m = str(r[0])
            out.append(
                (
                    str(r[1]),
                    snapshots.MemberSnapshot(
                        m,
                        int(r[2]),
                        int(r[3]),
                        str(r[4]),
                        int(r[5]),
                        tuple(spend.get(m, ())),
                        r[6],
                        int(r[7]),
                        int(r[8]),
                        json.loads(r[9]),
                        tuple(cards.get(m, ())),
                        tuple(coupons.get(m, ())),
                        tuple(held.get(m, ())),
                        r[10],
                        int(r[11]),
                        r[12],
                    ),
                )
            )
    return out


def _forget_outbox(tx: Tx, rid: int) -> None:
    tx.execute("DELETE FROM rules_outbox WHERE id = ?", (rid,))
