"""A simulated ZVT bank card terminal (the PT side of the ECR interface).

It answers Registration (06 00), Authorisation (06 01) and Abort (06 B0) the way a
terminal does: 80 00 00, then, holding master rights, intermediate status (04 FF),
Status-Information (04 0F) with result, amount, trace number, time, date, terminal id,
VU number, authorisation code (BMP 3B), currency, receipt and turnover numbers and card
type, receipt lines (06 D1) when the registration asked the cash register to print, and
Completion (06 0F) or Abort (06 1E), each time waiting for the cash register's 80 00 00.

Besides payments it answers Refund (06 31: money back to the card) and Reversal (06 30:
today's payment with a given receipt number cancelled, or 84 B5 / 84 B4 when there is none
or it was reversed already).  ``history`` lists every transaction with its ``kind``
(payment, refund, reversal).  The event ``reset`` restarts its trace and receipt counters,
as a terminal that was reset does; ``swap`` (with a new ``terminal_id``) is the terminal
replaced by another whose counters start at 1 too.

Outcomes, per payment: ``approve``; ``decline`` (result 05, "do not honour", from the
bank); ``abort`` (the customer pressed cancel: 06 1E 6C); ``timeout`` (the terminal keeps
saying "insert card" and never finishes, until the cash register aborts).  Set them with
``outcome=`` or the events ``next`` (the next payment) and ``outcomes`` (a queue).

Modes: ``serial`` (DLE framing, ACK/NAK, retransmission of NAKed or unacknowledged
frames), ``tcp`` (bare APDUs), ``auto`` (decided by the first bytes the cash register
sends: a terminal never speaks first).  The event ``corrupt_next`` damages the next
frame(s) the cash register sends, so the simulator NAKs them as a terminal would on a
noisy line.

    sim://zvt?outcome=approve&mode=serial&terminal_id=29001006&receipts=1

The bytes are the simulator's own: APDUs, BMPs and BCD come from :mod:`hw_sim.zvt_wire`,
DLE framing, CRC and the TCP splitter from :mod:`hw_sim.zvt_link`, never from the driver
(``edge.drivers.zvt``) it is there to test; ``tests/hw_sim/test_zvt_wire.py`` holds both
to real-terminal traces and to each other.
"""

from __future__ import annotations

import argparse
import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from hw_sim import zvt_wire as W
from hw_sim.device import SimDevice, monotonic
from hw_sim.zvt_link import (
    ACK,
    DLE,
    NAK,
    BadFrame,
    Control,
    Frame,
    SerialReceiver,
    TcpReceiver,
    serial_frame,
)

log = logging.getLogger("hw_sim.zvt")

OUTCOMES = ("approve", "decline", "abort", "timeout")
MODES = ("serial", "tcp", "auto")
TEHRAN = timezone(timedelta(minutes=210))
DECLINED = 0x05  # from the bank's host: "do not honour"
ABORTED = 0x6C  # abort via time-out or abort key


