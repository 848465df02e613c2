"""./dev demo at this stage: quotes printed for people, exit 0 only when consistent."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_demo_prints_bilingual_quotes_and_succeeds() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "edge.demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "all quotes consistent" in out
    assert "PAYABLE" in out and "قابل پرداخت" in out
    assert "+989121234567" in out  # typed in Persian digits, normalised
    assert out.count("=" * 78) == 5
