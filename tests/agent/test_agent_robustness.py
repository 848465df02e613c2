"""The agent against what goes wrong around it: a POS sending junk, a customer's tap left
over from the one before, a reader unplugged and plugged back, the status asked while the
bank terminal holds a payment."""

from __future__ import annotations

import fcntl
import http.client
import json
import struct
import termios
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hw_sim.rdm6300 import RDM6300Sim
from hw_sim.transport import PtyServer
from hw_sim.zvt import ZVTSim
from tests.helpers.store import Store
from tests.helpers.wait import until

BASKET = {"lines": [{"sku": "DAIRY-MILK-1L", "category": "dairy", "qty": 2, "unit_price": 380_000}]}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path, bank_timeout=3)
    s.rfid = s.add_sim("rfid", "card", "rdm6300", RDM6300Sim(interval=0.03))  # type: ignore[attr-defined]
    s.bank = s.add_sim("bank", "bank", "zvt", ZVTSim(step=0.002, receipts=False))  # type: ignore[attr-defined]
    s.start()
    yield s
    s.stop()


def _raw(store: Store, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    host, port = store.url.split("//", 1)[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.putrequest("POST", path)
    for k, v in headers.items():
        c.putheader(k, v)
    c.endheaders()
    c.send(body)
    r = c.getresponse()
    return r.status, json.loads(r.read())


def _unread(srv: PtyServer) -> int:
    """Bytes on the simulated line that the agent has not read yet."""
    return int(struct.unpack("i", fcntl.ioctl(srv.slave, termios.FIONREAD, b"\0" * 4))[0])


def test_junk_from_the_pos_gets_a_clear_400(store: Store) -> None:
    code, err = _raw(store, "/v1/baskets", b"{}", {"Content-Length": "abc"})
    assert code == 400 and err["error"] == "bad_request" and err["fa"]
    deep = b"[" * 100_000 + b"]" * 100_000
    code, err = _raw(store, "/v1/baskets", deep, {"Content-Length": str(len(deep))})
    assert code in (400, 413) and err["error"] in ("bad_json", "too_large")
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    path = f"/v1/sessions/{s['session']}/identify"
    for body in (
        {"wait": "abc"},
        {"wait": [1]},
        {"card": None},
        {"card": "04AB", "kind": "x" * 99},
    ):
        code, err = store.api("POST", path, body)
        assert code == 400 and err["error"] == "bad_request", (body, err)
    assert store.status()["devices"]["rfid"] == "ok"  # and the agent carries on


def test_a_tap_from_before_the_basket_does_not_identify_the_next_customer(store: Store) -> None:
    rfid: RDM6300Sim = store.rfid  # type: ignore[attr-defined]
    line = store.sims["rfid"]
    rfid.tap("0F00A1B2C3", frames=3)  # three frames, however late the simulator sends them
    # the previous customer's card was read and left: every frame sent, all taken off the line
    assert until(lambda: rfid.card is None and _unread(line) == 0), f"{_unread(line)} unread"
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    # a negative check: no identification within this window
    code, v = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"wait": 0.5})
    assert code == 408 and v["error"] == "timeout"
    rfid.tap("0F00D4E5F6", frames=3)
    code, v = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"wait": 30})
    assert code == 200 and v["member"] == "card:0F00D4E5F6"


def test_an_unplugged_reader_comes_back_by_itself(store: Store) -> None:
    link = store.dir / "tty-rfid"
    store.sims["rfid"].stop()  # the USB adapter is pulled out
    assert until(lambda: store.status()["devices"]["rfid"].startswith("error"), 10)
    sim = RDM6300Sim(interval=0.03)
    store.sims["rfid"] = PtyServer(sim, link).start()  # ... and plugged back in
    assert until(lambda: store.status()["devices"]["rfid"] == "ok", 20)
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    sim.tap("0F00A1B2C3", frames=3)
    code, v = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"wait": 30})
    assert code == 200 and v["member"] == "card:0F00A1B2C3"


