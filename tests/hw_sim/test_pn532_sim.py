"""The simulated PN532: transcripts after UM0701-02 byte for byte, the power and no-card
behaviours, scenario events, sim:// and the command line, fuzzing of its input parser, and
an unmodified third-party host driver (nfcpy) on a pseudo-terminal."""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

import pytest

from edge.drivers.pn532_frames import ErrorFrame, FrameParser, Information, parse_frame
from edge.drivers.serialport import open_port
from hw_sim.pn532 import InputParser, PN532Sim, add_cli, from_cli, from_url, make_card
from hw_sim.transport import PtyServer


def H(text: str) -> bytes:
    return bytes.fromhex(text)


ACK = "00 00 FF 00 FF 00"  # 6.2.1.3
NACK = "00 00 FF FF 00 00"  # 6.2.1.4
ERR = "00 00 FF 01 FF 7F 81 00"  # 6.2.1.5, the syntax error frame
WAKE = "55 55 00 00 00"  # HSU wake-up as libnfc sends it

# Host frames and chip answers, worked out by hand (LCS = -LEN, DCS = -sum(TFI..PDn)).
SAM_NORMAL = "00 00 FF 03 FD D4 14 01 17 00"  # 7.2.10 SAMConfiguration Mode 01
SAM_RSP = "00 00 FF 02 FE D5 15 16 00"
FW = "00 00 FF 02 FE D4 02 2A 00"  # 7.2.2 GetFirmwareVersion
FW_RSP = "00 00 FF 06 FA D5 03 32 01 06 07 E8 00"  # IC 32, Ver 1, Rev 6, Support 07
POLL = "00 00 FF 04 FC D4 4A 01 00 E1 00"  # 7.3.5 InListPassiveTarget 1 x 106 kbps type A
NO_TG = "00 00 FF 03 FD D5 4B 00 E0 00"  # NbTg = 0
UL = "04A1B2C3D4E5F6"  # an Ultralight: ATQA 00 44, SAK 00, 7-byte UID
UL_RSP = "00 00 FF 0F F1 D5 4B 01 01 00 44 00 07 04 A1 B2 C3 D4 E5 F6 CA 00"
MAX_RETRIES_2 = "00 00 FF 06 FA D4 32 05 FF 01 02 F3 00"  # 7.3.1 item 05: FF 01 02
MAX_RETRIES_FF = "00 00 FF 06 FA D4 32 05 FF 01 FF F6 00"  # ... and FF: poll for ever
RFCFG_RSP = "00 00 FF 02 FE D5 33 F8 00"
DIAG_OK = "00 00 FF 03 FD D5 01 00 2A 00"  # Diagnose answer with result/status 00

TRANSCRIPT_FRAMES = [
    SAM_NORMAL, SAM_RSP, FW, FW_RSP, POLL, NO_TG, UL_RSP, MAX_RETRIES_2, MAX_RETRIES_FF,
    RFCFG_RSP, DIAG_OK,
]  # fmt: skip


class Wire:
    """The host's end of a simulated PN532: write hex, get back what the chip sent."""

    def __init__(self, sim: PN532Sim) -> None:
        self.sim = sim
        self.out = bytearray()
        sim.attach(self.out.extend)

    def __call__(self, *hexes: str) -> str:
        self.out.clear()
        self.sim.receive(H(" ".join(hexes)))
        return self.out.hex(" ").upper()

    def tick(self, later: float = 10.0) -> str:
        import time

        self.out.clear()
        self.sim.tick(time.monotonic() + later)
        return self.out.hex(" ").upper()


def RSP(*frames: str) -> str:
    return " ".join(" ".join(f.split()) for f in frames).upper()


def awake(sim: PN532Sim | None = None) -> Wire:
    """A simulator woken and in normal mode, as after a host's start-up."""
    w = Wire(sim or PN532Sim())
    assert w(WAKE, SAM_NORMAL) == RSP(ACK, SAM_RSP)
    return w


