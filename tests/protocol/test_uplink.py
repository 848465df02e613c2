"""The uplink against a real Mosquitto: outages, restarts, gaps, resends, last will."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.local_broker import LocalMosquitto
from edge.errors import DecodeError
from edge.ledger_cache.outbox import OutboxView
from edge.protocol import messages, topics
from edge.protocol.identity import Identity
from edge.protocol.mqtt import BrokerConfig, connect, new_client
from edge.protocol.uplink import Uplink, UplinkConfig
from tests.conftest import ROOT
from tests.helpers.acker import Acker
from tests.helpers.device import Device, commit_sale, make_device
from tests.helpers.wait import until


def _uplink(dev: Device, broker: LocalMosquitto, **kw: Any) -> Uplink:
    cfg = UplinkConfig(BrokerConfig.from_url(broker.url, keepalive=5), **kw)
    up = Uplink(cfg, partial(OutboxView, dev.db), dev.identity)
    up.start()
    return up


def _wait(cond: Any, timeout: float = 30.0) -> bool:
    return until(cond, timeout, step=0.02)


def _assert_all_arrived(acker: Acker, dev: Device, n: int) -> None:
    assert acker.wait_applied(dev.id, n), f"applied {acker.applied(dev.id)} of {n}"
    st = acker.devices[dev.id]
    assert sorted(st.seen) == list(range(1, n + 1))
    assert st.chain_ok
    assert acker.bad == []
    assert _wait(lambda: dev.outbox.status()["depth"] == 0, 10), dev.outbox.status()


def _deliver_backlog(
    tmp_path: Path,
    broker: LocalMosquitto,
    n: int,
    uplink: dict[str, Any] | None = None,
    **acker: Any,
) -> tuple[Device, Acker, dict[str, Any]]:
    """Commit ``n`` sales, start head office's stand-in (``acker`` options) and an uplink
    (``uplink`` options), and check every record arrives; returns the device, the acker
    and the uplink's status as it was when they had."""
    dev = make_device(tmp_path)
    for i in range(n):
        commit_sale(dev, i)
    ack = Acker(broker.url, {dev.id: dev.key.public_key()}, **acker).start()
    up = _uplink(dev, broker, **(uplink or {}))
    try:
        _assert_all_arrived(ack, dev, n)
        return dev, ack, up.status()
    finally:
        up.stop()
        ack.stop()


def test_backlog_arrives_and_outbox_drains(tmp_path: Path, broker: LocalMosquitto) -> None:
    _, _, st = _deliver_backlog(tmp_path, broker, 300)
    assert st["connected"] and st["applied_through"] == 300


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_broker_killed_and_restarted_mid_stream(
    tmp_path: Path, broker: LocalMosquitto, sig: int
) -> None:
    dev = make_device(tmp_path)
    acker = Acker(broker.url, {dev.id: dev.key.public_key()}).start()
    up = _uplink(dev, broker, resend_after=2.0)
    done = threading.Event()
    restarts = [0]
    failed: list[str] = []

    def streaming() -> bool:
        """Connected, and 100 more records reached head office through this broker."""
        mark = acker.applied(dev.id)
        return _wait(lambda: up.status()["connected"] and acker.applied(dev.id) >= mark + 100)

    def outages() -> None:  # the broker dies three times while the till works
        try:
            for i in range(3):
                if not streaming():
                    failed.append(f"no records flowed before outage {i + 1}: {up.status()}")
                    return
                broker.restart(sig, down_for=0.5)  # down_for: the outage's simulated length
                restarts[0] += 1
            if not streaming():
                failed.append(f"no records flowed after the last outage: {up.status()}")
        finally:
            done.set()

    t = threading.Thread(target=outages)
    t.start()
    written = 0
    try:
        while not done.is_set():  # the checkout keeps committing through the outages
            commit_sale(dev, written)
            up.notify()
            written += 1
            time.sleep(0.003)  # the till's pace between sales, not a wait for an event
        t.join()
        assert failed == []
        assert restarts[0] == 3
        _assert_all_arrived(acker, dev, written)
        assert written > 300
        assert acker.devices[dev.id].deliveries >= written  # duplicates are harmless
    finally:
        t.join()
        up.stop()
        acker.stop()


