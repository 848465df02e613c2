"""The edge.rules_cli command line refuses malformed option files with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RULES_PATH, run_py

VECTORS = Path("tests") / "vectors" / "rules"
SALE = VECTORS / "01-nowruz-family-shop" / "expected.out"
BASKET = VECTORS / "05-coupon-rejections" / "basket.json"
AT = "2026-06-01T12:00:00+03:30"


@pytest.mark.parametrize("interp", ["cpython", "micropython"])
@pytest.mark.parametrize(
    ("option", "content", "message"),
    [
        ("prior", [{"line": 1, "qty": 1}], "--prior must be a JSON object"),
        ("prior", {"line": 1, "qty": 1}, "--prior must be a JSON object"),
        ("used-codes", {"WELCOME10": 1}, "--used-codes must be a JSON list"),
        ("used-codes", "WELCOME10", "--used-codes must be a JSON list"),
        ("used-codes", 7, "--used-codes must be a JSON list"),
        ("used-codes", ["WELCOME10", 7], "--used-codes: every code must be text"),
    ],
)
def test_wrong_option_files_are_usage_errors(
    tmp_path: Path, interp: str, option: str, content: object, message: str
) -> None:
    f = tmp_path / "opt.json"
    f.write_text(json.dumps(content), "utf-8")
    if option == "prior":
        args = ["refund", "--sale", str(SALE), "--request", str(f), "--prior", str(f), "--void"]
    else:
        args = ["quote", "--rules", str(RULES_PATH), "--basket", str(BASKET), "--at", AT]
        args += ["--used-codes", str(f)]
    res = run_py(interp, ["-m", "edge.rules_cli", *args])
    assert res.returncode == 2, res.stderr
    assert res.stdout == b""
    assert res.stderr.decode().startswith("edge.rules_cli: " + message)