def _frame_ok(text: str) -> bool:
    f = H(text)
    if f in (H(ACK), H(NACK)):
        return True
    return (f[3] + f[4]) % 256 == 0 and f[3] == len(f) - 7 and sum(f[5:-1]) % 256 == 0


def test_hand_made_frames_obey_the_manual() -> None:
    for text in [*TRANSCRIPT_FRAMES, ACK, NACK, ERR, *(x for x, _ in DIAGNOSE), *OTHERS]:
        assert _frame_ok(text), text


# -- power and wake-up -----------------------------------------------------------------


def test_starts_asleep_in_low_vbat_and_needs_the_wake_up() -> None:
    w = Wire(PN532Sim())
    assert w.sim.power == "lowvbat" and not w.sim.awake
    assert w(SAM_NORMAL) == ""  # the wake-up eats 00 00 FF: the frame is lost
    assert w.sim.awake  # ... but the chip is awake now and hears the next one
    assert w(SAM_NORMAL) == RSP(ACK, SAM_RSP)
    assert w.sim.power == "normal"
    assert w(FW) == RSP(ACK, FW_RSP)  # normal mode: no more wake-ups needed


def test_low_vbat_sleeps_again_after_each_answer_until_sam_configuration() -> None:
    w = Wire(PN532Sim())
    nfcpy_preamble = "00 " * 10
    assert w(nfcpy_preamble, FW) == RSP(ACK, FW_RSP)  # nfcpy's way: ten 00 then the frame
    assert not w.sim.awake and w.sim.power == "lowvbat"
    assert w(FW) == ""  # asleep again: lost
    assert w(WAKE, SAM_NORMAL) == RSP(ACK, SAM_RSP)
    assert w(FW) == RSP(ACK, FW_RSP)


def test_power_down_then_hsu_wake_up() -> None:
    w = awake()
    # 7.2.11 PowerDown, WakeUpEnable 10 (HSU): D4+16+10 = FA -> 06; answer D5 17 00 -> 14
    assert w("00 00 FF 03 FD D4 16 10 06 00") == RSP(ACK, "00 00 FF 03 FD D5 17 00 14 00")
    assert w.sim.power == "powerdown" and w.sim.wake_enable == 0x10
    assert w(FW) == ""
    assert w(WAKE, FW) == RSP(ACK, FW_RSP)
    assert w.sim.power == "normal"


def test_power_down_without_the_hsu_as_wake_up_source() -> None:
    w = awake()
    # WakeUpEnable 20 (SPI only): D4+16+20 = 0x10A -> F6
    assert w("00 00 FF 03 FD D4 16 20 F6 00") == RSP(ACK, "00 00 FF 03 FD D5 17 00 14 00")
    assert w(WAKE, FW) == "" and w(WAKE, FW) == ""  # the UART cannot wake it
    w.sim.event("plug")  # only a power cycle (here: reset) helps
    assert w(WAKE, SAM_NORMAL) == RSP(ACK, SAM_RSP)


# -- the dialogue (6.2.2) ---------------------------------------------------------------


def test_bad_checksums_are_ignored_and_nack_repeats_the_last_response() -> None:
    w = awake()
    assert w("00 00 FF 02 FE D4 02 2B 00") == ""  # DCS wrong: no ACK, no answer
    assert w("00 00 FF 02 FD D4 02 2A 00") == ""  # LCS wrong
    assert w(FW) == RSP(ACK, FW_RSP)
    assert w(NACK) == RSP(FW_RSP)  # 6.2.1.4: the last response again
    assert w(NACK) == RSP(FW_RSP)


def test_garbled_response_then_nack() -> None:
    w = awake()
    w.sim.event("garble")
    got = w(FW)
    assert got.startswith(ACK) and got != RSP(ACK, FW_RSP)  # DCS broken on the way
    assert w(NACK) == RSP(FW_RSP)


