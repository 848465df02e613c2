"""The ZVT driver: golden transcripts, the bank-terminal contract, faults, errors, fuzzing.

1. Transcripts: a scripted port plays the terminal's side of the golden transcripts in
   ``tests/hw_sim/test_zvt_sim.py`` and checks that the driver writes exactly the cash
   register's side, byte for byte.
2. Protocol errors, refusals and argument checks.
3. Fuzzing the driver's receiving side.

The contract suite (simulator over pty, TCP and sim://, or a real terminal) and the line
faults are in ``test_zvt_contract.py``.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import pytest

from edge.drivers.base import PaymentResult
from edge.drivers.registry import create
from edge.drivers.zvt import Timers, ZVTTerminal
from edge.drivers.zvt import apdu as A
from edge.drivers.zvt.framing import encode_frame
from edge.drivers.zvt.terminal import _wants_tcp
from edge.drivers.zvt.transport import SerialLink, TcpLink
from edge.errors import ConfigError, DeviceError
from tests.drivers.scripted import ScriptedRx
from tests.hw_sim.test_zvt_sim import (
    ECR,
    PT,
    SERIAL_APPROVE,
    SERIAL_DECLINE,
    SERIAL_ECR_ABORT,
    SERIAL_NAK,
    SERIAL_PT_ABORT,
    SERIAL_REGISTER,
    TCP_APPROVE,
    TCP_DECLINE,
    TCP_ECR_ABORT,
    TCP_PT_ABORT,
    TCP_RECEIPT,
    TCP_REGISTER,
    Transcript,
)

TIMERS = Timers(t1=0.2, t2=0.3, t3=1.0, t4=3.0, abort_grace=1.0)
FAST = "step=0.002&status_every=0.05"


def H(text: str) -> bytes:
    return bytes.fromhex(text)


# -- 1. transcripts ---------------------------------------------------------------------


class ScriptedPort(ScriptedRx):
    """A port that plays the terminal's side of a transcript and insists that what the
    driver writes is exactly the cash register's side (in any chunking)."""

    def __init__(self, transcript: Transcript) -> None:
        super().__init__()
        self.script = deque((who, H(text)) for who, text in transcript)
        self._release()

    def _release(self) -> None:
        while self.script and self.script[0][0] == PT:
            self.rx += self.script.popleft()[1]

    def write(self, data: bytes) -> int:
        data = bytes(data)
        while data:
            assert self.script, f"the driver wrote {data.hex(' ')} after the transcript ended"
            who, want = self.script[0]
            assert who == ECR, f"the driver wrote {data.hex(' ')} while the PT should speak"
            n = min(len(want), len(data))
            assert data[:n] == want[:n], f"driver wrote {data.hex(' ')}, want {want.hex(' ')}"
            data = data[n:]
            if n == len(want):
                self.script.popleft()
                self._release()
            else:
                self.script[0] = (ECR, want[n:])
        return n


def scripted(transcript: Transcript, tcp: bool = False, **kw: Any) -> tuple[ZVTTerminal, Any]:
    port = ScriptedPort(transcript)
    kw.setdefault("auto_register", False)
    term = ZVTTerminal("scripted", tcp=tcp, timers=TIMERS, opener=lambda *a, **k: port, **kw)
    return term, port


@pytest.mark.parametrize("tcp", [False, True], ids=["serial", "tcp"])
def test_transcript_registration(tcp: bool) -> None:
    term, port = scripted(TCP_REGISTER if tcp else SERIAL_REGISTER, tcp)
    term.register()
    assert not port.script
    assert term.registered and term.terminal_id == "29001006"


