"""The simulated terminal's own ZVT wire code (``hw_sim.zvt_wire``, ``hw_sim.zvt_link``)
against real-terminal bytes, and against the driver (``edge.drivers.zvt``).

The referee is the set of frames and messages captured from real terminals that the
driver's tests already hold (ecrterm's packet traces in ``tests/drivers/
test_zvt_framing.py``, Portalum.Zvt's Status-Information and Print Text-Block traces in
``tests/drivers/test_zvt_apdu.py``), imported from there so there is one copy, plus two
more Portalum.Zvt traces copied below.  Both implementations must reproduce them byte for
byte, and must read each other's output: a bug has to be in both sides *and* in the
traces to pass unnoticed.
"""

from __future__ import annotations

import ast
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.drivers.zvt import apdu as drv
from edge.drivers.zvt import framing as drv_link
from hw_sim import zvt_link as link
from hw_sim import zvt_wire as W
from hw_sim.zvt import ZVTSim
from tests.drivers.test_zvt_apdu import BLOCK_TRACE, STATUS_TLV_TRACE, STATUS_TRACE
from tests.drivers.test_zvt_framing import GOLDEN as SERIAL_TRACES

ROOT = Path(__file__).resolve().parents[2]


def H(text: str) -> bytes:
    return bytes.fromhex(text.replace("-", " "))


# Portalum.Zvt StatusInformationParserTest: a customer abort (result 6C) with terminal id
# 28004869 and an additional text "Abbruch durch Kunde" as LLL-var (3C F0 F1 F9), and a
# system error (FF) with "Betrag falsch".
ABORT_BY_KEY_TRACE = H(
    "04 0F 1E 27 6C 29 28 00 48 69 3C F0 F1 F9 41 62 62 72 75 63 68 20 64 75 72 63 68 20"
    " 4B 75 6E 64 65"
)
SYSTEM_ERROR_TRACE = H(
    "04 0F 18 27 FF 29 28 00 48 69 3C F0 F1 F3 42 65 74 72 61 67 20 66 61 6C 73 63 68"
)
PT_TRACES = [STATUS_TRACE, STATUS_TLV_TRACE, BLOCK_TRACE, ABORT_BY_KEY_TRACE, SYSTEM_ERROR_TRACE]


# -- the simulator's code against real-device bytes ------------------------------------------


def test_crc_is_kermit_and_matches_the_traces() -> None:
    assert link.crc16_kermit(b"123456789") == 0x2189  # the catalogue check value
    assert link.crc16_kermit(b"") == 0
    assert link.crc16_kermit(b"89", link.crc16_kermit(b"1234567")) == 0x2189
    assert link.frame_check(H("80 00 00")) == H("F5 1F")  # low byte first


@pytest.mark.parametrize(("apdu", "frame"), SERIAL_TRACES)
def test_serial_frames_of_real_terminals_byte_for_byte(apdu: str, frame: str) -> None:
    assert link.serial_frame(H(apdu)) == H(frame)
    for size in (1, 2, 5, len(H(frame))):  # however the UART delivers it
        rx = link.SerialReceiver()
        tokens = []
        for i in range(0, len(H(frame)), size):
            tokens += rx.feed(H(frame)[i : i + size])
        assert tokens == [link.Frame(H(apdu))]
    msg = W.Apdu.parse(H(apdu))
    assert msg.encode() == H(apdu)


def test_acknowledgements_and_the_print_line_trace() -> None:
    assert W.ACK_APDU.encode() == H("80 00 00")
    assert W.nack(0x9C).encode() == H("84 9C 00")
    assert W.Apdu.parse(H("84 9C 00")).negative
    assert W.Apdu(0x84, 0x00).positive
    gesamt = "06 D1 19 00" + b"Gesamt      0       0,00".hex()
    assert W.print_line(b"Gesamt      0       0,00").encode() == H(gesamt)


def test_registration_and_authorisation_traces_read_by_the_simulator() -> None:
    reg = W.Apdu.parse(H("06 00 06 12 34 56 BA 09 78"))
    assert reg.control == W.REGISTRATION
    assert W.bcd_digits(reg.data[:3]) == "123456"  # password
    assert reg.data[3] == 0xBA  # config byte: ECR prints via 06 D1, intermediate status
    assert reg.data[3] & W.CFG_PRINT_LINES and reg.data[3] & W.CFG_INTERMEDIATE
    assert W.bcd_int(reg.data[4:6]) == 978
    auth = W.Apdu.parse(H("06 01 0A 04 00 00 00 01 10 00 49 09 78"))
    assert auth.control == W.AUTHORISATION
    bmps = dict(W.parse_bmps(auth.data))
    assert W.bcd_int(bmps[0x04]) == 11000 and W.bcd_int(bmps[0x49]) == 978
    assert W.encode_bmps([(0x04, W.bcd(11000, 6)), (0x49, W.bcd(978, 2))]) == auth.data


