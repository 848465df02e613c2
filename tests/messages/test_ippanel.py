"""The IPPanel adapter against a local server speaking IPPanel's documented Edge API."""

from __future__ import annotations

import json
import logging

import pytest

from cloud_broker.messages.gateway import (
    AuthError,
    DeliveryStatus,
    GatewayError,
    GatewayTimeoutError,
    InvalidNumberError,
    InvalidRequestError,
    NoCreditError,
    RateLimitedError,
    Secret,
    SendResult,
    ServerError,
)
from cloud_broker.messages.ippanel import IPPanel
from tests.messages.conftest import IPPANEL_LINE, KEY
from tests.messages.fakes import FakeIPPanel

TO = "+989121234567"


def body(fake: FakeIPPanel, i: int = -1) -> object:
    return json.loads(fake.requests[i].body)


def test_send_posts_the_documented_json_with_the_key_in_authorization(
    ippanel: IPPanel, ippanel_fake: FakeIPPanel
) -> None:
    res = ippanel.send(TO, "سلام مریم\nلغو۱۱", ref="out-3")
    assert res == SendResult(
        provider_id="1123544244", status=DeliveryStatus.QUEUED, cost_rials=None
    )
    req = ippanel_fake.requests[0]
    assert (req.method, req.path) == ("POST", "/v1/api/send")
    assert req.headers["authorization"] == KEY
    assert req.headers["content-type"] == "application/json"
    assert body(ippanel_fake) == {
        "sending_type": "webservice",
        "from_number": IPPANEL_LINE,
        "message": "سلام مریم\nلغو۱۱",
        "params": {"recipients": [TO]},
    }


def test_a_sender_line_is_required(ippanel_fake: FakeIPPanel) -> None:
    gw = IPPanel(Secret(KEY), base_url=ippanel_fake.base_url + "/v1")
    with pytest.raises(InvalidRequestError):
        gw.send(TO, "x", ref="r")
    assert gw.send(TO, "x", sender="+9810001", ref="r").provider_id == "1123544244"
    gw.close()
    assert body(ippanel_fake)["from_number"] == "+9810001"  # type: ignore[index]
    assert len(ippanel_fake.requests) == 1


def test_status_follows_the_bulk_state_then_the_recipient_report(
    ippanel: IPPanel, ippanel_fake: FakeIPPanel
) -> None:
    pid = ippanel.send(TO, "x", ref="r").provider_id
    assert ippanel.status([pid]) == {pid: DeliveryStatus.QUEUED}  # state 5: in the send queue
    ippanel_fake.settle(pid, 6)
    assert ippanel.status([pid]) == {pid: DeliveryStatus.SENT}
    ippanel_fake.deliver(pid, 2)
    assert ippanel.status([pid]) == {pid: DeliveryStatus.DELIVERED}
    calls = [f"{r.method} {r.path}" for r in ippanel_fake.requests[1:]]
    recipients = f"GET /v1/api/report/recipients?bulk_id={pid}&page=1&per_page=1"
    by_bulk = f"POST /v1/api/report/by_bulk/{pid}"
    # not final yet: the recipient row has no message_status, the bulk state answers
    assert calls == [recipients, by_bulk, recipients, by_bulk, recipients]


@pytest.mark.parametrize(
    ("message_status", "expected"),
    [
        (0, DeliveryStatus.SENT),
        (1, DeliveryStatus.SENT),
        (2, DeliveryStatus.DELIVERED),
        (3, DeliveryStatus.UNDELIVERED),
        (4, DeliveryStatus.BLOCKED),
    ],
)
def test_recipient_statuses(
    ippanel: IPPanel, ippanel_fake: FakeIPPanel, message_status: int, expected: DeliveryStatus
) -> None:
    pid = ippanel.send(TO, "x", ref="r").provider_id
    ippanel_fake.deliver(pid, message_status)
    assert ippanel.status([pid]) == {pid: expected}


@pytest.mark.parametrize(
    ("state_id", "expected"),
    [(3, DeliveryStatus.FAILED), (7, DeliveryStatus.CANCELLED), (8, DeliveryStatus.FAILED)],
)
def test_bulk_states_that_end_a_message(
    ippanel: IPPanel, ippanel_fake: FakeIPPanel, state_id: int, expected: DeliveryStatus
) -> None:
    pid = ippanel.send(TO, "x", ref="r").provider_id
    ippanel_fake.settle(pid, state_id)  # 8: "insufficient credit" after acceptance
    assert ippanel.status([pid]) == {pid: expected}


def test_unknown_ids(ippanel: IPPanel) -> None:
    assert ippanel.status(["999", "not-a-number"]) == {
        "999": DeliveryStatus.UNKNOWN,
        "not-a-number": DeliveryStatus.UNKNOWN,
    }


