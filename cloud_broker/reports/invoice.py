"""The sales invoice of one sale, refund or void, as head office prints it (A4 or an 80 mm
receipt roll): read from the record itself, so it is what the till charged to the Rial."""

from __future__ import annotations

from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.members import purchase
from cloud_broker.ledger.db import Database, Tx
from edge.core import record as R
from edge.protocol.record import parse


def invoice(db: Database, device: str, seq: int) -> dict[str, Any]:
    """Everything an invoice shows; ClubError ``no_sale`` when there is no such record."""

    def run(tx: Tx) -> dict[str, Any] | None:
        row = tx.one(
            "SELECT raw, member, type FROM records WHERE device = ? AND seq = ?", (device, seq)
        ) or tx.one(
            "SELECT raw, member, type FROM admitted WHERE device = ? AND seq = ?", (device, seq)
        )
        if row is None or str(row[2]) not in ("sale", "refund", "void"):
            return None
        raw, member = bytes(row[0]), row[1]
        p = parse(raw).payload
        store = str(p[R.K_STORE])
        names = tx.one("SELECT name_fa, name_en, city FROM stores WHERE store = ?", (store,))
        out = purchase(raw)
        out.update({
            "type": str(row[2]), "device": device, "seq": seq, "store": store,
            "store_fa": names[0] if names else store, "store_en": names[1] if names else store,
            "city": names[2] if names else None, "member": member,
            "number": f"{device}-{seq}",
        })  # fmt: skip
        if member:
            m = tx.one("SELECT name, tier FROM members WHERE member = ?", (member,))
            out["member_name"], out["tier"] = (m[0], m[1]) if m else (None, None)
        out["units"] = sum(int(ln["qty"]) for ln in out["lines"])
        return out

    found = db.run(run, write=False)
    if found is None:
        raise ClubError("no_sale", "no such sale", "چنین فروشی پیدا نشد.")
    return found