@pytest.mark.parametrize("tcp", [False, True], ids=["serial", "tcp"])
def test_transcript_approved_payment(tcp: bool) -> None:
    term, port = scripted(TCP_APPROVE if tcp else SERIAL_APPROVE, tcp)
    statuses: list[str] = []
    r = term.authorize(1_250_000, on_status=statuses.append)
    assert not port.script
    assert r == PaymentResult(
        approved=True,
        amount=1_250_000,
        result_code=0,
        en="approved",
        fa="تأیید شد",
        terminal_id="29001006",
        trace=1,
        receipt=1,
        date="0320",
        time="143005",
        card_type="Mastercard",
        auth_code="112648",
    )
    assert statuses == [
        "insert or tap the card / لطفاً کارت را وارد کنید یا نزدیک کنید",
        "waiting for the bank / در انتظار پاسخ بانک",
    ]
    assert r.reference() == {
        "terminal_id": "29001006",
        "trace": 1,
        "receipt": 1,
        "amount": 1_250_000,
        "card_type": "Mastercard",
        "auth_code": "112648",
        "result": "00",
        "date": "0320",
        "time": "143005",
    }


@pytest.mark.parametrize("tcp", [False, True], ids=["serial", "tcp"])
def test_transcript_declined_payment(tcp: bool) -> None:
    term, port = scripted(TCP_DECLINE if tcp else SERIAL_DECLINE, tcp)
    r = term.authorize(50_000)
    assert not port.script
    assert (r.approved, r.amount, r.result_code, r.trace, r.receipt) == (False, 0, 5, 2, 2)
    assert r.en == "declined: card declined by the issuing bank"
    assert r.fa == "رد شد: کارت توسط بانک صادرکننده رد شد"


@pytest.mark.parametrize("tcp", [False, True], ids=["serial", "tcp"])
def test_transcript_abort_at_the_terminal(tcp: bool) -> None:
    term, port = scripted(TCP_PT_ABORT if tcp else SERIAL_PT_ABORT, tcp)
    r = term.authorize(50_000)
    assert not port.script
    assert (r.approved, r.result_code, r.terminal_id) == (False, 0x6C, "29001006")
    assert "cancelled at the terminal" in r.en and "پایانه" in r.fa


@pytest.mark.parametrize("tcp", [False, True], ids=["serial", "tcp"])
def test_transcript_abort_from_the_cash_register(tcp: bool) -> None:
    term, port = scripted(TCP_ECR_ABORT if tcp else SERIAL_ECR_ABORT, tcp)
    r = term.authorize(50_000, on_status=lambda _s: term.abort())
    assert not port.script
    assert (r.approved, r.result_code) == (False, 0x6C)
    assert r.en == "payment cancelled at the cash register"


def test_transcript_nak_and_retransmission() -> None:
    term, port = scripted(SERIAL_NAK)
    r = term.authorize(1000)
    assert not port.script and r.approved and r.amount == 1000
    assert isinstance(term.link, SerialLink) and term.link.retransmissions == 1


def test_transcript_receipt_lines() -> None:
    term, port = scripted(TCP_RECEIPT, tcp=True)
    r = term.authorize(75_000)
    assert not port.script
    assert r.card_type == "VISA" and r.result_code == 5
    assert r.receipt_lines == (
        "          CARD PAYMENT",
        "Terminal-ID: 29001006",
        "Date: 03/20   Time: 14:30:05",
        "Trace: 000001  Receipt: 0001",
        "Card: VISA",
        "Amount: 75,000 IRR",
        "DECLINED (05)",
    )


def test_transcript_corrupted_frame_from_the_terminal_is_naked() -> None:
    good = "10 02 06 0F 0A 19 00 29 29 00 10 10 06 49 03 64 10 03 A4 3D"
    term, port = scripted(
        [
            (ECR, "10 02 06 00 0B 00 00 00 BA 03 64 06 03 12 01 40 10 03 DB 23"),
            (PT, "06"),
            (PT, "10 02 80 00 00 10 03 F5 1F"),
            (ECR, "06"),
            (PT, good[:-2] + "3E"),  # one bit of the CRC flipped on the line
            (ECR, "15"),
            (PT, good),
            (ECR, "06"),
            (ECR, "10 02 80 00 00 10 03 F5 1F"),
            (PT, "06"),
        ]
    )
    term.register()
    assert not port.script and term.registered
    assert isinstance(term.link, SerialLink) and term.link.naks_sent == 1