@pytest.mark.parametrize(
    ("fault", "cls", "code", "transient", "pauses", "ambiguous"),
    [
        ("invalid_number", InvalidNumberError, "400-2", False, False, False),
        ("no_credit", NoCreditError, "402-1", False, True, False),
        ("rate_limited", RateLimitedError, "429", True, False, False),
        ("server_error", ServerError, "500", True, False, False),
        ("busy", ServerError, "503", True, False, False),
        ("auth", AuthError, "400-1", False, True, False),
        ("garbled", ServerError, None, True, False, True),
    ],
)
def test_each_error_maps_to_its_class(
    ippanel: IPPanel,
    ippanel_fake: FakeIPPanel,
    fault: str,
    cls: type[GatewayError],
    code: str | None,
    transient: bool,
    pauses: bool,
    ambiguous: bool,
) -> None:
    ippanel_fake.fail_next(fault)
    with pytest.raises(GatewayError) as exc:
        ippanel.send(TO, "hello", ref="r")
    e = exc.value
    assert type(e) is cls
    assert (e.provider_code, e.transient, e.pauses, e.ambiguous) == (
        code,
        transient,
        pauses,
        ambiguous,
    )


def test_rate_limit_reads_retry_after(ippanel: IPPanel, ippanel_fake: FakeIPPanel) -> None:
    ippanel_fake.fail_next("rate_limited")
    with pytest.raises(RateLimitedError) as exc:
        ippanel.send(TO, "x", ref="r")
    assert exc.value.retry_after == 7.0


def test_a_refused_recipient_is_an_invalid_number(ippanel: IPPanel) -> None:
    with pytest.raises(InvalidNumberError) as exc:
        ippanel.send("+447700900123", "hello", ref="r")  # the fake serves Iran only: 422
    assert "params.recipients.0" in exc.value.en
    assert "فرمت گیرنده صحیح نمی باشد" in exc.value.fa


def test_a_wrong_key_is_an_auth_error(ippanel_fake: FakeIPPanel) -> None:
    gw = IPPanel(Secret("wrong-key"), base_url=ippanel_fake.base_url + "/v1", sender=IPPANEL_LINE)
    with pytest.raises(AuthError) as exc:
        gw.send(TO, "x", ref="r")
    gw.close()
    assert exc.value.pauses and "اطلاعات وارد شده صحیح نمی باشد" in exc.value.fa


def test_timeout_is_transient_and_ambiguous(ippanel_fake: FakeIPPanel) -> None:
    gw = IPPanel(
        Secret(KEY), base_url=ippanel_fake.base_url + "/v1", sender=IPPANEL_LINE, timeout=0.3
    )
    ippanel_fake.fail_next("timeout")
    with pytest.raises(GatewayTimeoutError) as exc:
        gw.send(TO, "x", ref="r")
    gw.close()
    assert exc.value.transient and exc.value.ambiguous
    assert len(ippanel_fake.messages) == 1  # it was accepted: why the error says ambiguous


def test_pattern_send(ippanel: IPPanel, ippanel_fake: FakeIPPanel) -> None:
    res = ippanel.send_template(TO, "pt-otp", {"code": "4821"}, ref="t")
    assert res.provider_id == "1123544244"
    assert body(ippanel_fake) == {
        "sending_type": "pattern",
        "from_number": IPPANEL_LINE,
        "code": "pt-otp",
        "recipients": [TO],
        "params": {"code": "4821"},
    }
    with pytest.raises(InvalidRequestError) as exc:
        ippanel.send_template(TO, "nope", {"code": "1"}, ref="t")
    assert "code" in exc.value.en


def test_the_key_never_reaches_logs_errors_or_reprs(
    ippanel_fake: FakeIPPanel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Long enough for the answered calls on a loaded machine; the "timeout" fault waits it out.
    gw = IPPanel(
        Secret(KEY), base_url=ippanel_fake.base_url + "/v1", sender=IPPANEL_LINE, timeout=2.0
    )
    texts = [repr(gw), repr(gw._client.headers)]
    gw.send(TO, "ok", ref="1")
    for fault in ("auth", "no_credit", "server_error", "timeout"):
        ippanel_fake.fail_next(fault)
        with pytest.raises(GatewayError) as exc:
            gw.send(TO, "x", ref=fault)
        texts += [str(exc.value), repr(exc.value), exc.value.en, exc.value.fa]
    gw.close()
    assert "POST http://127.0.0.1" in caplog.text
    for text in [caplog.text, *texts]:
        assert KEY not in text
    assert any("توکن *** نامعتبر" in t for t in texts)  # echoed by the gateway, redacted


def test_raw_mode(ippanel: IPPanel, ippanel_fake: FakeIPPanel) -> None:
    ippanel_fake.raw = True
    assert [ippanel.send(TO, "x", ref="r").provider_id for _ in range(5)] == list("12345")
    assert ippanel_fake.raw_count == 5 and ippanel_fake.requests == []
