"""The public API in a test: a ledger on both databases with members, an online store
device, the API process, keys of each scope."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud_broker.api import keys, online
from cloud_broker.club.operators import Operator
from cloud_broker.local_broker import free_port
from tests.cloud.conftest import ho, ledger_url, pos  # noqa: F401 - re-exported fixtures
from tests.conftest import ROOT
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal
from tests.helpers.wait import until

ADMIN = Operator(1, "admin", "Admin", "admin")
ALI = "+989121234567"
REZA = "+989351112233"


class ApiServer:
    """``python -m cloud_broker api serve`` with an online store device."""

    def __init__(self, ledger: str, tmp: Path, online: bool = True) -> None:
        self.dir = tmp / "online"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = tmp / "api.log"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cloud_broker", "--ledger", ledger, "api", "serve",
             "--listen", f"127.0.0.1:{port}",
             *(["--online-dir", str(self.dir), "--online-device", "online-1"] if online else [])],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.log.open("ab"),
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert line.startswith("api at"), self.log.read_text()

        def up() -> bool:
            try:
                return httpx.get(self.url + "/v1/openapi.json", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert until(up, 30), self.log.read_text()

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {key}"})  # fmt: skip

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def seed(ho: HO, tmp: Path) -> Terminal:  # noqa: F811 - not the fixture: a function of it
    """Two members with points, the online store device registered."""
    t = Terminal(tmp, "pos-1", "s1")
    ho.register(t)
    ho.feed(t, [t.enroll(ALI), t.sale(ALI, 2_000_000, earned=200), t.enroll(REZA)])
    online.setup(ho.db, tmp / "online", "hypershahr", "web", "online-1")
    return t


@pytest.fixture
def api(ho: HO, tmp_path: Path) -> Iterator[ApiServer]:  # noqa: F811 - the re-exported fixture
    seed(ho, tmp_path)
    server = ApiServer(ho.db.url, tmp_path)
    yield server
    server.stop()


@pytest.fixture
def full_key(ho: HO) -> str:  # noqa: F811 - the re-exported fixture
    return keys.create(ho.db, ADMIN, "e-shop", list(keys.SCOPES))[1]
