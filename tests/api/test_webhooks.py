"""Webhooks delivered to a real local HTTP receiver that checks each signature: every event
once, also after the receiver was down for a while; retries with backoff, giving up after
25 hours; replay; the dispatcher as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_broker.api import webhooks
from cloud_broker.club.errors import ClubError
from tests.api.conftest import ADMIN, ALI, REZA
from tests.conftest import ROOT
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal
from tests.helpers.wait import until

MASTER = b"m" * 48


class Receiver:
    """A webhook receiver: checks the signature with the endpoint's secret; answers 503
    while ``down``; keeps what it accepted."""

    def __init__(self) -> None:
        self.secret = ""
        self.down = False
        self.accepted: list[dict[str, Any]] = []
        self.refused = 0
        self.bad_signatures = 0
        self.clock: Any = time.time  # the receiver's clock (a test moves it with head office's)
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = webhooks.verify(me.secret, self.headers.get("X-Loyalty-Signature", ""),
                                     body, int(me.clock()))  # fmt: skip
                if not ok:
                    me.bad_signatures += 1
                    self.send_response(401)
                elif me.down:
                    me.refused += 1
                    self.send_response(503)
                else:
                    me.accepted.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Any:
    r = Receiver()
    yield r
    r.close()


def _activity(ho: HO, tmp: Path) -> Terminal:
    t = Terminal(tmp, "pos-1", "s1")
    ho.register(t)
    ho.feed(t, [t.enroll(ALI), t.enroll(REZA)])
    ho.feed(t, [t.sale(ALI, 60_000_000, earned=6000), t.sale(None, 500_000)])  # ALI to bronze
    return t


def test_every_event_once_with_a_valid_signature_after_an_outage(
    ho: HO, tmp_path: Path, receiver: Receiver
) -> None:
    _, secret = webhooks.add(ho.db, MASTER, ADMIN, receiver.url, list(webhooks.EVENTS))
    receiver.secret = secret
    assert secret not in json.dumps(ho.q("SELECT * FROM webhooks"), default=str)
    _activity(ho, tmp_path)
    assert webhooks.scan(ho.db) > 0
    assert webhooks.scan(ho.db) == 0  # each once
    kinds = sorted(str(r[0]) for r in ho.q("SELECT event FROM webhook_events"))
    assert kinds == ["member.enrolled", "member.enrolled", "sale.reconciled", "sale.reconciled",
                     "tier.changed"]  # fmt: skip
    clock = [ho.one("SELECT MAX(queued_at) FROM webhook_deliveries")]
    now = lambda: clock[0]  # noqa: E731 - the dispatcher's clock, moved by the test
    receiver.clock = lambda: clock[0] / 1000
    receiver.down = True
    with httpx.Client(timeout=5) as client:
        assert webhooks.deliver_due(ho.db, MASTER, client, now=now) == 5
        assert receiver.refused == 5 and not receiver.accepted
        assert webhooks.deliver_due(ho.db, MASTER, client, now=now) == 0  # backing off
        rows = ho.q("SELECT state, attempts, last_status, next_at FROM webhook_deliveries")
        assert {(r[0], r[1], r[2]) for r in rows} == {("queued", 1, 503)}
        assert all(24_000 <= r[3] - clock[0] <= 36_000 for r in rows)  # 30 s, with jitter
        for _ in range(4):  # down for an hour or so: the waits double
            clock[0] += 3_600_000
            webhooks.deliver_due(ho.db, MASTER, client, now=now)
        receiver.down = False
        clock[0] += 3_600_000
        assert webhooks.deliver_due(ho.db, MASTER, client, now=now) == 5
        clock[0] += 3_600_000
        assert webhooks.deliver_due(ho.db, MASTER, client, now=now) == 0
    assert receiver.bad_signatures == 0
    ids = [e["id"] for e in receiver.accepted]
    assert len(ids) == len(set(ids)) == 5
    sale = next(e for e in receiver.accepted if e["type"] == "sale.reconciled"
                and e["data"]["member"] == ALI)  # fmt: skip
    assert sale["data"]["paid"] == 60_000_000 and sale["data"]["points_earned"] == 6000
    tier = next(e for e in receiver.accepted if e["type"] == "tier.changed")
    assert tier["data"]["from"] == "regular" and tier["data"]["up"] is True
    delivered = ho.q("SELECT id, attempts, last_status FROM webhook_deliveries")
    assert {(r[1], r[2]) for r in delivered} == {(6, 204)}
    # replay one from the console: delivered again (the receiver dedupes on its id)
    webhooks.replay(ho.db, ADMIN, int(delivered[0][0]))
    receiver.clock = time.time
    with httpx.Client(timeout=5) as client:
        assert webhooks.deliver_due(ho.db, MASTER, client) == 1
    assert len(receiver.accepted) == 6 and receiver.accepted[-1]["id"] in ids
    assert ho.one("SELECT action FROM audit_log WHERE target = ?",
                  (f"delivery:{delivered[0][0]}",)) == "webhook.replay"  # fmt: skip
    with pytest.raises(ClubError):
        webhooks.add(ho.db, MASTER, ADMIN, "ftp://x", ["sale.reconciled"])
    with pytest.raises(ClubError):
        webhooks.add(ho.db, MASTER, ADMIN, receiver.url, ["sale.exploded"])


def test_a_receiver_down_for_a_day_and_more_is_given_up_after_25_hours(
    ho: HO, tmp_path: Path, receiver: Receiver
) -> None:
    _, receiver.secret = webhooks.add(ho.db, MASTER, ADMIN, receiver.url, ["member.enrolled"])
    t = Terminal(tmp_path, "pos-1", "s1")
    ho.register(t)
    ho.feed(t, [t.enroll(ALI)])
    webhooks.scan(ho.db)
    clock = [ho.one("SELECT queued_at FROM webhook_deliveries")]
    receiver.clock = lambda: clock[0] / 1000
    receiver.down = True
    with httpx.Client(timeout=5) as client:
        tries = 0
        while ho.one("SELECT state FROM webhook_deliveries") == "queued" and tries < 100:
            clock[0] = ho.one("SELECT next_at FROM webhook_deliveries")
            webhooks.deliver_due(ho.db, MASTER, client, now=lambda: clock[0])
            tries += 1
    state, attempts = ho.q("SELECT state, attempts FROM webhook_deliveries")[0]
    first = ho.one("SELECT queued_at FROM webhook_deliveries")
    assert state == "failed" and clock[0] - first >= 24 * 3_600_000
    assert 20 <= attempts <= 40  # an hour apart at most once past the doubling
    assert receiver.refused == attempts


def test_the_dispatcher_process_delivers(tmp_path: Path, receiver: Receiver) -> None:
    ho = HO(f"sqlite:///{tmp_path}/ledger.db")
    env = dict(os.environ, PYTHONPATH=str(ROOT), LOYALTY_WEBHOOK_KEY=MASTER.decode())
    out = subprocess.run(
        [sys.executable, "-m", "cloud_broker", "--ledger", ho.db.url, "webhooks", "add",
         receiver.url, "--events", "member.enrolled,sale.reconciled"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    receiver.secret = out.split("secret ")[1].split()[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud_broker", "--ledger", ho.db.url, "webhooks", "run",
         "--every", "0.2"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "hooks.log").open("ab"),
    )  # fmt: skip
    try:
        _activity(ho, tmp_path)
        assert until(lambda: len(receiver.accepted) == 4, 30), (tmp_path / "hooks.log").read_text()
    finally:
        proc.terminate()
        proc.wait(15)
    assert receiver.bad_signatures == 0


def test_coupon_redeemed_and_points_expiring_events(ho: HO, tmp_path: Path) -> None:
    t = Terminal(tmp_path, "pos-1", "s1")
    ho.register(t)
    ho.feed(t, [t.enroll(ALI)])
    ho.feed(t, [t.sale(ALI, 1_000_000, discount=100_000, earned=90, coupon="WELCOME10")])
    webhooks.scan(ho.db)
    coupon = ho.q("SELECT payload FROM webhook_events WHERE event = 'coupon.redeemed'")
    assert len(coupon) == 1 and json.loads(coupon[0][0])["code"] == "WELCOME10"
    today = ho.one("SELECT MAX(earned_day) FROM lots")
    ho.db.run(lambda tx: tx.execute("UPDATE lots SET expires_day = ?", (today + 3,)))
    assert webhooks.scan_expiring(ho.db, today) == 1
    assert webhooks.scan_expiring(ho.db, today) == 1  # read again, emitted once
    exp = ho.q("SELECT payload FROM webhook_events WHERE event = 'points.expiring'")
    assert len(exp) == 1
    assert json.loads(exp[0][0]) == {"member": ALI, "points": 90, "expires_day": today + 3}