def test_status_answers_while_the_bank_terminal_holds_a_payment(store: Store) -> None:
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    store.bank.event("next", outcome="timeout")  # type: ignore[attr-defined]
    t = threading.Thread(target=store.api, args=("POST", f"/v1/sessions/{s['session']}/pay"))
    t.start()
    bank: ZVTSim = store.bank  # type: ignore[attr-defined]
    assert until(lambda: bool(bank.history) and bank.busy)  # the terminal holds the payment
    st = store.status()
    answered_during_payment = t.is_alive()  # the bank terminal still holds it (3 s timeout)
    t.join(30)
    assert answered_during_payment and st["busy"] is True and st["outbox"]["depth"] == 0
    assert store.status()["busy"] is False and store.status()["bank_status"] == ""


def test_a_cancel_while_the_terminal_waits_for_the_card_aborts_the_payment(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, bank_timeout=60)
    bank = store.add_sim("bank", "bank", "zvt", ZVTSim(step=0.002, receipts=False))
    store.start()
    try:
        _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
        sid = s["session"]
        bank.event("next", outcome="timeout")  # "insert card" until the cash register aborts
        paid: dict[str, Any] = {}
        t = threading.Thread(
            target=lambda: paid.update(r=store.api("POST", f"/v1/sessions/{sid}/pay"))
        )
        t.start()
        assert until(lambda: bank.busy, 10)
        code, view = store.api("POST", f"/v1/sessions/{sid}/cancel")
        t.join(30)
        # long before the 60 s bank timeout: the cancel aborted the terminal
        assert not t.is_alive()
        assert code == 200 and view["state"] == "declined"
        code, r = paid["r"]
        assert code == 200 and r["status"] == "declined" and "cash register" in r["en"]
        assert [h["charged"] for h in bank.history] == [False]
        # a cancel with no payment in progress is a plain cancel
        _, s2 = store.api("POST", "/v1/baskets", {"basket": BASKET})
        code, view = store.api("POST", f"/v1/sessions/{s2['session']}/cancel")
        assert code == 200 and view["state"] == "cancelled"
    finally:
        store.stop()


def test_identify_and_pay_on_one_session_at_once_stay_on_the_agent_thread(store: Store) -> None:
    """The POS's threads call at once: every call runs on the agent thread (a call from
    another thread is refused with an internal error, which this would show)."""
    store.bank.event("outcomes", outcomes="approve")  # type: ignore[attr-defined]
    answers: list[tuple[int, Any]] = []
    for _ in range(5):
        _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
        sid = s["session"]
        calls = [
            ("POST", f"/v1/sessions/{sid}/identify", {"wait": 1}),
            ("POST", f"/v1/sessions/{sid}/identify", {"phone": "09121234567"}),
            ("POST", f"/v1/sessions/{sid}/pay", None),
            ("GET", f"/v1/sessions/{sid}", None),
        ]
        threads = [
            threading.Thread(target=lambda c=c: answers.append(store.api(*c))) for c in calls
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
    assert len(answers) == 20
    assert all(code < 500 for code, _ in answers), [a for a in answers if a[0] >= 500]
    assert "belongs to the agent thread" not in store.log.read_text()


def test_the_checkout_refuses_a_call_from_another_thread(tmp_path: Path) -> None:
    from tests.helpers.checkout import FakeBank, make_checkout

    co = make_checkout(tmp_path, FakeBank())
    co.owner = threading.get_ident()
    s = co.open(BASKET)
    errors: list[BaseException] = []

    def other() -> None:
        try:
            co.session(s.id)
        except RuntimeError as e:
            errors.append(e)

    th = threading.Thread(target=other, name="pos-api-thread")
    th.start()
    th.join()
    assert len(errors) == 1 and "pos-api-thread" in str(errors[0])
    assert co.session(s.id) is s  # the owner itself is served
