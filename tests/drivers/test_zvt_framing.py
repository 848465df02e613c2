"""ZVT framing (transport protocol PA00P016): CRC, DLE stuffing, frames, TCP splitting.

The golden frames are traces of real terminals published with the ``ecrterm`` project's
tests; they pin the CRC variant (CRC-16/KERMIT, low byte first, computed over the APDU and
ETX, not over the doubled DLEs) and the stuffing.
"""

from __future__ import annotations

import contextlib
import random

import pytest

from edge.drivers.zvt.framing import (
    ACK,
    NAK,
    ApduSplitter,
    BadFrame,
    Control,
    Frame,
    FrameDecoder,
    FramingError,
    crc16,
    decode_frame,
    encode_frame,
    frame_crc,
)
from edge.errors import DeviceError


def H(text: str) -> bytes:
    return bytes.fromhex(text)


# (APDU, its serial frame as the terminal traces show it)
GOLDEN = [
    # positive acknowledgement 80 00 00 (PA00P015 chapter "Positive Acknowledgement")
    ("80 00 00", "10 02 80 00 00 10 03 F5 1F"),
    # negative acknowledgement 84 9C 00 ("please wait", chapter "Negative Acknowledgement")
    ("84 9C 00", "10 02 84 9C 00 10 03 C3 41"),
    # Registration 06 00, password 123456, config BA, currency EUR (chapter 2.1)
    ("06 00 06 12 34 56 BA 09 78", "10 02 06 00 06 12 34 56 BA 09 78 10 03 24 C3"),
    # Authorisation 06 01 of 110.00 EUR: the amount's 0x10 is doubled (chapter 2.2)
    (
        "06 01 0A 04 00 00 00 01 10 00 49 09 78",
        "10 02 06 01 0A 04 00 00 00 01 10 10 00 49 09 78 10 03 F2 FF",
    ),
    # Diagnosis 06 70 (chapter 2.16), Reset Terminal 06 18, Status Enquiry 05 01
    ("06 70 00", "10 02 06 70 00 10 03 D9 F9"),
    ("06 18 00", "10 02 06 18 00 10 03 56 3A"),
    ("05 01 03 12 34 56", "10 02 05 01 03 12 34 56 10 03 E0 43"),
    # Print Line 06 D1 "Gesamt      0       0,00", attribute 00 (chapter 3.5)
    (
        "06 D1 19 00" + b"Gesamt      0       0,00".hex(),
        "10 02 06 D1 19 00 47 65 73 61 6D 74 20 20 20 20 20 20 30 20 20 20 20 20 20 20"
        " 30 2C 30 30 10 03 B5 AB",
    ),
]


@pytest.mark.parametrize(("apdu", "frame"), GOLDEN)
def test_golden_frames_byte_for_byte(apdu: str, frame: str) -> None:
    assert encode_frame(H(apdu)) == H(frame)
    assert decode_frame(H(frame)) == H(apdu)


def test_crc16_kermit_check_value_and_vectors() -> None:
    # The catalogue check value of CRC-16/KERMIT (poly 0x1021 reflected, init 0, xorout 0)
    assert crc16(b"123456789") == 0x2189
    # CRC over APDU + ETX, sent low byte first: 80 00 00 03 -> 0x1FF5 -> F5 1F
    assert crc16(H("80 00 00 03")) == 0x1FF5
    assert frame_crc(H("80 00 00")) == H("F5 1F")
    assert crc16(b"") == 0
    assert crc16(b"89", crc16(b"1234567")) == 0x2189  # incremental


