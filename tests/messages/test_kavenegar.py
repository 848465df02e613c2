"""The Kavenegar adapter against a local server speaking Kavenegar's documented API."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

import pytest

from cloud_broker.messages.gateway import (
    AuthError,
    DeliveryStatus,
    GatewayError,
    GatewayTimeoutError,
    InvalidNumberError,
    InvalidRequestError,
    NetworkError,
    NoCreditError,
    RateLimitedError,
    Secret,
    SendResult,
    ServerError,
)
from cloud_broker.messages.kavenegar import Kavenegar, receptor
from tests.messages.conftest import KEY
from tests.messages.fakes import FakeKavenegar

TO = "+989121234567"
FA_TEXT = "مریم عزیز، ۱۲٬۵۰۰ امتیاز دارید.\nلغو۱۱"


def form(fake: FakeKavenegar, i: int = -1) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(fake.requests[i].body.decode()).items()}


def test_send_posts_the_documented_form_and_reads_id_status_cost(
    kavenegar: Kavenegar, kavenegar_fake: FakeKavenegar
) -> None:
    res = kavenegar.send(TO, FA_TEXT, sender=None, ref="out-17")
    assert res == SendResult(provider_id="8792343", status=DeliveryStatus.QUEUED, cost_rials=1230)
    req = kavenegar_fake.requests[0]
    assert (req.method, req.path) == ("POST", f"/v1/{KEY}/sms/send.json")
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(kavenegar_fake) == {
        "receptor": "09121234567",
        "message": FA_TEXT,
        "sender": "10004346",
        "localid": "out-17",
    }


def test_cost_follows_the_parts(kavenegar: Kavenegar) -> None:
    long_fa = "س" * 71  # two UCS-2 parts
    assert kavenegar.send(TO, long_fa, ref="a").cost_rials == 2 * 1230
    assert kavenegar.send(TO, "x" * 161, ref="b").cost_rials == 2 * 1230


def test_sender_per_message_and_account_default(
    kavenegar_fake: FakeKavenegar, kavenegar: Kavenegar
) -> None:
    kavenegar.send(TO, "a", sender="3000505", ref="r1")
    assert form(kavenegar_fake)["sender"] == "3000505"
    plain = Kavenegar(Secret(KEY), base_url=kavenegar_fake.base_url)
    plain.send(TO, "a", ref="r2")
    plain.close()
    assert "sender" not in form(kavenegar_fake)  # the account's default line


def test_receptor_forms() -> None:
    assert receptor("+989121234567") == "09121234567"
    assert receptor("+447700900123") == "00447700900123"


def test_a_number_not_in_e164_is_refused_before_any_request(
    kavenegar: Kavenegar, kavenegar_fake: FakeKavenegar
) -> None:
    with pytest.raises(InvalidNumberError) as exc:
        kavenegar.send("09121234567", "x", ref="r")
    assert not exc.value.transient and not exc.value.pauses
    assert kavenegar_fake.requests == []


def test_gateway_refusing_the_receptor_is_a_permanent_invalid_number(
    kavenegar: Kavenegar,
) -> None:
    with pytest.raises(InvalidNumberError) as exc:
        kavenegar.send("+447700900123", "hello", ref="r")  # the fake serves Iran only: 411
    assert exc.value.provider_code == "411"
    assert not exc.value.transient
    assert "411" in exc.value.en and "دریافت کننده نامعتبر است" in exc.value.fa


@pytest.mark.parametrize(
    ("fault", "cls", "code", "transient", "pauses", "ambiguous"),
    [
        ("invalid_number", InvalidNumberError, "411", False, False, False),
        ("no_credit", NoCreditError, "418", False, True, False),
        ("rate_limited", RateLimitedError, "451", True, False, False),
        ("busy", ServerError, "409", True, False, False),
        ("server_error", ServerError, "502", True, False, True),
        ("auth", AuthError, "403", False, True, False),
        ("garbled", ServerError, None, True, False, True),
    ],
)
@pytest.mark.parametrize("http_status", ["same", "200"])
def test_each_error_maps_to_its_class(
    kavenegar: Kavenegar,
    kavenegar_fake: FakeKavenegar,
    fault: str,
    cls: type[GatewayError],
    code: str | None,
    transient: bool,
    pauses: bool,
    ambiguous: bool,
    http_status: str,
) -> None:
    kavenegar_fake.error_http_status = http_status  # Go SDK: HTTP = code; Python SDK: 200
    kavenegar_fake.fail_next(fault)
    with pytest.raises(GatewayError) as exc:
        kavenegar.send(TO, "hello", ref="r")
    e = exc.value
    assert type(e) is cls
    assert (e.provider_code, e.transient, e.pauses, e.ambiguous) == (
        code,
        transient,
        pauses,
        ambiguous,
    )
    assert e.provider == "kavenegar"
    assert e.en.startswith("kavenegar: ") and e.fa.startswith("kavenegar: ")


def test_rate_limit_carries_retry_after(
    kavenegar: Kavenegar, kavenegar_fake: FakeKavenegar
) -> None:
    kavenegar_fake.fail_next("rate_limited")
    with pytest.raises(RateLimitedError) as exc:
        kavenegar.send(TO, "hello", ref="r")
    assert exc.value.retry_after == 30.0


def test_an_error_then_success(kavenegar: Kavenegar, kavenegar_fake: FakeKavenegar) -> None:
    kavenegar_fake.fail_next("busy", times=2)
    for _ in range(2):
        with pytest.raises(ServerError):
            kavenegar.send(TO, "hello", ref="r")
    assert kavenegar.send(TO, "hello", ref="r").provider_id == "8792343"


def test_timeout_is_transient_ambiguous_and_the_retry_is_not_sent_twice(
    kavenegar_fake: FakeKavenegar,
) -> None:
    gw = Kavenegar(Secret(KEY), base_url=kavenegar_fake.base_url, timeout=0.3)
    kavenegar_fake.fail_next("timeout")  # accepted, then no answer
    with pytest.raises(GatewayTimeoutError) as exc:
        gw.send(TO, "سلام", ref="out-9")
    assert exc.value.transient and exc.value.ambiguous and not exc.value.pauses
    gw.close()
    # The retry gets a patient client: a loaded machine must not turn it into a second timeout.
    patient = Kavenegar(Secret(KEY), base_url=kavenegar_fake.base_url, timeout=10.0)
    again = patient.send(TO, "سلام", ref="out-9")  # same localid: the gateway de-duplicates
    patient.close()
    assert again.provider_id == "8792343"
    assert list(kavenegar_fake.messages) == [8792343]


def test_unreachable_gateway_is_a_transient_network_error() -> None:
    fake = FakeKavenegar(KEY)
    url = fake.base_url
    fake.close()  # nothing listens there any more
    gw = Kavenegar(Secret(KEY), base_url=url, timeout=1.0)
    with pytest.raises(NetworkError) as exc:
        gw.send(TO, "x", ref="r")
    gw.close()
    assert exc.value.transient and not exc.value.ambiguous


def test_status_reports_delivery_later(kavenegar: Kavenegar, kavenegar_fake: FakeKavenegar) -> None:
    a = kavenegar.send(TO, "a", ref="1").provider_id
    b = kavenegar.send(TO, "b", ref="2").provider_id
    c = kavenegar.send(TO, "c", ref="3").provider_id
    assert kavenegar.status([a, b]) == {a: DeliveryStatus.QUEUED, b: DeliveryStatus.QUEUED}
    kavenegar_fake.deliver(a, 10)
    kavenegar_fake.deliver(b, 11)
    kavenegar_fake.deliver(c, 14)
    got = kavenegar.status([a, b, c, "424242"])
    assert got == {
        a: DeliveryStatus.DELIVERED,
        b: DeliveryStatus.UNDELIVERED,
        c: DeliveryStatus.BLOCKED,
        "424242": DeliveryStatus.UNKNOWN,  # Kavenegar answers 100
    }
    assert all(s.final for s in got.values())
    assert form(kavenegar_fake)["messageid"] == f"{a},{b},{c},424242"


def test_status_asks_500_ids_at_a_time(kavenegar: Kavenegar, kavenegar_fake: FakeKavenegar) -> None:
    ids = [str(n) for n in range(1, 1201)]
    got = kavenegar.status(ids)
    assert len(got) == 1200 and set(got.values()) == {DeliveryStatus.UNKNOWN}
    sizes = [len(form(kavenegar_fake, i)["messageid"].split(",")) for i in range(3)]
    assert sizes == [500, 500, 200]


def test_template_goes_through_verify_lookup(
    kavenegar: Kavenegar, kavenegar_fake: FakeKavenegar
) -> None:
    res = kavenegar.send_template(TO, "loyalty-otp", {"token": "4821", "token2": "ونک"}, ref="t")
    assert res.status is DeliveryStatus.QUEUED
    assert kavenegar_fake.requests[0].path == f"/v1/{KEY}/verify/lookup.json"
    assert form(kavenegar_fake) == {
        "receptor": "09121234567",
        "template": "loyalty-otp",
        "type": "sms",
        "token": "4821",
        "token2": "ونک",
    }
    with pytest.raises(InvalidRequestError) as exc:
        kavenegar.send_template(TO, "no-such", {"token": "1"}, ref="t")
    assert exc.value.provider_code == "424"
    with pytest.raises(InvalidRequestError):
        kavenegar.send_template(TO, "loyalty-otp", {"name": "x"}, ref="t")
    assert len(kavenegar_fake.requests) == 2  # the bad parameters never left


def test_the_key_never_reaches_logs_errors_or_reprs(
    kavenegar_fake: FakeKavenegar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx logs every URL at INFO, httpcore at DEBUG
    # Long enough for the answered calls on a loaded machine; the "timeout" fault waits it out.
    gw = Kavenegar(Secret(KEY), base_url=kavenegar_fake.base_url, timeout=2.0)
    texts: list[str] = [repr(gw), str(gw)]
    gw.send(TO, "ok", ref="1")
    for fault in ("auth", "no_credit", "server_error", "garbled", "timeout"):
        kavenegar_fake.fail_next(fault)
        with pytest.raises(GatewayError) as exc:
            gw.send(TO, "x", ref=fault)
        e = exc.value
        texts += [str(e), repr(e), e.en, e.fa, repr(e.args)]
    gw.close()
    assert "/v1/***/sms/send.json" in caplog.text  # httpx did log the URL, redacted
    assert kavenegar_fake.requests[0].path.startswith(f"/v1/{KEY}/")  # the wire had the key
    for text in [caplog.text, *texts]:
        assert KEY not in text
    echoed = [t for t in texts if "API-Key *** " in t]  # the gateway echoed it; redacted
    assert echoed


def test_raw_mode_answers_without_bookkeeping(
    kavenegar: Kavenegar, kavenegar_fake: FakeKavenegar
) -> None:
    kavenegar_fake.raw = True
    ids = [kavenegar.send(TO, "x", ref=str(i)).provider_id for i in range(20)]
    assert ids == [str(i) for i in range(1, 21)]
    assert kavenegar_fake.raw_count == 20
    assert kavenegar_fake.requests == [] and kavenegar_fake.messages == {}


def test_reply_envelope_is_the_documented_one(
    kavenegar: Kavenegar, kavenegar_fake: FakeKavenegar
) -> None:
    # The fake's reply is what the documentation shows; pin it so fake and adapter agree.
    status, _headers, body = kavenegar_fake.handle(
        "POST",
        f"/v1/{KEY}/sms/send.json",
        {},
        b"receptor=09121234567&message=%D8%B3%D9%84%D8%A7%D9%85",
    )
    doc = json.loads(body)
    assert status == 200 and doc["return"] == {"status": 200, "message": "تایید شد"}
    assert set(doc["entries"][0]) == {
        "messageid",
        "message",
        "status",
        "statustext",
        "sender",
        "receptor",
        "date",
        "cost",
    }
