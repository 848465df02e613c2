"""One-time codes and sessions of the member panel, on SQLite and PostgreSQL, against the
local fake of Kavenegar's API; the membership QR code."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_broker.club.errors import ClubError
from cloud_broker.messages.kavenegar import Kavenegar
from cloud_broker.panel import access
from edge.protocol import memberqr
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal
from tests.messages.fakes import FakeKavenegar

SECRET = b"p" * 48
ALI = "+989121234567"


def _member(ho: HO, tmp: Path) -> None:
    t = Terminal(tmp, "pos-1", "s1")
    ho.register(t)
    ho.feed(t, [t.enroll(ALI), t.sale(ALI, 2_000_000, earned=200)])


def _code(fake: FakeKavenegar) -> str:
    text = list(fake.messages.values())[-1].text
    found = re.search(r"(\d{6})", text)
    assert found, text
    return found.group(1)


def test_a_code_signs_the_member_in_once(ho: HO, tmp_path: Path, kn: Kavenegar,
                                        kn_fake: FakeKavenegar) -> None:  # fmt: skip
    _member(ho, tmp_path)
    assert access.request_code(ho.db, kn, SECRET, "۰۹۱۲ ۱۲۳ ۴۵۶۷", "10.0.0.1") == ALI
    code = _code(kn_fake)
    stored = json.dumps(ho.q("SELECT * FROM panel_codes"), default=str)
    assert code not in stored  # only its HMAC
    with pytest.raises(ClubError) as e:
        access.sign_in(ho.db, SECRET, ALI, "000000" if code != "000000" else "111111")
    assert e.value.code == "bad_code" and e.value.fa
    token, s = access.sign_in(ho.db, SECRET, "09121234567", code.translate(
        str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")))  # fmt: skip
    assert s.member == ALI and access.session(ho.db, token) == s
    assert token not in json.dumps(ho.q("SELECT * FROM panel_sessions"), default=str)
    with pytest.raises(ClubError):  # used once
        access.sign_in(ho.db, SECRET, ALI, code)
    access.sign_out(ho.db, token)
    assert access.session(ho.db, token) is None


def test_codes_expire_lock_and_are_rate_limited(ho: HO, tmp_path: Path, kn: Kavenegar,
                                                kn_fake: FakeKavenegar) -> None:  # fmt: skip
    _member(ho, tmp_path)
    t0 = int(time.time() * 1000)
    access.request_code(ho.db, kn, SECRET, ALI, "10.0.0.2", now=t0)
    code = _code(kn_fake)
    with pytest.raises(ClubError):  # two minutes and a second later
        access.sign_in(ho.db, SECRET, ALI, code, now=t0 + 121_000)
    access.request_code(ho.db, kn, SECRET, ALI, "10.0.0.2", now=t0 + 1000)
    code = _code(kn_fake)
    for _ in range(access.TRIES):
        with pytest.raises(ClubError):
            access.sign_in(ho.db, SECRET, ALI, "999999" if code != "999999" else "888888",
                           now=t0 + 2000)  # fmt: skip
    with pytest.raises(ClubError):  # five wrong tries lock the code, even for the right one
        access.sign_in(ho.db, SECRET, ALI, code, now=t0 + 3000)
    access.request_code(ho.db, kn, SECRET, ALI, "10.0.0.3", now=t0 + 4000)
    with pytest.raises(ClubError) as e:  # a fourth in ten minutes
        access.request_code(ho.db, kn, SECRET, ALI, "10.0.0.4", now=t0 + 5000)
    assert e.value.code == "too_many_codes" and "ده دقیقه" in e.value.fa
    for i in range(access.PER_ADDRESS):  # one address asking for many numbers
        try:
            access.request_code(ho.db, kn, SECRET, f"0935{i:07d}", "10.9.9.9", now=t0)
        except ClubError:
            pytest.fail("refused before the address's limit")
    with pytest.raises(ClubError):
        access.request_code(ho.db, kn, SECRET, "09350000099", "10.9.9.9", now=t0)
    with pytest.raises(ClubError) as e:
        access.request_code(ho.db, kn, SECRET, "0912", "10.0.0.5")
    assert e.value.code == "bad_phone"


def test_a_number_that_is_no_member_looks_the_same_and_gets_nothing(
    ho: HO, tmp_path: Path, kn: Kavenegar, kn_fake: FakeKavenegar
) -> None:
    _member(ho, tmp_path)
    assert access.request_code(ho.db, kn, SECRET, "09350000001", "10.0.0.9") == "+989350000001"
    assert kn_fake.messages == {}
    with pytest.raises(ClubError) as e:  # nothing can sign in as it, whatever is typed
        access.sign_in(ho.db, SECRET, "09350000001", "-")
    assert e.value.code == "bad_code"


def test_the_membership_qr() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    now = 1_796_400_000
    code = memberqr.make(key, "hypershahr", ALI, now)
    assert code.startswith("LQ2.") and len(code) < memberqr.MAX_LEN
    pub = [other.public_key(), key.public_key()]
    assert memberqr.read(code, pub, "hypershahr", now + 10) == ALI
    assert memberqr.read(code, pub, "hypershahr", now + 359) == ALI  # a minute of skew
    for bad, tenant, at, why in (
        (code, "hypershahr", now + 361, "expired_qr"),
        (code, "otherchain", now, "bad_qr"),
        (memberqr.make(other, "hypershahr", ALI, now), "hypershahr", now, "bad_qr"),
        (code[:-3] + "AAA", "hypershahr", now, "bad_qr"),
        ("LQ2.%%%.!!", "hypershahr", now, "bad_qr"),
        ("LQ2." + "A" * 500, "hypershahr", now, "bad_qr"),
    ):
        with pytest.raises(memberqr.QrError) as e:
            memberqr.read(bad, [key.public_key()], tenant, at)
        assert e.value.code == why and e.value.fa
