"""PN532 framing (UM0701-02 section 6.2): golden frames byte for byte, the stream parser's
resynchronisation, and fuzzing of both parsers of frames."""

from __future__ import annotations

import random

import pytest

from edge.drivers.pn532_frames import (
    ACK,
    ERROR_FRAME,
    MAX_DATA,
    NACK,
    Ack,
    ChecksumError,
    ErrorFrame,
    FrameParser,
    Garbled,
    Information,
    Nack,
    PN532FrameError,
    TruncatedFrameError,
    build_frame,
    checksum,
    command_frame,
    parse_frame,
    response_frame,
)
from edge.errors import DeviceError


def H(text: str) -> bytes:
    return bytes.fromhex(text)


# Golden frames.  Each is worked out by hand from the manual's rules (6.2.1.1): LEN counts
# TFI + PD, LCS = -LEN, DCS = -(TFI + PD0 + ... + PDn), all modulo 256.
GOLDEN = [
    # 7.2.2 GetFirmwareVersion: D4+02 = D6 -> DCS 2A
    ("00 00 FF 02 FE D4 02 2A 00", 0xD4, "02"),
    # its answer for a PN532 v1.6: D5+03+32+01+06+07 = 0x118 -> DCS E8
    ("00 00 FF 06 FA D5 03 32 01 06 07 E8 00", 0xD5, "03 32 01 06 07"),
    # 7.2.10 SAMConfiguration, normal mode (AN10609's wake-up example): D4+14+01 = E9 -> 17
    ("00 00 FF 03 FD D4 14 01 17 00", 0xD4, "14 01"),
    # its answer D5 15: D5+15 = EA -> 16
    ("00 00 FF 02 FE D5 15 16 00", 0xD5, "15"),
    # 7.3.1 RFConfiguration MaxRetries FF 01 02: 0x20D -> 0D -> F3
    ("00 00 FF 06 FA D4 32 05 FF 01 02 F3 00", 0xD4, "32 05 FF 01 02"),
    # ... and its answer D5 33: 0x108 -> F8
    ("00 00 FF 02 FE D5 33 F8 00", 0xD5, "33"),
    # 7.3.5 InListPassiveTarget, 1 target, 106 kbps type A: D4+4A+01 = 0x11F -> E1
    ("00 00 FF 04 FC D4 4A 01 00 E1 00", 0xD4, "4A 01 00"),
    # NbTg = 0: D5+4B = 0x120 -> E0
    ("00 00 FF 03 FD D5 4B 00 E0 00", 0xD5, "4B 00"),
    # a MIFARE Classic 1K (the manual's example: SENS_RES 00 04, SEL_RES 08, 4-byte UID)
    # 0x1DC -> DCS 24
    (
        "00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 11 22 33 44 24 00",
        0xD5,
        "4B 01 01 00 04 08 04 11 22 33 44",
    ),
    # an Ultralight: SENS_RES 00 44, SEL_RES 00, 7-byte UID; 0x636 -> 36 -> DCS CA
    (
        "00 00 FF 0F F1 D5 4B 01 01 00 44 00 07 04 A1 B2 C3 D4 E5 F6 CA 00",
        0xD5,
        "4B 01 01 00 44 00 07 04 A1 B2 C3 D4 E5 F6",
    ),
    # 7.2.8 SetSerialBaudrate to 921600 (BR 07): D4+10+07 = EB -> 15; answer D5 11 -> 1A
    ("00 00 FF 03 FD D4 10 07 15 00", 0xD4, "10 07"),
    ("00 00 FF 02 FE D5 11 1A 00", 0xD5, "11"),
    # RF field off (RFConfiguration item 01 = 00): D4+32+01 = 0x107 -> F9
    ("00 00 FF 04 FC D4 32 01 00 F9 00", 0xD4, "32 01 00"),
]


def test_golden_frames_obey_the_manuals_checksum_rules() -> None:
    # independent of the code under test: the hand-made frames satisfy 6.2.1.1
    for text, _tfi, _data in GOLDEN:
        f = H(text)
        assert f[:3] == b"\x00\x00\xff" and f[-1] == 0
        assert (f[3] + f[4]) % 256 == 0 and f[3] == len(f) - 7
        assert sum(f[5:-1]) % 256 == 0


@pytest.mark.parametrize(("text", "tfi", "data"), GOLDEN)
def test_golden_frames_byte_for_byte(text: str, tfi: int, data: str) -> None:
    assert build_frame(tfi, H(data)) == H(text)
    assert parse_frame(H(text)) == Information(tfi, H(data))


def test_command_and_response_helpers() -> None:
    assert command_frame(0x02) == H("00 00 FF 02 FE D4 02 2A 00")
    assert response_frame(0x4A, H("00")) == H("00 00 FF 03 FD D5 4B 00 E0 00")  # code + 1
    assert checksum(H("D4 02")) == 0x2A


