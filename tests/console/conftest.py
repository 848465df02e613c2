"""Console fixtures: a ledger with members in it, the console process, a Chromium."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cloud.conftest import ho, ledger_url  # noqa: F401 - the ledger on both databases
from tests.helpers.console import Console
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal

ALI = "+989121234567"
CARD = "04A1B2C3D4"


def seed(h: HO, tmp: Path) -> Terminal:
    """Two phone members and a card member, with sales, in store s1."""
    from edge.core import record as R
    from tests.helpers.terminal import sale_body

    t = Terminal(tmp)
    t.time.to_day(int((time.time() + 210 * 60) // 86400))  # today in Tehran
    h.register(t)
    h.feed(
        t,
        [
            t.enroll(ALI),
            t.sale(ALI, 2_000_000, earned=200, cashback=10_000),
            t.sale(ALI, 1_000_000, earned=100),
            t.sale("+989351112233", 500_000, earned=50),
            t.outbox.commit(
                "sale", sale_body(700_000, earned=70), member=R.member_field("card", CARD),
                charged=True,
            ),
        ],
    )  # fmt: skip
    return t


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[HO]:
    h = HO(f"sqlite:///{tmp_path}/ledger.db")
    seed(h, tmp_path)
    yield h
    h.close()


@pytest.fixture
def console(ledger: HO, tmp_path: Path) -> Iterator[Console]:
    c = Console(ledger.db.url, tmp_path)
    yield c
    c.stop()
