"""The terminal agent: configuration, devices, checkout, uplink and the POS API together.

Threads:

* the **agent thread** owns the SQLite connection (outbox, members, payments): every
  checkout step and every downlink message (rules bundles, member snapshots) runs there,
  one at a time (``Agent.call``);
* one thread per card reader and keypad turns taps, scans and typed numbers into
  identification events;
* the uplink thread (edge.protocol.uplink) owns the MQTT client;
* the POS API serves each request in its own thread and hands the work to the agent thread.

Nothing probes ports: each device named in the configuration is opened once, on its port.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from edge import display
from edge.backoff import Backoff
from edge.checkout import Checkout
from edge.clock import Clock
from edge.config import Config
from edge.core.errors import PhoneError, RuleError
from edge.core.ruleset import RuleBook
from edge.drivers import registry
from edge.drivers.base import BankTerminal
from edge.errors import (
    ChainConflictError,
    ConfigError,
    DecodeError,
    DeviceError,
    DiskFullError,
    OutboxFullError,
    SignatureError,
)
from edge.ledger_cache import db, retention
from edge.ledger_cache.outbox import MIB, Identity, Limits, Outbox, OutboxView
from edge.ledger_cache.payments import Payments
from edge.members import Members
from edge.protocol import bundles, keys, snapshots, topics
from edge.protocol.record import Sealer
from edge.protocol.uplink import Uplink, UplinkConfig
from edge.queues import first
from edge.refunds import Refunds
from edge.sanitize import clean
from edge.settlement import Settlement

log = logging.getLogger("edge.agent")
T = TypeVar("T")
RULES_KV = "rules_bundle"
RULES_KEYS_KV = "rules_keys"
_KV_PUT = (
    "INSERT INTO kv (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


class Agent:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.started = time.monotonic()
        try:
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError("device.data_dir", f"{cfg.data_dir}: {e.strerror or e}") from None
        self._lock_fd = _lock(cfg.data_dir)
        _warn_if_readable(cfg)
        self.identity = Identity(cfg.tenant, cfg.store, cfg.device)
        self.key = keys.load_signer(cfg.key_file)  # edge.protocol.ed25519: no cryptography
        # head office's rules key as provisioned: it seeds the key ring the first time;
        # from then on the ring in the kv table is the truth (_load_ring)
        self.pinned = keys.verifier_from_pem(cfg.rules_key_file.read_bytes())
        self.ring = bundles.KeyRing.pinned(self.pinned)  # replaced by _load_ring
        # the customer display (and kiosk), when configured: its state lives here; its
        # server starts with the agent
        self.display = display.Display() if cfg.display_listen is not None else None
        self.display_server: Any = None
        self.display_url = ""
        self._held_bundle: bytes | None = None  # signed by a key the ring may learn next
        self.clock = Clock(cfg.utc_offset_min)
        self.book = RuleBook()
        self._jobs: queue.Queue[tuple[Callable[[], Any], _Result | None] | None] = queue.Queue()
        threading.Thread(target=self._worker, name="agent", daemon=True).start()
        self._stop = threading.Event()
        self.idents: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=16)
        self.readers: dict[str, Any] = {}
        self._reader_threads: list[threading.Thread] = []
        self.bank: BankTerminal | None = None
        self.device_state: dict[str, str] = {}
        self.last_bank_status = ""
        self.recovered: deque[str] = deque(maxlen=50)  # the latest; all of them are logged
        self._status: dict[str, Any] = {}  # the last counters, while a payment holds the thread
        self.rules_error: str | None = None
        self.outbox_alarm: str | None = None
        self.uplink: Uplink | None = None
        if cfg.broker is not None:
            t = cfg.tenant
            self.uplink = Uplink(
                UplinkConfig(cfg.broker),
                partial(OutboxView, cfg.db_path),
                self.identity,
                # the keys first: a bundle from a new key then finds it in the ring (if the
                # broker orders them otherwise, the held bundle is retried: on_rules_keys)
                downlink={
                    topics.rules_keys(t): self.on_rules_keys,
                    topics.rules(t): self.on_rules,
                    topics.snapshot(t): self.on_snapshots,
                },
                on_conflict=self.on_conflict,
                status_info=self._status_info,
            )
        self.call(self._open_db)

    # -- the agent thread -------------------------------------------------------------------

    def _worker(self) -> None:
        # the one thread that touches the database (plain queue, not concurrent.futures:
        # the terminal's memory budget is 40 MB and that module alone is one of them)
        trim = _malloc_trim()
        done = 0
        while True:
            job = self._jobs.get()
            if job is None:
                return
            done += 1
            if trim is not None and done % 200 == 0:
                trim(0)  # hand freed heap pages back to the system (glibc keeps them)
            fn, result = job
            try:
                value = fn()
            except BaseException as e:
                if result is None:
                    log.exception("background job failed")
                else:
                    result.fail(e)
            else:
                if result is not None:
                    result.set(value)

    def submit(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the agent thread later (downlink messages)."""
        self._jobs.put((fn, None))

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None, **kw: Any) -> T:
        """Run ``fn`` on the agent thread and return its result (or raise its error);
        TimeoutError if it has not run within ``timeout`` (it still runs later)."""
        result: _Result = _Result()
        self._jobs.put((lambda: fn(*args, **kw), result))
        return result.wait(timeout)  # type: ignore[no-any-return]

    def _open_db(self) -> None:
        limits = Limits(
            max_bytes=self.cfg.outbox_max_bytes,
            alarm_pct=self.cfg.alarm_pct,
            reserve_bytes=self.cfg.reserve_mb * MIB,
            min_free_disk=self.cfg.min_free_mb * MIB,
        )
        self.outbox = Outbox(
            self.cfg.db_path,
            self.identity,
            Sealer(self.key, self.cfg.device),
            self.clock,
            limits,
            on_alarm=self._outbox_alarm,
        )
        self.members = Members(self.outbox.conn, self.cfg.device)
        self.payments = Payments(self.outbox.conn, lambda: self.clock.now().wall_ms)
        self._load_ring()
        row = self.outbox.conn.execute("SELECT value FROM kv WHERE key = ?", (RULES_KV,)).fetchone()
        # Either bundle may be refused (a new pinned key, stricter validation): keep serving;
        # club offers are refused with a clear reason until a good bundle comes, rather
        # than the agent exiting and systemd restarting it for ever.
        if row is not None:
            self._try_install(bytes(row[0]), persist=False, what="stored bundle")
        if self.cfg.rules_file is not None and self.cfg.rules_file.exists():
            self._try_install(
                self.cfg.rules_file.read_bytes(), persist=True, what="provisioned bundle"
            )

    def _build_checkout(self) -> None:
        """The checkout and its collaborators, once the devices are open."""
        self.settlement = Settlement(
            self.payments,
            self.bank,
            utc_offset_min=self.clock.now().offset_min,
            timeout=self.cfg.bank_timeout,
            on_status=self._bank_status,
        )
        self.checkout = Checkout(
            self.outbox,
            self.members,
            self.book,
            self.clock,
            self.settlement,
            online=self.online,
            notify=self.notify,
            enroll_new_phones=self.cfg.enroll_new_phones,
            card_keys=self._card_keys,
            on_change=self._show if self.display is not None else None,
        )
        self.refunds = Refunds(self.checkout, self.cfg.refund_days)
        self.checkout.owner = threading.get_ident()  # built on, and owned by, this thread

    def _show(self, s: Any) -> None:
        """A checkout step, for the customer display (on the agent thread: a view kept)."""
        assert self.display is not None
        self.display.show(s.view(), s.basket, None)

    def _tiers(self) -> list[Any]:
        """The tiers of the rules in force (the display says what is left to the next)."""
        rs = self.book.current
        return list(rs.tiers) if rs is not None else []

    def kiosk_card(self, phone: str) -> dict[str, Any]:
        """A member's balance for the kiosk (on the agent thread)."""
        return display.kiosk_card(self.checkout, phone)

    def _card_keys(self) -> list[Any]:
        """The rules keys in force: head office signs membership QR codes with them."""
        return [k.public for k in self.ring.keys if k.number >= self.ring.in_force]

    def abort_payment(self, session: str) -> bool:
        """The cashier cancelled while the bank terminal waits for the customer: abort it
        (from the POS API's thread; edge.settlement.Settlement.abort is thread-safe)."""
        return self.settlement.abort(session)

    def _outbox_alarm(self, level: int, msg: str) -> None:
        self.outbox_alarm = msg if level else None

    def _load_ring(self) -> None:
        """The rules key ring: the kv copy if there is one, else the provisioned key.

        The kv copy stays the truth even when ``rules.pub.pem`` names a key it does not
        hold: the file is written once at provisioning and head office rotates keys
        without visiting terminals, so the file is expected to fall behind; letting it
        replace the ring would undo rotations and let a retired key sign rules again.  A
        terminal that must trust another root is provisioned again (a new data directory)."""
        row = self.outbox.conn.execute(
            "SELECT value FROM kv WHERE key = ?", (RULES_KEYS_KV,)
        ).fetchone()
        if row is None:
            self._save_ring()  # the provisioned key, number 1
            return
        try:
            self.ring = bundles.KeyRing.from_bytes(bytes(row[0]))
        except DecodeError as e:
            log.error(
                "the stored rules key ring is unreadable (%s): starting again from %s; "
                "head office's retained endorsements bring newer keys back",
                e,
                self.cfg.rules_key_file,
            )
            self._save_ring()
            return
        if self.ring.number_of(self.pinned) is None:
            log.warning(
                "%s holds a rules key this terminal's ring (keys %d..%d) does not: the ring "
                "is kept; to trust another root key, provision the terminal again",
                self.cfg.rules_key_file,
                self.ring.keys[0].number,
                self.ring.newest,
            )

    def _save_ring(self) -> None:
        db.write(self.outbox.conn, _KV_PUT, (RULES_KEYS_KV, self.ring.to_bytes()))

    def _try_install(self, raw: bytes, persist: bool, what: str) -> None:
        try:
            self._install(raw, persist)
        except SignatureError as e:
            if e.code == "retired_key" and self.book.current is not None:
                # the bundle provisioned at init, signed with a key rotated out since:
                # newer rules are in force, so there is nothing to report
                log.info("%s: %s (rules v%d stay)", what, e, self.book.current.version)
                return
            self.rules_error = f"{what} refused: {e}"
            log.error("%s", self.rules_error)
        except (RuleError, DecodeError) as e:
            self.rules_error = f"{what} refused: {e}"
            log.error("%s", self.rules_error)

    def _install(self, raw: bytes, persist: bool) -> None:
        rs, number = bundles.open_bundle(raw, self.ring, self.cfg.tenant)
        cur = self.book.current
        if cur is not None and rs.version == cur.version:
            return  # the bundle in force, delivered again
        try:
            self.book.put(rs)  # compiled once; refuses a bundle older than the one in force
        except RuleError as e:
            log.warning("refused rules bundle v%d: %s", rs.version, e.detail)
            return
        retired = self.ring.accept(number)  # only now: a refused bundle retires nothing
        writes = [(RULES_KV, raw)] if persist else []
        if retired:
            writes.append((RULES_KEYS_KV, self.ring.to_bytes()))
        if writes:
            with db.transaction(self.outbox.conn) as conn:  # the bundle with its key's state
                conn.executemany(_KV_PUT, writes)
        if retired:
            log.info("rules key %d in force: the keys before it are retired", number)
        log.info("rules bundle v%d in force (%d rules)", rs.version, len(rs.rules))
        if self.uplink is not None:
            self.uplink.announce()  # head office sees the rollout

    # -- downlink (called in the uplink thread) ------------------------------------------------

    def on_rules(self, raw: bytes) -> None:
        self.submit(partial(self._from_head_office, raw))

    def _from_head_office(self, raw: bytes) -> None:
        """A rules bundle from head office (the agent thread)."""
        self._held_bundle = None
        try:
            self._install(raw, persist=True)
            self.rules_error = None
        except (RuleError, SignatureError, DecodeError) as e:
            why = clean(str(e), 300)  # may quote the message's bytes
            self.rules_error = f"bundle from head office refused: {why}"
            if isinstance(e, SignatureError) and e.code == "unknown_key":
                self._held_bundle = raw  # tried again when the ring learns a key
            log.error("refused a rules bundle from head office: %s (the rules in force stay)", why)

    def on_rules_keys(self, raw: bytes) -> None:
        """Head office's endorsements of its rules keys (retained): extend the ring."""

        def work() -> None:
            if not raw:
                return  # the retained message was cleared: nothing to learn
            try:
                endorsements = bundles.decode_endorsements(raw)
            except DecodeError as e:
                log.error("ignored a malformed rules key message: %s", clean(str(e), 200))
                return
            added = self.ring.extend(endorsements, self.cfg.tenant)
            if not added:
                return
            self._save_ring()
            log.info("%d new rules key(s): the newest is key %d", added, self.ring.newest)
            if self._held_bundle is not None:
                self._from_head_office(self._held_bundle)

        self.submit(work)

    def _status_info(self) -> dict[str, int]:
        rs = self.book.current  # read by the uplink thread: one attribute, replaced whole
        info = {"rules_key": self.ring.newest}  # head office watches a rotation roll out
        if rs is not None:
            info["rules_version"] = rs.version
        return info

    def on_conflict(self, applied: int, ack_hash: bytes | None, why: str) -> None:
        """Head office's ack shows a chain this terminal does not hold (uplink thread)."""
        self.submit(
            lambda: self.outbox.set_conflict(applied, ack_hash, why, int(time.time() * 1000))
        )

    def on_snapshots(self, raw: bytes) -> None:
        def work() -> None:
            try:
                snaps, _ = snapshots.decode(raw)
            except DecodeError as e:
                log.error("ignored a malformed member snapshot message: %s", e)
                return
            self.members.apply(snaps, int(time.time() * 1000))

        self.submit(work)

    # -- devices -------------------------------------------------------------------------

    def _open_devices(self) -> None:
        for d in self.cfg.devices.values():
            try:
                drv = registry.create(d.kind, d.driver, port=d.port, **d.options)
            except DeviceError as e:
                self.device_state[d.name] = f"error: {e}"
                log.error("device %s (%s on %s): %s", d.name, d.driver, d.port, e)
                continue
            except TypeError as e:
                raise ConfigError(f"devices.{d.name}.options", str(e)) from e
            self.device_state[d.name] = "ok"
            if d.kind == "bank":
                self.bank = drv
                try:
                    drv.register()
                except DeviceError as e:
                    self.device_state[d.name] = f"error: {e}"
                    log.error("bank terminal %s did not register: %s", d.port, e)
            else:
                self.readers[d.name] = drv
                t = threading.Thread(
                    target=self._read_loop,
                    args=(d.name, d.kind, drv),
                    name=f"reader-{d.name}",
                    daemon=True,
                )
                self._reader_threads.append(t)
                t.start()

    def _read_loop(self, name: str, kind: str, drv: Any) -> None:
        """Reads one reader for ever.  A device fault marks it and reopens its port with
        back-off (an adapter pulled out and plugged back in comes back by itself); nothing a
        device does ends this thread."""
        d = self.cfg.devices[name]
        retry = Backoff(f"device {name} ({d.driver} on {d.port})", log, base=1.0, cap=30.0)
        while not self._stop.is_set():
            try:
                if drv is None:
                    drv = registry.create(d.kind, d.driver, port=d.port, **d.options)
                    self.readers[name] = drv
                if kind == "phone":
                    try:
                        number = drv.read_phone(0.5)
                    except PhoneError as e:
                        self._event({"device": name, "error": "bad_phone", "en": e.en, "fa": e.fa})
                        continue
                    if number:
                        self._event({"device": name, "phone": number})
                else:
                    got = drv.read(0.5)
                    if got is not None:
                        self._event({"device": name, "card": got.uid, "kind": got.kind})
                if self.device_state.get(name) != "ok":
                    retry.succeeded()
                self.device_state[name] = "ok"
            except Exception as e:  # noqa: BLE001 - a device fault must not end the reader
                self.device_state[name] = f"error: {clean(str(e), 120)}"
                delay = retry.failed(clean(str(e), 200))
                if drv is not None:
                    with contextlib.suppress(Exception):
                        drv.close()
                    drv = None
                self._stop.wait(delay)

    def _event(self, ev: dict[str, Any]) -> None:
        ev["at"] = time.monotonic()
        if self.idents.full():
            self.idents.get_nowait()
        self.idents.put(ev)

    def wait_ident(self, timeout: float, since: float) -> dict[str, Any] | None:
        """The next tap, scan or typed number within ``timeout``; events from before
        ``since`` (the basket was opened: an earlier customer's) are stale."""
        return first(self.idents, lambda ev: bool(ev["at"] >= since), timeout)

    # -- life ------------------------------------------------------------------------------

    def online(self) -> bool:
        return self.uplink is not None and bool(self.uplink.status().get("connected"))

    def notify(self) -> None:
        if self.uplink is not None:
            self.uplink.notify()

    def start(self) -> None:
        self._open_devices()
        self.call(self._build_checkout)
        for line in self.call(self.settlement.recover):
            log.warning("recovered after a restart: %s", line)
            self.recovered.append(line)
        self.status()  # the counters a status shows while a payment holds the agent thread
        if self.uplink is not None:
            self.uplink.start()
        if self.display is not None and self.cfg.display_listen is not None:
            self.display_server, self.display_url = display.serve(
                self.display, self, self.cfg.display_listen, self.cfg.display_kiosk,
                self.cfg.display_idle_s, self._tiers,
            )  # fmt: skip
            log.info("customer display at %s%s", self.display_url,
                     " (kiosk: ?mode=kiosk)" if self.cfg.display_kiosk else "")  # fmt: skip
        threading.Thread(target=self._retry_unknown, name="recovery", daemon=True).start()
        threading.Thread(target=self._retention, name="retention", daemon=True).start()

    def _retry_unknown(self) -> None:
        """Payments whose result could not be established are asked about again (the
        terminal may have been busy or unreachable right after the restart); recover()
        reports only what changed."""
        while not self._stop.wait(3.0):
            if self.call(self.settlement.pending):
                for line in self.call(self.settlement.recover):
                    log.warning("recovered: %s", line)
                    self.recovered.append(line)

    def _retention(self) -> None:
        """Sales and payments older than the refund window leave once acknowledged
        (edge.ledger_cache.retention): at start and hourly, one small batch per call on
        the agent thread, so that a checkout waits behind at most one batch."""
        while True:
            total = retention.Pruned()
            while not self._stop.is_set():
                try:
                    p = self.call(
                        retention.prune,
                        self.outbox.conn,
                        self.clock.now().wall_ms,
                        self.cfg.refund_days,
                    )
                except (DiskFullError, OSError, sqlite3.Error) as e:
                    log.warning("pruning old sales failed (tried again in an hour): %s", e)
                    break
                total = retention.Pruned(total.sales + p.sales, total.payments + p.payments)
                if not p.rows:
                    break
            if total.rows:
                log.info("pruned %d sales and %d payments older than %d days",
                         total.sales, total.payments, self.cfg.refund_days)  # fmt: skip
            if self._stop.wait(3600.0):
                return

    def _bank_status(self, text: str) -> None:
        self.last_bank_status = clean(text, 80)

    def _counters(self) -> dict[str, Any]:
        """The status figures that live on the agent thread."""
        return {
            "outbox": self.outbox.status(),
            "storage": self.outbox.storage(),
            "unknown": self.settlement.pending(),
            "unrecorded": len(self.settlement.unrecorded),
            "recording": recording_state(self.outbox),
        }

    def stop(self) -> None:
        self._stop.set()
        if self.display_server is not None:
            self.display_server.shutdown()
        if self.uplink is not None and self.uplink.is_alive():
            self.uplink.stop()
        for t in self._reader_threads:
            t.join(2.0)  # a read in progress ends within its 0.5 s; then the port closes
        for drv in self.readers.values():
            drv.close()
        if self.bank is not None:
            self.bank.close()
        self.call(self.outbox.close)
        self._jobs.put(None)
        os.close(self._lock_fd)  # the lock goes with it

    def status(self) -> dict[str, Any]:
        # The database counters come from the agent thread; while a payment holds it (up
        # to the bank timeout) the last ones are shown, marked busy, so the POS can still
        # read the bank terminal's prompts.
        try:
            self._status = self.call(self._counters, timeout=0.5)
            busy = False
        except TimeoutError:
            busy = True
            if not self._status:  # nothing to show yet: wait for the thread after all
                self._status = self.call(self._counters)
        ob = self._status["outbox"]
        unknown = self._status["unknown"]
        up = self.uplink.status() if self.uplink is not None else {}
        rs = self.book.current
        return {
            "device": self.cfg.device,
            "store": self.cfg.store,
            "tenant": self.cfg.tenant,
            "online": bool(up.get("connected")),
            "broker": self.cfg.broker.url if self.cfg.broker else None,
            "outbox": ob,
            "last_ack_ms": ob["last_ack_ms"],
            "rules_version": rs.version if rs else None,
            "rules_error": self.rules_error,
            "rules_key": self.ring.newest,  # head office watches a key rotation roll out
            "devices": dict(self.device_state),
            "payments_unknown": int(unknown),
            "unrecorded": self._status["unrecorded"],
            "recording": self._status["recording"],
            "storage": self._status["storage"],
            "outbox_alarm": self.outbox_alarm,
            "uptime_s": int(time.monotonic() - self.started),
            "bank_status": self.last_bank_status,
            "busy": busy,
            "recovered": list(self.recovered),
        }


