"""A bank card terminal spoken to in ZVT (the ECR interface of German-standard terminals).

The cash register (ECR) holds "master rights" and sends a command; the terminal (PT)
acknowledges it with 80 00 00 and from then on holds master rights itself: it sends
intermediate status (04 FF), the result (Status-Information 04 0F), receipt lines (06 D1
or a text block 06 D3), each answered by the ECR with 80 00 00, and gives master rights
back with Completion (06 0F) or Abort (06 1E), which the ECR acknowledges too::

    ECR 06 01 04 <amount> 49 <currency>        PT 80 00 00
    PT  04 FF 0A   (insert card)               ECR 80 00 00
    PT  04 0F 27 00 04 ... 0B ... 29 ...        ECR 80 00 00
    PT  06 D1 00 <text>   ...                  ECR 80 00 00
    PT  06 0F 00                               ECR 80 00 00

While the PT holds master rights the ECR may only answer; to cancel it answers the next
intermediate status with Abort (06 B0) instead of 80 00 00, and the PT ends with 06 1E.

Outcomes: approved and declined payments, the terminal's and the cash register's aborts
and the cash register's own time-out are :class:`PaymentResult` values (approved=False
with a bilingual reason).  A terminal that does not answer, or answers nonsense, is a
:class:`~edge.errors.DeviceError`.  Nothing ZVT-specific leaves this package: a national
PSP protocol can implement the same :class:`~edge.drivers.base.BankTerminal`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import serial

from edge.drivers.base import PaymentResult, StatusCallback
from edge.drivers.serialport import open_port
from edge.drivers.zvt import apdu as A
from edge.drivers.zvt.codes import APPROVED, card_type_name, result_text, status_text
from edge.drivers.zvt.transport import SPY_HINT, SPY_HINT_FA, Link, SerialLink, TcpLink, Timers
from edge.errors import ConfigError, DeviceError
from edge.sanitize import clean

log = logging.getLogger("edge.drivers.zvt")

IRR = 364  # ISO 4217 numeric code of the Iranian Rial; sent as BCD 03 64
ABORTED = 0x6C  # "abort via time-out or abort key"


def _wants_tcp(url: str) -> bool:
    u = urlsplit(url)
    if u.scheme == "socket":
        return True
    return u.scheme == "sim" and parse_qs(u.query).get("mode", [""])[0] == "tcp"


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"the amount is an int number of Rials, got {type(amount).__name__}")
    if not 0 < amount <= A.MAX_AMOUNT:
        raise ValueError(f"amount must be 1..{A.MAX_AMOUNT} Rials, got {amount}")


def _declined(code: int, en: str | None = None, fa: str | None = None, **kw: Any) -> PaymentResult:
    t_en, t_fa = result_text(code)
    return PaymentResult(False, 0, code, en or t_en, fa or t_fa, **kw)


class ZVTTerminal:
    """``ZVTTerminal("/dev/ttyUSB0")`` (serial, DLE framing) or
    ``ZVTTerminal("socket://10.0.0.7:20007")`` (TCP, bare APDUs).

    ``password``: the terminal's six-digit ZVT password; ``currency``: ISO 4217 numeric
    (364, Rial); ``ecr_prints``: the terminal sends the receipt as Print Line messages
    and :attr:`PaymentResult.receipt_lines` carries it; ``encoding``: of receipt texts
    (the ZVT default is code page 437).
    """

    def __init__(
        self,
        port: str,
        password: str = "000000",  # noqa: S107 - the ZVT factory default, not a secret
        currency: int = IRR,
        tcp: bool | None = None,
        *,
        baudrate: int = 9600,
        stopbits: int = 2,
        timers: Timers | None = None,
        ecr_prints: bool = True,
        chars_per_line: int | None = 40,
        encoding: str = "cp437",
        auto_register: bool = True,
        opener: Callable[..., serial.SerialBase] = open_port,
    ) -> None:
        try:
            A.password_bcd(password)
        except ValueError as e:
            raise ConfigError("bank.password", str(e)) from None
        if not 0 < currency <= 9999:
            raise ConfigError("bank.currency", f"an ISO 4217 numeric code, got {currency}")
        try:
            "".encode(encoding)
        except LookupError:
            raise ConfigError("bank.encoding", f"unknown encoding {encoding!r}") from None
        self.password = password
        self.currency = currency
        self.tcp = _wants_tcp(port) if tcp is None else tcp
        self.timers = timers or Timers()
        self.encoding = encoding
        self.ecr_prints = ecr_prints
        self.chars_per_line = chars_per_line
        self.auto_register = auto_register
        self.terminal_id = ""
        self.registered = False
        self._lock = threading.Lock()
        self._abort = threading.Event()
        self._pending: A.Apdu | None = None
        self.port_name = clean(port)
        self._port = opener(port, baudrate=baudrate, timeout=0.02, stopbits=stopbits)
        # bytes left on the line by a previous run (a terminal still repeating the frames
        # of a payment its cash register died in) are not an answer to anything we send
        flush = getattr(self._port, "reset_input_buffer", None)
        if flush is not None:
            flush()
        link_cls = TcpLink if self.tcp else SerialLink
        self.link: Link = link_cls(self._port, self.timers, self.port_name)

    # -- the BankTerminal interface ----------------------------------------------------

    def register(self) -> None:
        """Registration (06 00): this cash register controls payments, in this currency,
        and (``ecr_prints``) prints the receipts."""
        with self._lock:
            self._drain()
            self._register()

    def authorize(
        self, amount: int, *, on_status: StatusCallback | None = None, timeout: float = 120.0
    ) -> PaymentResult:
        """Charge ``amount`` Rials (an int; 12 digits at most)."""
        _check_amount(amount)
        return self._transaction(
            A.authorisation(amount, self.currency), amount, on_status, timeout, "authorisation"
        )

    def refund(
        self, amount: int, *, on_status: StatusCallback | None = None, timeout: float = 120.0
    ) -> PaymentResult:
        """Credit ``amount`` Rials to the customer's card (Refund, 06 31)."""
        _check_amount(amount)
        return self._transaction(
            A.refund(self.password, amount, self.currency), amount, on_status, timeout, "refund"
        )

    def reverse(
        self,
        receipt: int,
        amount: int,
        *,
        on_status: StatusCallback | None = None,
        timeout: float = 120.0,
    ) -> PaymentResult:
        """Cancel today's payment with receipt number ``receipt`` (Reversal, 06 30); the
        terminal reports the amount it gave back, which must be ``amount``."""
        _check_amount(amount)
        return self._transaction(
            A.reversal(self.password, receipt), amount, on_status, timeout, "reversal"
        )

    def _transaction(
        self,
        command: A.Apdu,
        amount: int,
        on_status: StatusCallback | None,
        timeout: float,
        what: str,
    ) -> PaymentResult:
        with self._lock:
            self._abort.clear()
            if self.auto_register and not self.registered:
                self._register()
            log.info("zvt %s: %s of %d Rials", self.port_name, what, amount)
            answer = self._command(command)
            if answer.negative:
                return _declined(answer.ins, terminal_id=self.terminal_id)
            return self._payment(amount, on_status, timeout)

    def last_result(self, timeout: float = 15.0) -> PaymentResult | None:
        """The last transaction as the terminal remembers it (Repeat Receipt, 06 20), for
        recovering a payment whose result a crash lost; None if the terminal has none or
        refuses."""
        with self._lock:
            self._drain()
            answer = self._command(A.repeat_receipt(self.password))
            if answer.negative:
                log.info("zvt %s: no last transaction to repeat (%02X)", self.port_name, answer.ins)
                return None
            return self._payment(None, None, timeout)

    def abort(self) -> None:
        """Cancel the payment in progress (it ends as approved=False, result 6C).  Safe to
        call from another thread or from ``on_status``.  With no payment in progress the
        terminal is sent Abort (06 B0) directly."""
        self._abort.set()
        if not self._lock.acquire(blocking=False):
            return  # a payment is running: it answers the next status with 06 B0
        try:
            self._abort.clear()
            answer = self._command(A.ECR_ABORT_APDU)
            if answer.negative:
                log.info("zvt %s: abort refused: %s", self.port_name, result_text(answer.ins)[0])
        finally:
            self._lock.release()

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> ZVTTerminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the protocol ------------------------------------------------------------------

    def _send(self, apdu: A.Apdu) -> None:
        log.debug("zvt %s > %s", self.port_name, apdu.describe())
        self.link.send(apdu.encode())

    def _receive(self, timeout: float) -> A.Apdu | None:
        if self._pending is not None:
            apdu, self._pending = self._pending, None
            return apdu
        raw = self.link.receive(timeout)
        if raw is None:
            return None
        try:
            apdu = A.Apdu.parse(raw)
        except A.ZVTError as e:
            raise self._violation(str(e)) from e
        log.debug("zvt %s < %s", self.port_name, apdu.describe())
        return apdu

    def _violation(self, what: str) -> DeviceError:
        return DeviceError(
            f"the bank terminal on {self.port_name} broke the ZVT protocol: {what} ({SPY_HINT})",
            fa=f"پایانهٔ بانکی روی {self.port_name} پیام نامعتبر فرستاد: {what} ({SPY_HINT_FA})",
        )

    def _silent(self, seconds: float, during: str) -> DeviceError:
        return DeviceError(
            f"the bank terminal on {self.port_name} sent nothing for {seconds:g}s {during}; "
            f"check the terminal and its cable before trying again ({SPY_HINT})",
            fa=f"پایانهٔ بانکی روی {self.port_name} به مدت {seconds:g} ثانیه پاسخی نداد. "
            f"پیش از تلاش دوباره پایانه و کابل را بررسی کنید ({SPY_HINT_FA})",
        )

    def _drain(self, quiet: float = 0.3, limit: float = 3.0) -> None:
        """Take the line over: the terminal may still be sending the frames of a
        transaction an earlier run of the cash register died in.  They are acknowledged
        (so the terminal finishes it and stops repeating them) and set aside until the
        line has been quiet for ``quiet`` seconds, so that they cannot be mistaken for the
        answer to the next command.  Not used on the payment path: a terminal that is
        idle is quiet, and the wait would be added to every sale."""
        self._pending = None
        deadline = time.monotonic() + limit
        quiet_from = time.monotonic()
        while time.monotonic() - quiet_from < quiet and time.monotonic() < deadline:
            raw = self.link.receive(min(quiet, max(0.0, deadline - time.monotonic())))
            if raw is None:
                continue
            quiet_from = time.monotonic()
            try:
                msg = A.Apdu.parse(raw)
            except A.ZVTError:
                log.info("zvt %s: set aside an unreadable stale frame", self.port_name)
                continue
            log.info("zvt %s: set aside a stale %s", self.port_name, msg.describe())
            if not msg.is_answer:
                self._send(A.ACK_APDU)

    def _command(self, apdu: A.Apdu) -> A.Apdu:
        """Send a command while the ECR holds master rights; the PT's 80/84 answer (T3)."""
        self._pending = None
        self._send(apdu)
        answer = self._receive(self.timers.t3)
        if answer is None:
            raise self._silent(self.timers.t3, f"after {A.NAMES.get(apdu.control, 'a command')}")
        if not answer.is_answer:
            # Some terminals start talking without the 80 00 00: take it as implied.
            log.info("zvt %s: %s without 80 00 00 first", self.port_name, answer.describe())
            self._pending = answer
            return A.ACK_APDU
        return answer

    def _register(self) -> None:
        config = A.CFG_INTERMEDIATE | A.CFG_ECR_PAYMENT | A.CFG_ECR_ADMIN
        if self.ecr_prints:
            config |= A.CFG_PRINT_LINES | A.CFG_ECR_PRINTS_PAYMENT
        cmd = A.registration(
            self.password, config, self.currency, chars_per_line=self.chars_per_line
        )
        answer = self._command(cmd)
        if answer.negative:
            raise self._refused(answer.ins)
        deadline = time.monotonic() + self.timers.t4
        while True:
            msg = self._receive(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise self._silent(self.timers.t4, "during registration")
            if msg.control == A.COMPLETION:
                self._send(A.ACK_APDU)
                bmps = A.parse_completion(msg.data)
                if 0x29 in bmps:
                    self.terminal_id = A.bcd_digits(bmps[0x29])
                if 0x49 in bmps and A.bcd_int(bmps[0x49]) != self.currency:
                    raise DeviceError(
                        f"the bank terminal on {self.port_name} is set up for currency "
                        f"{A.bcd_digits(bmps[0x49])}, not {self.currency:04d}",
                        fa=f"واحد پول پایانهٔ بانکی {A.bcd_digits(bmps[0x49])} است، "
                        f"نه {self.currency:04d}",
                    )
                self.registered = True
                log.info("zvt %s: registered, terminal %s", self.port_name, self.terminal_id)
                return
            if msg.control == A.PT_ABORT:
                self._send(A.ACK_APDU)
                raise self._refused(msg.data[0] if msg.data else 0xFF)
            if msg.is_answer:
                continue
            self._send(A.ACK_APDU if msg.control in _ACKED else A.nack(0x83))

    def _refused(self, code: int) -> DeviceError:
        en, fa = result_text(code)
        return DeviceError(
            f"the bank terminal on {self.port_name} refused registration: {en} ({code:02X})",
            fa=f"پایانهٔ بانکی ثبت صندوق را نپذیرفت: {fa}",
        )

    def _payment(  # noqa: PLR0912, PLR0915 - one branch per message the terminal may send
        self, amount: int | None, on_status: StatusCallback | None, timeout: float
    ) -> PaymentResult:
        start = time.monotonic()
        last = start
        status: A.StatusInfo | None = None
        lines: list[str] = []
        abort_sent = timed_out = False
        grace_until: float | None = None
        violation: str | None = None
        while True:
            now = time.monotonic()
            if not timed_out and now - start >= timeout:
                timed_out = True
                self._abort.set()
                grace_until = now + self.timers.abort_grace
                log.info("zvt %s: no result after %gs, asking to abort", self.port_name, timeout)
            if grace_until is not None and now >= grace_until:
                return _declined(
                    ABORTED,
                    f"the terminal did not finish within {timeout:g}s and did not confirm "
                    "the cancel; check its display and last receipt before charging again",
                    f"پایانه در {timeout:g} ثانیه کار را تمام نکرد و لغو را هم تأیید نکرد؛ "
                    "پیش از دریافت دوباره، صفحه و آخرین رسید پایانه را بررسی کنید",
                    terminal_id=self.terminal_id,
                    receipt_lines=tuple(lines),
                )
            ends = [last + self.timers.t4, grace_until if grace_until else start + timeout]
            msg = self._receive(max(0.0, min(ends) - now))
            if msg is None:
                if time.monotonic() - last >= self.timers.t4:
                    raise self._silent(self.timers.t4, "in the middle of a payment")
                continue
            last = time.monotonic()
            ctl = msg.control
            if ctl == A.INTERMEDIATE:
                code = msg.data[0] if msg.data else 0xFF
                self._tell(on_status, status_text(code))
                if self._abort.is_set() and not abort_sent:
                    abort_sent = True
                    log.info("zvt %s: answering the status with Abort (06 B0)", self.port_name)
                    self._send(A.ECR_ABORT_APDU)
                else:
                    self._send(A.ACK_APDU)
            elif ctl == A.STATUS_INFO:
                try:
                    status = A.parse_status_info(msg.data, self.encoding)
                except A.ZVTError as e:
                    # refusing the status makes the terminal reverse the payment
                    violation = f"unreadable Status-Information: {e}"
                    self._send(A.nack(0x9A))
                    continue
                if status.unparsed:
                    log.warning("zvt %s: %d bytes of unknown BMPs", self.port_name, status.unparsed)
                self._send(A.ACK_APDU)
            elif ctl in (A.PRINT_LINE, A.PRINT_BLOCK):
                parse = A.parse_print_line if ctl == A.PRINT_LINE else A.parse_print_block
                try:
                    lines += parse(msg.data, self.encoding)[1]
                except A.ZVTError as e:
                    log.warning("zvt %s: unreadable receipt text: %s", self.port_name, e)
                self._send(A.ACK_APDU)
            elif ctl in (A.COMPLETION, A.PT_ABORT):
                self._send(A.ACK_APDU)
                if violation is not None:
                    raise self._violation(violation + "; check the terminal's last receipt")
                if ctl == A.PT_ABORT:
                    code = msg.data[0] if msg.data else ABORTED
                    return self._failed(code, status, lines, abort_sent, timed_out, timeout)
                if status is not None and status.result not in (None, 0):
                    return self._failed(status.result, status, lines, False, False, timeout)
                if amount is None and (status is None or not status.amount):
                    # a repeated receipt must carry the transaction's result: a bare
                    # completion is a stale frame of something else, not an approval
                    raise self._violation("a repeated receipt without its Status-Information")
                return self._approved(amount, status, lines)
            elif msg.is_answer:
                if msg.negative and abort_sent:
                    log.info("zvt %s: abort refused (%02X)", self.port_name, msg.ins)
            else:
                log.info("zvt %s: unexpected %s, refused", self.port_name, msg.describe())
                self._send(A.nack(0x83))

    def _tell(self, on_status: StatusCallback | None, text: tuple[str, str]) -> None:
        if on_status is None:
            return
        try:
            on_status(f"{text[0]} / {text[1]}")
        except Exception:  # a broken display must not leave the terminal mid-protocol
            log.exception("zvt %s: on_status failed", self.port_name)

    def _fields(self, status: A.StatusInfo | None, lines: list[str]) -> dict[str, Any]:
        s = status or A.StatusInfo()
        card = s.card_name or (card_type_name(s.card_type) if s.card_type is not None else "")
        return {
            "terminal_id": s.terminal_id or self.terminal_id,
            "trace": s.trace or 0,
            "receipt": s.receipt or 0,
            "date": s.date,
            "time": s.time,
            "card_type": card,
            "auth_code": s.auth_code,
            "receipt_lines": tuple(lines),
        }

    def _approved(
        self, amount: int | None, status: A.StatusInfo | None, lines: list[str]
    ) -> PaymentResult:
        charged = status.amount if status is not None and status.amount else (amount or 0)
        if amount is not None and charged != amount:
            log.warning(
                "zvt %s: asked %d Rials, terminal charged %d", self.port_name, amount, charged
            )
        return PaymentResult(True, charged, 0, *APPROVED, **self._fields(status, lines))

    def _failed(
        self,
        code: int,
        status: A.StatusInfo | None,
        lines: list[str],
        by_ecr: bool,
        timed_out: bool,
        timeout: float,
    ) -> PaymentResult:
        en, fa = result_text(code)
        if timed_out:
            en = f"no result from the terminal within {timeout:g}s; the payment was cancelled"
            fa = f"پایانه در {timeout:g} ثانیه نتیجه‌ای نداد؛ پرداخت لغو شد"
        elif by_ecr and code == ABORTED:
            en, fa = "payment cancelled at the cash register", "پرداخت از سوی صندوق لغو شد"
        elif code == ABORTED:
            en = "payment cancelled at the terminal (cancel key or time-out)"
            fa = "پرداخت در پایانه لغو شد (دکمهٔ لغو یا پایان زمان)"
        else:
            en, fa = f"declined: {en}", f"رد شد: {fa}"
        log.info("zvt %s: payment not approved (%02X): %s", self.port_name, code, en)
        return PaymentResult(False, 0, code, en, fa, **self._fields(status, lines))


# Messages the PT may send outside a payment that the ECR simply acknowledges.
_ACKED = (A.INTERMEDIATE, A.STATUS_INFO, A.PRINT_LINE, A.PRINT_BLOCK)
