"""A disk that fills while the bank terminal is approving: the agent as a real process, its
data directory on a small real file system (tmpfs), a ZVT terminal that takes about a
second, and the disk filled by another program in that second."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hw_sim.zvt import ZVTSim
from tests.helpers.smalldisk import fill, small_disk
from tests.helpers.store import Store
from tests.helpers.wait import until

BASKET = {
    "id": "POS-5001",
    "lines": [{"sku": "OIL-1L", "category": "grocery", "qty": 2, "unit_price": 2_400_000}],
}


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk", 6 * 1024) as d:
        yield d


def _store(tmp_path: Path, disk: Path, reserve_mb: int) -> tuple[Store, ZVTSim]:
    store = Store(
        tmp_path,
        data_dir=disk / "data",
        outbox={"reserve_mb": reserve_mb, "min_free_mb": 1},
        bank_timeout=20,
    )
    bank = ZVTSim(step=0.08)  # about a second from authorisation to completion
    store.add_sim("bank", "bank", "zvt", bank)
    store.start()
    return store, bank


def _pay_while_the_disk_fills(store: Store, bank: ZVTSim, disk: Path) -> tuple[int, Any, str]:
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    sid = s["session"]
    store.api("POST", f"/v1/sessions/{sid}/identify", {"phone": "09121234567"})

    def filler() -> None:
        assert until(lambda: bank.busy, 10)  # the bank terminal is approving now
        fill(disk)

    t = threading.Thread(target=filler)
    t.start()
    code, r = store.api("POST", f"/v1/sessions/{sid}/pay")
    t.join(30)
    return code, r, sid


def _charges(bank: ZVTSim) -> list[int]:
    return [int(h["amount"]) for h in bank.history if h["charged"] and h["kind"] == "payment"]


def test_the_reserve_records_a_sale_approved_as_the_disk_filled(tmp_path: Path, disk: Path) -> None:
    store, bank = _store(tmp_path, disk, reserve_mb=1)
    try:
        assert store.status()["storage"]["reserve_ready"] is True
        code, r, sid = _pay_while_the_disk_fills(store, bank, disk)
        assert code == 200 and r["status"] == "approved" and r["recorded"] is True, r
        st = store.status()
        assert st["storage"]["disk_full"] is True and st["storage"]["reserve_ready"] is False
        assert st["recording"]["reason"] == "disk_full" and st["recording"]["fa"]
        assert st["outbox"]["fill_pct"] < 50  # the disk is full, not the outbox
        # the POS asks again: the first answer, no second charge
        code, again = store.api("POST", f"/v1/sessions/{sid}/pay")
        assert code == 200 and again["repeated"] is True and again["record"] == r["record"]
        # a new club sale is refused before the card is touched ...
        _, s2 = store.api("POST", "/v1/baskets", {"basket": {**BASKET, "id": "POS-5002"}})
        code, e = store.api("POST", f"/v1/sessions/{s2['session']}/pay")
        assert code == 507 and e["error"] == "disk_full" and "Nothing was charged" in e["en"]
        # ... and the shop still sells without the club
        code, plain = store.api("POST", f"/v1/sessions/{s2['session']}/pay", {"loyalty": False})
        assert code == 200 and plain["status"] == "approved" and plain["loyalty"] is False
        assert _charges(bank) == [4_800_000, 4_800_000]
        # space comes back: the club records again and the reserve is made again
        (disk / "filler.bin").unlink()
        assert until(lambda: store.status()["recording"]["ok"], 15)
        assert store.status()["storage"]["reserve_ready"] is True
    finally:
        store.stop()


def test_without_a_reserve_the_approval_is_kept_and_recorded_when_space_returns(
    tmp_path: Path, disk: Path
) -> None:
    store, bank = _store(tmp_path, disk, reserve_mb=0)
    try:
        code, r, sid = _pay_while_the_disk_fills(store, bank, disk)
        # the customer paid: the POS is told so, and that the club will record it later
        assert code == 200 and r["status"] == "approved" and r["recorded"] is False, r
        assert "Do not charge again" in r["en"] and r["fa"]
        st = store.status()  # at once, not after a timer
        assert st["unrecorded"] == 1 and st["payments_unknown"] == 1
        assert st["recording"]["reason"] == "disk_full"
        code, again = store.api("POST", f"/v1/sessions/{sid}/pay")
        assert code == 200 and again["repeated"] is True
        assert _charges(bank) == [4_800_000]
        depth = st["outbox"]["depth"]
        (disk / "filler.bin").unlink()  # space returns: the sale is recorded by itself
        assert until(lambda: store.status()["unrecorded"] == 0, 20)
        st = store.status()
        assert st["payments_unknown"] == 0 and st["outbox"]["depth"] >= depth + 1
        assert any("recorded now" in line for line in st["recovered"]), st["recovered"]
        code, again = store.api("POST", f"/v1/sessions/{sid}/pay")
        assert again["record"] is not None  # the repeat now names the record
        assert _charges(bank) == [4_800_000]
    finally:
        store.stop()