def test_transcript_negative_acknowledgement_is_a_refusal() -> None:
    # 84 6F: the terminal refuses the authorisation (wrong currency), chapter Error-Messages
    term, port = scripted(
        [
            (ECR, "10 02 06 01 0A 04 00 00 00 00 50 00 49 03 64 10 03 BD 2D"),
            (PT, "06"),
            (PT, "10 02 84 6F 00 10 03 93 22"),
            (ECR, "06"),
        ]
    )
    r = term.authorize(5000)
    assert not port.script
    assert (r.approved, r.result_code, r.en, r.fa) == (
        False,
        0x6F,
        "wrong currency",
        "واحد پول نادرست است",
    )


def _tcp_port(*pt: str) -> tuple[ZVTTerminal, ScriptedPort]:
    """A TCP terminal whose PT side is ``pt`` after our authorisation of 5000 Rials."""
    steps: Transcript = [(ECR, "06 01 0A 04 00 00 00 00 50 00 49 03 64")]
    for text in pt:
        if text.startswith(">"):
            steps.append((ECR, text[1:].strip()))
        else:
            steps.append((PT, text))
    term, port = scripted(steps, tcp=True)
    return term, port


def test_unreadable_status_is_refused_and_reported() -> None:
    # amount 04 with a non-BCD digit: the ECR refuses it (84 9A: the PT reverses)
    term, port = _tcp_port(
        "80 00 00",
        "04 0F 09 27 00 04 00 00 00 00 5A 00",
        "> 84 9A 00",
        "06 1E 01 9A",
        "> 80 00 00",
    )
    with pytest.raises(DeviceError, match="unreadable Status-Information") as e:
        term.authorize(5000)
    assert not port.script and "spy://" in str(e.value) and e.value.fa


def test_broken_apdu_is_a_protocol_violation() -> None:
    term, _ = _tcp_port("80 00 00", "04 0F 09 27 00")  # the length says 9, 2 follow
    term.link.receive = lambda timeout: H("04 0F 09 27 00")  # type: ignore[method-assign]
    with pytest.raises(DeviceError, match=r"broke the ZVT protocol.*spy://"):
        term.authorize(5000)


def test_unknown_messages_are_refused_and_the_payment_goes_on() -> None:
    term, port = _tcp_port(
        "80 00 00",
        "06 E0 02 F1 41",  # Display Text: not for this cash register
        "> 84 83 00",
        "04 0F 02 27 00",
        "> 80 00 00",
        "06 0F 00",
        "> 80 00 00",
    )
    r = term.authorize(5000)
    assert not port.script and r.approved and r.amount == 5000


def test_receipt_as_a_print_text_block_and_status_with_a_timeout_byte() -> None:
    # 04 FF with the optional timeout byte (chapter 3.2); the receipt as one Print
    # Text-Block 06 D3 (chapter 3.6): TLV 1F07 receipt type 02, 25 (07 "AB", 07 "C", 09 81)
    term, port = _tcp_port(
        "80 00 00",
        "04 FF 02 0A 3C",
        "> 80 00 00",
        "04 0F 02 27 00",
        "> 80 00 00",
        "06 D3 12 06 10 1F 07 01 02 25 0A 07 02 41 42 07 01 43 09 01 81",
        "> 80 00 00",
        "06 0F 00",
        "> 80 00 00",
    )
    statuses: list[str] = []
    r = term.authorize(5000, on_status=statuses.append)
    assert not port.script and r.approved and r.receipt_lines == ("AB", "C")
    assert statuses == ["insert or tap the card / لطفاً کارت را وارد کنید یا نزدیک کنید"]


def test_terminal_skipping_the_acknowledgement_is_tolerated() -> None:
    term, port = _tcp_port("04 FF 01 0A", "> 80 00 00", "06 0F 00", "> 80 00 00")
    assert term.authorize(5000).approved and not port.script