def test_unknown_commands_and_bad_parameters_get_the_error_frame() -> None:
    w = awake()
    # InDataExchange (not modelled): D4 40 01 30 00 -> DCS BB
    assert w("00 00 FF 05 FB D4 40 01 30 00 BB 00") == RSP(ACK, ERR)
    assert w(NACK) == RSP(ERR)
    # TFI D5 from the host: 00 00 FF 02 FE D5 02 29 00
    assert w("00 00 FF 02 FE D5 02 29 00") == RSP(ACK, ERR)
    # a data field of TFI only: 00 00 FF 01 FF D4 2C 00
    assert w("00 00 FF 01 FF D4 2C 00") == RSP(ACK, ERR)
    for frame in OTHERS_REFUSED:
        assert w(frame) == RSP(ACK, ERR), frame


def test_host_ack_aborts_and_a_new_command_replaces_a_running_one() -> None:
    w = awake()
    assert w(MAX_RETRIES_FF) == RSP(ACK, RFCFG_RSP)
    assert w(POLL) == RSP(ACK)  # (a) no card, retries FF: the chip keeps polling, silent
    assert w.tick() == ""
    assert w(ACK) == ""  # the host aborts
    w.sim.tap(UL)
    assert w.out == b""  # nothing running: the tap is not answered
    w.sim.remove()
    assert w(POLL) == RSP(ACK)
    assert w(FW) == RSP(ACK, FW_RSP)  # another command ends the poll
    w.out.clear()
    w.sim.tap(UL)
    assert w.out == b""


# -- commands --------------------------------------------------------------------------


def test_get_firmware_version_can_be_told_another_answer() -> None:
    w = awake(PN532Sim(firmware=(0x32, 0x01, 0x04, 0x07)))  # a v1.4
    # D5+03+32+01+04+07 = 0x116 -> EA
    assert w(FW) == RSP(ACK, "00 00 FF 06 FA D5 03 32 01 04 07 EA 00")


DIAGNOSE = [
    # 7.2.1 communication line test: NumTst 00 and InParam come back
    ("00 00 FF 06 FA D4 00 00 01 02 03 26 00", "00 00 FF 06 FA D5 01 00 01 02 03 24 00"),
    ("00 00 FF 03 FD D4 00 01 2B 00", DIAG_OK),  # ROM test: 00 = good
    ("00 00 FF 03 FD D4 00 02 2A 00", DIAG_OK),  # RAM test
    # polling test to target at 212 kbps: 0x80 = all 128 polls failed (no FeliCa card)
    ("00 00 FF 04 FC D4 00 04 01 27 00", "00 00 FF 03 FD D5 01 80 AA 00"),
    # card presence with no target activated: 27, not acceptable in this context
    ("00 00 FF 03 FD D4 00 06 26 00", "00 00 FF 03 FD D5 01 27 03 00"),
    ("00 00 FF 04 FC D4 00 07 14 11 00", DIAG_OK),  # antenna self test, threshold 14
]


@pytest.mark.parametrize(("command", "answer"), DIAGNOSE)
def test_diagnose(command: str, answer: str) -> None:
    assert awake()(command) == RSP(ACK, answer)


def test_diagnose_echo_back_runs_until_aborted_and_unknown_tests_are_refused() -> None:
    w = awake()
    assert w("00 00 FF 06 FA D4 00 05 00 00 00 27 00") == RSP(ACK)  # echo back: no answer
    assert w(ACK) == ""
    assert w("00 00 FF 03 FD D4 00 03 29 00") == RSP(ACK, ERR)  # there is no test 03


def test_diagnose_line_test_in_an_extended_frame() -> None:
    # nfcpy's line test: 262 bytes; the answer has 265 bytes of data field -> extended
    data = b"\x00" + bytes(range(256)) + bytes(range(6))
    w = awake()
    cmd = bytes([0, 0, 0xFF, 0xFF, 0xFF, 0x01, 0x09, 0xF6, 0xD4, 0x00]) + data
    cmd += bytes([-sum(cmd[8:]) & 0xFF, 0])
    got = H(w(cmd.hex()))
    assert got[:6] == H(ACK)
    assert got[6:14] == H("00 00 FF FF FF 01 09 F6")
    assert parse_frame(got[6:]) == Information(0xD5, b"\x01" + data, extended=True)


