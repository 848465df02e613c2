"""Write expected.out/.err/.code for the named vector directories (CPython run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def main(names: list[str]) -> None:
    for name in names:
        case = HERE / name
        args = case.joinpath("args").read_text("utf-8").split("\n")
        res = subprocess.run(
            [sys.executable, "-m", "edge.rules_cli", *[a for a in args if a]],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        case.joinpath("expected.out").write_bytes(res.stdout)
        if res.stderr:
            case.joinpath("expected.err").write_bytes(res.stderr)
        if res.returncode:
            case.joinpath("expected.code").write_text(f"{res.returncode}\n")
        print(name, res.returncode)


if __name__ == "__main__":
    main(sys.argv[1:])
