"""A seeded synthetic chain for the reports' tests: stores with terminals, members who shop
as people do, through head office's real reconciler.

* members of four kinds: regulars (every week or so), occasional shoppers (about monthly),
  big spenders (who climb the tiers), and drifters who shop weekly and then stop; some
  members join in the last weeks; a third of the sales are by anonymous customers;
* the season: more sales at the weekend (Thursday, Friday), many more in the last weeks of
  Esfand before Nowruz, few in its first days (Farvardin 1-4), a bump at Yalda;
* baskets of one to four lines from a catalogue of product groups and SKUs, some with a
  discount, points at 1 per 10,000 Rials paid; a few sales refunded a few days later (a
  line each, in full).

Every record goes through ``HO.feed`` a day at a time, signed by its terminal with the day
on the terminal's clock; ``Chain.records`` keeps them all for the tests' slow recomputations.
Deterministic for a seed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.core import jalali
from edge.core import record as R
from edge.core.dates import iso_weekday
from edge.protocol.record import Record
from tests.helpers.headoffice import HO
from tests.helpers.terminal import Terminal

CATALOGUE = {
    "dairy": [("MILK-1L", 450_000), ("YOGURT-900", 820_000), ("CHEESE-400", 1_350_000)],
    "bakery": [("BARBARI", 150_000), ("SANGAK", 220_000), ("CAKE-ROLL", 950_000)],
    "drinks": [("COLA-1.5", 380_000), ("DOOGH-1.5", 420_000), ("JUICE-1L", 690_000)],
    "nuts": [("PISTACHIO-500", 7_800_000), ("AJIL-NOWRUZ", 12_500_000)],
    "household": [("DETERGENT-3K", 2_900_000), ("TISSUE-6", 1_100_000)],
}
KINDS = ("regular", "occasional", "big", "drifter")


@dataclass
class Member:
    phone: str
    kind: str
    joined: int  # the first day they may shop


@dataclass
class Chain:
    ho: HO
    first: int
    last: int
    terminals: list[Terminal]
    members: list[Member]
    records: list[Record] = field(default_factory=list)
    batches: list[list[Record]] = field(default_factory=list)  # each batch fed, in order


def season(day: int) -> float:
    """How busy a day is against an ordinary weekday."""
    _, m, d = jalali.from_days(day)
    w = 1.0 + (0.5 if iso_weekday(day) in (4, 5) else 0.0)  # Thursday, Friday
    if m == 12 and d >= 15:
        w *= 2.5  # the shopping before Nowruz
    if m == 1 and d <= 4:
        w *= 0.3  # Nowruz itself: families travel, stores close early
    if m == 9 and d == 30:
        w *= 1.8  # Yalda night
    return w


def _visits(rng: random.Random, mem: Member, day: int, last: int) -> bool:
    if day < mem.joined:
        return False
    p = {"regular": 1 / 7, "occasional": 1 / 30, "big": 1 / 5, "drifter": 1 / 6}[mem.kind]
    if mem.kind == "drifter" and day > last - 45:
        return False  # they stopped coming six weeks ago
    return rng.random() < p * min(season(day), 2.0)


def _basket(rng: random.Random, big: bool) -> tuple[dict[str, Any], int]:
    lines: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 4)):
        cat = rng.choice(list(CATALOGUE))
        sku, price = rng.choice(CATALOGUE[cat])
        qty = rng.randint(1, 6 if big else 3)
        gross = qty * price
        disc = gross // 10 if rng.random() < 0.2 else 0
        paid = gross - disc
        lines.append({"sku": sku, "category": cat, "qty": qty, "unit_price": price,
                      "discount": disc, "wallet": 0, "paid": paid, "points": paid // 10_000,
                      "redeemed": 0, "cashback": 0})  # fmt: skip
    sub = sum(ln["qty"] * ln["unit_price"] for ln in lines)
    disc = sum(ln["discount"] for ln in lines)
    quote = {"subtotal": sub, "discount": disc, "wallet_used": 0, "payable": sub - disc,
             "points_earned": sum(ln["points"] for ln in lines), "points_redeemed": 0,
             "wallet_earned": 0, "rules_version": 1, "lines": lines, "applied": []}  # fmt: skip
    return quote, sub - disc


def _refund(sale: Record, line: int) -> dict[int, Any]:
    ln = sale.payload[R.K_LINES][line]
    gross = ln[R.L_QTY] * ln[R.L_UNIT_PRICE]
    refund = {"gross": gross, "discount": ln[R.L_DISCOUNT], "wallet_returned": 0,
              "refund_amount": ln[R.L_PAID], "points_reversed": ln[R.L_POINTS],
              "points_returned": 0, "wallet_reversed": 0, "rules_version": 1,
              "lines": [{"line": line, "sku": ln[R.L_SKU], "category": ln[R.L_CATEGORY],
                         "qty": ln[R.L_QTY], "discount": ln[R.L_DISCOUNT], "wallet": 0,
                         "paid": ln[R.L_PAID], "points": ln[R.L_POINTS], "redeemed": 0,
                         "cashback": 0}]}  # fmt: skip
    return R.refund_body(refund, sale.device, sale.seq, sale.hash)


def build(ho: HO, tmp: Path, last: int, days: int = 120, members: int = 80,
          seed: int = 7) -> Chain:  # fmt: skip
    """A chain of three stores (two terminals each) whose last ``days`` days end on ``last``."""
    rng = random.Random(seed)
    terms = [Terminal(tmp, f"pos-{s}{t}", f"store-{s}", tenant="hypershahr")
             for s in "abc" for t in "12"]  # fmt: skip
    ho.register(*terms)
    first = last - days + 1
    people = []
    for i in range(members):
        kind = KINDS[i % len(KINDS)]
        joined = first if i % 5 else last - rng.randint(0, 30)  # a fifth join lately
        people.append(Member(f"+98912{1_000_000 + i:07d}", kind, joined))
    chain = Chain(ho, first, last, terms, people)
    sold: list[tuple[int, Record]] = []
    for day in range(first, last + 1):
        batch: list[tuple[Terminal, Record]] = []
        for t in terms:
            t.time.to_day(day)
        shoppers: list[Member | None] = [m for m in people if _visits(rng, m, day, last)]
        shoppers += [None] * int(len(shoppers) * 0.5 + rng.random())  # anonymous customers
        for mem in shoppers:
            t = rng.choice(terms)
            quote, _ = _basket(rng, mem is not None and mem.kind == "big")
            body = R.sale_body(quote)
            who = R.member_field("phone", mem.phone) if mem else None
            rec = t.outbox.commit("sale", body, member=who, charged=True)
            batch.append((t, rec))
            if rng.random() < 0.04:
                sold.append((day + rng.randint(1, 5), rec))
        for _, rec in [x for x in sold if x[0] == day]:
            t = next(x for x in terms if x.device == rec.device)
            who = rec.payload.get(R.K_MEMBER)
            body = _refund(rec, rng.randrange(len(rec.payload[R.K_LINES])))
            batch.append((t, t.outbox.commit("refund", body, member=who, charged=True)))
        for t in terms:
            recs = [r for tt, r in batch if tt is t]
            if recs:
                ho.feed(t, recs)
                chain.batches.append(recs)
        chain.records += [r for _, r in batch]
    return chain