def test_registers_are_kept() -> None:
    w = awake()
    read_rxmode = "00 00 FF 04 FC D4 06 63 03 C0 00"  # 7.2.4 ReadRegister 6303 (CIU_RxMode)
    assert w(read_rxmode) == RSP(ACK, "00 00 FF 03 FD D5 07 00 24 00")
    # 7.2.5 WriteRegister 6303 = 80: 0x1C2 -> 3E; answer D5 09 -> 22
    assert w("00 00 FF 05 FB D4 08 63 03 80 3E 00") == RSP(ACK, "00 00 FF 02 FE D5 09 22 00")
    assert w(read_rxmode) == RSP(ACK, "00 00 FF 03 FD D5 07 80 A4 00")
    assert w.sim.registers == {0x6303: 0x80}


def test_set_parameters_and_general_status() -> None:
    w = awake()
    # 7.2.9 SetParameters 14: D4+12+14 = FA -> 06; answer D5 13 -> 18
    assert w("00 00 FF 03 FD D4 12 14 06 00") == RSP(ACK, "00 00 FF 02 FE D5 13 18 00")
    assert w.sim.parameters == 0x14
    # 7.2.3 GetGeneralStatus: Err 00, Field 00, NbTg 00, SAM status 00
    status = "00 00 FF 02 FE D4 04 28 00"
    assert w(status) == RSP(ACK, "00 00 FF 06 FA D5 05 00 00 00 00 26 00")
    w.sim.tap(UL)
    assert w(POLL) == RSP(ACK, UL_RSP)
    # one target: Tg 01, BrRx 00, BrTx 00, Type 00 (106 kbps type A)
    assert w(status) == RSP(ACK, "00 00 FF 0A F6 D5 05 00 00 01 01 00 00 00 00 24 00")


def test_set_serial_baudrate_switches_after_the_hosts_ack() -> None:
    w = awake()
    # 7.2.8: BR 07 = 921600.  Answer at the old rate; the switch comes with the host's ACK
    assert w("00 00 FF 03 FD D4 10 07 15 00") == RSP(ACK, "00 00 FF 02 FE D5 11 1A 00")
    assert w.sim.baudrate == 115200
    assert w(ACK) == ""
    assert w.sim.baudrate == 921600 and w.sim.baud_changes == [921600]


def test_rf_configuration_items() -> None:
    w = awake()
    assert w(MAX_RETRIES_2) == RSP(ACK, RFCFG_RSP)
    assert w.sim.max_retries == (0xFF, 0x01, 0x02)
    assert w("00 00 FF 04 FC D4 32 01 00 F9 00") == RSP(ACK, RFCFG_RSP)  # RF field off
    assert w.sim.rf_on is False
    # as nfcpy sets them: item 02 timings 00 0B 0A (0x11D -> E3), item 04 MaxRtyCOM 00
    assert w("00 00 FF 06 FA D4 32 02 00 0B 0A E3 00") == RSP(ACK, RFCFG_RSP)
    assert w("00 00 FF 04 FC D4 32 04 00 F6 00") == RSP(ACK, RFCFG_RSP)
    assert w.sim.rf_config[0x02] == H("00 0B 0A") and w.sim.rf_config[0x04] == H("00")


# -- InListPassiveTarget -----------------------------------------------------------------


def test_a_4_byte_and_a_7_byte_uid() -> None:
    w = awake(PN532Sim(["11223344"]))
    # a MIFARE Classic 1K, as the manual's example: SENS_RES 00 04, SEL_RES 08; -> DCS 24
    assert w(POLL) == RSP(ACK, "00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 11 22 33 44 24 00")
    w.sim.set_cards([UL])
    assert w(POLL) == RSP(ACK, UL_RSP)