LOCK_FILE = "agent.lock"


def _lock(data_dir: Path) -> int:
    """One agent per data directory: an exclusive lock on ``agent.lock`` held for the
    process's life (the kernel drops it when the process dies, so a crash leaves none)."""
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            "device.data_dir",
            f"another agent (pid {clean(holder, 12)}) is already running on {data_dir}; "
            "stop it first (systemctl stop loyalty-edge)",
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _warn_if_readable(cfg: Config) -> None:
    if cfg.api_token is None:
        return
    try:
        mode = cfg.path.stat().st_mode & 0o777
    except OSError:
        return
    if mode & 0o077:
        log.warning(
            "%s holds the POS API token and is readable by others (mode %o): chmod 600 it",
            cfg.path,
            mode,
        )


def recording_state(outbox: Outbox) -> dict[str, Any]:
    """Whether the club can record a sale now and, if not, why, for the cashier."""
    try:
        outbox.can_record()
    except ChainConflictError as e:
        return {"ok": False, "reason": "chain_conflict", "en": e.en, "fa": e.fa}
    except OutboxFullError as e:
        return {"ok": False, "reason": "outbox_full", "en": e.en, "fa": e.fa}
    except DiskFullError as e:
        return {"ok": False, "reason": "disk_full", "en": e.en, "fa": e.fa}
    return {"ok": True, "reason": None}


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        import ctypes  # noqa: PLC0415 - glibc only
        import ctypes.util  # noqa: PLC0415

        name = ctypes.util.find_library("c")
        fn: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    return fn


class _Result:
    """The answer of one ``Agent.call``."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def set(self, value: Any) -> None:
        self._value = value
        self._done.set()

    def fail(self, e: BaseException) -> None:
        self._error = e
        self._done.set()

    def wait(self, timeout: float | None = None) -> Any:
        if not self._done.wait(timeout):
            raise TimeoutError("the agent thread is busy")
        if self._error is not None:
            raise self._error
        return self._value