def test_ack_nack_and_error_frames() -> None:
    assert H("00 00 FF 00 FF 00") == ACK  # 6.2.1.3
    assert H("00 00 FF FF 00 00") == NACK  # 6.2.1.4
    assert H("00 00 FF 01 FF 7F 81 00") == ERROR_FRAME  # 6.2.1.5: LEN 1, 7F + 81 = 0x100
    assert parse_frame(ACK) == Ack()
    assert parse_frame(NACK) == Nack()
    assert parse_frame(ERROR_FRAME) == ErrorFrame()


def test_extended_frame() -> None:
    # 6.2.1.2: 00 00 FF FF FF LENM LENL LCS TFI PD.. DCS 00.  nfcpy's line test: Diagnose
    # 00 and 262 bytes 00..FF,00..05: the data field is D4 00 00 + 262 = 265 bytes = 01 09;
    # LCS = -(01 + 09) = F6.  DCS: D4 + 0 + 0 + sum(0..255) + sum(0..5) = 212 + 32640 +
    # 15 = 0x8063 -> 63 -> DCS 9D (what nfcpy sends, see test_pn532_sim's nfcpy test).
    pattern = bytes(range(256)) + bytes(range(6))
    frame = command_frame(0x00, b"\x00" + pattern)
    assert frame[:9] == H("00 00 FF FF FF 01 09 F6 D4")
    assert frame[-2:] == H("9D 00")
    got = parse_frame(frame)
    assert got == Information(0xD4, b"\x00\x00" + pattern, extended=True)
    # the host may also use an extended frame for short data; the chip always picks the
    # smallest type that fits, so build_frame does too unless told otherwise
    short = build_frame(0xD4, H("02"), extended=True)
    assert short == H("00 00 FF FF FF 00 02 FE D4 02 2A 00")
    assert parse_frame(short) == Information(0xD4, H("02"), extended=True)


def test_long_preamble_and_postamble_are_allowed() -> None:
    # 6.2.1.6: preamble and postamble may be any number of 00 bytes
    assert parse_frame(bytes(10) + ACK + bytes(5)) == Ack()
    assert parse_frame(H("00 FF 02 FE D4 02 2A 00")) == Information(0xD4, H("02"))
    # ... but an information frame needs its postamble: a 00 lost inside a frame leaves the
    # sums right (the postamble stands in for the DCS) and only the missing postamble shows
    with pytest.raises(TruncatedFrameError):
        parse_frame(H("00 00 FF 02 FE D4 02 2A"))
    lost = H("00 00 FF 03 FD D4 4A 00 E2 00")  # D4 4A 00 00 E2, one of the two 00 lost
    assert (sum(lost[5:8]) + lost[8]) % 256 == 0  # the sums hold...
    with pytest.raises(PN532FrameError, match="postamble"):
        parse_frame(lost[:-1] + H("12"))  # ...the postamble does not


@pytest.mark.parametrize(
    ("raw", "error", "code"),
    [
        ("00 00 FF 02 FE D4 02 2B 00", ChecksumError, "checksum"),  # DCS off by one
        ("00 00 FF 02 FD D4 02 2A 00", ChecksumError, "checksum"),  # LCS wrong
        ("00 00 FF FF FF 01 09 F5 D4", ChecksumError, "checksum"),  # extended LCS
        ("00 00 FF 06 FA D5 03 32", TruncatedFrameError, "truncated"),
        ("00 00 FF 00 00 00", PN532FrameError, "length"),  # LEN 0 with LCS 0: no data field
        ("00 00 FF FF FF 01 10 EF D4", PN532FrameError, "length"),  # 272 > 265
        ("55 00 FF 00 FF 00", PN532FrameError, "start"),
        ("", PN532FrameError, "start"),
        ("00 00 FF 00 FF 00 12", PN532FrameError, "trailing"),
        ("00 00 FF 02 FE D4 02 2A 01", PN532FrameError, "postamble"),
    ],
)
def test_bad_frames_are_refused_with_a_typed_error(raw: str, error: type, code: str) -> None:
    with pytest.raises(error) as e:
        parse_frame(H(raw))
    assert e.value.code == code
    assert isinstance(e.value, DeviceError) and isinstance(e.value, ValueError)
    assert e.value.fa and e.value.en.startswith("PN532 frame refused")


def test_build_refuses_what_does_not_fit() -> None:
    with pytest.raises(PN532FrameError, match="too-long"):
        build_frame(0xD4, bytes(MAX_DATA))  # 266 with TFI
    with pytest.raises(PN532FrameError, match="too-long"):
        build_frame(0xD4, bytes(255), extended=False)
    with pytest.raises(PN532FrameError):
        command_frame(0x100)
    # 8 bytes of head (00 00 FF FF FF LENM LENL LCS), the 265-byte field, DCS and 00
    assert len(build_frame(0xD4, bytes(MAX_DATA - 1))) == 8 + MAX_DATA + 2