def test_registration_refused_or_aborted() -> None:
    reg = "06 00 0B 00 00 00 BA 03 64 06 03 12 01 40"
    term, _ = scripted([(ECR, reg), (PT, "84 6F 00")], tcp=True)
    with pytest.raises(DeviceError, match="refused registration: wrong currency") as e:
        term.register()
    assert "نپذیرفت" in e.value.fa
    term, _ = scripted(
        [(ECR, reg), (PT, "80 00 00"), (PT, "06 1E 01 6B"), (ECR, "80 00 00")], tcp=True
    )
    with pytest.raises(DeviceError, match="refused registration"):
        term.register()
    term, _ = scripted(
        [(ECR, reg), (PT, "80 00 00"), (PT, "06 0F 04 49 09 78 19"), (ECR, "80 00 00")],
        tcp=True,
    )
    term.link.receive = _apdus("80 00 00", "06 0F 03 49 09 78")  # type: ignore[method-assign]
    term._drain = lambda *a, **k: None  # type: ignore[method-assign]  # no stale frames here
    with pytest.raises(DeviceError, match="currency 0978, not 0364"):
        term.register()


def _apdus(*texts: str) -> Any:
    q = deque(H(t) for t in texts)
    return lambda timeout: q.popleft() if q else None


def test_abort_when_idle_sends_06_b0() -> None:
    term, port = scripted(
        [
            (ECR, "10 02 06 B0 00 10 03 43 F3"),
            (PT, "06"),
            (PT, "10 02 80 00 00 10 03 F5 1F"),
            (ECR, "06"),
        ]
    )
    term.abort()
    assert not port.script


def test_arguments_are_checked() -> None:
    term, _ = scripted([])
    for bad in (1.5, True, "100"):
        with pytest.raises(TypeError, match="int number of Rials"):
            term.authorize(bad)  # type: ignore[arg-type]
    for bad_amount in (0, -5, 10**12):
        with pytest.raises(ValueError, match="amount must be"):
            term.authorize(bad_amount)
    opener = lambda *a, **k: ScriptedPort([])  # noqa: E731
    with pytest.raises(ConfigError, match=r"bank.password"):
        ZVTTerminal("x", password="12ab56", opener=opener)
    with pytest.raises(ConfigError, match=r"bank.currency"):
        ZVTTerminal("x", currency=0, opener=opener)
    with pytest.raises(ConfigError, match=r"bank.encoding"):
        ZVTTerminal("x", encoding="klingon", opener=opener)


def test_tcp_is_chosen_by_the_port_url() -> None:
    assert _wants_tcp("socket://10.0.0.7:20007")
    assert _wants_tcp("sim://zvt?mode=tcp&outcome=approve")
    assert not _wants_tcp("sim://zvt?mode=serial")
    assert not _wants_tcp("/dev/ttyUSB0")
    assert not _wants_tcp("spy:///dev/ttyUSB0")


def test_a_failing_status_callback_does_not_break_the_payment() -> None:
    term, port = scripted(SERIAL_APPROVE)

    def broken(_text: str) -> None:
        raise RuntimeError("display unplugged")

    assert term.authorize(1_250_000, on_status=broken).approved and not port.script


def test_registry_creates_the_driver() -> None:
    term = create("bank", "zvt", port=f"sim://zvt?mode=tcp&{FAST}", timers=TIMERS)
    try:
        assert isinstance(term, ZVTTerminal) and term.tcp
        assert term.authorize(1000).approved
    finally:
        term.close()


# -- 3. fuzzing the driver's receiving side -----------------------------------------------------


class NoisePort:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = deque(chunks)
        self.port = "noise"
        self.written = bytearray()

    @property
    def in_waiting(self) -> int:
        return len(self.chunks[0]) if self.chunks else 0

    def read(self, size: int = 1) -> bytes:
        return self.chunks.popleft() if self.chunks else b""

    def write(self, data: bytes) -> int:
        self.written += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_fuzz_driver_links_and_message_parsing() -> None:
    """10,000 noisy inputs per link: whatever arrives, the driver's receiving side yields
    APDUs (which parse or raise ZVTError) and never anything else."""
    rng = random.Random(0x06B0)
    samples = [H(text) for _, text in SERIAL_APPROVE + TCP_RECEIPT if len(text) > 2]
    for link_cls in (SerialLink, TcpLink):
        for _ in range(10_000):
            chunks = []
            for _ in range(rng.randrange(1, 4)):
                if rng.random() < 0.5:
                    chunks.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30))))
                else:
                    buf = bytearray(rng.choice(samples))
                    buf[rng.randrange(len(buf))] = rng.randrange(256)
                    chunks.append(bytes(buf))
            link = link_cls(NoisePort(chunks), TIMERS, "noise")  # type: ignore[arg-type]
            while (raw := link.receive(0.0)) is not None or link.port.chunks:
                if raw is None:
                    continue
                try:
                    msg = A.Apdu.parse(raw)
                    A.parse_status_info(msg.data)
                    A.parse_print_line(msg.data or b"\x00")
                    A.parse_print_block(msg.data)
                except A.ZVTError:
                    pass
            assert set(link.port.written) <= {0x06, 0x15}  # only ACK/NAK answers