def test_two_targets_a_uid_filter_and_an_ats() -> None:
    w = awake(PN532Sim(["11223344", UL]))
    # MaxTg 2: D4 4A 02 00 -> E0.  NbTg 02, then both TargetData; 0x6F3 -> F3 -> DCS 0D
    assert w("00 00 FF 04 FC D4 4A 02 00 E0 00") == RSP(
        ACK,
        "00 00 FF 18 E8 D5 4B 02 01 00 04 08 04 11 22 33 44 "
        "02 00 44 00 07 04 A1 B2 C3 D4 E5 F6 0D 00",
    )
    # InitiatorData: the 7-byte UID behind cascade tag 88 (as nfcpy sends it) -> DCS 90
    assert w("00 00 FF 0C F4 D4 4A 01 00 88 04 A1 B2 C3 D4 E5 F6 90 00") == RSP(ACK, UL_RSP)
    # an ISO/IEC 14443-4 card (SAK 20) comes with its ATS: 05 78 80 70 02; 0x327 -> D9
    w.sim.set_cards(["08112233:0004:20"])
    assert w(POLL) == RSP(
        ACK, "00 00 FF 11 EF D5 4B 01 01 00 04 20 04 08 11 22 33 05 78 80 70 02 D9 00"
    )


def test_no_card_b_nbtg_0_after_the_retries() -> None:
    w = awake()
    assert w(MAX_RETRIES_2) == RSP(ACK, RFCFG_RSP)
    assert w(POLL) == RSP(ACK)  # 3 attempts take a moment
    assert w.tick() == RSP(NO_TG)
    # nfcpy then reads CIU_FIFOData: REQA 26 still there means nobody answered
    assert w("00 00 FF 04 FC D4 06 63 39 8A 00") == RSP(ACK, "00 00 FF 03 FD D5 07 26 FE 00")


def test_no_card_a_answer_when_a_card_comes() -> None:
    w = awake()
    assert w.sim.max_retries[2] == 0xFF  # the reset value: poll for ever
    assert w(POLL) == RSP(ACK)
    assert w.tick() == ""
    w.out.clear()
    w.sim.tap(UL)
    assert w.out.hex(" ").upper() == RSP(UL_RSP)


def test_polls_that_end_without_a_card_are_counted_for_a_scenario_to_wait_on() -> None:
    w = awake()
    assert w(MAX_RETRIES_2) == RSP(ACK, RFCFG_RSP)
    assert w(POLL) == RSP(ACK) and w.tick() == RSP(NO_TG)  # NbTg = 0
    assert w.sim.empty_polls == 1
    w.sim.tap(UL)
    assert w(POLL) == RSP(ACK, UL_RSP) and w.sim.empty_polls == 1  # a card: not counted
    w.sim.remove(UL)
    assert w(POLL) == RSP(ACK) and w(ACK) == ""  # the host aborts the poll: nothing found
    assert w.sim.empty_polls == 2
    assert w.sim.wait_empty_polls(2, 0.0) and not w.sim.wait_empty_polls(3, 0.01)


def test_silent_mode_ignores_the_retry_setting() -> None:
    w = awake(PN532Sim(no_card_mode="silent"))
    assert w(MAX_RETRIES_2) == RSP(ACK, RFCFG_RSP)
    assert w(POLL) == RSP(ACK)
    assert w.tick() == ""  # never NbTg = 0
    w.out.clear()
    w.sim.event("tap", card="11223344")
    assert w.out.hex(" ").upper() == RSP("00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 11 22 33 44 24 00")


# -- scenario events, sim:// and the command line ----------------------------------------


