"""Numbers for people: Latin groups of three for English, Persian digits for Persian."""

from __future__ import annotations

import pytest

from edge.core.text import group, num_fa, pct_fa, rials_en, rials_fa


@pytest.mark.parametrize(
    ("n", "en", "fa"),
    [
        (0, "0", "۰"),
        (7, "7", "۷"),
        (42, "42", "۴۲"),
        (999, "999", "۹۹۹"),
        (1000, "1,000", "۱٬۰۰۰"),
        (1001, "1,001", "۱٬۰۰۱"),
        (50_070, "50,070", "۵۰٬۰۷۰"),
        (1_234_567, "1,234,567", "۱٬۲۳۴٬۵۶۷"),
        (-1_234_567, "-1,234,567", "-۱٬۲۳۴٬۵۶۷"),
        (-5, "-5", "-۵"),
        (10**15, "1,000,000,000,000,000", "۱٬۰۰۰٬۰۰۰٬۰۰۰٬۰۰۰٬۰۰۰"),
    ],
)
def test_grouping(n: int, en: str, fa: str) -> None:
    assert group(n) == en
    assert num_fa(n) == fa
    assert rials_en(n) == en + " IRR"
    assert rials_fa(n) == fa + " ریال"


def test_every_number_below_a_million_agrees_with_format() -> None:
    for n in range(0, 1_000_000, 7):
        assert group(n) == f"{n:,}"
        assert num_fa(n) == f"{n:,}".translate(str.maketrans("0123456789,", "۰۱۲۳۴۵۶۷۸۹٬"))


def test_percent() -> None:
    assert pct_fa(1250) == "۱۲٫۵٪"
