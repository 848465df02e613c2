"""Power cuts at each step of a checkout: after a restart the outcome is right and head
office's ledger agrees with what the bank terminal charged."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.local_broker import LocalMosquitto
from cloud_broker.registry import devices as registry
from edge.core import record as R
from edge.protocol import cose
from edge.protocol.cbor import decode
from hw_sim.zvt import ZVTSim
from tests.cloud.test_service import serve
from tests.helpers.headoffice import HO
from tests.helpers.store import Store

BASKET = {
    "lines": [{"sku": "NUT-ALMOND-1KG", "category": "nuts", "qty": 1, "unit_price": 9_800_000}]
}


class World:
    def __init__(self, tmp: Path, broker: LocalMosquitto) -> None:
        self.url = f"sqlite:///{tmp}/ledger.db"
        self.ho = HO(self.url)
        self.store = Store(tmp, broker_url=broker.url)
        registry.register(
            self.ho.db,
            self.store.device,
            self.store.tenant,
            self.store.store,
            self.store.public_key,
        )
        self.hq: subprocess.Popen[bytes] = serve(broker, self.url, tmp / "serve.log")
        self.bank = ZVTSim()
        self.store.add_sim("bank", "bank", "zvt", self.bank)

    def charged(self) -> int:
        """Money the bank terminal really took, less what it paid back to cards."""
        return sum(
            h["amount"] * (1 if h["kind"] == "payment" else -1)
            for h in self.bank.history
            if h["charged"]
        )

    def recorded(self) -> int:
        """Sales in head office's ledger, less refunds paid back to the card."""
        total = 0
        for kind, raw in self.ho.q("SELECT type, raw FROM records WHERE type != 'enroll'"):
            p = decode(cose.parse(bytes(raw)).payload)
            if kind == "sale":
                total += p[R.K_AMOUNTS][3]
            elif p.get(R.K_BANK):
                total -= p[R.K_AMOUNTS][3]
        return total

    def try_sale(self) -> dict[str, Any] | None:
        st = self.store
        _, s = st.api("POST", "/v1/baskets", {"basket": BASKET})
        st.api("POST", f"/v1/sessions/{s['session']}/identify", {"phone": "09121234567"})
        try:
            return st.api("POST", f"/v1/sessions/{s['session']}/pay")[1]
        except (ConnectionError, OSError):
            return None  # the agent died mid-request

    def settled(self) -> bool:
        st = self.store.status()
        return st["online"] and st["outbox"]["depth"] == 0

    def close(self) -> None:
        self.store.stop()
        self.hq.terminate()
        self.hq.wait(15)
        self.ho.close()


@pytest.fixture
def world(tmp_path: Path, broker: LocalMosquitto) -> Iterator[World]:
    w = World(tmp_path, broker)
    yield w
    w.close()


@pytest.mark.parametrize(
    ("step", "charged", "note"),
    [
        ("before_charge", False, "never reached the bank"),
        ("after_approval", True, "was approved: recorded"),
        ("after_commit", True, None),
    ],
)
def test_power_cut_at_each_step(world: World, step: str, charged: bool, note: str | None) -> None:
    world.store.start(env={"LOYALTY_CRASH_AT": step})
    assert world.try_sale() is None
    assert world.store.proc is not None and world.store.proc.wait(10) == -signal.SIGKILL
    assert (world.charged() > 0) is charged
    world.store.start()  # the power comes back
    assert world.store.wait(world.settled, 60)
    st = world.store.status()
    if note is None:
        assert st["recovered"] == []
    else:
        assert any(note in line for line in st["recovered"]), st["recovered"]
    assert st["payments_unknown"] == 0
    assert world.recorded() == world.charged()  # the ledger agrees with the bank
    assert world.ho.check() == []
    # and the till works again
    r = world.try_sale()
    assert r is not None and r["status"] == "approved"
    assert world.store.wait(world.settled, 60)
    assert world.recorded() == world.charged()


def test_power_cut_while_publishing(world: World) -> None:
    world.store.start()
    assert world.store.wait(lambda: world.store.status()["online"])
    for _ in range(5):
        r = world.try_sale()
        assert r is not None and r["status"] == "approved"
    world.store.kill(signal.SIGKILL)  # right after the last sale: records are in flight
    world.store.start()
    assert world.store.wait(world.settled, 60)
    assert world.recorded() == world.charged() == 5 * world.bank.history[0]["amount"]
    assert world.ho.one("SELECT COUNT(*) FROM records WHERE type = 'sale'") == 5
    assert world.ho.check() == []


def test_a_reset_bank_terminal_repeats_trace_numbers_across_a_power_cut(world: World) -> None:
    """Trace 1 is booked; the terminal is reset and its next payment is trace 1 again; the
    power fails while the receipt prints.  The restart must record that paid sale, not take
    it for the old one and close it as not paid."""
    world.store.start()
    first = world.try_sale()
    assert first is not None and first["bank"]["trace"] == 1
    world.store.kill(signal.SIGTERM)
    world.bank.event("reset")  # the terminal's counters start again
    world.store.start(env={"LOYALTY_CRASH_AT": "after_approval"})
    assert world.try_sale() is None
    assert world.bank.history[-1]["trace"] == 1 and world.bank.history[-1]["charged"]
    world.store.start()
    assert world.store.wait(world.settled, 60)
    st = world.store.status()
    assert any("was approved: recorded" in line for line in st["recovered"]), st["recovered"]
    assert st["payments_unknown"] == 0
    assert world.recorded() == world.charged() == 2 * BASKET["lines"][0]["unit_price"]
    assert world.ho.one("SELECT COUNT(*) FROM records WHERE type = 'sale'") == 2
    assert world.ho.check() == []


def test_a_power_cut_after_the_bank_paid_a_void_back(world: World) -> None:
    world.store.start()
    sale = world.try_sale()
    assert sale is not None and sale["status"] == "approved"
    world.store.kill(signal.SIGTERM)
    world.store.start(env={"LOYALTY_CRASH_AT": "after_approval"})
    with contextlib.suppress(ConnectionError, OSError):
        world.store.api("POST", f"/v1/sales/{sale['record']['seq']}/void")
    assert world.store.proc is not None and world.store.proc.wait(10) == -signal.SIGKILL
    assert world.bank.history[-1]["kind"] == "reversal" and world.bank.history[-1]["charged"]
    world.store.start()
    assert world.store.wait(world.settled, 60)
    st = world.store.status()
    assert any("void" in line and "recorded" in line for line in st["recovered"]), st
    assert world.charged() == world.recorded() == 0  # paid, and paid back: both sides
    assert world.ho.one("SELECT COUNT(*) FROM records WHERE type = 'void'") == 1
    assert world.ho.check() == []