def test_events() -> None:
    sim = PN532Sim()
    sim.event("tap", card="04a1b2c3d4e5f6", atqa="0044", sak="00", **{"for": "0.5"})
    assert list(sim.cards) == [H(UL)]
    sim.tick(10**9)  # long after: the card was taken away
    assert sim.cards == {}
    sim.event("cards", cards="11223344, 04A1B2C3D4E5F6")
    assert len(sim.cards) == 2
    sim.event("remove", card="11223344")
    assert list(sim.cards) == [H(UL)]
    sim.event("remove")
    assert sim.cards == {}
    for bad in [("tap", {}), ("tap", {"card": "123"}), ("tap", {"card": "zz112233"}),
                ("tap", {"card": "11223344", "sak": "1FF"}), ("fly", {})]:  # fmt: skip
        with pytest.raises(ValueError):
            sim.event(bad[0], **bad[1])
    assert make_card("0102030405060708090A").atqa == 0x0084  # triple size UID


def test_unplug_and_plug() -> None:
    w = awake()
    w.sim.event("unplug")
    assert w(WAKE, FW) == ""
    w.sim.event("plug")  # power-on: Low VBAT and asleep
    assert w.sim.power == "lowvbat"
    assert w(WAKE, SAM_NORMAL) == RSP(ACK, SAM_RSP)


def test_from_url_and_command_line() -> None:
    sim = from_url({"card": [UL, "11223344:0004:08"], "no-card-mode": ["silent"],
                    "firmware": ["32010607"]})  # fmt: skip
    assert list(sim.cards) == [H(UL), H("11223344")] and sim.no_card_mode == "silent"
    for bad in ({"colour": ["red"]}, {"firmware": ["3201"]}, {"no_card_mode": ["loud"]}):
        with pytest.raises(ValueError):
            from_url(bad)
    p = argparse.ArgumentParser()
    add_cli(p)
    sim = from_cli(p.parse_args(["--card", UL, "--card", "11223344", "--firmware", "32010407"]))
    assert len(sim.cards) == 2 and sim.firmware == (0x32, 0x01, 0x04, 0x07)
    with pytest.raises(SystemExit):
        p.parse_args(["--no-card-mode", "sometimes"])


def test_sim_url_through_pyserial() -> None:
    port = open_port(f"sim://pn532?card={UL}", timeout=0.5)
    try:
        port.write(H(WAKE + SAM_NORMAL + POLL))
        got = port.read(len(H(ACK + SAM_RSP + ACK + UL_RSP)))
        assert got == H(RSP(ACK, SAM_RSP, ACK, UL_RSP))
    finally:
        port.close()


# -- fuzzing ----------------------------------------------------------------------------

OTHERS = [
    "00 00 FF 05 FB D4 40 01 30 00 BB 00",
    "00 00 FF 04 FC D4 32 03 00 F7 00",  # RFConfiguration item 03 does not exist
    "00 00 FF 05 FB D4 32 05 FF 01 F5 00",  # item 05 with two bytes instead of three
    "00 00 FF 03 FD D4 06 63 C3 00",  # ReadRegister with half an address
    "00 00 FF 03 FD D4 10 09 13 00",  # SetSerialBaudrate BR 09 does not exist
    "00 00 FF 04 FC D4 4A 03 00 DF 00",  # MaxTg 3 (at most 2)
    "00 00 FF 04 FC D4 4A 01 05 DC 00",  # BrTy 05 (00..04)
    "00 00 FF 03 FD D4 14 05 13 00",  # SAMConfiguration Mode 05 (01..04)
    "00 00 FF 03 FD D4 14 02 16 00",  # virtual card mode without its Timeout
]
OTHERS_REFUSED = OTHERS[1:]