@pytest.mark.parametrize("trace", PT_TRACES, ids=["status", "tlv", "block", "abort", "error"])
def test_real_pt_messages_parse_and_encode_again_byte_for_byte(trace: bytes) -> None:
    msg = W.Apdu.parse(trace)
    assert msg.encode() == trace
    items = W.parse_bmps(msg.data)
    assert W.encode_bmps(items) == msg.data  # lengths (fixed, LL, LLL, TLV) as sent


def test_status_information_trace_fields() -> None:
    items = dict(W.parse_bmps(W.Apdu.parse(STATUS_TRACE).data))
    assert items[0x27] == b"\x00"
    assert W.bcd_int(items[0x04]) == 2040  # 20.40 EUR
    assert W.bcd_int(items[0x0B]) == 470
    assert W.bcd_digits(items[0x0C]) == "223953" and W.bcd_digits(items[0x0D]) == "1006"
    assert W.bcd_digits(items[0x29]) == "28004869"
    assert items[0x22] == H("EE EE EE EE EE EE 47 71")  # masked PAN, LL-var F0 F8
    assert items[0x3C] == b"GEN.NR.:611804"  # LLL-var F0 F1 F4
    assert W.bcd_int(items[0x87]) == 470 and W.bcd_int(items[0x88]) == 470
    assert items[0x8A] == b"\x2e" and items[0x8B] == b"Debit Mastercard\x00"
    abort = dict(W.parse_bmps(W.Apdu.parse(ABORT_BY_KEY_TRACE).data))
    assert abort[0x27] == b"\x6c" and abort[0x3C] == b"Abbruch durch Kunde"


def test_tlv_container_traces() -> None:
    status = dict(W.parse_bmps(W.Apdu.parse(STATUS_TLV_TRACE).data))
    objects = W.tlv_items(status[0x06])
    # 2F (payment type: 1F12 card technology, 1F10 cardholder authentication), 60
    # (application: 43 AID, 44 name), 1F2B
    assert [tag for tag, _ in objects] == [0x2F, 0x60, 0x1F2B]
    assert W.tlv_items(objects[0][1]) == [(0x1F12, b"\x02"), (0x1F10, b"\x00")]
    assert W.tlv_items(objects[1][1])[1] == (0x44, b"Debit Mastercard")
    block = W.parse_bmps(W.Apdu.parse(BLOCK_TRACE).data)
    assert block[0][0] == 0x06 and W.tlv_length(len(block[0][1])) == H("81 A9")
    (rtype, texts) = W.tlv_items(block[0][1])
    assert rtype == (0x1F07, b"\x03")  # administration receipt
    lines = W.tlv_items(texts[1])
    assert texts[0] == 0x25 and lines[-1] == (0x09, b"\x81")
    assert [v for t, v in lines if t == 0x07][:2] == [
        b"02.11.2021         17:05:02",
        b"TID:AH000006",
    ]
    assert b"".join(W.tlv(t, v) for t, v in lines) == texts[1]
    assert W.tlv(0x25, texts[1]) == H("25 81 A2") + texts[1]


def test_extended_length_is_low_byte_first() -> None:
    # Print Text-Blocks over 254 bytes use FF and two length bytes, low byte first
    # (Wireshark, ecrterm, Portalum.Zvt); 300 = 0x012C
    big = W.Apdu(0x06, 0xD3, bytes(300))
    assert big.encode()[:5] == H("06 D3 FF 2C 01")
    assert W.Apdu.parse(big.encode()) == big
    assert W.Apdu(0x06, 0xD1, bytes(254)).encode()[:3] == H("06 D1 FE")
    assert link.apdu_size(H("06 D3 FF 2C")) is None and link.apdu_size(H("06 D3 FF 2C 01")) == 305


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("10 02 80 00 00 10 03 F5 1E", "check bytes"),  # one bit off in the CRC
        ("10 02 80 01 00 10 03 F5 1F", "check bytes"),  # one bit off in the data
        ("10 02 80 00 10 41 00", "DLE then 0x41"),  # an undoubled DLE
        ("10 02 80 10 03 " + link.frame_check(H("80")).hex(), "cannot hold"),
    ],
)
def test_damaged_frames_are_refused(raw: str, why: str) -> None:
    tokens = link.SerialReceiver().feed(H(raw))
    assert isinstance(tokens[0], link.BadFrame) and why in tokens[0].reason


