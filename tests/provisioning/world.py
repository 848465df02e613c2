"""Head office for the provisioning tests, as it runs in production: a PKI, the Mosquitto
configuration ``firmware_tools broker-config`` generates (TLS, client certificates, the
ACL) loaded by a real Mosquitto, the reconciler service on TLS with its own certificate,
a rules signing key and a signed bundle.  Terminals are set up with the real commands."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud_broker.ledger.db import Database
from cloud_broker.local_broker import LocalMosquitto, free_port
from edge.protocol.mqtt import BrokerConfig
from firmware_tools import pki
from tests.conftest import ROOT, RULES_PATH
from tests.helpers.wait import until

TENANT = "hypershahr"
HO_SERVICE = "head-office"  # the reconciler's certificate
HO_TOOLS = "ho-tools"  # a second head-office identity, for the tests' own clients


def run(
    module: str, *args: str, cwd: Path, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` as a technician or an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def wait(cond: Callable[[], Any], timeout: float = 20.0) -> bool:
    return until(cond, timeout)


class World:
    def __init__(self, base: Path) -> None:
        self.dir = base
        self.pki = base / "pki"
        ca_key, ca_cert = pki.make_ca("test loyalty CA")
        pki.write_key(self.pki / "ca.key", ca_key)
        pki.write_cert(self.pki / "ca.pem", ca_cert)
        self.ca = self.pki / "ca.pem"
        self.port = free_port()
        r = run(
            "firmware_tools", "pki", "server", "--ca-dir", str(self.pki), "--cn", "localhost",
            "--host", "localhost", "--host", "127.0.0.1", "--out", str(self.pki / "broker"),
            cwd=base,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        conf_dir = base / "mosquitto"
        args = [
            "broker-config", "--tenant", TENANT, "--out", str(conf_dir),
            "--cafile", str(self.ca), "--certfile", str(self.pki / "broker.pem"),
            "--keyfile", str(self.pki / "broker.key"), "--port", str(self.port),
            "--bind", "127.0.0.1", "--head-office", HO_SERVICE, "--head-office", HO_TOOLS,
            "--no-persistence", "--log-file", str(conf_dir / "mosquitto.log"),
        ]  # fmt: skip
        if os.geteuid() == 0:
            args += ["--user", "root"]  # root would drop to "mosquitto", who cannot read tmp
        r = run("firmware_tools", *args, cwd=base)
        assert r.returncode == 0, r.stderr
        self.conf_text = (conf_dir / "loyalty.conf").read_text()
        self.acl_text = (conf_dir / "loyalty.acl").read_text()
        self.broker = LocalMosquitto(conf_dir, port=self.port, config_text=self.conf_text)
        self.broker.log_file = conf_dir / "mosquitto.log"
        self.broker.start()
        self.url = f"mqtts://127.0.0.1:{self.port}"
        self.ledger_url = f"sqlite:///{base}/ledger.db"
        self.db = Database(self.ledger_url)
        # head office's rules key and a signed bundle
        r = run("firmware_tools", "rules", "keygen", "--key", "ho-rules.key", "--pub",
                "rules.pub.pem", cwd=base)  # fmt: skip
        assert r.returncode == 0, r.stderr
        r = run("firmware_tools", "rules", "sign", str(RULES_PATH), "--key", "ho-rules.key",
                "--out", "rules.bundle", cwd=base)  # fmt: skip
        assert r.returncode == 0, r.stderr
        self.rules_pub = base / "rules.pub.pem"
        self.rules_bundle = base / "rules.bundle"
        self.hq = self._serve()

    def _serve(self) -> subprocess.Popen[bytes]:
        cert, key = self.cert(HO_SERVICE)
        log = (self.dir / "serve.log").open("ab")
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloud_broker",
                "--ledger",
                self.ledger_url,
                "serve",
                "--broker",
                self.url,
                "--ca",
                str(self.ca),
                "--cert",
                str(cert),
                "--key",
                str(key),
                "--screen-workers",
                "0",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        assert p.stdout is not None
        line = p.stdout.readline().strip()
        assert line == b"serving", (self.dir / "serve.log").read_text()[-3000:]
        return p

    def cert(self, cn: str) -> tuple[Path, Path]:
        """A client certificate and key for ``cn`` (made once)."""
        prefix = self.pki / cn
        if not prefix.with_name(cn + ".pem").exists():
            ca_key, ca_cert = pki.load_ca(self.pki)
            key, cert = pki.issue(ca_key, ca_cert, cn)
            pki.write_pair(prefix, key, cert)
        return prefix.with_name(cn + ".pem"), prefix.with_name(cn + ".key")

    def broker_cfg(self, cn: str) -> BrokerConfig:
        cert, key = self.cert(cn)
        return BrokerConfig.from_url(
            self.url, ca_file=str(self.ca), cert_file=str(cert), key_file=str(key), keepalive=5
        )

    def token(self, store: str = "s1", *extra: str) -> str:
        r = run(
            "cloud_broker", "--ledger", self.ledger_url, "enroll-token", "--tenant", TENANT,
            "--store", store, *extra, cwd=self.dir,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def init(self, device: str, *extra: str, store: str = "s1") -> Path:
        """``firmware_tools init`` for a terminal with its TLS certificate; its config path."""
        cert, key = self.cert(device)
        config = self.dir / device / "edge.toml"
        r = run(
            "firmware_tools", "init", "--config", str(config), "--tenant", TENANT,
            "--store", store, "--device", device, "--broker", self.url, "--ca", str(self.ca),
            "--cert", str(cert), "--tls-key", str(key), "--rules-key", str(self.rules_pub),
            "--rules-bundle", str(self.rules_bundle), "--pos-listen", "127.0.0.1:0", *extra,
            cwd=self.dir,
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        return config

    def tool(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run("firmware_tools", *args, cwd=self.dir, stdin=stdin)

    def q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.db.read(sql, params)]

    def close(self) -> None:
        self.hq.terminate()
        try:
            self.hq.wait(15)
        except subprocess.TimeoutExpired:
            self.hq.kill()
        self.db.close()
        self.broker.stop()
