"""The record's nested-map keys have one set of names (edge.core.record), and
docs/protocol.md's "Field names" table is that set: same names, same keys, nothing
missing on either side."""

from __future__ import annotations

import re

from edge.core import record as R
from tests.conftest import ROOT

PREFIXES = ("T_", "M_", "A_", "P_", "W_", "L_", "B_", "O_", "AP_", "EN_", "ADJ_", "HB_")


def _doc_table() -> dict[str, int]:
    text = (ROOT / "docs" / "protocol.md").read_text("utf-8")
    section = text.split("### Field names", 1)[1].split("\nLimits:", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| [^|]+ \| (\d+) \|", section, re.MULTILINE)
    return {name: int(key) for name, key in rows}


def test_the_names_in_the_code_are_the_documented_ones() -> None:
    code = {
        n: v
        for n, v in vars(R).items()
        if n.startswith(PREFIXES) and n.isupper() and type(v) is int
    }
    doc = _doc_table()
    assert len(code) >= 50
    assert code == doc


def test_the_builders_use_the_names() -> None:
    body = R.refund_body(
        {
            "gross": 10,
            "discount": 1,
            "wallet_returned": 2,
            "refund_amount": 5,
            "withheld": 2,
            "points_reversed": 3,
            "points_returned": 4,
            "points_forgiven": 1,
            "wallet_reversed": 6,
            "wallet_forgiven": 0,
            "lines": [],
        },
        "pos-1",
        7,
        b"\x01" * 32,
    )
    a, p, w, o = body[R.K_AMOUNTS], body[R.K_POINTS], body[R.K_WALLET], body[R.K_ORIG]
    assert (a[R.A_GROSS], a[R.A_PAID], a[R.A_WITHHELD]) == (10, 5, 2)
    assert (p[R.P_EARNED], p[R.P_REDEEMED], p[R.P_FORGIVEN]) == (3, 4, 1)
    assert R.W_FORGIVEN not in w  # zero is left out
    assert (o[R.O_DEVICE], o[R.O_SEQ]) == ("pos-1", 7)
    assert R.bank_field({"terminal_id": "1", "amount": 9}) == {R.B_TERMINAL: "1", R.B_AMOUNT: 9}
