"""ZVT APDUs, BCD, BMPs and TLV (PA00P015 "Commands, Bitmaps, Error Messages").

Real-terminal messages (Status-Information, Print Text-Block) are the traces published
with the Portalum.Zvt project's tests; the rest is built from the chapters named.
"""

from __future__ import annotations

import random

import pytest

from edge.drivers.zvt import apdu as A
from edge.drivers.zvt.codes import (
    RESULTS,
    card_type_id,
    card_type_name,
    result_text,
    status_text,
)


def H(text: str) -> bytes:
    return bytes.fromhex(text.replace("-", " "))


# A girocard/Maestro payment of 20.40 EUR (04 0F, chapter 3.1): result, amount, trace,
# time, date, expiry, card sequence, payment type, masked PAN (LL-var), TID, VU number,
# AID/authorisation attribute, additional text (LLL-var), currency, receipt, turnover,
# card type and card name (LL-var, NUL-terminated).
STATUS_TRACE = H(
    "04 0F 77 27 00 04 00 00 00 00 20 40 0B 00 04 70 0C 22 39 53 0D 10 06 0E 25 12 17 00"
    " 01 19 70 22 F0 F8 EE EE EE EE EE EE 47 71 29 28 00 48 69 2A 31 30 30 34 36 31 37 36"
    " 33 20 20 20 20 20 20 3B 36 31 31 38 30 34 00 00 3C F0 F1 F4 47 45 4E 2E 4E 52 2E 3A"
    " 36 31 31 38 30 34 49 09 78 87 04 70 88 00 04 70 8A 2E 8B F1 F7 44 65 62 69 74 20 4D"
    " 61 73 74 65 72 63 61 72 64 00"
)

# The same with a TLV container (BMP 06) holding 1F12, 1F10 and a constructed tag 60.
STATUS_TLV_TRACE = H(
    "04-0F-65-27-00-0C-23-13-55-0D-10-29-0E-99-99-22-F0-F8-EE-EE-EE-EE-EE-EE-47-71-A0-01"
    "-29-00-00-00-06-87-00-08-0B-00-00-00-8A-06-8B-F1-F1-4D-41-53-54-45-52-43-41-52-44-00"
    "-06-2E-2F-08-1F-12-01-02-1F-10-01-00-60-1B-43-07-A0-00-00-00-04-10-10-44-10-44-65-62"
    "-69-74-20-4D-61-73-74-65-72-63-61-72-64-1F-2B-04-10-01-50-08"
)

# An administration receipt as a Print Text-Block (06 D3, chapter 3.6): TLV 1F07 receipt
# type 03, 25 (print texts, 0x81-long length) with 07 text lines and 09 attribute 81.
BLOCK_TRACE = H(
    "06-D3-AC-06-81-A9-1F-07-01-03-25-81-A2-07-1B-30-32-2E-31-31-2E-32-30-32-31-20-20-20"
    "-20-20-20-20-20-20-31-37-3A-30-35-3A-30-32-07-0C-54-49-44-3A-41-48-30-30-30-30-30-36"
    "-07-14-41-62-73-63-68-6C-75-73-73-20-2D-20-6B-65-69-6E-65-20-54-58-07-19-20-41-56-3A"
    "-20-2B-30-34-2E-30-37-20-28-4A-75-6E-20-31-31-20-32-30-32-31-29-07-1B-54-49-3A-20-45"
    "-20-44-54-3A-20-30-2F-30-2F-20-4F-46-3A-20-30-2F-30-2F-20-43-47-3A-07-0F-20-20-20-20"
    "-20-20-20-20-20-20-20-31-2F-30-2F-07-01-20-07-01-20-07-01-20-07-01-20-07-01-20-07-01"
    "-20-07-01-20-09-01-81"
)


def test_apdu_short_and_extended_length() -> None:
    a = A.Apdu(0x06, 0x0F)
    assert a.encode() == H("06 0F 00")
    assert A.Apdu.parse(H("06 0F 00")) == a
    big = A.Apdu(0x06, 0xD3, bytes(654))
    assert big.encode()[:5] == H("06 D3 FF 8E 02")  # FF, then 654 little-endian
    assert A.Apdu.parse(big.encode()) == big
    assert A.Apdu(0x06, 0xD1, bytes(254)).encode()[:3] == H("06 D1 FE")
    assert A.Apdu(0x06, 0xD1, bytes(255)).encode()[:5] == H("06 D1 FF FF 00")


@pytest.mark.parametrize(
    ("raw", "why"),
    [("06 0F", "shorter than 3"), ("06 0F 02 27", "says 2"), ("06 D3 FF 01", "cut short")],
)
def test_apdu_length_mismatch(raw: str, why: str) -> None:
    with pytest.raises(A.ZVTError, match=why):
        A.Apdu.parse(H(raw))


