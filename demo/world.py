"""The demo's world: a broker, head office, and stores set up the way a chain sets them up.

Head office makes its rules key and signs the rules with ``firmware_tools rules``, runs the
reconciler (``python -m cloud_broker serve``) on a SQLite ledger, and issues one enrolment
token per store (``cloud_broker enroll-token``); its console (``cloud_broker console``) runs
beside the reconciler with one admin.  Each store's terminal is provisioned with
``firmware_tools init`` (device key, configuration, devices attached), ``enroll`` (the token,
over MQTT) and ``selftest``, then runs the agent (``python -m edge run``) with simulated
devices on pseudo-terminals: a PN532 NFC reader, an RDM6300 RFID reader, a QR scanner, a
keypad and a ZVT bank terminal.  Everything happens in real processes with real commands."""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cloud_broker.club import changes, operators
from cloud_broker.club import stores as club_stores
from cloud_broker.club.errors import ClubError
from cloud_broker.ledger.db import Database
from cloud_broker.local_broker import free_port
from demo.link import Link
from edge.errors import LoyaltyError
from edge.protocol.mqtt import BrokerConfig
from hw_sim.device import SimDevice
from hw_sim.keypad import KeypadSim
from hw_sim.pn532 import PN532Sim
from hw_sim.rdm6300 import RDM6300Sim
from hw_sim.scanner import ScannerSim
from hw_sim.transport import PtyServer
from hw_sim.zvt import ZVTSim

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "edge" / "data" / "rules.json"
TENANT = "hypershahr"
START_TIMEOUT = 30.0  # seconds a service may take to say it is ready


class DemoError(LoyaltyError):
    """A step of setting up the demo failed; the message says which and why."""