def _mutate(rng: random.Random, frame: bytes) -> bytes:
    f = bytearray(frame)
    for _ in range(rng.randrange(1, 4)):
        if not f:
            break
        at = rng.randrange(len(f))
        op = rng.randrange(3)
        if op == 0:
            f[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            del f[at]
        else:
            f.insert(at, rng.randrange(256))
    return bytes(f)


def test_fuzz_input_parser() -> None:
    rng = random.Random(1532)
    p = InputParser()
    corpus = [H(x) for x in [*TRANSCRIPT_FRAMES, *OTHERS, ACK, NACK]]
    kinds = set()
    for i in range(12_000):
        data = rng.randbytes(rng.randrange(1, 40)) if i % 2 else _mutate(rng, rng.choice(corpus))
        for kind, body in p.feed(data):
            kinds.add(kind)
            assert kind in {"ack", "nack", "frame", "bad"}
            if kind == "frame":
                assert 1 <= len(body) <= 265
        assert len(p.buf) <= 7 + 265 + 1
    assert kinds == {"ack", "nack", "frame", "bad"}


def test_fuzz_the_whole_simulator_answers_only_well_formed_frames() -> None:
    rng = random.Random(2532)
    sim = PN532Sim(["11223344", UL])
    out = bytearray()
    sim.attach(out.extend)
    corpus = [H(x) for x in [*TRANSCRIPT_FRAMES, *OTHERS, ACK, NACK, WAKE]]
    for i in range(12_000):
        if i % 3 == 0:
            data = rng.randbytes(rng.randrange(1, 40))
        elif i % 3 == 1:
            data = _mutate(rng, rng.choice(corpus))
        else:
            data = rng.choice(corpus)
        sim.receive(data)
        if i % 50 == 0:
            sim.tick(10**9)
        if i % 1000 == 0:
            sim.event("plug")
    # everything the chip said is a frame the driver's parser accepts whole
    frames = FrameParser().feed(bytes(out))
    assert frames and all(isinstance(f, (Information, ErrorFrame)) or
                          type(f).__name__ == "Ack" for f in frames)  # fmt: skip
    assert all(f.tfi == 0xD5 for f in frames if isinstance(f, Information))


# -- a third-party host driver ------------------------------------------------------------


def test_nfcpy_drives_the_simulator_on_a_pty(tmp_path: Path) -> None:
    nfc = pytest.importorskip("nfc", reason="nfcpy is a dev dependency (pip install nfcpy)")
    from nfc.clf import RemoteTarget, pn532, transport

    sim = PN532Sim([UL])
    srv = PtyServer(sim, tmp_path / "ttyNFC").start()
    clf = nfc.ContactlessFrontend()
    try:
        # nfcpy's own start-up: ten-zero preambles, GetFirmwareVersion, SAMConfiguration,
        # SetSerialBaudrate (if stty can set the speed), Diagnose line test in an extended
        # frame, SetParameters, eight RFConfiguration items
        device = pn532.init(transport.TTY(str(tmp_path / "ttyNFC")))
        device._path = "tty:sim"  # set by nfc.clf.device.connect(), which searches /dev only
        clf.device = device
        assert str(device).startswith("PN532v1.6")
        target = clf.sense(RemoteTarget("106A"))
        assert target is not None
        assert (target.sdd_res, target.sens_res, target.sel_res) == (H(UL), H("4400"), H("00"))
        sim.remove()
        assert clf.sense(RemoteTarget("106A")) is None  # NbTg 0, then CIU_FIFOData = 26
        sim.tap("11223344")
        target = clf.sense(RemoteTarget("106A"))
        assert (target.sdd_res, target.sens_res, target.sel_res) == (H("11223344"), H("0400"),
                                                                     H("08"))  # fmt: skip
        clf.close()  # ACK, SetSerialBaudrate back to 115200, PowerDown(I2C, SPI, HSU)
    finally:
        srv.stop()
    assert {0x00, 0x02, 0x06, 0x08, 0x10, 0x12, 0x14, 0x16, 0x32, 0x4A} <= set(sim.commands)
    assert sim.baud_changes[-1] == 115200
    if shutil.which("stty"):
        assert sim.baud_changes[0] == 921600
    assert sim.power == "powerdown" and sim.wake_enable == 0x80 | 0x20 | 0x10
