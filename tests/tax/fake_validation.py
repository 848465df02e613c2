"""What the fake tax system checks in an invoice it has decrypted.

Independent of our own invoice code on purpose: the arithmetic is redone here with
:class:`decimal.Decimal` from the packet's numbers (truncating fractions of a Rial), so a
mistake in ``cloud_broker.tax.lines`` cannot be mirrored by the checker.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from cloud_broker.tax.errors import InvalidTaxIdError
from cloud_broker.tax.taxid import parse_tax_id


def _dec(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if isinstance(value, int | Decimal) else None
    except InvalidOperation:
        return None


def check_invoice(invoice: Any, client_id: str) -> list[dict[str, str]]:
    """What the tax system's validation would say about a decrypted invoice."""
    errors: list[dict[str, str]] = []

    def err(code: str, message: str) -> None:
        errors.append({"code": code, "message": message, "errorType": "ERROR"})

    if not isinstance(invoice, dict) or not isinstance(invoice.get("header"), dict):
        err("FAKE-STRUCTURE", "packet has no header")
        return errors
    header, body = invoice["header"], invoice.get("body")
    try:
        parts = parse_tax_id(str(header.get("taxid", "")))
        if parts.memory_id != client_id:
            err("FAKE-TAXID-MEMORY", "شناسه حافظه در شماره مالیاتی با فرستنده یکی نیست")
    except InvalidTaxIdError:
        err("FAKE-TAXID", "شماره منحصر به فرد مالیاتی نامعتبر است")
    if (header.get("inty"), header.get("inp")) != (2, 1) or header.get("ins") not in (1, 4):
        err("FAKE-TYPE", "نوع، الگو یا موضوع صورتحساب پذیرفته نیست")
    if header.get("ins") == 4 and not isinstance(header.get("irtaxid"), str):
        err("FAKE-IRTAXID", "برگشت از فروش بدون شماره مالیاتی صورتحساب مرجع")
    if not isinstance(body, list) or not body:
        err("FAKE-BODY", "صورتحساب بدون ردیف")
        return errors
    sums = dict.fromkeys(("prdis", "dis", "adis", "vam", "tsstam"), Decimal(0))
    for n, line in enumerate(body, 1):
        given = {
            k: _dec(line.get(k)) if isinstance(line, dict) else None
            for k in ("am", "fee", "dis", "vra")
        }
        am, fee, dis, vra = (v if v is not None else Decimal(-1) for v in given.values())
        if None in given.values() or min(am, fee, dis, vra) < 0:
            err("FAKE-LINE", f"ردیف {n}: مقدار، مبلغ واحد، تخفیف یا نرخ نامعتبر است")
            continue
        prdis = (fee * am).to_integral_value(ROUND_DOWN)
        adis = prdis - dis
        vam = (adis * vra / 100).to_integral_value(ROUND_DOWN)
        expected = {"prdis": prdis, "dis": dis, "adis": adis, "vam": vam, "tsstam": adis + vam}
        for key, value in expected.items():
            if _dec(line.get(key)) != value:
                err("FAKE-LINE", f"ردیف {n}: {key} باید {value} باشد")
            sums[key] += value
    totals = {"tprdis": "prdis", "tdis": "dis", "tadis": "adis", "tvam": "vam", "tbill": "tsstam"}
    for total, key in totals.items():
        if _dec(header.get(total)) != sums[key]:
            err("FAKE-TOTALS", f"{total} باید {sums[key]} باشد")
    return errors