def tool(
    module: str, *args: str, cwd: Path, timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS``, as an operator or a technician types it; with ``check``,
    a failure is a DemoError showing its output."""
    r = subprocess.run(  # noqa: S603 - our own modules
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    if check and r.returncode != 0:
        raise DemoError(
            f"python -m {module} {' '.join(args[:2])} failed ({r.returncode}):\n"
            + (r.stdout + r.stderr)[-2000:]
        )
    return r


def _first_line(p: subprocess.Popen[bytes], timeout: float) -> str | None:
    """The first line ``p`` writes to stdout; None if it wrote none within ``timeout``
    (or exited first)."""
    assert p.stdout is not None
    fd, buf = p.stdout.fileno(), b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf += chunk
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def _spawn(
    args: list[str], log: Path, ready: str, what: str, start_timeout: float = START_TIMEOUT
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a service whose first stdout line announces it is ready; (process, that line).
    One that does not say so within ``start_timeout`` seconds is stopped: DemoError."""
    with log.open("ab") as err:  # the child keeps its own copy
        p = subprocess.Popen(  # noqa: S603 - our own modules
            [sys.executable, "-m", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    line = _first_line(p, start_timeout)
    if line is None or not line.startswith(ready):
        _stop(p)
        said = f"said {line!r}" if line is not None else f"said nothing in {start_timeout:g} s"
        raise DemoError(f"{what} did not start ({said}); see {log}:\n{log.read_text()[-2000:]}")
    return p, line


def _stop(p: subprocess.Popen[bytes] | None) -> None:
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


class HeadOffice:
    def __init__(self, workdir: Path, broker_url: str) -> None:
        self.dir = workdir / "head-office"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.broker_url = broker_url
        self.ledger_url = f"sqlite:///{self.dir / 'ledger.db'}"
        self.rules_pub = self.dir / "rules.pub.pem"
        self.rules_bundle = self.dir / "rules.bundle"
        self.proc: subprocess.Popen[bytes] | None = None
        self.console: subprocess.Popen[bytes] | None = None
        self.console_url = ""
        self.console_password = secrets.token_urlsafe(12)  # the demo's admin, this run only
        self._db: Database | None = None

    def setup(self) -> None:
        self.cli(
            "firmware_tools", "rules", "keygen", "--key", "rules.key", "--pub", "rules.pub.pem"
        )
        self.cli("firmware_tools", "rules", "sign", str(RULES), "--key", "rules.key", "--out",
                 "rules.bundle")  # fmt: skip

    def start(self) -> None:
        self.proc, _ = _spawn(
            ["cloud_broker", "--ledger", self.ledger_url, "serve", "--broker", self.broker_url],
            self.dir / "serve.log",
            "serving",
            "head office (cloud_broker serve)",
        )

    def start_console(self) -> None:
        """The console beside the reconciler, with one admin (``operators add``, the
        password on stdin as a script gives it)."""
        r = subprocess.run(  # noqa: S603 - our own module
            [sys.executable, "-m", "cloud_broker", "--ledger", self.ledger_url, "operators",
             "add", "admin", "--role", "admin", "--name", "مدیر باشگاه", "--password-stdin"],
            cwd=self.dir, input=self.console_password + "\n", capture_output=True, text=True,
            timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
        )  # fmt: skip
        if r.returncode != 0:
            raise DemoError(f"operators add failed: {(r.stdout + r.stderr)[-1000:]}")
        self.console, line = _spawn(
            ["cloud_broker", "--ledger", self.ledger_url, "console", "--listen",
             f"127.0.0.1:{free_port()}", "--secret-file", str(self.dir / "console.secret")],
            self.dir / "console.log",
            "console at",
            "head office's console (cloud_broker console)",
        )  # fmt: skip
        self.console_url = line.split()[-1].rstrip("/")

    def name_people(self, stores: list[tuple[str, str, str]], people: dict[str, str]) -> int:
        """Store names and members' names, entered as head office's staff would (through
        cloud_broker.club, audited as ``demo``); the members named."""
        actor = operators.command_line("demo")
        for store, fa, en in stores:
            club_stores.save_store(self.db, actor, store, fa, en, "تهران", TENANT)
        named = 0
        for member, name in people.items():
            try:
                changes.edit_profile(self.db, actor, member, name, "", "", False)
                named += 1
            except ClubError:
                pass  # not at head office (a visit that never reached it): the checks say so
        return named

    def cli(self, module: str, *args: str) -> str:
        return tool(module, *args, cwd=self.dir).stdout

    def token(self, store: str) -> str:
        return self.cli("cloud_broker", "--ledger", self.ledger_url, "enroll-token", "--tenant",
                        TENANT, "--store", store).strip()  # fmt: skip

    def ledger_check(self) -> tuple[int, str]:
        r = tool("cloud_broker", "--ledger", self.ledger_url, "ledger", "check", cwd=self.dir,
                 timeout=120, check=False)  # fmt: skip
        return r.returncode, (r.stdout + r.stderr).strip()

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.ledger_url)
        return self._db

    def q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.db.read(sql, params)]

    def count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        rows = self.q(sql, params)
        return int(rows[0][0]) if rows else 0

    def stop(self) -> None:
        _stop(self.console)
        _stop(self.proc)
        if self._db is not None:
            self._db.close()
            self._db = None


# The simulated devices answer from this process's threads and the agent from its own, and
# a loaded machine can hold either up for seconds: longer than a real PN532 takes to ACK a
# command (about a millisecond; its driver waits 0.1 s by default), longer than the
# simulated bank terminal's 1 s wait for the cash register's ACK (it drops the payment
# after three repeats) and 5 s wait for its reply.  Only an ACK or a reply that is late
# waits longer, so the normal path is as fast as before.
SIM_OPTIONS = ["--option", "nfc.ack_timeout=2"]  # seconds
BANK_ACK_TIMEOUT_S, BANK_REPLY_TIMEOUT_S = 5.0, 30.0


class StoreTerminal:
    """One store's terminal: its simulated devices, its configuration and its agent."""

    def __init__(
        self, workdir: Path, index: int, broker_url: str, via_link: bool, suffix: str = ""
    ) -> None:
        self.store = f"s{index + 1}"
        self.device = f"pos-{index + 1}{suffix}"
        self.dir = workdir / "stores" / self.store
        self.dir.mkdir(parents=True, exist_ok=True)
        self.link: Link | None = None
        if via_link:
            broker = BrokerConfig.from_url(broker_url)
            self.link = Link(broker.host, broker.port)
        self.broker_url = self.link.url if self.link else broker_url
        self.nfc = PN532Sim()
        self.rfid = RDM6300Sim(interval=0.03)
        self.qr = ScannerSim()
        self.keypad = KeypadSim()
        self.bank = ZVTSim(
            step=0.002,
            receipts=True,
            terminal_id=f"2900{index + 1:04d}",
            ack_timeout=BANK_ACK_TIMEOUT_S,
            reply_timeout=BANK_REPLY_TIMEOUT_S,
        )
        self._sims: list[tuple[str, str, str, SimDevice]] = [
            ("nfc", "card", "pn532", self.nfc),
            ("rfid", "card", "rdm6300", self.rfid),
            ("qr", "card", "scanner", self.qr),
            ("keypad", "phone", "keypad", self.keypad),
            ("bank", "bank", "zvt", self.bank),
        ]
        self._servers: list[PtyServer] = []
        self.config = self.dir / "edge.toml"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = self.dir / "agent.log"
        self.selftest = ""
        self.display_url = ""

    def provision(self, ho: HeadOffice) -> None:
        """What the technician does on site: init, enroll with head office's token, selftest."""
        attach: list[str] = []
        for name, kind, driver, sim in self._sims:
            link = self.dir / f"tty-{name}"
            self._servers.append(PtyServer(sim, link).start())
            attach += ["--attach", f"{name}:{kind}:{driver}:{link}"]
        token = ho.token(self.store)
        self.cli("init", "--config", str(self.config), "--tenant", TENANT, "--store",
                 self.store, "--device", self.device, "--broker", self.broker_url,
                 "--rules-key", str(ho.rules_pub), "--rules-bundle", str(ho.rules_bundle),
                 "--pos-listen", "127.0.0.1:0", *attach, *SIM_OPTIONS)  # fmt: skip
        if self.store == "s1":  # one store shows its customer display (docs/customer-display.md)
            port = free_port()
            with self.config.open("a") as f:
                f.write(f'\n[display]\nlisten = "127.0.0.1:{port}"\n')
            self.display_url = f"http://127.0.0.1:{port}/"
        self.cli("enroll", "--config", str(self.config), "--token", token, "--timeout", "30")
        self.selftest = self.cli("selftest", "--config", str(self.config), "--wait", "0")

    def cli(self, *args: str) -> str:
        return tool("firmware_tools", *args, cwd=self.dir).stdout

    def start(self) -> None:
        self.proc, line = _spawn(
            ["edge", "run", "--config", str(self.config)],
            self.log,
            "listening ",
            f"the agent of {self.store}",
        )
        self.url = line.split(" ", 1)[1]

    def api(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 60
    ) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 - our own agent on 127.0.0.1
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
                return int(r.status), json.loads(r.read())
        except urllib.error.HTTPError as e:
            return int(e.code), json.loads(e.read())

    def status(self) -> dict[str, Any]:
        return self.api("GET", "/v1/status", timeout=10)[1]

    def charged(self) -> list[dict[str, Any]]:
        """What the bank terminal really charged: the ground truth of money."""
        return [dict(h) for h in self.bank.history if h.get("charged")]

    def stop(self) -> None:
        _stop(self.proc)
        for s in self._servers:
            s.stop()
        if self.link is not None:
            self.link.close()
