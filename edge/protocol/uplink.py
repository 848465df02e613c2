"""Store-and-forward: ship the outbox to head office over MQTT, delete on application ack.

One thread owns the paho client (all paho calls and callbacks happen in it); it runs
its own ``select()`` over the MQTT socket and a wake-up socketpair, using paho's
external-loop calls (``loop_read``/``loop_write``/``loop_misc``).  The loop:

1. connect when disconnected, with capped exponential back-off; each connection uses a
   fresh paho client with ``clean_start=False`` (edge.protocol.mqtt), a retained last
   will ``status/{device} = offline``, and subscribes to ``ack/{device}`` (retained,
   cumulative ``applied_through``) and ``gap/{device}``;
2. publish outbox rows in seq order with QoS 1, at most ``window`` awaiting PUBACK and at
   most ``max_ahead`` beyond head office's ack (flow control: a backlog waits on the
   terminal's disk, not in the broker's memory);
3. on an ack, delete the rows it covers (:meth:`OutboxView.ack`);
4. on a gap request, re-send the rows named;
5. on a reconnect, ask whether the broker kept this client's session: if it did, what it
   acknowledged is queued for head office, so only the records that were in flight (sent,
   not yet PUBACKed) go again and the rest carries on where it was; if it did not (a
   broker restarted without its store, or another broker), every unacknowledged record
   goes again at once, from ``applied_through + 1``, without waiting for a timer;
6. if published rows stay unacknowledged for about ``resend_after`` seconds (drawn afresh
   each time within ±``resend_jitter`` of it, so that thousands of terminals that came back
   together never resend in step), start again from ``applied_through + 1``;
7. while head office says it is working through records (``progress``, a heartbeat every
   couple of seconds while it drains a backlog), that timer waits: this terminal's records
   are most likely queued behind other stores', and sending them again would only lengthen
   the queue.  The wait is capped at ``follow_max`` seconds without an ack of our own, so a
   record the broker dropped is not held back for ever by a busy head office (head office
   also asks for missing records itself, on ``gap/{device}``, when later ones arrive);
   and while every head-office process is offline (their retained statuses on
   ``head_office/+``, offline by last will), the timer waits too: the broker keeps what was
   sent for head office's session.

A broker PUBACK is not delivery (brokers drop queued messages and snapshot their
persistence periodically), so nothing is deleted on PUBACK; duplicates are possible and
head office ignores them.
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from edge.backoff import Backoff
from edge.errors import ChainConflictError, DecodeError, StorageError
from edge.protocol import messages, topics
from edge.protocol.identity import Identity
from edge.protocol.mqtt import BrokerConfig, connect, new_client

log = logging.getLogger("edge.uplink")


class AckStore(Protocol):
    """The outbox as the uplink thread sees it (edge.ledger_cache.outbox.OutboxView): the
    protocol layer depends on this shape, not on the storage package above it."""

    def counters(self) -> tuple[int, int]: ...
    def pending(self, after: int, limit: int) -> list[tuple[int, bytes]]: ...
    def get(self, seqs: list[int]) -> list[tuple[int, bytes]]: ...
    def ack(self, applied_through: int, ack_hash: bytes | None, now_ms: int) -> int: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class UplinkConfig:
    broker: BrokerConfig
    window: int = 64
    # at most this many records sent beyond head office's ack: the rest of a backlog waits
    # in the outbox (on disk) rather than in the broker's memory while head office catches
    # up (12,000 terminals x 512 x 600 B is 3.7 GB at the broker, not every backlog)
    max_ahead: int = 512
    resend_after: float = 20.0
    resend_jitter: float = 0.25  # each wait is resend_after x (1 +- this), drawn afresh
    poll_interval: float = 0.5
    follow_max: float = 900.0  # longest wait on head office's progress without our own ack
    status_every: float = 60.0  # the retained status (depth, rules version) refreshed
    connect_timeout: float = 5.0
    # a broker that is down refuses or closes the connection at once: that is cheap to
    # retry, and a terminal should be back within a second or two of the broker, so such
    # failures back off to at most this (a timeout or a refusal by the broker up to 30 s)
    restart_retry_cap: float = 2.0


class Uplink(threading.Thread):
    def __init__(
        self,
        cfg: UplinkConfig,
        open_store: Callable[[], AckStore],
        identity: Identity,
        downlink: dict[str, Callable[[bytes], None]] | None = None,
        on_conflict: Callable[[int, bytes | None, str], None] | None = None,
        status_info: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        super().__init__(name=f"uplink-{identity.device}", daemon=True)
        self.cfg = cfg
        self.identity = identity
        self._open_store = open_store  # called in this thread (SQLite connections are per thread)
        self._stop_evt = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._woken = True
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {
            "connected": False,
            "applied_through": 0,
            "last_ack_ms": None,
            "last_error": None,
            "published": 0,
            "resent": 0,
            "ho_progress_ms": None,
            "head_office_online": None,
        }
        # state below is owned by the uplink thread
        self._client: mqtt.Client | None = None
        self._connected = False
        self._view: AckStore | None = None
        self._next = 1
        self._inflight: dict[int, int] = {}
        self._resend: set[int] = set()
        self._applied = 0
        self._last_progress = time.monotonic()
        self._last_own_ack = self._last_progress
        self._rng = random.Random()  # noqa: S311 - spreads timers, nothing secret
        self._wait_for_ack = self._draw_wait()
        self._last_poll = 0.0
        self._more = True
        self._pending_ack: tuple[int, bytes | None] | None = None
        self._backoff = Backoff(f"uplink to {cfg.broker.url}", log)
        t = identity.tenant
        self._records_topic = topics.records(t, identity.store, identity.device)
        self._ack_topic = topics.ack(t, identity.device)
        self._gap_topic = topics.gap(t, identity.device)
        self._progress_topic = topics.progress(t)
        self._ho: dict[str, bool] = {}  # head-office process -> online (retained statuses)
        self._status_topic = topics.status(t, identity.device)
        # other topics this device reads (rules, snapshots): handlers run in this thread
        # and must hand the work on quickly
        self._downlink = dict(downlink or {})
        # head office's ack shows a chain this terminal does not hold (called in this thread)
        self._on_conflict = on_conflict
        self._conflict_told = False
        self._status_info = status_info  # extra status fields (the agent's rules version)
        self._status_sent = 0.0
        self._announce = False
        self._refused = False  # the broker answered CONNACK with a refusal

    # -- public, thread-safe ------------------------------------------------------------

    def notify(self) -> None:
        """Tell the uplink a record was committed (it also polls on its own)."""
        with contextlib.suppress(BlockingIOError, OSError):  # a wake-up is already pending
            self._wake_w.send(b"\0")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_evt.set()
        self.notify()
        self.join(timeout)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._status)

    def _set(self, **kw: Any) -> None:
        with self._lock:
            self._status.update(kw)

    # -- the thread ---------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self._stop_evt.is_set():
                try:
                    self._step()
                except Exception as e:  # the uplink thread must never end
                    # a bug or an unforeseen failure: log it, treat it as a lost connection
                    # and try again after the back-off, rather than stop shipping records
                    log.exception("uplink: unexpected error")
                    self._lost(f"internal: {e}")
                    self._stop_evt.wait(max(self._backoff.next_try - time.monotonic(), 0.0))
        finally:
            self._shutdown()
            if self._view is not None:
                self._view.close()
            self._wake_r.close()
            self._wake_w.close()

    def _step(self) -> None:
        if self._view is None:
            self._view = self._open_store()
            _, self._applied = self._view.counters()
            self._set(applied_through=self._applied)
        if not self._connected:
            self._try_connect()
            if not self._connected:
                wait = self._backoff.next_try - time.monotonic()
                self._io(None, min(max(wait, 0.0), 0.2))
                return
        self._apply_ack()
        self._pump()
        if self._client is not None and (
            self._announce or time.monotonic() - self._status_sent >= self.cfg.status_every
        ):
            self._announce = False
            self._publish_status(self._client)
        may_send = self._next - 1 < self._applied + self.cfg.max_ahead
        busy = bool(self._resend) or (
            self._more and may_send and len(self._inflight) < self.cfg.window
        )
        self._io(self._client, 0.0 if busy else self.cfg.poll_interval)

    def _io(self, c: mqtt.Client | None, timeout: float) -> None:
        """Wait for the MQTT socket or a wake-up, then let paho read, write, keep alive."""
        sock = c.socket() if c is not None else None
        rlist: list[Any] = [self._wake_r]
        wlist: list[Any] = []
        if sock is not None:
            rlist.append(sock)
            if c is not None and c.want_write():
                wlist.append(sock)
        try:
            readable, writable, _ = select.select(rlist, wlist, [], timeout)
        except (OSError, ValueError) as e:
            if c is not None:
                self._lost(f"select: {e}")
            return
        if self._wake_r in readable:
            self._drain_wake()
        if c is None or sock is None:
            return
        rc = mqtt.MQTT_ERR_SUCCESS
        if sock in readable:
            rc = c.loop_read()
        if rc == mqtt.MQTT_ERR_SUCCESS and (sock in writable or c.want_write()):
            rc = c.loop_write()
        if rc == mqtt.MQTT_ERR_SUCCESS:
            rc = c.loop_misc()
        if rc != mqtt.MQTT_ERR_SUCCESS and self._client is c:
            if self._connected:
                self._lost(f"network: {mqtt.error_string(rc)}")
            else:
                self._drop_client()

    def _try_connect(self) -> None:
        if not self._backoff.ready():
            return
        if self._client is not None:
            self._drop_client()
        will = messages.encode_status("offline", "lost")
        try:
            # tls_set loads the CA, certificate and key here: a missing, unreadable or
            # corrupt file is an OSError (ssl.SSLError is one) like a refused connection
            c = new_client(
                self.cfg.broker,
                self.identity.device,
                will_topic=self._status_topic,
                will_payload=will,
            )
        except OSError as e:
            self._connect_failed(f"cannot load the TLS files ({self._tls_files()}): {e}")
            return
        # our window == paho's in-flight limit, so paho never queues in memory
        c.max_inflight_messages_set(self.cfg.window)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.connect_timeout = self.cfg.connect_timeout
        self._client = c
        try:
            connect(c, self.cfg.broker)
        except OSError as e:
            fast = isinstance(e, (ConnectionRefusedError, ConnectionResetError))
            self._connect_failed(str(e), self.cfg.restart_retry_cap if fast else None)
            return
        # CONNACK arrives through loop(); give it a moment without blocking stop()
        deadline = time.monotonic() + self.cfg.connect_timeout
        closed = self._refused = False
        while not self._connected and time.monotonic() < deadline and self._client is not None:
            if self._client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                closed = self._client is not None  # the far end closed it: a broker restarting
                break
            if self._stop_evt.is_set():
                return
        if not self._connected:
            if closed and not self._refused:
                self._backoff.failed(
                    "connection closed before CONNACK", cap=self.cfg.restart_retry_cap
                )
            else:
                self._backoff.failed("no CONNACK from the broker")
            self._drop_client()

    def _connect_failed(self, reason: str, cap: float | None = None) -> None:
        self._set(last_error=reason)
        self._backoff.failed(reason, cap=cap)
        self._drop_client()

    def _tls_files(self) -> str:
        b = self.cfg.broker
        named = (("CA", b.ca_file), ("certificate", b.cert_file), ("key", b.key_file))
        return ", ".join(f"{what} {path}" for what, path in named if path) or "system CAs"

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass
        self._woken = True

    def _drop_client(self) -> None:
        c = self._client
        self._client = None
        self._connected = False
        if c is not None:
            sock = c.socket()
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    log.debug("closing the old MQTT socket failed", exc_info=True)

    def _lost(self, reason: str) -> None:
        log.warning("connection to %s lost: %s", self.cfg.broker.url, reason)
        self._set(connected=False, last_error=reason)
        self._backoff.failed(reason)
        self._drop_client()

    # -- paho callbacks (run in this thread, inside loop()) --------------------------------

    def _draw_wait(self) -> float:
        j = self.cfg.resend_jitter
        return float(self.cfg.resend_after * (1 + j * (2 * self._rng.random() - 1)))

    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self._refused = True  # not a restart: back off fully
            self._set(last_error=f"refused: {reason}")
            log.error("broker %s refused the connection: %s", self.cfg.broker.url, reason)
            return
        self._connected = True
        self._backoff.succeeded()
        client.subscribe(
            [
                (self._ack_topic, 1),
                (self._gap_topic, 1),
                (self._progress_topic, 0),
                (topics.head_office_all(), 1),
                *((t, 1) for t in self._downlink),
            ]
        )
        assert self._view is not None
        last, self._applied = self._view.counters()
        self._publish_status(client)
        unacked = sorted(set(self._inflight.values()))
        self._inflight.clear()
        kept = bool(getattr(flags, "session_present", False))
        if kept and self._next > self._applied + 1:
            # the broker kept this client's session: what it PUBACKed waits for head office
            self._resend.update(s for s in unacked if s > self._applied)
            how = f"session kept: {len(unacked)} in flight sent again"
        else:  # the broker lost it: every unacknowledged record again, now
            self._next = self._applied + 1
            how = "new session: unacknowledged records sent again now"
        self._last_progress = self._last_own_ack = time.monotonic()
        self._wait_for_ack = self._draw_wait()
        self._set(connected=True, last_error=None, applied_through=self._applied)
        log.info("connected to %s (%s); %d records to send", self.cfg.broker.url, how,
                 max(0, last - self._applied))  # fmt: skip

    def _publish_status(self, client: mqtt.Client) -> None:
        """The retained status head office's console shows: online, the outbox depth,
        ``applied_through`` and what ``status_info`` adds (the rules version in force)."""
        assert self._view is not None
        last, applied = self._view.counters()
        info = dict(self._status_info()) if self._status_info is not None else {}
        client.publish(
            self._status_topic,
            messages.encode_status(
                "online",
                depth=max(0, last - applied),
                applied_through=applied,
                wall_ms=int(time.time() * 1000),
                rules_version=info.get("rules_version"),
                rules_key=info.get("rules_key"),
            ),
            qos=1,
            retain=True,
        )
        self._status_sent = time.monotonic()

    def announce(self) -> None:
        """Publish the status again soon (thread-safe: the rules version changed)."""
        self._announce = True
        self.notify()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._connected:
            self._connected = False
            self._set(connected=False, last_error=f"disconnected: {reason}")
            log.warning("disconnected from %s: %s", self.cfg.broker.url, reason)
            self._backoff.failed(str(reason))

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        self._inflight.pop(mid, None)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            if msg.topic == self._ack_topic:
                self._handle_ack(bytes(msg.payload))
            elif msg.topic == self._gap_topic:
                self._handle_gap(bytes(msg.payload))
            elif msg.topic == self._progress_topic:
                self._handle_progress(bytes(msg.payload))
            elif msg.topic.startswith(topics.head_office("")):
                who = msg.topic[len(topics.head_office("")) :]
                if not msg.payload:  # its retained status cleared: a process retired
                    self._ho.pop(who, None)
                else:
                    state = messages.decode_status(bytes(msg.payload))["state"]
                    self._ho[who] = state == "online"
                self._set(head_office_online=self.head_office_online())
            elif msg.topic in self._downlink:
                self._downlink[msg.topic](bytes(msg.payload))
        except DecodeError as e:
            log.error("ignored a malformed message on %s: %s", msg.topic, e)

    def _handle_ack(self, payload: bytes) -> None:
        # acks are cumulative: keep the highest and apply it once per loop iteration
        applied, h = messages.decode_ack(payload)
        if self._pending_ack is None or applied >= self._pending_ack[0]:
            self._pending_ack = (applied, h)

    def _apply_ack(self) -> None:
        if self._pending_ack is None:
            return
        applied, h = self._pending_ack
        self._pending_ack = None
        assert self._view is not None
        try:
            deleted = self._view.ack(applied, h, int(time.time() * 1000))
        except ChainConflictError as e:
            if not self._conflict_told:
                log.critical("head office's ack does not fit this device's records: %s", e)
                self._conflict_told = True
                if self._on_conflict is not None:
                    self._on_conflict(applied, h, str(e))
            return
        except StorageError as e:
            log.error("ignored an ack that does not match this device's records: %s", e)
            return
        if applied > self._applied:
            self._applied = applied
            self._last_progress = self._last_own_ack = time.monotonic()
            self._wait_for_ack = self._draw_wait()
            self._next = max(self._next, applied + 1)
        self._set(applied_through=self._applied, last_ack_ms=int(time.time() * 1000))
        if deleted:
            log.debug("head office applied through %d; %d records deleted", applied, deleted)

    def head_office_online(self) -> bool | None:
        """Some head-office process is online (None: none heard of yet)."""
        return any(self._ho.values()) if self._ho else None

    def _handle_progress(self, payload: bytes) -> None:
        """Head office is draining records: what we sent is probably queued behind them."""
        wall_ms, handled, queued = messages.decode_progress(payload)
        self._set(ho_progress_ms=wall_ms)
        now = time.monotonic()
        if (handled or queued) and now - self._last_own_ack < self.cfg.follow_max:
            self._last_progress = now

    def _handle_gap(self, payload: bytes) -> None:
        ranges = messages.decode_gap(payload)
        before = len(self._resend)
        for a, b in ranges:
            self._resend.update(range(max(a, self._applied + 1), min(b, a + 10_000) + 1))
        log.info(
            "head office asks again for records %s (%d queued)", ranges, len(self._resend) - before
        )

    # -- publishing -----------------------------------------------------------------------

    def _pump(self) -> None:
        c = self._client
        view = self._view
        assert c is not None and view is not None
        now = time.monotonic()
        room = self.cfg.window - len(self._inflight)
        if room <= 0:
            return
        if self._resend:
            batch = sorted(self._resend)[:room]
            self._resend.difference_update(batch)
            for seq, raw in view.get([s for s in batch if s > self._applied]):
                if not self._publish(c, seq, raw):
                    self._resend.add(seq)  # still to be sent again
                    return
                self._set(resent=self._status["resent"] + 1)
            return
        if self.head_office_online() is False:
            # every head-office process is offline: the broker keeps what we sent for its
            # session, so sending it again now would only double the queue
            self._last_progress = now
        if (
            self._next > self._applied + 1
            and now - self._last_progress > self._wait_for_ack
            and not self._inflight
        ):
            log.info(
                "no application ack for %.0fs; resending from seq %d",
                now - self._last_progress,
                self._applied + 1,
            )
            self._next = self._applied + 1
            self._last_progress = now
            self._wait_for_ack = self._draw_wait()
        # read the outbox when told a record was committed, when the last read filled the
        # window (there may be more), or every poll_interval in case a notify was missed
        if not (self._woken or self._more or now - self._last_poll >= self.cfg.poll_interval):
            return
        ahead = self._applied + self.cfg.max_ahead - (self._next - 1)
        if ahead <= 0:
            return  # flow control: more goes when head office acknowledges what it has
        self._woken = False
        self._last_poll = now
        want = min(room, ahead)
        rows = view.pending(self._next - 1, want)
        self._more = len(rows) == want
        for seq, raw in rows:
            if not self._publish(c, seq, raw):
                return  # not sent: the next connection starts from it
            self._next = seq + 1

    def _publish(self, c: mqtt.Client, seq: int, raw: bytes) -> bool:
        """Publish one record; False (and the connection dropped) if it could not be."""
        info = c.publish(self._records_topic, raw, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._lost(f"publish failed: {mqtt.error_string(info.rc)}")
            return False
        self._inflight[info.mid] = seq
        self._set(published=self._status["published"] + 1)
        return True

    def _shutdown(self) -> None:
        c = self._client
        if c is not None and self._connected:
            self._connected = False  # a clean stop is not a lost connection
            try:
                info = c.publish(
                    self._status_topic,
                    messages.encode_status("offline", "stopped"),
                    qos=1,
                    retain=True,
                )
                deadline = time.monotonic() + 2.0
                while not info.is_published() and time.monotonic() < deadline:
                    c.loop(timeout=0.05)
                c.disconnect()
                c.loop(timeout=0.1)
            except (OSError, RuntimeError, ValueError):
                log.debug("clean disconnect failed", exc_info=True)
        self._drop_client()
        self._set(connected=False)