def test_offline_for_a_stretch_then_catch_up(tmp_path: Path, broker: LocalMosquitto) -> None:
    dev = make_device(tmp_path)
    broker.kill()
    up = _uplink(dev, broker)
    for i in range(400):
        commit_sale(dev, i)
        up.notify()
    assert _wait(lambda: up.status()["last_error"] is not None)  # it tried, and failed
    assert not up.status()["connected"]
    assert dev.outbox.status()["depth"] == 400
    broker.start()
    acker = Acker(broker.url, {dev.id: dev.key.public_key()}).start()
    try:
        _assert_all_arrived(acker, dev, 400)
    finally:
        up.stop()
        acker.stop()


def test_gap_requests_are_answered(tmp_path: Path, broker: LocalMosquitto) -> None:
    # head office "loses" the first delivery of every 7th record and asks for the gap
    _, _, st = _deliver_backlog(
        tmp_path,
        broker,
        100,
        {"resend_after": 60.0},
        drop=lambda _d, seq, nth: seq % 7 == 0 and nth == 1,
    )
    assert st["resent"] > 0


def test_silence_from_head_office_means_resend(tmp_path: Path, broker: LocalMosquitto) -> None:
    dev, acker, _ = _deliver_backlog(
        tmp_path,
        broker,
        20,
        {"resend_after": 1.0},
        ask_gaps=False,
        drop=lambda _d, seq, nth: seq == 5 and nth == 1,
    )
    assert acker.devices[dev.id].deliveries > 20