def test_parser_resynchronises_after_garbage_and_garbled_frames() -> None:
    good = response_frame(0x02, H("32 01 06 07"))
    bad_dcs = good[:-2] + bytes([good[-2] ^ 0x01]) + b"\x00"
    bad_lcs = good[:4] + bytes([good[4] ^ 0x10]) + good[5:]
    stream = H("55 55 13 37 00") + ACK + bad_dcs + H("AA BB") + bad_lcs + good + H("00 FF")
    p = FrameParser()
    out: list[object] = []
    for i in range(0, len(stream), 3):  # in small pieces, as a UART delivers them
        out += p.feed(stream[i : i + 3])
    noise = [x for x in out if isinstance(x, Garbled) and x.reason == "noise"]
    out = [x for x in out if x not in noise]
    kinds = [type(x).__name__ for x in out]
    assert kinds == ["Ack", "Garbled", "Garbled", "Information"]
    assert out[-1] == Information(0xD5, H("03 32 01 06 07"))
    assert isinstance(out[1], Garbled) and "DCS" in out[1].reason
    assert isinstance(out[2], Garbled) and "LCS" in out[2].reason
    assert noise[0] == Garbled("noise", H("55 55 13"))  # in stream order, as fed
    assert p.noise > 0 and p.garbled == 2
    assert p.pending == 2  # the trailing start code: a frame may be on its way
    assert bytes(p.buf) == H("00 FF")


def test_a_good_frame_behind_a_broken_one_is_found() -> None:
    # a frame with a dropped byte swallows the start of the next one; resuming right after
    # the broken frame's start code finds the next frame whole
    good = response_frame(0x4A, H("01 01 00 04 08 04 11 22 33 44"))
    broken = good[:8] + good[9:]  # one byte lost in the middle
    p = FrameParser()
    out = p.feed(broken) + p.feed(good)
    assert out[-1] == Information(0xD5, H("4B 01 01 00 04 08 04 11 22 33 44"))
    assert any(isinstance(x, Garbled) for x in out)


def _random_frame(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return ACK
    if kind == 1:
        return ERROR_FRAME
    n = rng.choice((0, 1, 5, 40, 254, 260))
    return build_frame(rng.choice((0xD4, 0xD5)), rng.randbytes(n))


def _canonical(f: object) -> bytes:
    if isinstance(f, Information):
        return build_frame(f.tfi, f.data, extended=f.extended)
    return {Ack(): ACK, Nack(): NACK, ErrorFrame(): ERROR_FRAME}[f]  # type: ignore[index]


def test_fuzz_parse_frame_raises_only_frame_errors() -> None:
    rng = random.Random(532)
    outcomes = {"ok": 0, "refused": 0}
    for i in range(12_000):
        if i % 2:
            raw = rng.randbytes(rng.randrange(0, 40))
        else:  # a mutated frame: flipped, dropped, inserted or cut bytes
            f = bytearray(_random_frame(rng))
            for _ in range(rng.randrange(1, 4)):
                if not f:
                    break
                op, at = rng.randrange(4), rng.randrange(len(f))
                if op == 0:
                    f[at] ^= 1 << rng.randrange(8)
                elif op == 1 and len(f) > 1:
                    del f[at]
                elif op == 2:
                    f.insert(at, rng.randrange(256))
                else:
                    del f[at:]
            raw = bytes(f)
        try:
            got = parse_frame(raw)
        except PN532FrameError as e:
            assert e.code in {"start", "checksum", "truncated", "length", "trailing", "postamble"}
            assert str(e)
            outcomes["refused"] += 1
        else:
            # whatever passes is exactly a canonical frame between 00 padding
            assert raw.strip(b"\x00") == _canonical(got)[2:].rstrip(b"\x00")
            outcomes["ok"] += 1
    assert outcomes["refused"] > 5_000 and outcomes["ok"] > 10


def test_fuzz_stream_parser_never_raises_and_finds_every_good_frame() -> None:
    rng = random.Random(65)
    p = FrameParser()
    sent: list[object] = []
    found: list[object] = []
    for i in range(12_000):
        if i % 3 == 0:  # line noise
            data = rng.randbytes(rng.randrange(1, 30))
        elif i % 3 == 1:  # a frame with one byte changed
            f = bytearray(_random_frame(rng))
            f[rng.randrange(len(f))] = rng.randrange(256)
            data = bytes(f)
        else:  # a good frame must come through whatever came before it
            data = build_frame(0xD5, bytes([0x4B]) + rng.randbytes(rng.randrange(0, 20)))
            sent.append(parse_frame(data))
        for cut in range(0, len(data), 7):
            found += p.feed(data[cut : cut + 7])
        assert len(p.buf) <= 7 + MAX_DATA + 1  # at most one frame held
    for x in found:
        assert isinstance(x, (Ack, Nack, ErrorFrame, Information, Garbled))
    got = [x for x in found if isinstance(x, Information)]
    missing = [x for x in sent if x not in got]
    assert missing == []
