"""The gateway interface: errors, keys, the factory, the log gateway, lazy imports."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from cloud_broker.messages import gateway as G
from cloud_broker.messages.gateway import (
    AuthError,
    DeliveryStatus,
    Gateway,
    GatewayError,
    GatewayTimeoutError,
    InvalidNumberError,
    InvalidRequestError,
    NetworkError,
    NoCreditError,
    RateLimitedError,
    Secret,
    ServerError,
    check_e164,
    from_config,
    load_api_key,
    mask_number,
)
from cloud_broker.messages.ippanel import IPPanel
from cloud_broker.messages.kavenegar import Kavenegar
from cloud_broker.messages.log import LogGateway
from edge.errors import ConfigError, LoyaltyError
from tests.conftest import ROOT
from tests.messages.conftest import KEY
from tests.messages.fakes import FakeKavenegar


def test_error_tree() -> None:
    table = {
        InvalidNumberError: ("invalid_number", False, False),
        InvalidRequestError: ("invalid_request", False, False),
        AuthError: ("auth", False, True),
        NoCreditError: ("no_credit", False, True),
        RateLimitedError: ("rate_limited", True, False),
        ServerError: ("server_error", True, False),
        NetworkError: ("network", True, False),
        GatewayTimeoutError: ("timeout", True, False),
    }
    for cls, (code, transient, pauses) in table.items():
        assert issubclass(cls, GatewayError) and issubclass(cls, LoyaltyError)
        assert (cls.code, cls.transient, cls.pauses) == (code, transient, pauses)
    e = RateLimitedError("slow down", "آهسته", provider="kavenegar", retry_after=5)
    assert (e.en, e.fa, e.retry_after, e.ambiguous) == (
        "kavenegar: slow down",
        "kavenegar: آهسته",
        5,
        False,
    )
    assert repr(e).startswith("RateLimitedError(provider='kavenegar', code='rate_limited'")


def test_delivery_status_final() -> None:
    assert {s for s in DeliveryStatus if not s.final} == {
        DeliveryStatus.QUEUED,
        DeliveryStatus.SENT,
    }


def test_e164_and_masking() -> None:
    assert check_e164("+989121234567", provider="x") == "+989121234567"
    for bad in ("09121234567", "989121234567", "+98 912 123 4567", "+0989121234567", "", "+98"):
        with pytest.raises(InvalidNumberError):
            check_e164(bad, provider="x")
    assert mask_number("+989121234567") == "+98912***4567"
    assert mask_number("+123") == "***"


def test_secret_hides_itself() -> None:
    s = Secret(KEY)
    assert KEY not in repr(s) and KEY not in str(s) and KEY not in f"{s}"
    assert s.reveal() == KEY
    assert s.redact(f"url /v1/{KEY}/x and {KEY}") == "url /v1/***/x and ***"
    with pytest.raises(TypeError):
        pickle.dumps(s)
    for bad in ("", " key", "a b", "k\n", "k\x00"):
        with pytest.raises(ConfigError):
            Secret(bad)
    for unfit in ("a/b", "a?b", "a%2Fb", "کلید"):  # cannot be a path segment at Kavenegar
        with pytest.raises(ConfigError):
            Kavenegar(Secret(unfit))
    IPPanel(Secret("a/b+c==")).close()  # a header value may have them


def _key_file(tmp_path: Path, mode: int, text: str = KEY + "\n") -> Path:
    p = tmp_path / "sms.key"
    p.write_text(text, "utf-8")
    p.chmod(mode)
    return p


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_key_file_owner_only_is_read(tmp_path: Path, mode: int) -> None:
    assert load_api_key(key_file=_key_file(tmp_path, mode)).reveal() == KEY


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(ConfigError) as exc:
        load_api_key(key_file=_key_file(tmp_path, mode))
    assert f"mode {mode:04o}" in str(exc.value) and "chmod 600" in str(exc.value)
    assert "chmod 600" in exc.value.fa
    assert KEY not in str(exc.value)


def test_key_file_missing_or_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_api_key(key_file=tmp_path / "none")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_api_key(key_file=tmp_path)


def test_key_from_the_environment() -> None:
    assert load_api_key(env="SMS_KEY", environ={"SMS_KEY": f" {KEY}\n"}).reveal() == KEY
    with pytest.raises(ConfigError, match="SMS_KEY is not set"):
        load_api_key(env="SMS_KEY", environ={})
    with pytest.raises(ConfigError, match="file"):
        load_api_key()


def test_from_config_builds_each_gateway(tmp_path: Path) -> None:
    key_file = _key_file(tmp_path, 0o600)
    kn = from_config("kavenegar", api_key_file=key_file, sender="10004346")
    ip = from_config(
        "ippanel", api_key_env="IPP", environ={"IPP": KEY}, base_url="http://127.0.0.1:9/v1"
    )
    lg = from_config("log")
    assert isinstance(kn, Kavenegar) and kn.base_url == "https://api.kavenegar.com"
    assert kn.sender == "10004346"
    assert isinstance(ip, IPPanel) and ip.base_url == "http://127.0.0.1:9/v1"
    assert isinstance(lg, LogGateway)
    for gw in (kn, ip, lg):
        assert isinstance(gw, Gateway)  # the protocol, checked at run time
        assert KEY not in repr(gw)
        gw.close()
    with pytest.raises(ConfigError, match="unknown gateway"):
        from_config("smsir")
    with pytest.raises(ConfigError, match="LOYALTY_SMS_API_KEY"):
        from_config("kavenegar", environ={})


def test_from_config_end_to_end(tmp_path: Path) -> None:
    fake = FakeKavenegar(KEY)
    try:
        gw = from_config(
            "kavenegar", api_key_file=_key_file(tmp_path, 0o600), base_url=fake.base_url
        )
        res = gw.send("+989121234567", "سلام", ref="e2e")
        fake.deliver(res.provider_id)
        assert gw.status([res.provider_id]) == {res.provider_id: DeliveryStatus.DELIVERED}
        gw.close()
    finally:
        fake.close()


def test_log_gateway_records_masks_and_always_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cloud_broker.messages.log")
    gw = LogGateway(sender="10004346")
    a = gw.send("+989121234567", "سلام مریم\nلغو۱۱", ref="m1")
    b = gw.send("+989351112233", "hi", sender="3000", ref="m2")
    again = gw.send("+989121234567", "سلام مریم\nلغو۱۱", ref="m1")
    t = gw.send_template("+989121234567", "otp", {"token": "4821"}, ref="m3")
    assert (a.provider_id, b.provider_id, again.provider_id, t.provider_id) == (
        "log-1",
        "log-2",
        "log-1",
        "log-3",
    )
    assert a.status is DeliveryStatus.DELIVERED and a.cost_rials == 0
    assert [(m.to, m.text, m.sender) for m in gw.sent] == [
        ("+989121234567", "سلام مریم\nلغو۱۱", "10004346"),
        ("+989351112233", "hi", "3000"),
        ("+989121234567", "token=4821", "10004346"),
    ]
    assert gw.status(["log-2", "log-9"]) == {
        "log-2": DeliveryStatus.DELIVERED,
        "log-9": DeliveryStatus.UNKNOWN,
    }
    assert "+98912***4567" in caplog.text and "+98935***2233" in caplog.text
    assert "9121234567" not in caplog.text
    assert "سلام مریم / لغو۱۱" in caplog.text
    with pytest.raises(InvalidNumberError):
        gw.send("0912", "x", ref="bad")


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, cloud_broker.messages, cloud_broker.messages.text;"
        "print(sorted(m for m in ('httpx', 'jdatetime', 'hijridate') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
    assert sorted(G.GATEWAYS) == ["ippanel", "kavenegar", "log"]