def test_acknowledgements() -> None:
    assert A.ACK_APDU.encode() == H("80 00 00")
    assert A.nack(0x9C).encode() == H("84 9C 00")
    assert A.Apdu(0x84, 0x00).positive  # 84 00 counts as positive
    assert A.nack(0x6F).negative and not A.nack(0x6F).positive
    assert A.ECR_ABORT_APDU.encode() == H("06 B0 00")  # chapter 2.21


def test_bcd() -> None:
    assert A.bcd(1_250_000, 6) == H("00 00 01 25 00 00")
    assert A.bcd(364, 2) == H("03 64")
    assert A.bcd_int(H("00 00 01 25 00 00")) == 1_250_000
    assert A.bcd_digits(H("29 00 10 06")) == "29001006"
    with pytest.raises(ValueError, match="does not fit"):
        A.bcd(10**12, 6)
    with pytest.raises(ValueError, match="does not fit"):
        A.bcd(-1, 2)
    with pytest.raises(A.ZVTError, match="not BCD"):
        A.bcd_int(H("12 3A"))


def test_var_lengths() -> None:
    assert A.var_length(8, 2) == H("F0 F8")
    assert A.var_length(14, 3) == H("F0 F1 F4")
    items, _ = A.parse_bmps(H("8B F0 F3 41 42 43 3C F0 F0 F1 5A"))
    assert items == [(0x8B, b"ABC"), (0x3C, b"Z")]
    with pytest.raises(A.ZVTError, match="bad variable length"):
        A.parse_bmps(H("8B 03 03 41 42 43"))


def test_registration_for_irr_chapter_2_1() -> None:
    # password 000000, config BA (ECR prints via 06 D1, intermediate status, ECR controls
    # payment and administration), currency 03 64 (IRR), TLV 12 = 40 characters per line
    reg = A.registration("000000", 0xBA, 364, chars_per_line=40)
    assert reg.encode() == H("06 00 0B 00 00 00 BA 03 64 06 03 12 01 40")
    assert A.registration("123456", 0xBA, 978).encode() == H("06 00 06 12 34 56 BA 09 78")
    with_service = A.registration("000000", 0x08, 364, service=0x01)
    assert with_service.encode() == H("06 00 08 00 00 00 08 03 64 03 01")
    with pytest.raises(ValueError, match="six digits"):
        A.password_bcd("12345")


def test_authorisation_chapter_2_2() -> None:
    # 1 250 000 Rials: the integer as twelve BCD digits, no implied decimals
    assert A.authorisation(1_250_000, 364).encode() == H("06 01 0A 04 00 00 01 25 00 00 49 03 64")
    assert A.authorisation(A.MAX_AMOUNT, None).encode() == H("06 01 07 04 99 99 99 99 99 99")


def test_pt_messages_chapter_3() -> None:
    assert A.intermediate(0x0A).encode() == H("04 FF 01 0A")
    assert A.intermediate(0x0A, 30).encode() == H("04 FF 02 0A 1E")
    assert A.completion().encode() == H("06 0F 00")
    assert A.pt_abort(0x6C).encode() == H("06 1E 01 6C")
    assert A.print_line(b"Total", 0x00).encode() == H("06 D1 06 00 54 6F 74 61 6C")
    assert A.print_line(b"", A.ATTR_LAST).encode() == H("06 D1 01 81")
    block = A.print_block([b"AB", b"C"], receipt_type=2)
    assert block.encode() == H("06 D3 12 06 10 1F 07 01 02 25 0A 07 02 41 42 07 01 43 09 01 81")
    assert A.parse_print_block(block.data) == (2, ["AB", "C"])


def test_status_information_trace() -> None:
    s = A.parse_status_info(A.Apdu.parse(STATUS_TRACE).data)
    assert (s.result, s.amount, s.trace) == (0, 2040, 470)
    assert (s.time, s.date, s.terminal_id) == ("223953", "1006", "28004869")
    assert (s.receipt, s.turnover, s.currency) == (470, 470, 978)
    assert (s.card_type, s.card_name, s.auth_code) == (0x2E, "Debit Mastercard", "611804")
    assert s.vu_number == "100461763" and s.unparsed == 0


def test_status_information_with_tlv_container() -> None:
    s = A.parse_status_info(A.Apdu.parse(STATUS_TLV_TRACE).data)
    assert (s.result, s.terminal_id, s.receipt, s.trace) == (0, "00000006", 8, 0)
    assert (s.card_type, s.card_name) == (6, "MASTERCARD")
    assert 0x06 in s.bmps


