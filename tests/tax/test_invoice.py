"""Invoices: the packet's fields, VAT truncation, totals, returns and refusals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_broker.tax.errors import InvalidTaxIdError, TaxValidationError
from cloud_broker.tax.invoice import (
    Buyer,
    BuyerType,
    Invoice,
    InvoiceSubject,
    Payment,
    Seller,
    Settlement,
    to_packet,
)
from cloud_broker.tax.lines import InvoiceLine, parse_quantity
from cloud_broker.tax.wirejson import decode_json, encode_json
from tests.tax.conftest import SALE_MS, SELLER
from tests.tax.fake_validation import check_invoice


def line(**overrides: Any) -> InvoiceLine:
    fields: dict[str, Any] = {
        "sstid": "2720000166053",
        "description": "اسپری پاک کننده سطوح",
        "qty_milli": 2000,
        "unit_price": 50_000,
        "vat_rate_bp": 1000,
    }
    fields.update(overrides)
    return InvoiceLine(**fields)


def test_packet_fields_for_a_retail_invoice() -> None:
    invoice = Invoice.create(
        SELLER,
        12,
        SALE_MS,
        [
            line(discount=1_000),
            line(
                sstid="2720000001774",
                description="اسمارتیز",
                qty_milli=1500,
                unit_price=33_333,
                vat_rate_bp=900,
            ),
        ],
        payments=(Payment(amount=163_398, paid_at_ms=SALE_MS, method=2, trace_no="123456"),),
    )
    packet = to_packet(invoice)
    assert packet["header"] == {
        "taxid": invoice.tax_id,
        "indatim": SALE_MS,
        "indati2m": SALE_MS,
        "inty": 2,
        "inno": "000000000C",
        "inp": 1,
        "ins": 1,
        "tins": "14003778990",
        "tprdis": 149_999,  # 100 000 + 49 999 (33 333 x 1.5 = 49 999.5, truncated)
        "tdis": 1_000,
        "tadis": 148_999,
        "tvam": 14_399,  # 9 900 + 4 499 (49 999 x 9 % = 4 499.91, truncated)
        "todam": 0,
        "tbill": 163_398,
        "setm": 1,
        "cap": 163_398,
        "insp": 0,
    }
    assert packet["body"][1] == {
        "sstid": "2720000001774",
        "sstt": "اسمارتیز",
        "am": Decimal("1.5"),
        "mu": "1627",
        "fee": 33_333,
        "prdis": 49_999,
        "dis": 0,
        "adis": 49_999,
        "vra": 9,
        "vam": 4_499,
        "tsstam": 54_498,
    }
    assert packet["payments"] == [{"pmt": 2, "trn": "123456", "pdt": SALE_MS, "pv": 163_398}]
    assert invoice.tax_id.startswith("A1B2C3") and invoice.tax_id[11:21] == "000000000C"


def test_packet_json_has_no_floats_and_keeps_persian() -> None:
    invoice = Invoice.create(SELLER, 1, SALE_MS, [line(qty_milli=1250, vat_rate_bp=950)])
    text = encode_json(invoice.to_packet()).decode("utf-8")
    assert '"am":1.25' in text and '"vra":9.5' in text
    assert "اسپری" in text and "\\u" not in text
    assert decode_json(text)["body"][0]["am"] == Decimal("1.25")
    with pytest.raises(TypeError, match="float"):
        encode_json({"am": 1.25})


def test_buyer_and_mixed_settlement() -> None:
    invoice = Invoice.create(
        SELLER,
        3,
        SALE_MS,
        [line()],
        buyer=Buyer(BuyerType.PERSON, national_id="0012345678", postal_code="1234567890"),
        settlement=Settlement.MIXED,
        cash_amount=60_000,
    )
    header = invoice.to_packet()["header"]
    assert (header["tob"], header["bid"], header["bpc"]) == (1, "0012345678", "1234567890")
    assert "tinb" not in header
    assert (header["setm"], header["cap"], header["insp"], header["tbill"]) == (
        3,
        60_000,
        50_000,
        110_000,
    )


def test_return_refers_to_the_original() -> None:
    original = Invoice.create(SELLER, 20, SALE_MS, [line()])
    back = Invoice.create(
        SELLER,
        21,
        SALE_MS + 3_600_000,
        [line(qty_milli=1000)],
        subject=InvoiceSubject.RETURN,
        original_tax_id=original.tax_id,
    )
    header = back.to_packet()["header"]
    assert (header["ins"], header["irtaxid"]) == (4, original.tax_id)
    assert header["tbill"] == 55_000
    assert check_invoice(decode_json(encode_json(back.to_packet())), "A1B2C3") == []


def test_return_rules() -> None:
    with pytest.raises(TaxValidationError, match="irtaxid") as caught:
        Invoice.create(SELLER, 21, SALE_MS, [line()], subject=InvoiceSubject.RETURN)
    assert "برگشت" in caught.value.fa
    with pytest.raises(TaxValidationError, match="irtaxid"):
        Invoice.create(SELLER, 21, SALE_MS, [line()], original_tax_id="DEF5GH0481F000000000C2")
    with pytest.raises(InvalidTaxIdError):
        Invoice.create(
            SELLER,
            21,
            SALE_MS,
            [line()],
            subject=InvoiceSubject.RETURN,
            original_tax_id="DEF5GH0481F000000000C3",
        )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"sstid": "272000016605"}, "sstid"),
        ({"description": " "}, "sstt"),
        ({"qty_milli": 0}, "am"),
        ({"qty_milli": 1.5}, "am"),
        ({"unit_price": True}, "fee"),
        ({"unit_price": -1}, "fee"),
        ({"discount": 100_001}, "dis"),
        ({"vat_rate_bp": 10_001}, "vra"),
    ],
)
def test_line_refusals_are_bilingual(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(TaxValidationError) as caught:
        line(**overrides)
    assert caught.value.field == field
    assert caught.value.en.startswith(field) and caught.value.fa.startswith(field)
    assert caught.value.en != caught.value.fa
    assert not caught.value.transient


def test_invoice_refusals() -> None:
    good = Invoice.create(SELLER, 5, SALE_MS, [line()])
    with pytest.raises(TaxValidationError, match="body"):
        Invoice.create(SELLER, 5, SALE_MS, [])
    with pytest.raises(InvalidTaxIdError, match="serial 6"):
        Invoice(SELLER, good.tax_id, 6, SALE_MS, 210, (line(),))
    with pytest.raises(InvalidTaxIdError, match="day"):
        Invoice(SELLER, good.tax_id, 5, SALE_MS + 86_400_000, 210, (line(),))
    with pytest.raises(TaxValidationError, match="tins"):
        Seller("A1B2C3", "12-34")
    with pytest.raises(TaxValidationError, match="cap"):
        Invoice.create(
            SELLER, 5, SALE_MS, [line()], settlement=Settlement.MIXED, cash_amount=110_000
        )
    with pytest.raises(TaxValidationError, match="cap"):
        Invoice.create(SELLER, 5, SALE_MS, [line()], cash_amount=10)


def test_parse_quantity() -> None:
    assert [parse_quantity(q) for q in ("2", "1.5", "0.125", " 10.00 ")] == [
        2000,
        1500,
        125,
        10_000,
    ]
    for bad in ("1.2345", "-1", "1,5", "", "1e3"):
        with pytest.raises(TaxValidationError, match="qty"):
            parse_quantity(bad)


lines_strategy = st.lists(
    st.builds(
        lambda q, p, r, d: line(
            qty_milli=q, unit_price=p, vat_rate_bp=r, discount=p * q // 1000 * d // 100
        ),
        st.integers(1, 50_000),
        st.integers(0, 50_000_000),
        st.sampled_from([0, 900, 1000, 950, 1]),
        st.integers(0, 100),
    ),
    min_size=1,
    max_size=8,
)


@given(lines_strategy)
def test_totals_are_exact_sums_of_lines(lines: list[InvoiceLine]) -> None:
    invoice = Invoice.create(SELLER, 9, SALE_MS, lines)
    header, body = invoice.to_packet()["header"], invoice.to_packet()["body"]
    for total, key in (
        ("tprdis", "prdis"),
        ("tdis", "dis"),
        ("tadis", "adis"),
        ("tvam", "vam"),
        ("tbill", "tsstam"),
    ):
        assert header[total] == sum(entry[key] for entry in body)
    assert header["tbill"] == header["tadis"] + header["tvam"]
    for entry, source in zip(body, lines, strict=True):
        exact_vat = Decimal(entry["adis"]) * source.vat_rate_bp / 10_000
        assert 0 <= exact_vat - entry["vam"] < 1  # truncated, never rounded up
        assert all(type(entry[k]) is int for k in ("fee", "prdis", "dis", "adis", "vam", "tsstam"))
    # the fake tax system's independent arithmetic agrees
    assert check_invoice(decode_json(encode_json(invoice.to_packet())), "A1B2C3") == []
