"""A provisioned store for agent tests: keys, a signed rules bundle, a configuration,
simulated devices on pseudo-terminals, and the agent as a real process (``python -m edge
run``) driven through its POS API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.protocol import bundles, keys
from hw_sim.device import SimDevice
from hw_sim.transport import PtyServer
from tests.conftest import ROOT, RULES_PATH
from tests.helpers.wait import until


def rules_doc(version: int = 1, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(RULES_PATH.read_text("utf-8"))
    doc["version"] = version
    doc.update(changes)
    return doc


def unit_environment() -> dict[str, str]:
    """The ``Environment=`` lines of the agent's systemd unit (edge/data)."""
    unit = ROOT / "edge" / "data" / "loyalty-edge.service"
    out = {}
    for line in unit.read_text().splitlines():
        if line.startswith("Environment="):
            k, _, v = line.removeprefix("Environment=").partition("=")
            out[k] = v
    return out


class Store:
    def __init__(
        self,
        tmp: Path,
        *,
        device: str = "pos-1",
        store: str = "s1",
        tenant: str = "hypershahr",
        broker_url: str | None = None,
        ho_key: Ed25519PrivateKey | None = None,
        rules: dict[str, Any] | None = None,
        bank_timeout: int = 10,
        data_dir: Path | None = None,
        outbox: dict[str, int] | None = None,
        display: dict[str, Any] | None = None,
    ) -> None:
        self.dir = tmp / device
        self.dir.mkdir(parents=True)
        self.device, self.store, self.tenant = device, store, tenant
        self.key = keys.generate(self.dir / "device.key")
        self.ho_key = ho_key or Ed25519PrivateKey.generate()
        (self.dir / "rules.pub.pem").write_text(keys.public_pem(self.ho_key))
        (self.dir / "rules.bundle").write_bytes(bundles.sign(rules or rules_doc(), self.ho_key))
        self.broker_url = broker_url
        self.sims: dict[str, PtyServer] = {}
        self.devices: dict[str, tuple[str, str, str, dict[str, Any]]] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = self.dir / "agent.log"
        self.bank_timeout = bank_timeout
        self.data_dir = data_dir or self.dir / "data"
        self.outbox = outbox or {}
        self.display = display or {}  # the [display] section: listen, kiosk, idle_s

    @property
    def public_key(self) -> bytes:
        return keys.public_raw(self.key)

    def add_sim(
        self, name: str, kind: str, driver: str, sim: SimDevice, **options: Any
    ) -> SimDevice:
        srv = PtyServer(sim, self.dir / f"tty-{name}").start()
        self.sims[name] = srv
        self.devices[name] = (kind, driver, str(self.dir / f"tty-{name}"), options)
        return sim

    def add_port(self, name: str, kind: str, driver: str, port: str, **options: Any) -> None:
        self.devices[name] = (kind, driver, port, options)

    def write_config(self) -> Path:
        lines = [
            "[device]",
            f'tenant = "{self.tenant}"',
            f'store = "{self.store}"',
            f'id = "{self.device}"',
            'key = "device.key"',
            f'data_dir = "{self.data_dir}"',
            "utc_offset_minutes = 210",
            "",
            "[head_office]",
            'rules_public_key = "rules.pub.pem"',
            'rules_bundle = "rules.bundle"',
        ]
        if self.broker_url:
            lines.append(f'broker = "{self.broker_url}"')
        lines += [
            "",
            "[pos_api]",
            'listen = "127.0.0.1:0"',
            "",
            "[checkout]",
            f"bank_timeout_s = {self.bank_timeout}",
        ]
        if self.outbox:
            lines += ["", "[outbox]", *(f"{k} = {v}" for k, v in self.outbox.items())]
        if self.display:
            lines += ["", "[display]", *(f"{k} = {json.dumps(v)}" for k, v in self.display.items())]
        for name, (kind, driver, port, opts) in self.devices.items():
            lines += [
                "",
                f"[devices.{name}]",
                f'kind = "{kind}"',
                f'driver = "{driver}"',
                f'port = "{port}"',
            ]
            if opts:
                lines.append(
                    "options = {"
                    + ", ".join(f"{k} = {json.dumps(v)}" for k, v in opts.items())
                    + "}"
                )
        path = self.dir / "edge.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, env: dict[str, str] | None = None, timeout: float = 20) -> None:
        """The agent as systemd runs it: with the unit's Environment= settings."""
        cfg = self.write_config()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(cfg)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.log.open("ab"),
            env={**os.environ, **unit_environment(), **(env or {})},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("listening "):
            self.proc.wait(timeout)
            raise RuntimeError(f"agent did not start: {line!r}\n{self.log.read_text()[-3000:]}")
        self.url = line.split(" ", 1)[1]

    def api(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 60
    ) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGTERM)
        for s in self.sims.values():
            s.stop()

    def wait(self, cond: Any, timeout: float = 30) -> bool:
        return until(cond, timeout)

    def status(self) -> dict[str, Any]:
        return self.api("GET", "/v1/status")[1]
