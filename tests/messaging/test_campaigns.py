"""Campaigns on SQLite and PostgreSQL: counted and priced before sending, planned when due,
sent at their pace, cancelled; and a sender killed mid-campaign, restarted: every member
gets the message exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloud_broker.club import changes
from cloud_broker.club.errors import ClubError, NotAllowedError
from cloud_broker.club.operators import Operator
from cloud_broker.messaging import campaigns, outbox, sender, settings
from tests.conftest import ROOT
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal
from tests.helpers.wait import until
from tests.messages.conftest import KEY
from tests.messages.fakes import FakeKavenegar

MINA = Operator(1, "mina", "Mina", "marketing")
SARA = Operator(2, "sara", "Sara", "support")


def _members(ho: HO, pos: Terminal, n: int) -> list[str]:
    phones = [f"+98912{i:07d}" for i in range(n)]
    for i in range(0, n, 200):
        ho.feed(pos, [pos.sale(p, 1_000_000 + 10_000 * (j % 7), earned=100)
                      for j, p in enumerate(phones[i : i + 200])])  # fmt: skip
    return phones


def test_a_campaign_from_draft_to_done(ho: HO, pos: Terminal) -> None:
    phones = _members(ho, pos, 30)
    changes.edit_profile(ho.db, SARA, phones[0], "x", "", "", True)  # opted out
    ho.feed(pos, [pos.outbox.commit("enroll", {19: {0: "card", 1: "04FF"}}, member=None)])
    with pytest.raises(ClubError):
        campaigns.create(ho.db, ho.rs, MINA, "بد", "{nmae} عزیز", {"all": True})
    with pytest.raises(NotAllowedError):
        campaigns.create(ho.db, ho.rs, SARA, "x", "سلام", {"all": True})
    cid = campaigns.create(ho.db, ho.rs, MINA, "تخفیف پاییزه",
                           "{name} عزیز، {points} امتیاز دارید. کد {coupon}", {"all": True},
                           coupon="AUTUMN", rate_per_min=6000)  # fmt: skip
    est = campaigns.estimate(ho.db, cid)
    assert est.recipients == 29  # the opted-out member is left out
    assert est.parts >= 2 and est.cost_rials == 29 * est.parts * 1230
    campaigns.schedule(ho.db, MINA, cid, int(time.time() * 1000) + 3_600_000)  # in an hour
    assert campaigns.due(ho.db, int(time.time() * 1000)) == 0
    assert campaigns.due(ho.db, int(time.time() * 1000) + 3_600_001) == 29
    assert campaigns.due(ho.db, int(time.time() * 1000) + 3_600_002) == 0  # planned once
    gw_fake = FakeKavenegar(KEY)
    try:
        from cloud_broker.messages.gateway import Secret
        from cloud_broker.messages.kavenegar import Kavenegar

        gw = Kavenegar(Secret(KEY), base_url=gw_fake.base_url, sender="1000", timeout=2)
        s = sender.Sender(ho.db, gw, lambda: ho.rs, "t", lambda: time.time() + 7200)
        settings.save(ho.db, MINA, {"quiet_start": 0, "quiet_end": 0})  # no quiet hours here

        def settled() -> bool:
            fed = campaigns.feed(ho.db)
            return not fed and s.step() == 0 and outbox.counts(ho.db, cid).get("queued") is None

        assert until(settled, 30)
        texts = [m.text for m in gw_fake.messages.values()]
        assert len(texts) == 29 and all("کد AUTUMN" in t for t in texts)
        campaigns.due(ho.db, int(time.time() * 1000))
        assert campaigns.get(ho.db, cid)["state"] == "done"
        assert campaigns.progress(ho.db, cid)["sent"] == 29
        gw.close()
    finally:
        gw_fake.close()


def test_a_list_campaign_and_cancelling(ho: HO, pos: Terminal) -> None:
    phones = _members(ho, pos, 5)
    with pytest.raises(ClubError) as e:
        campaigns.create(ho.db, ho.rs, MINA, "x", "سلام", {}, phones="0912\n")
    assert e.value.code == "bad_recipients"
    cid = campaigns.create(ho.db, ho.rs, MINA, "vip", "سلام {name}", {},
                           phones=f"{phones[1]}\n{phones[2]}\n09120000099")  # fmt: skip
    assert campaigns.estimate(ho.db, cid).recipients == 2
    campaigns.schedule(ho.db, MINA, cid, None)
    campaigns.due(ho.db, int(time.time() * 1000) + 1)
    assert campaigns.feed(ho.db) == 2 and campaigns.feed(ho.db) == 0  # queued once
    assert campaigns.cancel(ho.db, MINA, cid) == 2
    assert outbox.counts(ho.db, cid) == {"cancelled": 2}


def test_a_sender_killed_mid_campaign_sends_each_message_once(
    tmp_path: Path, ledger_url: str
) -> None:
    ho = HO(ledger_url)
    pos = Terminal(tmp_path)
    ho.register(pos)
    n = 300
    _members(ho, pos, n)
    settings.save(ho.db, MINA, {"quiet_start": 0, "quiet_end": 0, "send_rate_per_min": 100_000})
    cid = campaigns.create(ho.db, ho.rs, MINA, "c", "سلام {name}", {"all": True},
                           rate_per_min=100_000)  # fmt: skip
    campaigns.schedule(ho.db, MINA, cid, None)
    fake = FakeKavenegar(KEY)
    env = dict(os.environ, LOYALTY_SMS_API_KEY=KEY, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "cloud_broker", "--ledger", ledger_url, "sms", "run",
           "--gateway", "kavenegar", "--base-url", fake.base_url, "--sender", "1000"]  # fmt: skip
    log = (tmp_path / "sms.log").open("ab")
    try:
        p = subprocess.Popen([*cmd, "--worker", "first"], cwd=ROOT, env=env, stderr=log)
        assert until(lambda: len(fake.messages) >= n // 3, 60), (tmp_path / "sms.log").read_text()
        p.send_signal(signal.SIGKILL)  # mid-campaign, maybe mid-send
        p.wait(10)
        held = ho.one("SELECT COUNT(*) FROM sms_outbox WHERE state = 'sending'")
        # a second sender, later: it waits out the dead one's lease, then finishes
        ho.db.run(lambda tx: tx.execute(
            "UPDATE sms_outbox SET claimed_at = claimed_at - ? WHERE state = 'sending'",
            (sender.LEASE_MS,)))  # fmt: skip
        q = subprocess.Popen([*cmd, "--worker", "second"], cwd=ROOT, env=env, stderr=log)
        assert until(lambda: outbox.counts(ho.db, cid).get("sent", 0) == n, 90), (
            outbox.counts(ho.db, cid),
            (tmp_path / "sms.log").read_text()[-2000:],
        )
        q.send_signal(signal.SIGTERM)
        assert q.wait(20) == 0
        receivers = [m.to for m in fake.messages.values()]
        assert len(receivers) == n and len(set(receivers)) == n  # each member exactly once
        sends = sum(1 for r in fake.requests if r.path.endswith("/sms/send.json"))
        assert sends >= n  # rows the dead sender held were sent again: the gateway dropped them
        assert held >= 0
    finally:
        fake.close()
        ho.close()