def test_bad_values_are_wire_errors() -> None:
    for raw in ("06 0F", "06 0F 02 27", "06 D3 FF 01"):
        with pytest.raises(W.WireError):
            W.Apdu.parse(H(raw))
    with pytest.raises(W.WireError, match="not a BCD"):
        W.bcd_int(H("12 3A"))
    with pytest.raises(W.WireError, match="length digit"):
        W.parse_bmps(H("8B 03 03 41 42 43"))
    with pytest.raises(W.WireError, match="unknown BMP 2E"):  # sources disagree: refused
        W.parse_bmps(H("2E F0 F1 00"))
    assert W.card_type_id("visa") == 10 and W.card_type_id("Shetab") is None


# -- the two implementations read each other ----------------------------------------------


def _apdus(rng: random.Random, n: int) -> list[bytes]:
    out = [H(a) for a, _ in SERIAL_TRACES] + PT_TRACES
    for _ in range(n):
        size = rng.choice((0, 1, 2, 16, 0x10, 253, 254, 255, 256, 600))
        filler = (0x10, 0x02, 0x03, 0x06, 0x15, 0xFF, rng.randrange(256))
        data = bytes(rng.choice(filler) for _ in range(size))
        out.append(W.Apdu(rng.randrange(256), rng.randrange(256), data).encode())
    return out


def test_crc_agrees_with_the_driver() -> None:
    rng = random.Random(0x8408)
    for n in range(300):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert link.crc16_kermit(data) == drv_link.crc16(data)


def test_frames_cross_decode_both_ways() -> None:
    rng = random.Random(20007)
    for apdu in _apdus(rng, 400):
        ours, theirs = link.serial_frame(apdu), drv_link.encode_frame(apdu)
        assert ours == theirs
        assert drv_link.decode_frame(ours) == apdu
        assert link.SerialReceiver().feed(theirs) == [link.Frame(apdu)]
        assert W.Apdu.parse(drv.Apdu.parse(apdu).encode()).encode() == apdu
        assert drv.Apdu.parse(W.Apdu.parse(apdu).encode()) == drv.Apdu.parse(apdu)


def test_damaged_streams_are_judged_alike() -> None:
    """Random and mutated serial bytes: both receivers see the same frames, ACKs, NAKs and
    damaged frames, in the same order, whatever the mutation."""
    rng = random.Random(0x15)
    ours, theirs = link.SerialReceiver(), drv_link.FrameDecoder()
    kinds = {link.Frame: "frame", link.Control: "control", link.BadFrame: "bad"}
    drv_kinds = {drv_link.Frame: "frame", drv_link.Control: "control", drv_link.BadFrame: "bad"}
    apdus = _apdus(rng, 50)
    for i in range(5000):
        stream = bytearray(link.serial_frame(rng.choice(apdus)))
        if i % 4 == 0:
            stream = bytearray(rng.randrange(256) for _ in range(rng.randrange(1, 30)))
        for _ in range(rng.randrange(0, 3)):
            pos = rng.randrange(len(stream))
            stream[pos] = rng.choice((0x10, 0x02, 0x03, 0x06, 0x15, rng.randrange(256)))
        a = [
            (kinds[type(t)], getattr(t, "apdu", getattr(t, "byte", None)))
            for t in ours.feed(stream)
        ]
        b = [
            (drv_kinds[type(t)], getattr(t, "apdu", getattr(t, "byte", None)))
            for t in theirs.feed(bytes(stream))
        ]
        assert a == b, stream.hex(" ")
    assert ours.noise == theirs.noise


def test_tcp_splitting_agrees() -> None:
    rng = random.Random(3)
    ours, theirs = link.TcpReceiver(), drv_link.ApduSplitter()
    stream = b"".join(_apdus(rng, 60))
    pos = 0
    while pos < len(stream):
        step = rng.randrange(1, 90)
        chunk = stream[pos : pos + step]
        assert ours.feed(chunk) == theirs.feed(chunk)
        pos += step
    assert ours.pending == theirs.pending == 0


