"""The PN532 driver: transcripts after UM0701-02 against a scripted port (nfcpy-style, byte
for byte), the card-reader contract against the simulator on a pseudo-terminal, through
sim:// and against a real reader when LOYALTY_TEST_PN532_PORT names one, and recovery from
line faults, garbled frames, a power-cycled reader and a silent one."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import edge.drivers.pn532 as pn532_mod
from edge.drivers.base import CardRead
from edge.drivers.pn532 import PN532Reader
from edge.drivers.pn532_frames import PN532CommandError, PN532TimeoutError
from edge.drivers.registry import create
from edge.errors import ConfigError, DeviceError
from hw_sim.device import SimDevice
from hw_sim.faults import Faults
from hw_sim.pn532 import PN532Sim
from hw_sim.transport import PtyServer
from tests.drivers.scripted import ScriptedRx


def H(text: str) -> str:
    return " ".join(text.split()).upper()


def ACK() -> str:
    return "00 00 FF 00 FF 00"  # 6.2.1.3


def NACK() -> str:
    return "00 00 FF FF 00 00"  # 6.2.1.4


def RSP(*frames: str) -> str:
    return H(" ".join(frames))


# What the driver must send and what a PN532 v1.6 answers (data-field sums worked out by
# hand: LCS = -LEN, DCS = -sum(TFI, PD0..PDn), modulo 256).
WAKEUP = "55 55" + " 00" * 14  # HSU wake-up: 0x55 edges, zeros while the oscillator starts
SAM = "00 00 FF 03 FD D4 14 01 17 00"  # 7.2.10 SAMConfiguration, Mode 01 (normal)
SAM_RSP = "00 00 FF 02 FE D5 15 16 00"
FW = "00 00 FF 02 FE D4 02 2A 00"  # 7.2.2 GetFirmwareVersion
FW_RSP = "00 00 FF 06 FA D5 03 32 01 06 07 E8 00"  # PN532 (32) v1.6, Support 07
RETRIES_2 = "00 00 FF 06 FA D4 32 05 FF 01 02 F3 00"  # 7.3.1 MaxRetries: FF 01 02
RETRIES_FF = "00 00 FF 06 FA D4 32 05 FF 01 FF F6 00"  # ... MxRtyPassiveActivation FF
RFCFG_RSP = "00 00 FF 02 FE D5 33 F8 00"
RF_OFF = "00 00 FF 04 FC D4 32 01 00 F9 00"  # 7.3.1 item 01 = 00: RF field off
POLL = "00 00 FF 04 FC D4 4A 01 00 E1 00"  # 7.3.5 InListPassiveTarget 1 x 106 kbps A
NO_TG = "00 00 FF 03 FD D5 4B 00 E0 00"
UL = "04A1B2C3D4E5F6"
UL_DATA = "01 00 44 00 07 04 A1 B2 C3 D4 E5 F6"  # Tg, SENS_RES, SEL_RES, NFCIDLength, UID
UL_RSP = "00 00 FF 0F F1 D5 4B 01 01 00 44 00 07 04 A1 B2 C3 D4 E5 F6 CA 00"
UL_RSP_BAD_DCS = "00 00 FF 0F F1 D5 4B 01 01 00 44 00 07 04 A1 B2 C3 D4 E5 F6 CB 00"
M1K_RSP = "00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 11 22 33 44 24 00"  # UID 11223344
BAUD_230400 = "00 00 FF 03 FD D4 10 05 17 00"  # 7.2.8 SetSerialBaudrate BR 05
BAUD_115200 = "00 00 FF 03 FD D4 10 04 18 00"  # ... BR 04
BAUD_RSP = "00 00 FF 02 FE D5 11 1A 00"
ERR = "00 00 FF 01 FF 7F 81 00"  # 6.2.1.5

START = [
    (WAKEUP, ""),
    (SAM, ACK() + SAM_RSP),
    (FW, ACK() + FW_RSP),
    (RETRIES_2, ACK() + RFCFG_RSP),
]
CLOSE = [(ACK(), ""), (RF_OFF, ACK() + RFCFG_RSP)]


def test_hand_made_frames_obey_the_manual() -> None:
    for text in [SAM, SAM_RSP, FW, FW_RSP, RETRIES_2, RETRIES_FF, RFCFG_RSP, RF_OFF, POLL,
                 NO_TG, UL_RSP, M1K_RSP, BAUD_230400, BAUD_115200, BAUD_RSP, ERR]:  # fmt: skip
        f = bytes.fromhex(text)
        assert (f[3] + f[4]) % 256 == 0 and f[3] == len(f) - 7 and sum(f[5:-1]) % 256 == 0


class ScriptedPort(ScriptedRx):
    """Plays the chip's side of a transcript: each write must be the next host frame of the
    script, byte for byte, and is answered with the chip bytes given beside it."""

    def __init__(self, script: list[tuple[str, str]]) -> None:
        super().__init__()
        self.script = [(H(h), H(c)) for h, c in script]
        self.baudrate = 115200

    def write(self, data: bytes) -> int:
        got = data.hex(" ").upper()
        assert self.script, f"the driver wrote {got} after the end of the transcript"
        want, answer = self.script.pop(0)
        assert got == want, f"the driver wrote {got}, the transcript says {want}"
        self.rx += bytes.fromhex(answer)
        return len(data)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Any:
    ports: list[ScriptedPort] = []

    def make(script: list[tuple[str, str]], **kw: Any) -> tuple[PN532Reader, ScriptedPort]:
        port = ScriptedPort(script)
        ports.append(port)
        monkeypatch.setattr(pn532_mod, "open_port", lambda url, **_kw: port)
        return PN532Reader("/dev/ttyNFC", **kw), port

    yield make
    for port in ports:
        assert port.script == [], f"transcript not played to the end: {port.script[:2]}"


# -- transcripts -------------------------------------------------------------------------


def test_start_up_poll_debounce_and_close(scripted: Any) -> None:
    reader, port = scripted([
        *START,
        (POLL, ACK() + UL_RSP), (POLL, ACK() + UL_RSP),  # a card, confirmed by a 2nd poll
        (POLL, ACK() + UL_RSP),  # still there: not reported again
        (POLL, ACK() + NO_TG),  # one empty poll: maybe a card at the edge of the field
        (POLL, ACK() + UL_RSP),  # back: the same tap, not reported
        (POLL, ACK() + NO_TG),
        (POLL, ACK() + NO_TG),  # two empty polls in a row: removed
        (POLL, ACK() + UL_RSP), (POLL, ACK() + UL_RSP),  # tapped again: reported
        (POLL, ACK() + M1K_RSP), (POLL, ACK() + M1K_RSP),  # another card: reported at once
        *CLOSE,
    ])  # fmt: skip
    assert reader.version == (0x32, 1, 6, 7) and reader.describe() == "PN532 v1.6"
    assert reader.read(0) == CardRead("nfc", UL, bytes.fromhex(UL_DATA))
    assert [reader.read(0) for _ in range(5)] == [None] * 5
    assert reader.read(0) == CardRead("nfc", UL, bytes.fromhex(UL_DATA))
    got = reader.read(0)
    assert got is not None and got.uid == "11223344"
    reader.close()
    reader.close()  # idempotent
    assert port.closed
    with pytest.raises(DeviceError, match="closed"):
        reader.read(0)


def test_a_uid_read_once_is_not_trusted(scripted: Any) -> None:
    # 8-bit sums can let two bit errors through: a UID counts when two polls agree
    reader, _ = scripted([
        *START,
        (POLL, ACK() + UL_RSP),  # seen once (say, damaged on the way)...
        (POLL, ACK() + M1K_RSP),  # ...not confirmed: the second poll saw another UID
        (POLL, ACK() + M1K_RSP),  # confirmed
        *CLOSE,
    ])  # fmt: skip
    got = reader.read(0.5)
    assert got is not None and got.uid == "11223344"
    reader.close()


def test_without_confirmation_one_poll_is_enough(scripted: Any) -> None:
    reader, _ = scripted([*START, (POLL, ACK() + UL_RSP), *CLOSE], confirm=False)
    got = reader.read(0)
    assert got is not None and got.uid == UL
    reader.close()


def test_nack_after_a_damaged_response(scripted: Any) -> None:
    reader, _ = scripted(
        [*START, (POLL, ACK() + UL_RSP_BAD_DCS), (NACK(), UL_RSP), (POLL, ACK() + UL_RSP), *CLOSE]
    )
    got = reader.read(0)
    assert got is not None and got.uid == UL
    reader.close()


def test_garbage_on_the_line_is_skipped(scripted: Any) -> None:
    noise = "13 37 FF 00 FF 55"  # noise, including a bogus start code with a bad LCS
    reader, _ = scripted(
        [*START, (POLL, noise + ACK() + "AA 00" + UL_RSP), (POLL, ACK() + UL_RSP), *CLOSE]
    )
    got = reader.read(0)
    assert got is not None and got.uid == UL
    reader.close()


def test_stale_and_foreign_frames_are_skipped(scripted: Any) -> None:
    # a late GetFirmwareVersion answer (code 03, not 4B) and a host frame (TFI D4) in the
    # way: only D5 4B answers InListPassiveTarget (response code = command code + 1)
    reader, _ = scripted(
        [*START, (POLL, FW_RSP + ACK() + POLL + UL_RSP), (POLL, ACK() + UL_RSP), *CLOSE]
    )
    got = reader.read(0)
    assert got is not None and got.uid == UL
    reader.close()


def test_no_card_with_retries_ff_aborts_the_poll(scripted: Any) -> None:
    start = [*START[:3], (RETRIES_FF, ACK() + RFCFG_RSP)]
    reader, _ = scripted(
        [*start, (POLL, ACK()), (ACK(), ""), *CLOSE], passive_retries=0xFF
    )  # the chip polls for ever; the driver ends it with an ACK when its wait is over
    t0 = time.monotonic()
    assert reader.read(0.1) is None
    assert time.monotonic() - t0 < 0.5
    reader.close()


def test_the_error_frame_is_a_typed_error(scripted: Any) -> None:
    reader, _ = scripted([*START, (POLL, ACK() + ERR), *CLOSE])
    with pytest.raises(PN532CommandError, match="syntax error") as e:
        reader.read(0)
    assert e.value.status == 0x7F and e.value.command == 0x4A and e.value.fa
    reader.close()


def test_baudrate_switch_and_back(scripted: Any) -> None:
    reader, port = scripted([
        *START,
        (BAUD_230400, ACK() + BAUD_RSP), (ACK(), ""),  # the chip switches at our ACK
        (ACK(), ""),  # close: abort whatever runs
        (BAUD_115200, ACK() + BAUD_RSP), (ACK(), ""),  # back to the start-up speed
        (RF_OFF, ACK() + RFCFG_RSP),
    ], baudrate=230400)  # fmt: skip
    assert port.baudrate == 230400
    reader.close()
    assert port.baudrate == 115200


def test_a_power_cycled_reader_is_woken_and_configured_again(scripted: Any) -> None:
    reader, _ = scripted([
        *START,
        (POLL, ""),  # asleep in Low VBAT: no ACK
        (WAKEUP + " " + POLL, ACK() + NO_TG),  # sent again behind the wake-up
        *START,  # so it may have lost its configuration: configure it again
        *CLOSE,
    ])  # fmt: skip
    assert reader.read(0) is None
    reader.close()


def test_a_silent_reader_is_reported_clearly(scripted: Any) -> None:
    with pytest.raises(PN532TimeoutError) as e:
        scripted([(WAKEUP, ""), (SAM, ""), (WAKEUP + " " + SAM, ""), (WAKEUP + " " + SAM, "")])
    err = e.value
    assert isinstance(err, DeviceError) and not err.acked
    assert "no answer from the NFC reader on /dev/ttyNFC" in err.en
    assert "spy:///dev/ttyNFC" in err.en and "check the cable" in err.en
    assert "پاسخ نمی‌دهد" in err.fa and "spy:///dev/ttyNFC" in err.fa


def test_hostile_target_data_is_refused_not_trusted(scripted: Any) -> None:
    # NFCIDLength 05 is not a type A UID size: D5 4B 01 01 00 04 08 05 + 5 bytes
    bad = "00 00 FF 0D F3 D5 4B 01 01 00 04 08 05 1B 5B 32 4A 07 D4 00"
    assert sum(bytes.fromhex(bad)[5:-1]) % 256 == 0
    reader, _ = scripted([*START, *[(POLL, ACK() + bad)] * 4, *CLOSE])
    with pytest.raises(DeviceError, match="InListPassiveTarget answered"):
        reader.read(0)
    reader.close()


def test_options_are_checked() -> None:
    for kw in ({"baudrate": 12345}, {"passive_retries": 256}, {"absent_polls": 0}):
        with pytest.raises(ConfigError):
            PN532Reader("sim://pn532", **kw)


# -- the card-reader contract: simulator on a pty, via sim://, a real reader -------------


@dataclass
class Rig:
    reader: PN532Reader
    sim: PN532Sim | None  # None: a real reader, nobody to tap cards for us

    def need_sim(self) -> PN532Sim:
        if self.sim is None:
            pytest.skip("needs cards put on and taken off on cue: the simulator does that")
        return self.sim


@pytest.fixture(params=["pty", "sim-url", "real"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    srv = None
    if request.param == "real":
        port = os.environ.get("LOYALTY_TEST_PN532_PORT")
        if not port:
            pytest.skip("set LOYALTY_TEST_PN532_PORT to a real PN532's port (HSU, e.g. "
                        "/dev/ttyUSB0) to run the contract against it")  # fmt: skip
        rig = Rig(PN532Reader(port), None)
    elif request.param == "pty":
        sim = PN532Sim()
        srv = PtyServer(sim, tmp_path / "ttyNFC").start()
        rig = Rig(PN532Reader(str(tmp_path / "ttyNFC")), sim)
    else:
        reader = PN532Reader("sim://pn532")
        rig = Rig(reader, reader._port.device)
    try:
        yield rig
    finally:
        rig.reader.close()
        if srv is not None:
            srv.stop()


def test_contract_identifies_a_pn532(rig: Rig) -> None:
    ic, ver, rev, support = rig.reader.firmware()
    assert ic == 0x32 and rig.reader.describe().startswith("PN532 v")
    assert rig.reader.version == (ic, ver, rev, support)


def test_contract_no_card_is_none_in_time(rig: Rig) -> None:
    # on a real reader: keep cards away for this one
    t0 = time.monotonic()
    assert rig.reader.read(0.3) is None
    assert 0.25 <= time.monotonic() - t0 < 1.0


def test_contract_a_tap_is_reported_once_until_removed(rig: Rig) -> None:
    sim = rig.need_sim()
    sim.tap(UL)
    got = rig.reader.read(2)
    assert got is not None and (got.kind, got.uid) == ("nfc", UL)
    assert got.raw == bytes.fromhex(UL_DATA)
    assert rig.reader.read(0.3) is None  # held on the reader
    sim.remove()
    assert rig.reader.read(0.3) is None
    sim.tap(UL)
    got = rig.reader.read(2)
    assert got is not None and got.uid == UL  # taken away and tapped again


def test_contract_another_card_is_reported_at_once(rig: Rig) -> None:
    sim = rig.need_sim()
    sim.tap("11223344")
    first = rig.reader.read(2)
    sim.set_cards([UL])
    second = rig.reader.read(2)
    assert first is not None and second is not None
    assert (first.uid, second.uid) == ("11223344", UL)


def test_contract_a_card_tapped_while_waiting(rig: Rig) -> None:
    import threading

    sim = rig.need_sim()
    threading.Timer(0.2, sim.tap, args=("0102030405060708090A",)).start()
    got = rig.reader.read(2)
    assert got is not None and got.uid == "0102030405060708090A"  # a 10-byte UID


def test_contract_close_is_idempotent(rig: Rig) -> None:
    rig.reader.close()
    rig.reader.close()
    with pytest.raises(DeviceError):
        rig.reader.read(0.1)


@pytest.mark.skipif(
    "LOYALTY_TEST_PN532_PORT" not in os.environ,
    reason="set LOYALTY_TEST_PN532_PORT to a real PN532's port to read a real card",
)
def test_real_reader_reads_a_real_card() -> None:
    reader = PN532Reader(os.environ["LOYALTY_TEST_PN532_PORT"])
    try:
        print("hold an ISO 14443 A card (MIFARE, NTAG) to the reader...")
        got = reader.read(20)
        assert got is not None and got.kind == "nfc" and len(got.uid) in (8, 14, 20)
        assert got.uid == got.uid.upper() and int(got.uid, 16) >= 0
    finally:
        reader.close()


# -- the simulator's two no-card behaviours, the registry ------------------------------


@pytest.mark.parametrize(("mode", "retries"), [("empty", 0x02), ("silent", 0x02),
                                               ("empty", 0xFF)])  # fmt: skip
def test_both_no_card_behaviours(tmp_path: Path, mode: str, retries: int) -> None:
    import threading

    sim = PN532Sim(no_card_mode=mode)
    with PtyServer(sim, tmp_path / "ttyNFC"):
        reader = PN532Reader(str(tmp_path / "ttyNFC"), passive_retries=retries)
        try:
            t0 = time.monotonic()
            assert reader.read(0.3) is None
            assert time.monotonic() - t0 < 0.8
            threading.Timer(0.1, sim.tap, args=(UL,)).start()
            got = reader.read(2)
            assert got is not None and got.uid == UL
        finally:
            reader.close()


def test_the_registry_builds_the_driver_for_a_sim_url() -> None:
    reader = create("card", "pn532", port=f"sim://pn532?card={UL}", poll_interval=0.05)
    try:
        assert isinstance(reader, PN532Reader)
        got = reader.read(1)
        assert got is not None and got.uid == UL
    finally:
        reader.close()


# -- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("corrupt", "drop", "seed"), [(0.01, 0.005, 1), (0.01, 0.005, 2), (0.05, 0.02, 3)]
)
def test_reads_through_corrupted_and_dropped_bytes(
    tmp_path: Path, corrupt: float, drop: float, seed: int
) -> None:
    sim = PN532Sim([UL])
    sim.keep_log = True
    faults = Faults(corrupt=corrupt, drop=drop, seed=seed)
    with PtyServer(sim, tmp_path / "ttyNFC", faults=faults):
        reader = PN532Reader(str(tmp_path / "ttyNFC"))
        try:
            got = reader.read(3)
            assert got is not None and got.uid == UL  # never a damaged UID
            assert reader.read(0.5) is None  # held: not reported twice
            sim.remove()
            assert reader.read(0.5) is None
            sim.set_cards(["11223344"])
            got = reader.read(3)
            assert got is not None and got.uid == "11223344"
        finally:
            reader.close()
    if corrupt > 0.01:  # the faults did hit, and were asked for again
        assert reader.chip.parser.garbled > 0
        assert (("in", bytes.fromhex(NACK())) in sim.log) or reader.chip.parser.noise


def test_a_garbled_frame_is_asked_for_again(tmp_path: Path) -> None:
    sim = PN532Sim()
    sim.keep_log = True
    with PtyServer(sim, tmp_path / "ttyNFC"):
        reader = PN532Reader(str(tmp_path / "ttyNFC"))
        try:
            sim.event("garble", count=2)  # the next two responses leave with a broken DCS
            sim.tap(UL)
            got = reader.read(2)
            assert got is not None and got.uid == UL
            nacks = [d for way, d in sim.log if way == "in" and d == bytes.fromhex(NACK())]
            assert len(nacks) == 2
        finally:
            reader.close()


def test_a_silent_device_on_a_pty(tmp_path: Path) -> None:
    link = tmp_path / "ttyNFC"
    with PtyServer(SimDevice(), link):  # something on the port that never answers
        t0 = time.monotonic()
        with pytest.raises(DeviceError) as e:
            PN532Reader(str(link))
        assert time.monotonic() - t0 < 2.0
    assert f"no answer from the NFC reader on {link}" in e.value.en
    assert f"spy://{link}" in e.value.en and e.value.fa != e.value.en


def test_unplugged_then_plugged_back(tmp_path: Path) -> None:
    sim = PN532Sim()
    with PtyServer(sim, tmp_path / "ttyNFC"):
        reader = PN532Reader(str(tmp_path / "ttyNFC"))
        try:
            sim.event("unplug")
            with pytest.raises(PN532TimeoutError, match="no answer from the NFC reader"):
                reader.read(0.2)
            sim.event("plug")  # back, asleep in Low VBAT and unconfigured
            sim.tap(UL)
            got = reader.read(2)
            assert got is not None and got.uid == UL
            assert sim.power == "normal" and sim.max_retries == (0xFF, 0x01, 0x02)
        finally:
            reader.close()
