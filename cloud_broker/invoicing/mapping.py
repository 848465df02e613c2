"""What the tax system needs that the records do not say: each store's taxpayer (fiscal
memory id, economic code, and the paths of its key and certificate, which stay in files of
mode 0600), and each product's 13-digit id and VAT rate, by SKU or by product group."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.tax.errors import TaxError
from cloud_broker.tax.invoice import Seller
from cloud_broker.tax.keys import load_credentials
from edge.sanitize import clean

SSTID = re.compile(r"\d{13}")
DEFAULT_VAT_BP = 1000  # 10 %: Iran's rate since 1403 (the budget law); a product group may say


def set_store(
    db: Database,
    actor: Operator,
    store: str,
    memory_id: str,
    economic_code: str,
    key_file: str,
    cert_file: str,
) -> None:
    """A store's taxpayer; refuses a key file others may read, or a key and certificate
    that do not belong together (checked by loading them now)."""
    actor.require("tax")
    try:
        Seller(memory_id, economic_code)
        load_credentials(Path(key_file), Path(cert_file))
    except TaxError as e:
        raise ClubError("bad_taxpayer", str(e), getattr(e, "fa", "") or str(e)) from e

    def run(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO tax_stores (store, memory_id, economic_code, key_file, cert_file, "
            "since_journal) VALUES (?, ?, ?, ?, ?, (SELECT COALESCE(MAX(id), 0) FROM journals)) "
            "ON CONFLICT (store) DO UPDATE SET memory_id = excluded.memory_id, economic_code = "
            "excluded.economic_code, key_file = excluded.key_file, cert_file = "
            "excluded.cert_file, enabled = 1",
            (store, memory_id, economic_code, str(key_file), str(cert_file)),
        )
        audit.record(
            tx,
            actor.username,
            "tax.store",
            f"store:{store}",
            {"memory_id": memory_id, "economic_code": economic_code},
        )

    db.run(run)


def stores(db: Database) -> list[dict[str, Any]]:
    keys = (
        "store",
        "memory_id",
        "economic_code",
        "key_file",
        "cert_file",
        "next_serial",
        "enabled",
    )
    return [
        dict(zip(keys, r, strict=True))
        for r in db.read(f"SELECT {', '.join(keys)} FROM tax_stores ORDER BY store")
    ]


def set_product(
    db: Database,
    actor: Operator,
    kind: str,
    code: str,
    sstid: str,
    description: str = "",
    vat_bp: int | None = None,
) -> None:
    """The 13-digit product or service id (and VAT rate) of a SKU or a product group."""
    actor.require("tax")
    if kind not in ("sku", "category") or not code.strip():
        raise ClubError("bad_product", "a SKU or a product group", "کد کالا یا گروه لازم است.")
    sstid = sstid.strip().translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789"))
    if not SSTID.fullmatch(sstid):
        raise ClubError("bad_sstid", "the product id is 13 digits", "شناسه کالا باید ۱۳ رقم باشد.")
    if vat_bp is not None and not 0 <= vat_bp <= 10_000:
        raise ClubError("bad_vat", "a VAT rate of 0 to 100%", "نرخ مالیات بین ۰ تا ۱۰۰٪.")

    def run(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO tax_products (kind, code, sstid, description, vat_bp) VALUES "
            "(?, ?, ?, ?, ?) ON CONFLICT (kind, code) DO UPDATE SET sstid = excluded.sstid, "
            "description = excluded.description, vat_bp = excluded.vat_bp",
            (kind, clean(code, 64), sstid, clean(description, 200) or None, vat_bp),
        )
        audit.record(
            tx,
            actor.username,
            "tax.product",
            f"{kind}:{clean(code, 64)}",
            {"sstid": sstid, "vat_bp": vat_bp},
        )

    db.run(run)


def products(tx: Tx) -> dict[tuple[str, str], tuple[str, str | None, int | None]]:
    return {
        (str(r[0]), str(r[1])): (str(r[2]), r[3], r[4])
        for r in tx.all("SELECT kind, code, sstid, description, vat_bp FROM tax_products")
    }


def product_for(
    table: dict[tuple[str, str], tuple[str, str | None, int | None]], sku: str, category: str
) -> tuple[str, str, int] | None:
    """(sstid, description, VAT rate) of a line: the SKU's own, else its group's; the rate
    the SKU's, else the group's, else 10 %.  None when neither has an id."""
    own, group = table.get(("sku", sku)), table.get(("category", category))
    found = own or group
    if found is None:
        return None
    rate = (own[2] if own and own[2] is not None else None) or (group[2] if group else None)
    return found[0], found[1] or sku, DEFAULT_VAT_BP if rate is None else int(rate)


def listing(db: Database) -> list[dict[str, Any]]:
    keys = ("kind", "code", "sstid", "description", "vat_bp")
    return [
        dict(zip(keys, r, strict=True))
        for r in db.read(
            "SELECT kind, code, sstid, description, vat_bp FROM tax_products ORDER BY kind, code"
        )
    ]


def unmapped(db: Database, since_day: int) -> list[dict[str, str]]:
    """SKUs sold since ``since_day`` that have no product id (neither theirs nor their
    group's): their sales wait as ``blocked`` until they get one."""
    rows = db.read(
        "SELECT DISTINCT s.sku, s.category FROM sku_daily s WHERE s.day >= ? AND NOT EXISTS "
        "(SELECT 1 FROM tax_products p WHERE (p.kind = 'sku' AND p.code = s.sku) OR "
        "(p.kind = 'category' AND p.code = s.category)) ORDER BY s.category, s.sku LIMIT 500",
        (since_day,),
    )
    return [{"sku": str(r[0]), "category": str(r[1])} for r in rows]