def test_bmps_cross_parse_both_ways() -> None:
    # what the driver sends, read by the simulator
    for msg, skip in [
        (drv.registration("000000", 0xBA, 364, service=0x01, chars_per_line=40), 6),
        (drv.authorisation(1_250_000, 364), 0),
        (drv.refund("000000", 990_000, 364), 3),
        (drv.reversal("000000", 17), 3),
    ]:
        ours = W.Apdu.parse(msg.encode())
        assert W.parse_bmps(ours.data[skip:]) == drv.parse_bmps(msg.data[skip:])[0]
    # what the simulator sends, read by the driver
    status = W.status_info(
        [
            (0x27, b"\x00"),
            (0x04, W.bcd(1_250_000, 6)),
            (0x0B, W.bcd(42, 3)),
            (0x0C, H("14 30 05")),
            (0x0D, H("03 20")),
            (0x22, H("60 37 99 EE EE EE 12 34")),
            (0x29, W.bcd(29001006, 4)),
            (0x2A, b"VU-SIM-0001".ljust(15)),
            (0x3B, b"112648\x00\x00"),
            (0x49, W.bcd(364, 2)),
            (0x87, W.bcd(7, 2)),
            (0x88, W.bcd(5, 3)),
            (0x8A, bytes([W.card_type_id("Mastercard") or 0])),
            (0x8B, b"Mastercard"),
        ]
    )
    info = drv.parse_status_info(drv.Apdu.parse(status.encode()).data)
    assert (info.result, info.amount, info.trace, info.receipt, info.turnover) == (
        0,
        1_250_000,
        42,
        7,
        5,
    )
    assert (info.time, info.date, info.terminal_id, info.currency) == (
        "143005",
        "0320",
        "29001006",
        364,
    )
    assert (info.card_type, info.card_name, info.auth_code) == (6, "Mastercard", "112648")
    assert info.unparsed == 0
    for ours, theirs in [
        (W.intermediate(0x0A), drv.intermediate(0x0A)),
        (W.completion(), drv.completion()),
        (W.pt_abort(0x6C), drv.pt_abort(0x6C)),
        (W.print_line(b"", W.ATTR_LAST), drv.print_line(b"", drv.ATTR_LAST)),
        (W.nack(0x9A), drv.nack(0x9A)),
    ]:
        assert ours.encode() == theirs.encode()


def test_a_simulated_payment_reads_cleanly_with_the_driver() -> None:
    """A whole serial payment: every frame the simulator sends passes the driver's CRC and
    APDU checks, and its Status-Information says what the simulator recorded."""
    sim = ZVTSim(mode="serial", step=0.0, status_every=0.0, receipts=True)
    out: list[bytes] = []
    sim.attach(out.append)
    apdus: list[bytes] = []
    decoder = drv_link.FrameDecoder()

    def exchange(msg: drv.Apdu) -> None:
        sim.receive(drv_link.encode_frame(msg.encode()))
        for _ in range(500):
            data = b"".join(out)
            out.clear()
            for token in decoder.feed(data):
                assert not isinstance(token, drv_link.BadFrame)
                if isinstance(token, drv_link.Frame):
                    apdus.append(token.apdu)
                    sim.receive(bytes([drv_link.ACK]))
                    if not drv.Apdu.parse(token.apdu).is_answer:
                        sim.receive(drv_link.encode_frame(drv.ACK_APDU.encode()))
            sim.tick(time.monotonic())
            if not sim.busy and not out:
                return
        pytest.fail("the simulator never finished")

    exchange(drv.registration("000000", 0xBA, 364))
    exchange(drv.authorisation(1_250_000, 364))
    status = [drv.Apdu.parse(a) for a in apdus if a[:2] == b"\x04\x0f"]
    assert len(status) == 1
    info = drv.parse_status_info(status[0].data)
    assert (info.result, info.amount, info.terminal_id) == (0, 1_250_000, "29001006")
    assert info.trace == sim.history[-1]["trace"] and info.receipt == sim.history[-1]["receipt"]
    assert any(a[:2] == b"\x06\xd1" for a in apdus)  # receipt lines
    assert apdus[-1] == H("06 0F 00")


# -- the simulators do not use the drivers' wire code --------------------------------------

SIM_MODULES = ["hw_sim.zvt", "hw_sim.zvt_wire", "hw_sim.zvt_link", "hw_sim.rdm6300"]


@pytest.mark.parametrize("module", SIM_MODULES)
def test_simulator_sources_import_nothing_from_the_drivers(module: str) -> None:
    path = ROOT / (module.replace(".", "/") + ".py")
    imported: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    # the project's error tree is shared; the drivers' wire code is not
    assert [m for m in imported if m.startswith("edge.") and m != "edge.errors"] == []


def test_importing_the_simulators_loads_no_driver() -> None:
    code = (
        "import sys\n"
        f"for m in {SIM_MODULES!r}: __import__(m)\n"
        "print(sorted(m for m in sys.modules if m.startswith('edge.drivers')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
