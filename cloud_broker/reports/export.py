"""Every report table as CSV (UTF-8 with a byte-order mark, which spreadsheet programs need
to read Persian) and as XLSX (openpyxl; right to left when the reader's language is
Persian, amounts as whole numbers with thousands separators)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from cloud_broker.reports.sales import Table

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cell(v: Any) -> Any:
    """Values as a spreadsheet should get them: text neutralised when a spreadsheet would
    read it as a formula (a store or SKU name is data from a device)."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def rows(table: Table, translate: Callable[[str], str]) -> list[list[Any]]:
    out: list[list[Any]] = [[translate(h) for h in table.headers]]
    out += [[_cell(v) for v in r] for r in table.rows]
    if table.totals:
        out.append([translate("Total") if i == 0 else _cell(v) for i, v in enumerate(table.totals)])
    return out


def to_csv(table: Table, translate: Callable[[str], str] = str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerows(rows(table, translate))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(table: Table, title: str, translate: Callable[[str], str] = str,
            rtl: bool = False) -> bytes:  # fmt: skip
    from openpyxl import Workbook  # noqa: PLC0415 - only an export loads it
    from openpyxl.styles import Font  # noqa: PLC0415

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title[:31] or "report"
    ws.sheet_view.rightToLeft = rtl
    for r in rows(table, translate):
        ws.append(r)
    for c in ws[1]:
        c.font = Font(bold=True)
    for i, col in enumerate(table.columns, start=1):
        if col in table.money or col in ("sales", "qty", "points_earned", "points_redeemed"):
            for cells in ws.iter_cols(min_col=i, max_col=i, min_row=2):
                for c in cells:
                    c.number_format = "#,##0"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
