"""Reading the system's answers, including the odd ones a gateway produces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud_broker.tax.errors import (
    SystemMessage,
    TaxAuthError,
    TaxError,
    TaxProtocolError,
    TaxRateLimitedError,
    TaxRejectedError,
    TaxServerError,
    TaxTimeoutError,
)
from cloud_broker.tax.responses import (
    InquiryStatus,
    parse_inquiry,
    parse_nonce,
    parse_send_response,
    parse_server_information,
    read_answer,
)

NOW = datetime(2024, 3, 21, 7, 0, tzinfo=UTC)
ENVELOPE = b'{"timestamp":1,"errors":[{"code":4143,"message":null},{"code":"4145","message":"x"}]}'


@pytest.mark.parametrize(
    ("status", "body", "error", "transient"),
    [
        (400, ENVELOPE, TaxRejectedError, False),
        (401, ENVELOPE, TaxAuthError, False),
        (404, b"<html>not here</html>", TaxRejectedError, False),
        (408, b"", TaxTimeoutError, True),
        (429, b"", TaxRateLimitedError, True),
        (502, b"<html>Bad Gateway</html>", TaxServerError, True),
        (200, b"<html>proxy login</html>", TaxProtocolError, True),
        (200, b"", TaxProtocolError, True),
    ],
)
def test_status_to_error(status: int, body: bytes, error: type[Exception], transient: bool) -> None:
    with pytest.raises(error) as caught:
        read_answer(status, body, {})
    assert isinstance(caught.value, TaxError)
    assert caught.value.transient is transient


def test_envelope_codes_survive_numbers_and_nulls() -> None:
    with pytest.raises(TaxRejectedError) as caught:
        read_answer(400, ENVELOPE, {})
    assert caught.value.errors == (SystemMessage("4143", ""), SystemMessage("4145", "x"))
    assert caught.value.codes == ("4143", "4145")
    assert "4143" in caught.value.en and "4143" in caught.value.fa


def test_nonce_expiry_is_the_earlier_of_server_and_ttl() -> None:
    soon = parse_nonce(
        {"nonce": "n", "expDate": "2024-03-21T07:00:10Z"}, requested_ttl_s=30, now=NOW
    )
    assert soon.expires_at == NOW + timedelta(seconds=10)
    late = parse_nonce(
        {"nonce": "n", "expDate": "2024-03-21T09:00:00Z"}, requested_ttl_s=30, now=NOW
    )
    assert late.expires_at == NOW + timedelta(seconds=30)
    odd = parse_nonce({"nonce": "n", "expDate": "tomorrow"}, requested_ttl_s=30, now=NOW)
    assert odd.expires_at == NOW + timedelta(seconds=30)
    with pytest.raises(TaxProtocolError, match="nonce"):
        parse_nonce({"expDate": "x"}, requested_ttl_s=30, now=NOW)


def test_inquiry_statuses() -> None:
    answers = parse_inquiry(
        {
            "result": [
                {"uid": "a", "status": "PENDING", "data": {}},
                {"uid": "b", "status": "in_progress"},
                {
                    "uid": "c",
                    "status": "FAILED",
                    "data": {
                        "error": [{"code": "0104", "message": "m"}],
                        "warning": [{"code": "w1", "message": "w"}],
                        "success": False,
                    },
                },
                {"uid": "d", "status": "SOMETHING_NEW"},
            ]
        }
    )
    assert [a.status for a in answers] == [
        InquiryStatus.PENDING,
        InquiryStatus.IN_PROGRESS,
        InquiryStatus.FAILED,
        InquiryStatus.UNKNOWN,
    ]
    assert [a.is_final for a in answers] == [False, False, True, False]
    assert answers[2].errors == (SystemMessage("0104", "m", "ERROR"),)
    assert answers[2].warnings == (SystemMessage("w1", "w", "WARNING"),)
    assert answers[3].raw_status == "SOMETHING_NEW"
    with pytest.raises(TaxProtocolError):
        parse_inquiry({"uid": "a"})


def test_send_and_server_information_shapes() -> None:
    assert parse_send_response(
        {"timestamp": 1, "result": [{"uid": "u", "referenceNumber": "r"}]}
    ) == {"u": "r"}
    with pytest.raises(TaxProtocolError, match="referenceNumber"):
        parse_send_response({"result": [{"uid": "u"}]})
    with pytest.raises(TaxProtocolError, match="server-information key"):
        parse_server_information({"publicKeys": [{"id": "k", "key": "%%%", "algorithm": "RSA"}]})
    empty = parse_server_information(
        {"serverTime": 5, "publicKeys": [{"id": "e", "key": "x", "algorithm": "EC"}]}
    )
    assert empty.keys == () and empty.server_time_ms == 5
    with pytest.raises(TaxProtocolError, match="no RSA"):
        empty.encryption_key()
