"""The customer display and the kiosk in Chromium, against a real agent process with a
simulated bank terminal: a checkout through the POS API shows its lines, the discounts with
their explanations, the points and the balance live, then a thank-you; the kiosk keypad
identifies a member typed in Persian digits, refuses a wrong number clearly, enrols with
consent, and clears itself when left alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cloud_broker.local_broker import free_port
from hw_sim.zvt import ZVTSim
from tests.helpers.console import shot
from tests.helpers.store import Store

FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
BASKET = {
    "id": "POS-DISPLAY-1",
    "lines": [
        {"sku": "DAIRY-MILK-1L", "name": "شیر یک لیتری", "category": "dairy", "qty": 2,
         "unit_price": 380_000},
        {"sku": "BAKERY-BARBARI", "name": "نان بربری", "category": "bakery", "qty": 1,
         "unit_price": 150_000},
    ],
}  # fmt: skip


def _store(tmp: Path, **display: Any) -> tuple[Store, str]:
    port = free_port()
    store = Store(tmp, display={"listen": f"127.0.0.1:{port}", **display})
    store.add_sim("bank", "bank", "zvt", ZVTSim())
    store.start()
    return store, f"http://127.0.0.1:{port}/"


def test_the_customer_sees_the_checkout_live(tmp_path: Path, page: Any) -> None:
    store, url = _store(tmp_path)
    try:
        page.goto(url)
        page.wait_for_selector("#welcome >> text=خوش آمدید")
        code, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
        assert code == 201
        page.wait_for_selector("main[data-screen=basket]")
        page.wait_for_selector("#lines >> text=شیر یک لیتری")
        assert (
            page.inner_text("#payable")
            == f"{s['quote']['payable']:,}".translate(FA).replace(",", "٬") + " ریال"
        )
        code, v = store.api("POST", f"/v1/sessions/{s['session']}/identify",
                            {"phone": "۰۹۱۲ ۱۲۳ ۴۵۶۷"})  # fmt: skip
        assert code == 200
        page.wait_for_selector("#who >> text=0912***4567")  # masked, not the whole number
        applied = [a for a in v["quote"]["applied"] if a.get("fa")]
        assert applied  # the welcome offer on a first purchase, explained
        page.wait_for_selector(f"#applied >> text={applied[0]['fa'][:12]}")
        earned = v["quote"]["points_earned"]
        assert earned > 0
        assert str(earned).translate(FA) in page.inner_text("#earn")
        shot(page, "display")
        code, paid = store.api("POST", f"/v1/sessions/{s['session']}/pay", {})
        assert code == 200 and paid["status"] == "approved", paid
        page.wait_for_selector("main[data-screen=thanks]")
        after = v["quote"]["member"]["points_after"]
        assert str(after).translate(FA) in page.inner_text("#thanks-points")
        assert "ریال" in page.inner_text("#thanks-tier")  # what is left to the next tier
        # a page opened now (a display restarted) shows the same thing at once
        other = page.context.new_page()
        other.goto(url)
        other.wait_for_selector("main[data-screen=thanks]")
        other.close()
    finally:
        store.stop()


def test_the_kiosk(tmp_path: Path, page: Any) -> None:
    store, url = _store(tmp_path, kiosk=True, idle_s=5)
    try:
        # a member known to this terminal: one paid sale
        _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
        store.api("POST", f"/v1/sessions/{s['session']}/identify", {"phone": "09121234567"})
        assert store.api("POST", f"/v1/sessions/{s['session']}/pay", {})[1]["status"] == "approved"
        page.set_viewport_size({"width": 800, "height": 1280})
        page.goto(url + "?mode=kiosk")
        page.wait_for_selector("main[data-screen=kiosk]")
        for d in "09121234567":
            page.click(f"#keypad button[data-key='{d}']")
        assert page.inner_text("[data-test=phone]") == "09121234567".translate(FA)
        page.click("#balance")
        page.wait_for_selector("#result >> text=0912***4567")
        assert "امتیاز" in page.inner_text("#result")
        shot(page, "kiosk")
        # a wrong number: the same clear message as at the till
        page.click("#keypad button[data-key='C']")
        for d in "0912":
            page.click(f"#keypad button[data-key='{d}']")
        page.click("#balance")
        page.wait_for_selector("#result.error")
        assert page.inner_text("#result")  # in Persian, from the engine's normaliser
        # joining needs consent
        page.click("#keypad button[data-key='C']")
        for d in "09351112233":
            page.click(f"#keypad button[data-key='{d}']")
        page.click("#enrol")
        page.wait_for_selector("#result.error >> text=رضایت")
        page.check("#consent")
        page.click("#enrol")
        page.wait_for_selector("#result >> text=عضو باشگاه شدید")
        # left alone, it forgets the last person
        page.wait_for_selector("main[data-cleared]", timeout=15_000)
        assert page.inner_text("[data-test=phone]") == ""
        assert page.inner_text("#result") == ""
        assert not page.is_checked("#consent")
    finally:
        store.stop()


def test_a_hostile_kiosk_request_gets_a_clear_answer_at_once(tmp_path: Path) -> None:
    import json
    import socket

    store, url = _store(tmp_path, kiosk=True)
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    try:
        for length in ("-5", "999999"):
            with socket.create_connection((host, int(port)), timeout=5) as s:
                s.sendall(f"POST /kiosk/balance HTTP/1.1\r\nHost: x\r\nContent-Length: {length}"
                          "\r\nConnection: close\r\n\r\n".encode())  # fmt: skip
                answer = b""
                while chunk := s.recv(4096):  # the server answers and closes, never waits
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")), head
            assert json.loads(body)["fa"]
    finally:
        store.stop()