def test_fuzzed_frames_into_a_payment_end_in_a_result_or_a_device_error() -> None:
    """A payment whose terminal answers with mutated messages: a PaymentResult or a
    DeviceError, never another exception, never a hang."""
    rng = random.Random(0x040F)
    timers = Timers(t1=0.01, t2=0.01, t3=0.01, t4=0.01, retries=0, abort_grace=0.01)
    pt = [H(t) for who, t in TCP_APPROVE + TCP_DECLINE + TCP_RECEIPT if who == PT]
    outcomes = {"result": 0, "error": 0}
    for _ in range(1500):
        msgs = [bytearray(rng.choice(pt)) for _ in range(rng.randrange(1, 6))]
        for m in msgs:
            if rng.random() < 0.7:
                m[rng.randrange(len(m))] = rng.randrange(256)
        stream = [bytes(m) for m in msgs] + [H("06 0F 00")]
        port = NoisePort(stream)
        term = ZVTTerminal(
            "noise", tcp=True, timers=timers, auto_register=False, opener=lambda *a, p=port, **k: p
        )
        try:
            r = term.authorize(1000, timeout=0.05)
            assert isinstance(r, PaymentResult)
            outcomes["result"] += 1
        except DeviceError:
            outcomes["error"] += 1
    assert outcomes["result"] > 100 and outcomes["error"] > 100


def test_encode_frame_round_trip_of_every_transcript_message() -> None:
    for transcript in (SERIAL_APPROVE, SERIAL_NAK, SERIAL_ECR_ABORT):
        for _, text in transcript:
            raw = H(text)
            if len(raw) > 1:
                link = SerialLink(NoisePort([raw]), TIMERS, "x")  # type: ignore[arg-type]
                apdu = link.receive(0.05)
                assert apdu is not None and encode_frame(apdu) == raw


def test_stale_frames_are_set_aside_before_repeat_receipt() -> None:
    """After a crash the terminal may still be repeating the end of the transaction the
    old process died in; those frames are acknowledged and set aside, and only the
    answer to Repeat Receipt counts (here: that payment was aborted)."""
    rr = A.repeat_receipt("000000").encode().hex(" ")
    term, port = scripted(
        [
            (PT, "06 0F 00"),  # a stale completion, before we said anything
            (ECR, "80 00 00"),
            (ECR, rr),
            (PT, "80 00 00"),
            (PT, "06 1E 01 6C"),
            (ECR, "80 00 00"),
        ],
        tcp=True,
    )
    res = term.last_result(timeout=2)
    assert not port.script
    assert res is not None and not res.approved and res.result_code == 0x6C


def test_last_result_repeats_the_last_transaction_for_recovery() -> None:
    """Repeat Receipt (06 20): how the agent learns the outcome of a payment a crash lost."""
    from edge.drivers.zvt import ZVTTerminal

    t = ZVTTerminal("sim://zvt?outcome=approve")
    try:
        assert t.last_result(timeout=5) is None  # nothing to repeat yet: the PT refuses
        paid = t.authorize(777_000, timeout=10)
        again = t.last_result(timeout=5)
        assert again is not None and again.approved
        assert (again.amount, again.trace, again.receipt) == (paid.amount, paid.trace, paid.receipt)
        t._port.device.event("next", outcome="decline")  # type: ignore[attr-defined]
        assert not t.authorize(5_000, timeout=10).approved
        last = t.last_result(timeout=5)
        assert last is not None and not last.approved and last.amount == 0
    finally:
        t.close()