def test_status_information_stops_at_an_unknown_bmp() -> None:
    s = A.parse_status_info(H("27 00 04 00 00 00 00 50 00 5F 01 02 03"))
    assert (s.result, s.amount, s.unparsed) == (0, 5000, 4)
    with pytest.raises(A.ZVTError, match="unknown BMP 5F"):
        A.parse_bmps(H("27 00 5F 01"))


def test_print_text_block_trace() -> None:
    rtype, lines = A.parse_print_block(A.Apdu.parse(BLOCK_TRACE).data)
    assert rtype == 3  # administration receipt
    assert lines[:3] == ["02.11.2021         17:05:02", "TID:AH000006", "Abschluss - keine TX"]
    assert len(lines) == 13


def test_print_line_attributes_and_cp437() -> None:
    assert A.parse_print_line(H("00") + "für".encode("cp437")) == (0, ["für"])
    assert A.parse_print_line(H("81")) == (0x81, [])  # end of receipt, no text
    assert A.parse_print_line(H("FF 03")) == (0xFF, ["", "", ""])  # three line feeds
    # a trailing TLV container (06 04 1F 07 01 01) is not text
    assert A.parse_print_line(H("40 41 42 06 04 1F 07 01 01")) == (0x40, ["AB"])
    # hostile text: control characters and bidi overrides never reach the receipt
    assert A.parse_print_line(b"\x00A\x1b[2JB\xe2\x80\xaeC", "utf-8")[1] == ["A[2JBC"]
    with pytest.raises(A.ZVTError, match="attribute"):
        A.parse_print_line(b"")


def test_tlv_tags_and_lengths() -> None:
    assert A.encode_tlv(0x1F07, b"\x02") == H("1F 07 01 02")
    assert A.tlv_length(0x7F) == H("7F")
    assert A.tlv_length(0xA9) == H("81 A9")
    assert A.tlv_length(0x028A) == H("82 02 8A")  # big-endian, unlike the APDU length
    root = A.tlv_root(H("1F 07 01 02 25 05 07 03 41 42 43"))
    assert [c.tag for c in root.children] == [0x1F07, 0x25]
    assert root.children[1].constructed
    assert root.find(0x07)[0].value == b"ABC"
    with pytest.raises(A.ZVTError, match="needs 5 bytes"):
        A.parse_tlv(H("07 05 41"))
    with pytest.raises(A.ZVTError, match="bad TLV length"):
        A.parse_tlv(H("07 83 00 00 01 41"))
    nested = b""
    for _ in range(12):
        nested = A.encode_tlv(0x25, nested)
    with pytest.raises(A.ZVTError, match="nested too deeply"):
        A.parse_tlv(nested)


def test_result_and_status_texts_are_bilingual() -> None:
    for code in range(256):
        en, fa = result_text(code)
        assert en and fa and en != fa
        en, fa = status_text(code)
        assert en and fa
    assert result_text(0x05)[0] == "card declined by the issuing bank"
    assert "33" in result_text(0x33)[0]  # host codes are named, not hidden
    assert result_text(0x6C) == RESULTS[0x6C]
    assert "remove" in status_text(0x4A)[0]
    assert card_type_name(6) == "Mastercard" and card_type_name(99) == "card type 99"
    assert card_type_id("visa") == 0x0A and card_type_id("Shetab") is None


def _mutations(rng: random.Random, samples: list[bytes]) -> bytes:
    data = bytearray(rng.choice(samples))
    for _ in range(rng.randrange(1, 5)):
        op = rng.randrange(3)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1 and data:
            del data[min(pos, len(data) - 1)]
        else:
            data.insert(pos, rng.randrange(256))
    return bytes(data)


def test_fuzz_apdu_bmp_tlv_parsers() -> None:
    """12,000 random and mutated messages through every parser: ZVTError or a value."""
    rng = random.Random(0x040F)
    samples = [STATUS_TRACE, STATUS_TLV_TRACE, BLOCK_TRACE, H("06 D1 06 00 54 6F 74 61 6C")]
    parsers = [
        A.Apdu.parse,
        lambda d: A.parse_status_info(d[3:]),
        lambda d: A.parse_print_block(d[3:]),
        lambda d: A.parse_print_line(d[3:]),
        lambda d: A.parse_bmps(d[3:]),
        lambda d: A.parse_tlv(d[3:]),
        lambda d: A.parse_completion(d[3:]),
    ]
    ok = 0
    for i in range(12_000):
        if i % 2:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))
        else:
            data = _mutations(rng, samples)
        for parse in parsers:
            try:
                parse(data)
                ok += 1
            except A.ZVTError:
                pass
    assert ok > 1000  # the mutations are not all rejected: the parsers were exercised