def _bitwise_kermit(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def test_table_crc_matches_the_bitwise_definition() -> None:
    rng = random.Random(16)
    for n in range(200):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc16(data) == _bitwise_kermit(data)


def test_dle_in_data_and_in_the_crc_itself() -> None:
    apdu = H("06 D1 05 00 10 10 41 10")
    frame = encode_frame(apdu)
    assert frame[:2] == H("10 02")
    assert frame[2:-4] == H("06 D1 05 00 10 10 10 10 41 10 10")  # every DLE doubled
    assert frame[-4:-2] == H("10 03")
    assert decode_frame(frame) == apdu
    # the CRC bytes are not stuffed even when one of them is 0x10
    for n in range(5000):
        apdu = b"\x06\xd1\x02\x00" + n.to_bytes(2, "big")
        if 0x10 in frame_crc(apdu):
            assert decode_frame(encode_frame(apdu)) == apdu
            break
    else:
        pytest.fail("no CRC containing 0x10 found")


def test_decoder_tokens_in_any_chunking() -> None:
    a, b = H("80 00 00"), H("04 FF 01 0A")
    stream = bytes([ACK]) + encode_frame(a) + b"\xff\x00" + bytes([NAK]) + encode_frame(b)
    want = [Control(ACK), Frame(a), Control(NAK), Frame(b)]
    for size in (1, 2, 3, 7, len(stream)):
        d = FrameDecoder()
        got = []
        for i in range(0, len(stream), size):
            got += d.feed(stream[i : i + size])
        assert got == want
        assert d.noise == 2


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("10 02 80 00 00 10 03 F5 1E", "CRC"),  # one bit off in the CRC
        ("10 02 80 01 00 10 03 F5 1F", "CRC"),  # one bit off in the data
        ("10 02 80 00 10 41 00", "DLE followed by 0x41"),  # unstuffed DLE
        ("10 02 80 10 03 " + frame_crc(H("80")).hex(), "too short"),
    ],
)
def test_damaged_frames_are_named(raw: str, why: str) -> None:
    toks = FrameDecoder().feed(H(raw))
    assert isinstance(toks[0], BadFrame)
    assert why in toks[0].reason
    with pytest.raises(FramingError, match=why):
        decode_frame(H(raw))


def test_restarted_frame_is_read_after_the_torn_one() -> None:
    toks = FrameDecoder().feed(H("10 02 80 00 10 02 80 00 00 10 03 F5 1F"))
    assert isinstance(toks[0], BadFrame) and toks[1] == Frame(H("80 00 00"))


def test_decoder_reset_drops_a_partial_frame() -> None:
    d = FrameDecoder()
    d.feed(H("10 02 06 0F"))
    assert d.in_frame
    d.reset()
    assert not d.in_frame
    assert d.feed(encode_frame(H("06 0F 00"))) == [Frame(H("06 0F 00"))]


def test_framing_error_is_a_bilingual_device_error() -> None:
    with pytest.raises(DeviceError) as e:
        decode_frame(b"\x06")
    assert isinstance(e.value, FramingError) and "ZVT" in e.value.fa


def test_tcp_splitter_short_and_long_apdus() -> None:
    long = H("06 D3 FF 2C 01") + bytes(300)  # FF + length 0x012C little-endian
    stream = H("80 00 00") + H("04 FF 01 0A") + long + H("06 0F 00")
    for size in (1, 4, 64, len(stream)):
        s = ApduSplitter()
        got = []
        for i in range(0, len(stream), size):
            got += s.feed(stream[i : i + size])
        assert got == [H("80 00 00"), H("04 FF 01 0A"), long, H("06 0F 00")]
        assert s.pending == 0


def test_fuzz_frame_decoder_random_and_mutated() -> None:
    """12,000 inputs: random bytes and mutated frames never crash the decoder, never make
    it deliver a frame whose CRC is wrong, and good frames always come through after."""
    rng = random.Random(0x2189)
    d = FrameDecoder()
    delivered = 0
    for i in range(12_000):
        if i % 3 == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        else:
            apdu = bytes(rng.randrange(256) for _ in range(rng.randrange(3, 30)))
            frame = bytearray(encode_frame(apdu))
            for _ in range(rng.randrange(1, 4)):
                op = rng.randrange(3)
                pos = rng.randrange(len(frame))
                if op == 0:
                    frame[pos] ^= 1 << rng.randrange(8)
                elif op == 1:
                    del frame[pos]
                else:
                    frame.insert(pos, rng.randrange(256))
            data = bytes(frame)
        for tok in d.feed(data):
            assert isinstance(tok, Frame | Control | BadFrame)
            if isinstance(tok, Frame):
                assert len(tok.apdu) >= 3
        # whatever came before, a clean frame after an idle gap is read intact
        d.reset()
        good = bytes([0x06, 0xD1, 0x02, 0x00, i & 0xFF])
        toks = d.feed(encode_frame(good))
        assert toks == [Frame(good)]
        delivered += 1
        with contextlib.suppress(FramingError):
            decode_frame(data)
    assert delivered == 12_000


def test_fuzz_tcp_splitter() -> None:
    rng = random.Random(20007)
    s = ApduSplitter()
    for _ in range(10_000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 20)))
        for apdu in s.feed(data):
            n = apdu[2]
            assert len(apdu) == (3 + n if n != 0xFF else 5 + (apdu[3] | apdu[4] << 8))
        assert s.pending <= 5 + 0xFFFF
