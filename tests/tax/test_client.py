"""MoadianClient against the fake tax system, over real HTTP."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cloud_broker.tax import client as client_module
from cloud_broker.tax.client import MoadianClient, new_request_uid
from cloud_broker.tax.errors import (
    SystemMessage,
    TaxAuthError,
    TaxRateLimitedError,
    TaxRejectedError,
    TaxServerError,
    TaxTimeoutError,
    TaxValidationError,
)
from cloud_broker.tax.invoice import Invoice, Seller
from cloud_broker.tax.jose import TaxpayerCredentials, seal
from cloud_broker.tax.responses import InquiryResult, InquiryStatus
from cloud_broker.tax.wirejson import decode_json, encode_json
from tests.tax.conftest import CLIENT_TIMEOUT_S, MEMORY_ID, SALE_MS, Pki, make_invoice, poll_until
from tests.tax.fake_moadian import FakeMoadian


def all_final(results: list[InquiryResult]) -> bool:
    return bool(results) and all(r.is_final for r in results)


def test_send_batch_then_inquire_until_success(client: MoadianClient, fake: FakeMoadian) -> None:
    invoices = [make_invoice(serial) for serial in (1, 2, 3)]
    sent = client.send(invoices)

    assert [s.tax_id for s in sent] == [i.tax_id for i in invoices]
    assert len({s.uid for s in sent}) == 3 and all(s.reference_number for s in sent)
    received = {p.uid: p.invoice for p in fake.packets}
    for result, invoice in zip(sent, invoices, strict=True):
        # what the system decrypted is byte for byte what we meant to send
        assert received[result.uid] == decode_json(encode_json(invoice.to_packet()))

    first = client.inquire_by_uid([s.uid for s in sent])
    assert [r.status for r in first] == [InquiryStatus.IN_PROGRESS] * 3
    assert not any(r.is_final for r in first)
    final = poll_until(lambda: client.inquire_by_uid([s.uid for s in sent]), all_final)
    assert [(r.uid, r.status, r.errors) for r in final] == [
        (s.uid, InquiryStatus.SUCCESS, ()) for s in sent
    ]
    by_ref = client.inquire_by_reference([s.reference_number for s in sent])
    assert [(r.reference_number, r.status) for r in by_ref] == [
        (s.reference_number, InquiryStatus.SUCCESS) for s in sent
    ]
    # one nonce served the whole session: the token is reused until it nearly expires
    assert fake.count("nonce") == 1 and fake.count("server-information") == 1


def test_rejected_invoice_surfaces_the_systems_errors(
    client: MoadianClient, fake: FakeMoadian
) -> None:
    good, bad = make_invoice(10), make_invoice(11)
    fake.reject(bad.tax_id, "0100604", "الگوی شماره مالیاتی صورتحساب مرجع رعایت نشده است")
    sent = client.send([good, bad])
    final = poll_until(lambda: client.inquire_by_uid([s.uid for s in sent]), all_final)
    assert final[0].status is InquiryStatus.SUCCESS
    assert final[1].status is InquiryStatus.FAILED
    assert final[1].errors == (
        SystemMessage("0100604", "الگوی شماره مالیاتی صورتحساب مرجع رعایت نشده است", "ERROR"),
    )


def _post_raw(client: MoadianClient, fake: FakeMoadian, pki: Pki, packet: dict[str, object]) -> str:
    """Seal and post a hand-made packet, bypassing our own invoice checks."""
    key = client.server_information().encryption_key()
    creds = TaxpayerCredentials(pki.taxpayer_key, pki.taxpayer_cert)
    uid = new_request_uid()
    body = [
        {
            "payload": seal(encode_json(packet), creds, key),
            "header": {"requestTraceId": uid, "fiscalId": MEMORY_ID},
        }
    ]
    answer = httpx.post(
        f"{fake.base_url}/requestsmanager/api/v2/invoice",
        content=json.dumps(body),
        headers={"Authorization": f"Bearer {client.token()}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    return uid


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("tbill", 1, "FAKE-TOTALS"),
        ("taxid", "A1B2C30481F000000000C3", "FAKE-TAXID"),
        ("inty", 1, "FAKE-TYPE"),
    ],
)
def test_the_fake_validates_what_it_receives(
    client: MoadianClient, fake: FakeMoadian, pki: Pki, field: str, value: object, code: str
) -> None:
    packet = make_invoice(30).to_packet()
    packet["header"][field] = value
    uid = _post_raw(client, fake, pki, packet)
    final = poll_until(lambda: client.inquire_by_uid([uid]), all_final)
    assert final[0].status is InquiryStatus.FAILED
    assert code in [e.code for e in final[0].errors]


def test_tax_id_of_another_memory_fails(client: MoadianClient, fake: FakeMoadian, pki: Pki) -> None:
    other = Invoice.create(Seller("Z9Y8X7", "14003778990"), 1, SALE_MS, make_invoice(1).lines)
    uid = _post_raw(client, fake, pki, other.to_packet())
    final = poll_until(lambda: client.inquire_by_uid([uid]), all_final)
    assert [e.code for e in final[0].errors] == ["FAKE-TAXID-MEMORY"]


def test_server_error_is_transient_and_the_retry_succeeds(
    client: MoadianClient, fake: FakeMoadian
) -> None:
    invoices = [make_invoice(40), make_invoice(41)]
    uids = [new_request_uid(), new_request_uid()]
    fake.fail_next("5xx", path="invoice")
    with pytest.raises(TaxServerError) as caught:
        client.send(invoices, uids)
    assert caught.value.transient and caught.value.status == 503
    assert caught.value.errors[0].code == "FAKE-UNAVAILABLE"
    assert caught.value.accepted == () and fake.packets == []
    sent = client.send(invoices, uids)  # the queue's retry, same uids
    assert [s.uid for s in sent] == uids


def test_rate_limit_is_transient(client: MoadianClient, fake: FakeMoadian) -> None:
    fake.fail_next("429", path="inquiry-by-uid")
    with pytest.raises(TaxRateLimitedError) as caught:
        client.inquire_by_uid([new_request_uid()])
    assert caught.value.transient and caught.value.retry_after_s == 3
    assert client.inquire_by_uid(["x"])[0].status is InquiryStatus.NOT_FOUND


def test_timeout_is_transient_and_the_uid_tells_whether_it_arrived(
    fake: FakeMoadian, pki: Pki
) -> None:
    invoice, uid = make_invoice(50), new_request_uid()
    with MoadianClient(
        fake.base_url, MEMORY_ID, pki.taxpayer_key, pki.taxpayer_cert, timeout=2.0
    ) as client:  # long enough for the answered calls on a loaded machine
        client.server_information()  # token and server key first, at full speed
        fake.fail_next("timeout", path="invoice")  # answered only after the client gave up
        with pytest.raises(TaxTimeoutError) as caught:
            client.send([invoice], [uid])
        assert caught.value.transient
        # the system got it all the same: asking by the stored uid finds out
        found = poll_until(
            lambda: client.inquire_by_uid([uid]),
            lambda r: r[0].status is not InquiryStatus.NOT_FOUND,
        )
        assert found[0].uid == uid
        with pytest.raises(TaxRejectedError) as again:  # a blind resend would be refused
            client.send([invoice], [uid])
        assert again.value.codes == ("FAKE-DUPLICATE-UID",)


def test_untrusted_certificate_is_a_permanent_auth_error(fake: FakeMoadian, pki: Pki) -> None:
    with (
        MoadianClient(
            fake.base_url, MEMORY_ID, pki.taxpayer_key, pki.rogue_cert, timeout=CLIENT_TIMEOUT_S
        ) as rogue,
        pytest.raises(TaxAuthError) as caught,
    ):
        rogue.server_information()
    assert not caught.value.transient and caught.value.status == 401
    assert caught.value.codes == ("4102",)
    assert fake.count("server-information") == 2  # one fresh-token retry, then the error


def test_rotated_server_key_is_a_permanent_rejection_then_recovers(
    client: MoadianClient, fake: FakeMoadian, pki: Pki
) -> None:
    client.send([make_invoice(60)])
    fake.rotate_key(pki.spare_server_key)
    with pytest.raises(TaxRejectedError) as caught:
        client.send([make_invoice(61)])
    assert not caught.value.transient and caught.value.status == 400
    assert caught.value.codes == ("FAKE-jwe-kid",)
    assert client.send([make_invoice(61)])[0].tax_id == make_invoice(61).tax_id  # key fetched again


def test_single_use_nonces_and_token_expiry(pki: Pki) -> None:
    now = [datetime.now(UTC)]
    with (
        FakeMoadian(pki.ca.certificate, server_key=pki.server_key, single_use_nonces=True) as fake,
        MoadianClient(
            fake.base_url,
            MEMORY_ID,
            pki.taxpayer_key,
            pki.taxpayer_cert,
            timeout=CLIENT_TIMEOUT_S,
            clock=lambda: now[0],
        ) as client,
    ):
        client.server_information()
        client.inquire_by_uid([new_request_uid()])  # reused token refused -> fresh nonce, retried
        assert fake.count("nonce") == 2 and fake.count("inquiry-by-uid") == 2

    with (
        FakeMoadian(pki.ca.certificate, server_key=pki.server_key) as fake,
        MoadianClient(
            fake.base_url,
            MEMORY_ID,
            pki.taxpayer_key,
            pki.taxpayer_cert,
            timeout=CLIENT_TIMEOUT_S,
            clock=lambda: now[0],
        ) as client,
    ):
        first = client.token()
        assert client.token() == first
        now[0] += timedelta(seconds=26)  # within 5 s of the 30 s nonce's expiry
        assert client.token() != first and fake.count("nonce") == 2


def test_batches_are_chunked(
    client: MoadianClient, fake: FakeMoadian, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_BATCH", 2)
    sent = client.send([make_invoice(serial) for serial in range(70, 75)])
    assert len(sent) == 5 and fake.invoice_batches == [2, 2, 1]


def test_a_failed_chunk_reports_what_was_accepted(
    client: MoadianClient, fake: FakeMoadian, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_BATCH", 2)
    fake.fail_next("5xx", path="invoice", skip=1)
    invoices = [make_invoice(serial) for serial in range(80, 84)]
    with pytest.raises(TaxServerError) as caught:
        client.send(invoices)
    assert [r.tax_id for r in caught.value.accepted] == [i.tax_id for i in invoices[:2]]


def test_the_system_refuses_more_than_1000(client: MoadianClient, fake: FakeMoadian) -> None:
    items = [
        {"payload": "x", "header": {"requestTraceId": new_request_uid(), "fiscalId": MEMORY_ID}}
    ] * 1001
    answer = httpx.post(
        f"{fake.base_url}/requestsmanager/api/v2/invoice",
        json=items,
        headers={"Authorization": f"Bearer {client.token()}"},
    )
    assert answer.status_code == 400 and answer.json()["errors"][0]["code"] == "4143"
    assert client_module.MAX_BATCH == 1000


def test_local_checks_come_before_any_request(client: MoadianClient, fake: FakeMoadian) -> None:
    foreign = Invoice.create(Seller("Z9Y8X7", "14003778990"), 1, SALE_MS, make_invoice(1).lines)
    with pytest.raises(TaxValidationError, match="memory_id"):
        client.send([make_invoice(1), foreign])
    with pytest.raises(TaxValidationError, match="UUID"):
        client.send([make_invoice(1)], ["not-a-uuid"])
    with pytest.raises(TaxValidationError, match="unique"):
        client.send([make_invoice(1), make_invoice(1)])
    assert fake.requests == []
    assert client.send([]) == []


def test_logs_hold_no_secrets(client: MoadianClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    invoice = make_invoice(90)
    client.send([invoice])
    token = client.token()
    assert "tax POST invoice -> 200" in caplog.text
    assert token not in caplog.text and token[:40] not in caplog.text
    assert "Bearer" not in caplog.text and invoice.tax_id not in caplog.text
    assert "کالای" not in caplog.text
    assert "A1B2C3" in repr(client) and "Bearer" not in repr(client)


def test_inquiry_time_range_is_sent_in_the_documented_format(
    client: MoadianClient, fake: FakeMoadian, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[httpx.URL] = []
    original = client._http.request

    def spy(method: str, url: str, **kwargs: object) -> httpx.Response:
        response = original(method, url, **kwargs)  # type: ignore[arg-type]
        seen.append(response.request.url)
        return response

    monkeypatch.setattr(client._http, "request", spy)
    from datetime import timezone

    tehran = timezone(timedelta(minutes=210))
    client.inquire_by_uid(["u1"], start=datetime(2024, 3, 20, 0, 0, tzinfo=tehran))
    query = seen[-1].params
    assert query.get_list("uidList") == ["u1"] and query["fiscalId"] == MEMORY_ID
    assert query["start"] == "2024-03-20T00:00:00.000000000+03:30"