class ZVTSim(SimDevice):
    kind = "zvt"

    def __init__(
        self,
        outcome: str = "approve",
        *,
        mode: str = "auto",
        terminal_id: str = "29001006",
        receipts: bool = True,
        card_type: str = "Mastercard",
        currency: int = 364,
        step: float = 0.01,
        status_every: float = 0.5,
        ack_timeout: float = 1.0,
        retries: int = 3,
        reply_timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__()
        _check_outcome(outcome)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if len(terminal_id) != 8 or not terminal_id.isdigit() or not terminal_id.isascii():
            raise ValueError(f"the terminal id is eight digits, got {terminal_id!r}")
        self.outcome = outcome
        self.mode: str | None = None if mode == "auto" else mode
        self.terminal_id = terminal_id
        self.receipts = receipts
        self.card_type = card_type
        self.currency = currency
        self.step, self.status_every = step, status_every
        self.ack_timeout, self.retries, self.reply_timeout = ack_timeout, retries, reply_timeout
        # a terminal in an Iranian store keeps Tehran time (+03:30), whatever the host's zone
        self.clock = clock or (lambda: datetime.now(TEHRAN))
        self.queue: deque[tuple[str, str | None]] = deque()
        self.trace = self.receipt_no = self.turnover = 0
        self.config: int | None = None  # the registration's config byte
        self.history: list[dict[str, Any]] = []  # one entry per authorisation, for tests
        self.last: tuple[W.Apdu, W.Apdu] | None = None  # for Repeat Receipt (06 20)
        self._sent_msg: W.Apdu | None = None
        self.corrupt_rx = 0
        self.naks_sent = 0
        self.retransmissions = 0
        # serial link state
        self._decoder = SerialReceiver()
        self._splitter = TcpReceiver()
        self._outq: deque[bytes] = deque()
        self._inflight: bytes | None = None
        self._sent_at = 0.0
        self._tries = 0
        self._last_rx: bytes | None = None
        self._sent_since_rx = True
        # the running transaction (the PT holds master rights)
        self._script: deque[W.Apdu] = deque()
        self._endless = False
        self._awaiting = False
        self._awaiting_since = 0.0
        self._next_at = 0.0

    # -- what the tests and scenarios change -----------------------------------------------

    def event(self, action: str, **args: Any) -> None:
        with self.lock:
            if action == "next":
                outcome = str(args.get("outcome", "approve"))
                _check_outcome(outcome)
                card = args.get("card_type")
                self.queue.appendleft((outcome, None if card is None else str(card)))
            elif action == "outcomes":
                raw = args.get("outcomes", "")
                items = raw.split(",") if isinstance(raw, str) else [str(x) for x in raw]
                for o in (i.strip() for i in items if i.strip()):
                    _check_outcome(o)
                    self.queue.append((o, None))
            elif action == "corrupt_next":
                self.corrupt_rx += int(args.get("count", 1))
            elif action in ("reset", "swap"):
                # the terminal was reset, or (swap) replaced by another with its own
                # terminal id: the trace, receipt and turnover counters start again and
                # it remembers no last transaction
                if action == "swap":
                    tid = str(args.get("terminal_id", ""))
                    if len(tid) != 8 or not tid.isdigit() or not tid.isascii():
                        raise ValueError(f"the terminal id is eight digits, got {tid!r}")
                    self.terminal_id = tid
                self.trace = self.receipt_no = self.turnover = 0
                self.last = None
            else:
                super().event(action, **args)

    @property
    def busy(self) -> bool:
        """A transaction is running (the PT holds master rights)."""
        return bool(self._script or self._endless or self._awaiting)

    @property
    def ecr_prints(self) -> bool:
        cfg = self.config or 0
        return (
            self.receipts and bool(cfg & W.CFG_PRINT_LINES) and bool(cfg & W.CFG_ECR_PRINTS_PAYMENT)
        )

    @property
    def sends_status(self) -> bool:
        return self.config is None or bool(self.config & W.CFG_INTERMEDIATE)

    # -- bytes in ---------------------------------------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        if not data:
            return
        if self.mode is None:  # the cash register speaks first: DLE STX or a bare APDU
            self.mode = "serial" if data[0] == DLE else "tcp"
        if self.mode == "tcp":
            for raw in self._splitter.feed(data):
                self._handle(raw)
            return
        for tok in self._decoder.feed(data):
            if isinstance(tok, Control):
                self._on_control(tok.byte)
            elif isinstance(tok, BadFrame):
                self._nak()
            elif isinstance(tok, Frame):
                if self.corrupt_rx > 0:  # line noise on the way in: the CRC fails
                    self.corrupt_rx -= 1
                    self._nak()
                    continue
                self.send(bytes([ACK]))
                if tok.apdu == self._last_rx and not self._sent_since_rx:
                    continue  # the cash register repeated itself (our ACK was lost)
                self._last_rx = tok.apdu
                self._sent_since_rx = False
                self._handle(tok.apdu)

    def _nak(self) -> None:
        self.naks_sent += 1
        self.send(bytes([NAK]))

    def _on_control(self, byte: int) -> None:
        if self._inflight is None:
            return  # a stray ACK/NAK
        if byte == ACK:
            self._inflight = None
            self._pump(monotonic())
        else:
            self._retransmit(monotonic())

    def _handle(self, raw: bytes) -> None:  # noqa: PLR0912 - one branch per command
        try:
            msg = W.Apdu.parse(raw)
        except W.WireError:
            self._reply(W.nack(0x9A))
            return
        now = monotonic()
        if self.busy:
            if self._awaiting and msg.positive:
                self._awaiting = False
                sent = self._sent_msg
                if (
                    sent is not None
                    and sent.control == W.STATUS_INFO
                    and self.history
                    and sent.data[:2] == b"\x27\x00"
                ):
                    self.history[-1]["charged"] = True  # the ECR has the approval
                    orig = self.history[-1].get("orig")
                    if orig is not None:
                        orig["reversed"] = True
                self._next_at = now + (
                    self.step if (self._script or not self._endless) else self.status_every
                )
                return
            if msg.control == W.ECR_ABORT:
                self._reply(W.ACK_APDU)
                self._finish_with(W.pt_abort(ABORTED), "aborted by the cash register")
                return
            if self._awaiting and msg.negative:  # e.g. the status refused: reverse
                self._finish_with(
                    W.pt_abort(ABORTED), f"refused by the cash register ({msg.ins:02X})"
                )
                return
            if msg.is_answer:
                return
            self._stop()  # a new command: the cash register gave up on the old one
        if msg.control == W.ECR_ABORT:
            self._reply(W.ACK_APDU)
        elif msg.control == W.REGISTRATION:
            self._register(msg)
        elif msg.control == W.AUTHORISATION:
            self._authorise(msg)
        elif msg.control == W.REFUND:
            self._refund(msg)
        elif msg.control == W.REVERSAL:
            self._reversal(msg)
        elif msg.control == W.REPEAT_RECEIPT:
            if self.last is None:
                self._reply(W.nack(0x83))  # no transaction to repeat
            else:
                self._reply(W.ACK_APDU)
                self._start(list(self.last))
        elif not msg.is_answer:
            self._reply(W.nack(0x83))  # function not possible

    # -- commands ---------------------------------------------------------------------------

    def _register(self, msg: W.Apdu) -> None:
        data = msg.data
        try:
            if len(data) < 4 or len(data) == 5:
                raise W.WireError("registration needs password and config byte")
            W.bcd_digits(data[:3])
            cc = W.bcd_int(data[4:6]) if len(data) >= 6 else None
            W.parse_bmps(data[6:])
        except W.WireError:
            self._reply(W.nack(0x9A))
            return
        if cc is not None and cc != self.currency:
            self._reply(W.nack(0x6F))  # wrong currency
            return
        self.config = data[3]
        self._reply(W.ACK_APDU)
        bmps = [(0x19, b"\x00"), (0x29, bytes.fromhex(self.terminal_id))]
        if cc is not None:
            bmps.append((0x49, W.bcd(cc, 2)))
        self._start([W.completion(bmps)])

    def _authorise(self, msg: W.Apdu) -> None:
        try:
            bmps = dict(W.parse_bmps(msg.data))
            amount = W.bcd_int(bmps[0x04])
            cc = W.bcd_int(bmps[0x49]) if 0x49 in bmps else self.currency
        except (W.WireError, KeyError):
            self._reply(W.nack(0x9A))
            return
        if cc != self.currency:
            self._reply(W.nack(0x6F))
            return
        self._run("payment", amount)

    def _refund(self, msg: W.Apdu) -> None:
        """06 31: password, 04 amount, [49 currency]: money back to the card."""
        try:
            if len(msg.data) < 3:
                raise W.WireError("refund needs the password")
            bmps = dict(W.parse_bmps(msg.data[3:]))
            amount = W.bcd_int(bmps[0x04])
            cc = W.bcd_int(bmps[0x49]) if 0x49 in bmps else self.currency
        except (W.WireError, KeyError):
            self._reply(W.nack(0x9A))
            return
        if cc != self.currency:
            self._reply(W.nack(0x6F))
            return
        self._run("refund", amount)

    def _reversal(self, msg: W.Apdu) -> None:
        """06 30: password, 87 receipt number: cancel that payment of today."""
        try:
            if len(msg.data) < 3:
                raise W.WireError("reversal needs the password")
            bmps = dict(W.parse_bmps(msg.data[3:]))
            receipt = W.bcd_int(bmps[0x87])
        except (W.WireError, KeyError):
            self._reply(W.nack(0x9A))
            return
        orig = next(
            (
                h
                for h in reversed(self.history)
                if h["kind"] == "payment" and h.get("receipt") == receipt and h["charged"]
            ),
            None,
        )
        if orig is None:
            self._reply(W.nack(0xB5))  # reversal not possible: no such payment
            return
        if orig.get("reversed"):
            self._reply(W.nack(0xB4))  # already reversed
            return
        self._run("reversal", int(orig["amount"]), orig)

    def _run(self, kind: str, amount: int, orig: dict[str, Any] | None = None) -> None:
        """One transaction, as the PT runs it once the command is accepted."""
        outcome, card = self.queue.popleft() if self.queue else (self.outcome, None)
        card = card or self.card_type
        self.trace = self.trace % 999_999 + 1
        # "charged" becomes true only when the cash register acknowledges the approved
        # Status-Information; a payment whose result it never took is reversed
        self.history.append(
            {
                "kind": kind,
                "terminal_id": self.terminal_id,
                "amount": amount,
                "outcome": outcome,
                "trace": self.trace,
                "card": card,
                "charged": False,
            }
        )
        if orig is not None:
            self.history[-1]["orig"] = orig
        self._reply(W.ACK_APDU)
        steps: list[W.Apdu] = []
        if self.sends_status:
            steps.append(W.intermediate(0x0A))  # insert card
        if outcome == "timeout":
            self._start(steps, endless=True)
            return
        if outcome == "abort":
            steps.append(W.status_info([(0x27, bytes([ABORTED])), (0x29, self._tid())]))
            steps.append(W.pt_abort(ABORTED))
            self.last = (steps[-2], steps[-1])
            self._start(steps)
            return
        if self.sends_status:
            steps.append(W.intermediate(0x04))  # waiting for the bank
        result = 0x00 if outcome == "approve" else DECLINED
        self.receipt_no = self.receipt_no % 9999 + 1
        self.history[-1]["receipt"] = self.receipt_no
        if result == 0:
            self.turnover = self.turnover % 999_999 + 1
        when = self.clock()
        status = self._status(result, amount, card, when)
        steps.append(status)
        # what Repeat Receipt (06 20) sends again: the result and the end of the transaction
        self.last = (status, W.completion() if result == 0 else W.pt_abort(result))
        if self.ecr_prints:
            steps += [W.print_line(t) for t in self._receipt(result, amount, card, when)]
            steps.append(W.print_line(b"", W.ATTR_LAST))
        steps.append(W.completion() if result == 0 else W.pt_abort(result))
        self._start(steps)

    def _tid(self) -> bytes:
        return bytes.fromhex(self.terminal_id)

    def _auth_code(self) -> str:
        return f"{(self.trace * 7919 + 104729) % 1_000_000:06d}"

    def _status(self, result: int, amount: int, card: str, when: datetime) -> W.Apdu:
        bmps: list[tuple[int, bytes]] = [
            (0x27, bytes([result])),
            (0x04, W.bcd(amount, 6)),
            (0x0B, W.bcd(self.trace, 3)),
            (0x0C, bytes.fromhex(when.strftime("%H%M%S"))),
            (0x0D, bytes.fromhex(when.strftime("%m%d"))),
            (0x22, bytes.fromhex("603799EEEEEE1234")),  # the masked card number
            (0x29, self._tid()),
            (0x2A, b"VU-SIM-0001".ljust(15)),
        ]
        if result == 0:
            bmps.append((0x3B, self._auth_code().encode().ljust(8, b"\x00")))
        bmps += [(0x49, W.bcd(self.currency, 2)), (0x87, W.bcd(self.receipt_no, 2))]
        if result == 0:
            bmps.append((0x88, W.bcd(self.turnover, 3)))
        card_id = W.card_type_id(card)
        if card_id is not None:
            bmps.append((0x8A, bytes([card_id])))
        bmps.append((0x8B, card.encode("ascii", "replace")[:20]))
        return W.status_info(bmps)

    def _receipt(self, result: int, amount: int, card: str, when: datetime) -> list[bytes]:
        lines = [
            "          CARD PAYMENT",
            f"Terminal-ID: {self.terminal_id}",
            f"Date: {when:%m/%d}   Time: {when:%H:%M:%S}",
            f"Trace: {self.trace:06d}  Receipt: {self.receipt_no:04d}",
            f"Card: {card}",
            f"Amount: {amount:,} IRR",
            "APPROVED" if result == 0 else f"DECLINED ({result:02X})",
        ]
        if result == 0:
            lines.append(f"Auth code: {self._auth_code()}")
        return [line.encode("cp437", "replace") for line in lines]

    # -- the transaction ----------------------------------------------------------------------

    def _start(self, steps: list[W.Apdu], endless: bool = False) -> None:
        self._script = deque(steps)
        self._endless = endless
        self._awaiting = False
        self._next_at = monotonic() + self.step

    def on_connect(self) -> None:
        """A new cash register connection: a half-received message and anything queued for
        the old connection are dropped, and a transaction it left running ends."""
        self._decoder.reset()
        self._splitter.reset()
        self._outq.clear()
        self._inflight = None
        self._stop()

    def _stop(self) -> None:
        self._reverse("the cash register never took the result")
        self._script.clear()
        self._endless = False
        self._awaiting = False

    def _reverse(self, why: str) -> None:
        """An approval the cash register never acknowledged is reversed, as a terminal
        does; Repeat Receipt then reports the reversal, not the approval."""
        h = self.history[-1] if self.history else None
        if h is None or h["outcome"] != "approve" or h["charged"] or "ended" in h:
            return
        h["ended"] = why
        self.last = (
            W.status_info([(0x27, bytes([ABORTED])), (0x29, self._tid())]),
            W.pt_abort(ABORTED),
        )

    def _finish_with(self, last: W.Apdu, why: str) -> None:
        self._reverse(why)
        if self.history:
            self.history[-1].setdefault("ended", why)
        self._start([last])

    def on_tick(self, now: float) -> None:
        if self.mode == "serial":
            if self._inflight is not None and now - self._sent_at > self.ack_timeout:
                self._retransmit(now)
            self._pump(now)
            if self._inflight is not None or self._outq:
                return
        if self._awaiting:
            if now - self._awaiting_since > self.reply_timeout:
                log.info("zvt sim: no answer from the cash register, transaction dropped")
                self._stop()
            return
        if now < self._next_at:
            return
        if self._script:
            self._sent_msg = self._script.popleft()
        elif self._endless:
            self._sent_msg = W.intermediate(0x0A)
        else:
            return
        self._transmit(self._sent_msg)
        self._awaiting = True
        self._awaiting_since = now

    # -- bytes out ----------------------------------------------------------------------------

    def _reply(self, msg: W.Apdu) -> None:
        """An answer that is not itself answered (80 00 00, 84 xx)."""
        self._transmit(msg)

    def _transmit(self, msg: W.Apdu) -> None:
        raw = msg.encode()
        if self.mode == "serial":
            self._outq.append(raw)
            self._pump(monotonic())
        else:
            self.send(raw)

    def _pump(self, now: float) -> None:
        if self._inflight is None and self._outq:
            self._inflight = self._outq.popleft()
            self._tries = 0
            self._send_frame(now)

    def _send_frame(self, now: float) -> None:
        if self._inflight is None:
            return
        self._sent_at = now
        self._sent_since_rx = True
        self.send(serial_frame(self._inflight))

    def _retransmit(self, now: float) -> None:
        self._tries += 1
        if self._tries > self.retries:
            log.info("zvt sim: frame never acknowledged, transaction dropped")
            self._inflight = None
            self._outq.clear()
            self._stop()
            return
        self.retransmissions += 1
        self._send_frame(now)


def _check_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")


def add_cli(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outcome", choices=OUTCOMES, default="approve", help="of every payment")
    p.add_argument("--terminal-id", default="29001006", help="eight digits (BMP 29)")
    p.add_argument(
        "--tcp-mode",
        action="store_true",
        help="bare APDUs without DLE framing and ACK/NAK (implied by --tcp)",
    )
    p.add_argument("--no-receipts", action="store_true", help="never send receipt lines (06 D1)")
    p.add_argument("--card-type", default="Mastercard", help="card name in the status")


def from_cli(args: argparse.Namespace) -> ZVTSim:
    tcp = args.tcp_mode or getattr(args, "tcp", None) is not None
    return ZVTSim(
        args.outcome,
        mode="tcp" if tcp else "serial",
        terminal_id=args.terminal_id,
        receipts=not args.no_receipts,
        card_type=args.card_type,
    )


_TRUE = ("1", "true", "yes", "on")


def from_url(query: dict[str, list[str]]) -> ZVTSim:
    """``sim://zvt?outcome=decline&mode=serial|tcp|auto&terminal_id=...&receipts=0
    &card_type=VISA&step=0.01&status_every=0.5&outcomes=approve,decline``"""

    def one(key: str, default: str) -> str:
        return query.get(key, [default])[-1]

    known = {"outcome", "mode", "terminal_id", "receipts", "card_type", "step"}
    known |= {"status_every", "outcomes"}
    unknown = set(query) - known
    if unknown:
        raise ValueError(f"unknown zvt option(s): {', '.join(sorted(unknown))}")
    sim = ZVTSim(
        one("outcome", "approve"),
        mode=one("mode", "auto"),
        terminal_id=one("terminal_id", "29001006"),
        receipts=one("receipts", "1").lower() in _TRUE,
        card_type=one("card_type", "Mastercard"),
        step=float(one("step", "0.01")),
        status_every=float(one("status_every", "0.5")),
    )
    if "outcomes" in query:
        sim.event("outcomes", outcomes=one("outcomes", ""))
    return sim
