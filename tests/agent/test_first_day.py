"""What a cashier, a technician and an operator hit on the first day: one-line errors at
start, Persian for every message a cashier sees, the JSON envelope for everything the POS
API refuses, phone numbers with blanks around them, a token in any case and its file's mode."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.core.phone import normalise
from tests.conftest import ROOT
from tests.helpers.store import Store

BASKET = {"lines": [{"sku": "BREAD-1", "category": "bakery", "qty": 1, "unit_price": 450_000}]}
LATIN = re.compile(r"[A-Za-z]{3,}")  # an English word in a text meant to be Persian


def _run(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_line_error(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("configuration error: "), r.stderr
    for w in words:
        assert w in last, last


def test_a_configuration_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.toml"
    cfg.write_bytes(b"\xff\xfe[device]\n")
    _one_line_error(_run(cfg), "not UTF-8")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path)
    s.start()
    yield s
    s.stop()


def test_a_second_agent_on_the_same_terminal_is_refused_in_one_line(store: Store) -> None:
    _one_line_error(_run(store.dir / "edge.toml"), "another agent", "already running")
    assert store.status()["device"] == "pos-1"  # the first one is untouched


def test_a_pos_port_already_taken_is_refused_in_one_line(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    s = Store(tmp_path)
    cfg = s.write_config()
    cfg.write_text(
        cfg.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"')
    )
    try:
        _one_line_error(_run(cfg), "pos_api.listen", str(port))
    finally:
        taken.close()


def _raw(store: Store, data: bytes) -> tuple[int, dict[str, Any]]:
    host, port = store.url.split("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as c:
        c.sendall(data)
        out = b""
        while chunk := c.recv(65536):
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_every_refusal_is_the_json_envelope_with_persian_for_the_cashier(store: Store) -> None:
    answers: list[tuple[int, dict[str, Any]]] = []
    answers.append(_raw(store, b"GARBAGE\r\n\r\n"))
    answers.append(_raw(store, b"PUT /v1/baskets HTTP/1.1\r\nHost: x\r\n\r\n"))
    answers.append(_raw(store, b"BREW /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"))
    answers.append(store.api("GET", "/v1/sessions/0123456789abcdef"))
    answers.append(store.api("POST", "/v1/sessions/no-such-thing/pay"))
    bad_qty = {"lines": [{"sku": "A", "category": "x", "qty": 0, "unit_price": 10}]}
    answers.append(store.api("POST", "/v1/baskets", {"basket": bad_qty}))
    answers.append(store.api("POST", "/v1/baskets", {"basket": {"lines": [{"sku": ""}]}}))
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    answers.append(
        store.api("POST", f"/v1/sessions/{s['session']}/identify", {"phone": 9121234567})
    )
    codes = [a[0] for a in answers]
    assert codes == [400, 405, 501, 404, 404, 400, 400, 400], answers
    for _code, body in answers:
        assert set(body) == {"error", "en", "fa"}, body
        assert body["fa"] and not LATIN.search(body["fa"]), body  # Persian, for a cashier
    assert answers[3][1]["error"] == "unknown_session" and "session" in answers[3][1]["en"]
    assert "ردیف ۱ سبد، تعداد" in answers[5][1]["fa"]
    assert "text" in answers[7][1]["en"] and "متن" in answers[7][1]["fa"]


def test_a_chunked_body_is_read(store: Store) -> None:
    host, port = store.url.split("//", 1)[1].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    body = json.dumps({"basket": BASKET}).encode()
    c.request(
        "POST",
        "/v1/baskets",
        body=iter([body[:10], body[10:]]),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    r = c.getresponse()
    assert r.status == 201 and json.loads(r.read())["state"] == "open"


def test_blanks_around_a_phone_number_are_not_part_of_it(store: Store) -> None:
    for typed in ("09121234567\n", "  ۰۹۱۲ ۱۲۳ ۴۵۶۷  ", "\t09121234567\r\n"):
        assert normalise(typed) == "+989121234567"
    _, s = store.api("POST", "/v1/baskets", {"basket": BASKET})
    code, v = store.api("POST", f"/v1/sessions/{s['session']}/identify", {"phone": "09121234567\n"})
    assert code == 200 and v["member"] == "+989121234567"


def test_the_token_scheme_is_any_case_and_its_file_is_private(tmp_path: Path) -> None:
    from firmware_tools.cli import main as tool

    d = tmp_path / "t"
    d.mkdir()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edge.protocol import keys

    (d / "rules.pub.pem").write_text(keys.public_pem(Ed25519PrivateKey.generate()))
    cfg = d / "edge.toml"
    code = tool(
        [
            "init", "--config", str(cfg), "--tenant", "hypershahr", "--store", "s1",
            "--device", "pos-1", "--rules-key", str(d / "rules.pub.pem"),
            "--pos-token", "s3cret-token", "--pos-listen", "127.0.0.1:0",
        ]
    )  # fmt: skip
    assert code == 0
    assert cfg.stat().st_mode & 0o777 == 0o600  # it holds the token
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[1]
        host, port = url.split("//", 1)[1].split(":")
        for scheme, want in (("Bearer", 200), ("bearer", 200), ("BEARER", 200), ("Basic", 401)):
            c = http.client.HTTPConnection(host, int(port), timeout=10)
            c.request("GET", "/v1/status", headers={"Authorization": f"{scheme} s3cret-token"})
            assert c.getresponse().status == want, scheme
    finally:
        proc.terminate()
        proc.wait(20)
    cfg.chmod(0o644)
    r = _run_briefly(cfg)
    assert "readable by others" in r and "chmod 600" in r


def _run_briefly(cfg: Path) -> str:
    """Start the agent, read its log until it listens, stop it; the log."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    return err


def test_a_receipt_shows_no_raw_card_id_and_every_cap_and_multiplier() -> None:
    import json as _json

    from edge import receipt
    from edge.core.engine import quote
    from edge.core.ruleset import compile_rules
    from tests.conftest import RULES_PATH

    rs = compile_rules(_json.loads(RULES_PATH.read_text("utf-8")))
    member = {
        "ref": "card:APP-7731",
        "points": 0,
        "wallet": 0,
        "visits": 3,
        "spend": [["2026-11-20", 250_000_000]],  # silver: points x1.25
        "used_coupons": [],
        "birthday_claimed": 0,
        "today": {"date": "2026-12-03", "discount": 0, "points": 0},
    }
    tv = {"lines": [{"sku": "TV", "category": "electronics", "qty": 1, "unit_price": 104_000_000}]}
    q = quote(rs, tv, member, "2026-12-03T10:00:00+03:30")  # a Thursday: the weekend offer
    r = receipt.sale(q, "s1", 7)
    en, fa = "\n".join(r["en"]), "\n".join(r["fa"])
    assert "APP-7731" not in en + fa and "card ***7731" in en and "کارت ***7731" in fa
    # 5% of 104M would be 5.2M: the offer's cap is said, not hidden
    assert "1,500,000 IRR (capped; 5,200,000 IRR without the cap)" in " ".join(r["en"])
    assert "با سقف" in " ".join(r["fa"])
    # 100 points per 1M, yet 12,812 points on 102.5M: the tier's multiplier is on the line
    assert "x1.25 (Silver tier)" in " ".join(r["en"]) and "×۱٫۲۵" in " ".join(r["fa"])
    assert all(len(line) <= receipt.WIDTH for line in r["en"][3:])  # wrapped, nothing cut
