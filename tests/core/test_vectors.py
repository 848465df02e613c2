"""Every rules test vector, on CPython and on the MicroPython Unix port, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_py

VECTORS = sorted(p for p in (ROOT / "tests" / "vectors" / "rules").iterdir() if p.is_dir())


def test_there_are_vectors_for_every_command() -> None:
    cmds = {v.joinpath("args").read_text("utf-8").split("\n")[0] for v in VECTORS}
    assert cmds == {"quote", "refund", "check"}
    assert len(VECTORS) >= 10


@pytest.mark.parametrize("interp", ["cpython", "micropython"])
@pytest.mark.parametrize("case", VECTORS, ids=[v.name for v in VECTORS])
def test_vector(case: Path, interp: str) -> None:
    args = [a for a in case.joinpath("args").read_text("utf-8").split("\n") if a]
    res = run_py(interp, ["-m", "edge.rules_cli", *args])
    code_file = case / "expected.code"
    want_code = int(code_file.read_text()) if code_file.exists() else 0
    err_file = case / "expected.err"
    assert res.returncode == want_code, res.stderr.decode("utf-8", "replace")
    assert res.stdout == case.joinpath("expected.out").read_bytes()
    assert res.stderr == (err_file.read_bytes() if err_file.exists() else b"")