def test_malformed_or_foreign_acks_change_nothing(
    tmp_path: Path, broker: LocalMosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    dev = make_device(tmp_path)
    for i in range(10):
        commit_sale(dev, i)
    caplog.set_level(logging.ERROR, "edge.uplink")
    conflicts: list[tuple[int, bytes | None]] = []
    cfg = UplinkConfig(BrokerConfig.from_url(broker.url, keepalive=5))
    up = Uplink(
        cfg,
        partial(OutboxView, dev.db),
        dev.identity,
        on_conflict=lambda a, h, _w: conflicts.append((a, h)),
    )
    up.start()
    pub = new_client(BrokerConfig.from_url(broker.url), "evil")
    connect(pub, BrokerConfig.from_url(broker.url))
    pub.loop_start()
    try:
        ack_topic = topics.ack("acme", dev.id)
        bad = (
            b"\xff\x00garbage",
            messages.encode_ack(50, None),
            messages.encode_ack(3, b"\x01" * 32),
        )
        # retained, as head office's acks are, so it reaches the uplink whenever it subscribes
        pub.publish(ack_topic, bad[0], qos=1, retain=True).wait_for_publish(5)
        assert _wait(lambda: any("ignored" in r.message for r in caplog.records), 10)
        # acks naming records this device never wrote, or another hash: head office holds
        # a chain this database does not (a reinstall): reported once, nothing deleted
        pub.publish(ack_topic, bad[1], qos=1, retain=True).wait_for_publish(5)
        assert _wait(lambda: conflicts == [(50, None)], 10), conflicts
        pub.publish(ack_topic, bad[2], qos=1, retain=True).wait_for_publish(5)
        assert _wait(lambda: sum("does not fit" in r.message for r in caplog.records) >= 1, 10)
        assert dev.outbox.status()["depth"] == 10
        assert conflicts == [(50, None)]
        assert up.is_alive()
    finally:
        pub.loop_stop()
        up.stop()


def test_a_corrupt_ca_file_is_reported_and_the_uplink_keeps_trying(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "edge.uplink")
    dev = make_device(tmp_path)
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
    broker = BrokerConfig.from_url("mqtts://127.0.0.1:1", ca_file=str(ca))
    up = Uplink(UplinkConfig(broker), partial(OutboxView, dev.db), dev.identity)
    up.start()
    try:
        assert _wait(lambda: up.status()["last_error"] is not None, 10)
        err = up.status()["last_error"]
        assert "TLS" in err and str(ca) in err, err
        # a few back-off rounds later it is still there, still trying
        assert _wait(lambda: sum("failed again" in r.getMessage() for r in caplog.records) >= 2)
        assert up.is_alive() and not up.status()["connected"]
    finally:
        up.stop()
    assert not up.is_alive()


def test_an_unexpected_error_does_not_end_the_uplink(
    tmp_path: Path,
    broker: LocalMosquitto,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import edge.protocol.uplink as uplink_mod

    real = uplink_mod.new_client
    calls = [0]

    def flaky(*a: Any, **kw: Any) -> Any:
        calls[0] += 1
        if calls[0] <= 2:  # a bug, say: not an OSError
            raise KeyError("surprise")
        return real(*a, **kw)

    monkeypatch.setattr(uplink_mod, "new_client", flaky)
    caplog.set_level(logging.ERROR, "edge.uplink")
    dev = make_device(tmp_path)
    for i in range(5):
        commit_sale(dev, i)
    acker = Acker(broker.url, {dev.id: dev.key.public_key()}).start()
    up = _uplink(dev, broker)
    try:
        assert _wait(lambda: calls[0] >= 1, 5)
        _assert_all_arrived(acker, dev, 5)  # it recovered after the back-off
        assert calls[0] >= 3
        assert any(r.exc_info and "unexpected" in r.message for r in caplog.records)
    finally:
        up.stop()
        acker.stop()


UPLINK_SCRIPT = """
import sys, time
from functools import partial
from pathlib import Path
from edge.ledger_cache.outbox import Identity, OutboxView
from edge.protocol.mqtt import BrokerConfig
from edge.protocol.uplink import Uplink, UplinkConfig
up = Uplink(UplinkConfig(BrokerConfig.from_url(sys.argv[1], keepalive=2)),
            partial(OutboxView, Path(sys.argv[2])), Identity("acme", "s1", "dev-1"))
up.start()
deadline = time.monotonic() + 30
while not up.status()["connected"]:
    if time.monotonic() > deadline:
        sys.exit("not connected within 30 s")
    time.sleep(0.05)  # polling for the connection
print("connected", flush=True)
time.sleep(60)  # running until the test cuts the power (SIGKILL)
"""


def test_retained_status_and_last_will(tmp_path: Path, broker: LocalMosquitto) -> None:
    dev = make_device(tmp_path)
    seen: list[dict[str, Any]] = []
    cfg = BrokerConfig.from_url(broker.url)
    watcher = new_client(cfg, "watcher")
    watcher.on_message = lambda _c, _u, m: seen.append(messages.decode_status(m.payload))
    connect(watcher, cfg)
    watcher.subscribe(topics.status("acme", dev.id), qos=1)
    watcher.loop_start()
    proc = subprocess.Popen(
        [sys.executable, "-c", UPLINK_SCRIPT, broker.url, str(dev.db)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"connected"
        assert _wait(lambda: any(s["state"] == "online" for s in seen), 10)
        proc.send_signal(signal.SIGKILL)  # a power cut: the broker publishes the will
        proc.wait(5)
        assert _wait(lambda: seen[-1]["state"] == "offline", 15), seen
        assert seen[-1].get("reason") == "lost"
    finally:
        proc.kill()
        watcher.loop_stop()
    up = _uplink(dev, broker)
    sub = new_client(cfg, "watcher2")
    got: list[dict[str, Any]] = []
    sub.on_message = lambda _c, _u, m: got.append(messages.decode_status(m.payload))
    connect(sub, cfg)
    sub.subscribe(topics.status("acme", dev.id), qos=1)
    sub.loop_start()
    try:
        assert _wait(lambda: bool(got) and got[-1]["state"] == "online", 10)
        up.stop()  # a clean stop says so
        assert _wait(
            lambda: got[-1]["state"] == "offline" and got[-1].get("reason") == "stopped", 10
        ), got
    finally:
        sub.loop_stop()


def test_a_broker_restart_that_kept_the_sessions_resends_only_what_was_in_flight(
    tmp_path: Path, broker: LocalMosquitto
) -> None:
    """The broker stops cleanly (its store saved) three times while the till writes: what it
    acknowledged waits in head office's session, so the terminal sends again only what was
    in flight, not every record head office has not acknowledged yet."""
    dev = make_device(tmp_path)
    acker = Acker(broker.url, {dev.id: dev.key.public_key()}).start()
    up = _uplink(dev, broker, resend_after=60.0, window=16)
    written = 0
    try:
        for _ in range(3):
            for _ in range(150):
                commit_sale(dev, written)
                up.notify()
                written += 1
                time.sleep(0.002)  # the till's pace between sales, not a wait for an event
            broker.restart(signal.SIGTERM, down_for=0.3)
        _assert_all_arrived(acker, dev, written)
        extra = up.status()["published"] - written  # what the terminal sent twice
        assert extra <= 3 * 16 + written * 0.05, (extra, written, up.status())  # the window
    finally:
        up.stop()
        acker.stop()


def test_a_broker_that_lost_the_session_gets_everything_at_once(
    tmp_path: Path, broker: LocalMosquitto
) -> None:
    """A broker restarted without its store: the terminal learns its session is gone and
    sends every unacknowledged record at once (the resend timer is a minute here)."""
    dev = make_device(tmp_path)
    for i in range(100):
        commit_sale(dev, i)
    up = _uplink(dev, broker, resend_after=60.0)
    try:
        assert _wait(lambda: up.status()["published"] >= 100, 10)  # sent, nobody acked
        broker.stop()
        for f in broker.workdir.glob("*.db"):
            f.unlink()  # the broker's store is lost with it
        broker.start()
        acker = Acker(broker.url, {dev.id: dev.key.public_key()}).start()
        t0 = time.monotonic()
        try:
            _assert_all_arrived(acker, dev, 100)
        finally:
            acker.stop()
        assert time.monotonic() - t0 < 30  # well before the one-minute timer
        assert up.status()["published"] >= 200
    finally:
        up.stop()


def test_resend_timers_are_spread() -> None:
    cfg = UplinkConfig(BrokerConfig.from_url("mqtt://127.0.0.1:1"), resend_after=20.0)
    waits = []
    for _ in range(50):
        up = Uplink(cfg, lambda: None, Identity("acme", "s1", "pos-1"))  # type: ignore[arg-type,return-value]
        waits.append(up._draw_wait())
    assert all(15.0 <= w <= 25.0 for w in waits)
    assert len({round(w, 3) for w in waits}) > 40  # not in step


class _BusyHeadOffice:
    """Head office draining other stores' records: it publishes its progress heartbeat
    (numbered, so the test can wait for the terminal to have seen enough of them) and
    counts every delivery of this terminal's records without acknowledging any."""

    def __init__(self, broker: LocalMosquitto, every: float = 0.05) -> None:
        self.deliveries = 0
        self.beats = threading.Event()
        self._stop = threading.Event()
        self._every = every
        cfg = BrokerConfig.from_url(broker.url)
        self.c = new_client(cfg, "busy-ho")
        self.c.on_message = self._count
        connect(self.c, cfg)
        self.c.subscribe(topics.records_all("acme"), qos=1)
        self.c.loop_start()
        self._t = threading.Thread(target=self._beat, daemon=True)

    def _count(self, *_a: Any) -> None:
        self.deliveries += 1

    def _beat(self) -> None:
        n = 0
        while not self._stop.wait(self._every):
            n += 1
            self.c.publish(topics.progress("acme"), messages.encode_progress(n, 500, 2000))

    def start_beating(self) -> None:
        self._t.start()

    def stop_beating(self) -> None:
        self._stop.set()
        if self._t.is_alive():
            self._t.join(2)

    def close(self) -> None:
        self.stop_beating()
        self.c.loop_stop()
        self.c.disconnect()


def test_a_busy_head_office_holds_the_resend_timer(tmp_path: Path, broker: LocalMosquitto) -> None:
    """While head office's heartbeat says it is draining records, a terminal whose records
    are not acknowledged yet waits instead of sending them again; when the heartbeat stops,
    its own timer takes over and it resends."""
    dev = make_device(tmp_path)
    for i in range(10):
        commit_sale(dev, i)
    ho = _BusyHeadOffice(broker)
    ho.start_beating()
    up = _uplink(dev, broker, resend_after=0.3, resend_jitter=0.0)
    try:
        assert _wait(lambda: ho.deliveries >= 10, 10)
        # 40 heartbeats seen after the first send: well over six resend periods
        first = _wait(lambda: (up.status()["ho_progress_ms"] or 0) > 0, 10)
        assert first
        start = up.status()["ho_progress_ms"]
        assert _wait(lambda: up.status()["ho_progress_ms"] >= start + 40, 20)
        assert ho.deliveries == 10, "resent while head office was busy"
        assert up.status()["published"] == 10
        ho.stop_beating()
        assert _wait(lambda: ho.deliveries >= 20, 10), "the timer did not take over"
    finally:
        up.stop()
        ho.close()


def test_following_head_office_is_capped(tmp_path: Path, broker: LocalMosquitto) -> None:
    """A head office that stays busy for longer than ``follow_max`` without acknowledging
    this terminal does not hold its records back for ever (the broker may have dropped
    them): the terminal resends although the heartbeat goes on."""
    dev = make_device(tmp_path)
    for i in range(5):
        commit_sale(dev, i)
    ho = _BusyHeadOffice(broker)
    ho.start_beating()
    up = _uplink(dev, broker, resend_after=0.2, resend_jitter=0.0, follow_max=1.0)
    try:
        assert _wait(lambda: ho.deliveries >= 10, 20), ho.deliveries
        assert up.status()["ho_progress_ms"], "the heartbeat was not seen"
    finally:
        up.stop()
        ho.close()


def test_progress_messages_are_checked() -> None:
    assert messages.decode_progress(messages.encode_progress(1, 2, 3)) == (1, 2, 3)
    for bad in (b"\xa0", messages.encode_ack(3, None), b"\xa3\x00\x01\x01\x20\x02\x00"):
        with pytest.raises(DecodeError):
            messages.decode_progress(bad)


def test_a_broker_that_is_down_is_retried_within_seconds(tmp_path: Path) -> None:
    """A closed port (a broker restarting) is cheap to try again: the back-off stays under
    ``restart_retry_cap`` instead of growing to 30 s, so the terminal is back within a
    moment of the broker."""
    from cloud_broker.local_broker import free_port

    dev = make_device(tmp_path)
    cfg = UplinkConfig(
        BrokerConfig.from_url(f"mqtt://127.0.0.1:{free_port()}"), restart_retry_cap=0.2
    )
    up = Uplink(cfg, partial(OutboxView, dev.db), dev.identity)
    up.start()
    try:
        assert _wait(lambda: up._backoff.failures >= 8, 20)
        # uncapped, the eighth failure's ceiling would be 0.5 x 2^7 = 64 s -> 30 s
        assert up._backoff.next_try - time.monotonic() <= 0.2
    finally:
        up.stop()


def test_no_more_than_max_ahead_beyond_the_ack(tmp_path: Path, broker: LocalMosquitto) -> None:
    """Flow control: with head office busy and acknowledging nothing, a terminal sends at
    most ``max_ahead`` records; each ack lets as many more go."""
    dev = make_device(tmp_path)
    for i in range(40):
        commit_sale(dev, i)
    ho = _BusyHeadOffice(broker)
    ho.start_beating()
    up = _uplink(dev, broker, max_ahead=10, resend_after=60.0)
    try:
        assert _wait(lambda: ho.deliveries >= 10, 10)
        start = up.status()["ho_progress_ms"] or 0
        assert _wait(lambda: (up.status()["ho_progress_ms"] or 0) >= start + 20, 20)
        assert ho.deliveries == 10 and up.status()["published"] == 10
        h = dev.outbox.conn.execute("SELECT hash FROM outbox WHERE seq = 7").fetchone()[0]
        ho.c.publish(topics.ack("acme", dev.id), messages.encode_ack(7, bytes(h)), qos=1)
        assert _wait(lambda: ho.deliveries >= 17, 10)
        start = up.status()["ho_progress_ms"]
        assert _wait(lambda: up.status()["ho_progress_ms"] >= start + 20, 20)
        assert ho.deliveries == 17, "sent beyond the ack + max_ahead"
    finally:
        up.stop()
        ho.close()


def test_while_head_office_is_offline_nothing_is_sent_again(
    tmp_path: Path, broker: LocalMosquitto
) -> None:
    """Every head-office process offline (their retained statuses, offline by last will):
    the broker keeps what the terminal sent for head office's session, so the resend
    timer waits; once a head-office process is online again, the timer runs."""
    dev = make_device(tmp_path)
    for i in range(5):
        commit_sale(dev, i)
    ho = _BusyHeadOffice(broker)  # counts deliveries, acks nothing, no heartbeat
    ho.c.publish(topics.head_office("rec-1"), messages.encode_status("offline", "lost"), 1, True)
    up = _uplink(dev, broker, resend_after=0.2, resend_jitter=0.0)
    try:
        assert _wait(lambda: up.status()["head_office_online"] is False, 10)
        assert _wait(lambda: ho.deliveries >= 5, 10)
        seen = time.monotonic()
        # the thing tested is time passing without a resend: ten resend periods
        assert _wait(lambda: time.monotonic() - seen > 10 * 0.2, 10)
        assert ho.deliveries == 5, "sent again while head office was offline"
        # a retired process's status cleared (empty retained message): nobody known, so
        # the terminal's own timer runs again
        ho.c.publish(topics.head_office("rec-1"), b"", 1, True)
        assert _wait(lambda: up.status()["head_office_online"] is None, 10)
        assert _wait(lambda: ho.deliveries >= 10, 10), "the timer did not resume"
    finally:
        up.stop()
        ho.close()
        # the retained status must not leak into other tests on this broker
        c = new_client(BrokerConfig.from_url(broker.url), "cleaner")
        connect(c, BrokerConfig.from_url(broker.url))
        c.loop_start()
        c.publish(topics.head_office("rec-1"), b"", qos=1, retain=True).wait_for_publish(5)
        c.loop_stop()
