"""Customers, their shopping, and the cashiers who serve them.

Each customer identifies one way, as in a real store: a phone number the cashier types at the
POS (in Persian or Latin digits, sometimes mistyped first), a number typed on the terminal's
keypad, an NFC membership card, an RFID key fob, or the club app's QR code.  Visits spread over
the stores; some redeem points or spend wallet credit, some cards are declined, some purchases
are partly returned.  What the bank terminal and the agent answered is the ground truth the
final report holds head office to."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from demo.world import StoreTerminal

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")

FIRST = [
    ("Maryam", "مریم"), ("Reza", "رضا"), ("Sara", "سارا"), ("Ali", "علی"), ("Zahra", "زهرا"),
    ("Hossein", "حسین"), ("Fatemeh", "فاطمه"), ("Mehdi", "مهدی"), ("Narges", "نرگس"),
    ("Amir", "امیر"), ("Leila", "لیلا"), ("Hamid", "حمید"), ("Shirin", "شیرین"),
    ("Kaveh", "کاوه"), ("Parisa", "پریسا"), ("Babak", "بابک"),
]  # fmt: skip

# (sku, category, unit price in Rials)
GROCERIES = [
    ("GRC-RICE-5KG", "grocery", 6_900_000), ("DAIRY-MILK-1L", "dairy", 380_000),
    ("DAIRY-YOGURT-2KG", "dairy", 1_150_000), ("BKR-BARBARI", "bakery", 150_000),
    ("DRK-COLA-1.5", "drinks", 450_000), ("NUT-PISTACHIO-500", "nuts", 4_850_000),
    ("GRC-SAFFRON-4G", "grocery", 3_200_000), ("GRC-TEA-500", "grocery", 2_400_000),
    ("SWT-GAZ-400", "sweets", 1_900_000), ("GRC-OIL-1.5L", "grocery", 1_650_000),
]  # fmt: skip
APPLIANCES = [
    ("ELC-KETTLE", "electronics", 18_500_000), ("ELC-TV-55", "electronics", 48_000_000),
    ("ELC-FRIDGE", "electronics", 95_000_000), ("ELC-VACUUM", "electronics", 31_000_000),
]  # fmt: skip

WAYS = ("pos-phone", "keypad", "nfc", "rfid", "qr")
# The agent answers an identify as soon as a reader reports the card (or the keypad, the
# scanner their line), within 1.5 s on a machine loaded with twice its cores' worth of busy
# loops: the wait only bounds a tap that was lost.
IDENTIFY_WAIT_S = 10
# A reader reports a card once per presence; the same card counts as a new tap only after
# the reader's driver has seen it gone.  The PN532 driver takes it for gone after two polls
# that find the field empty (its absent_polls), which the simulated chip counts.
NFC_GONE_POLLS = 2
# The RDM6300 driver takes a fob for gone once more than 0.5 s (its release) passed since it
# last read a frame.  A fob tapped for one frame was last seen when the driver read that
# frame, before it reported the fob: the same fob comes back this long after the report.
RFID_GONE_S = 0.6


@dataclass
class Customer:
    n: int
    name: str
    name_fa: str
    way: str  # one of WAYS
    phone: str | None = None  # as the customer says it: 09121234567
    card: str | None = None  # what the reader sees
    big_spender: bool = False
    mistypes: bool = False

    @property
    def ref(self) -> str:
        """The member as head office books them."""
        if self.phone is not None:
            return "+98" + self.phone[1:]
        assert self.card is not None
        return "card:" + (self.card[4:] if self.card.startswith("LC1:") else self.card)

    def typed(self) -> str:
        """The number as the cashier types it: every third customer in Persian digits."""
        assert self.phone is not None
        p = self.phone
        if self.n % 3 == 0:
            return f"{p[:4]} {p[4:7]} {p[7:]}".translate(PERSIAN)
        if self.n % 3 == 1:
            return f"+98 {p[1:4]} {p[4:7]} {p[7:]}"
        return p


def make_customers(n: int, rng: random.Random) -> list[Customer]:
    out = []
    for i in range(n):
        name, name_fa = FIRST[i % len(FIRST)]
        if i >= len(FIRST):
            name, name_fa = f"{name} {i // len(FIRST) + 1}", f"{name_fa} {i // len(FIRST) + 1}"
        c = Customer(i, name, name_fa, WAYS[i % len(WAYS)])
        if c.way in ("pos-phone", "keypad"):
            c.phone = "0" + rng.choice(("912", "913", "935", "919", "901"))
            c.phone += f"{rng.randrange(10**7):07d}"
        elif c.way == "nfc":
            c.card = "04" + "".join(f"{rng.randrange(256):02X}" for _ in range(6))
        elif c.way == "rfid":
            c.card = f"0F{rng.randrange(16**8):08X}"
        else:
            c.card = f"LC1:APP-{rng.randrange(10**6):06d}"
        c.big_spender = i % 4 == 1
        c.mistypes = i == 0
        out.append(c)
    return out


@dataclass
class Visit:
    customer: Customer
    lines: list[dict[str, Any]]
    redeem: bool = False
    wallet: bool = False
    decline: bool = False
    refund: bool = False


def plan(
    customers: list[Customer], stores: int, visits_each: int, rng: random.Random
) -> list[list[Visit]]:
    """Each store's queue of visits, in the order its cashier serves them."""
    queues: list[list[Visit]] = [[] for _ in range(stores)]
    for c in customers:
        home = c.n % stores
        for k in range(visits_each):
            lines = [
                {"sku": s, "category": cat, "qty": rng.randint(1, 3), "unit_price": p}
                for s, cat, p in rng.sample(GROCERIES, rng.randint(2, 5))
            ]
            if c.big_spender or rng.random() < 0.15:
                s, cat, p = rng.choice(APPLIANCES)
                lines.insert(0, {"sku": s, "category": cat, "qty": 1, "unit_price": p})
            visit = Visit(
                c,
                lines,
                redeem=k >= 2 and rng.random() < 0.5,
                wallet=k >= 2 and rng.random() < 0.5,
                decline=rng.random() < 0.08,
                refund=rng.random() < 0.1,
            )
            store = home if rng.random() < 0.7 else rng.randrange(stores)
            queues[store].append(visit)
    for q in queues:
        rng.shuffle(q)
        # nobody queues twice in a row: a card tapped again at once is still "on the reader"
        for i in range(1, len(q)):
            if q[i].customer is q[i - 1].customer:
                for j in range(i + 1, len(q)):
                    if q[j].customer is not q[i - 1].customer:
                        q[i], q[j] = q[j], q[i]
                        break
        # a customer's visits keep their order, so points earned are there to redeem later
        by_customer: dict[int, list[Visit]] = {}
        for visit in q:
            by_customer.setdefault(visit.customer.n, []).append(visit)
        for vs in by_customer.values():
            flags = sorted((x.redeem, x.wallet) for x in vs)
            for x, (r, w) in zip(vs, flags, strict=True):
                x.redeem, x.wallet = r, w
    return queues


@dataclass
class Truth:
    """What the terminals and bank terminals answered: the ground truth."""

    sales: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    declined: int = 0
    served: int = 0  # visits a cashier finished: a sale, a decline or an error
    mistyped: list[dict[str, Any]] = field(default_factory=list)
    misidentified: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def members(self) -> dict[str, dict[str, int]]:
        """Points and wallet each member should hold, from the receipts alone."""
        out: dict[str, dict[str, int]] = {}
        for s in self.sales:
            if s["member"]:
                m = out.setdefault(s["member"], {"points": 0, "wallet": 0, "spend": 0})
                m["points"] += s["points_earned"] - s["points_redeemed"]
                m["wallet"] += s["wallet_earned"] - s["wallet_used"]
                m["spend"] += s["amount"]
        for r in self.refunds:
            if r["member"]:
                m = out.setdefault(r["member"], {"points": 0, "wallet": 0, "spend": 0})
                m["points"] += r["points_returned"] - r["points_reversed"]
                m["wallet"] += r["wallet_returned"] - r["wallet_reversed"]
        return out


class Cashier(threading.Thread):
    """Serves one store's queue, one customer at a time, whatever happens to the uplink."""

    def __init__(
        self,
        term: StoreTerminal,
        visits: list[Visit],
        truth: Truth,
        pace: float,
        on_served: Callable[[StoreTerminal, int, int], None],
    ) -> None:
        super().__init__(name=f"cashier-{term.store}", daemon=True)
        self.term, self.visits, self.truth, self.pace = term, visits, truth, pace
        self.on_served = on_served
        self.served = 0
        self.nfc_gone: dict[str, int] = {}  # card -> the chip's empty polls when it was taken off
        self.rfid_gone: dict[str, float] = {}  # fob -> when the agent reported it (monotonic)

    def run(self) -> None:
        for i, v in enumerate(self.visits):
            try:
                self.serve(v, i)
            except Exception as e:  # noqa: BLE001 - reported; the queue goes on
                with self.truth.lock:
                    self.truth.errors.append(f"{self.term.store} visit {i}: {e!r}")
            with self.truth.lock:
                self.truth.served += 1
            self.served = i + 1
            self.on_served(self.term, self.served, len(self.visits))
            if self.pace:
                time.sleep(self.pace)

    def _post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        return self.term.api("POST", path, body if body is not None else {})

    def identify(self, sid: str, c: Customer) -> dict[str, Any]:
        path = f"/v1/sessions/{sid}/identify"
        t = self.term
        if c.way == "pos-phone":
            if c.mistypes and not self.truth.mistyped:
                wrong = c.typed()[:-2]  # two digits short
                code, err = self._post(path, {"phone": wrong})
                with self.truth.lock:
                    self.truth.mistyped.append({"typed": wrong, "status": code, **err})
            code, s = self._post(path, {"phone": c.typed()})
        elif c.way in ("nfc", "rfid"):
            code, s = self._tap(c, path)
        else:
            if c.way == "keypad":
                assert c.phone is not None
                t.keypad.type(c.phone)
            else:
                t.qr.scan(str(c.card))
            code, s = self._post(path, {"wait": IDENTIFY_WAIT_S})
        if code != 200:
            raise ValueError(f"identify {c.way}: {code} {s.get('error')} {s.get('en')}")
        if s.get("member") != c.ref:
            with self.truth.lock:
                self.truth.misidentified.append(f"{c.ref} identified as {s.get('member')}")
        return s

    def _tap(self, c: Customer, path: str) -> tuple[int, dict[str, Any]]:
        """The customer holds the card on the reader until the agent has identified it (the
        beep), however long a loaded machine takes, then takes it away; a key fob is in the
        field for one frame, sent whenever the simulator gets to it."""
        card, t = str(c.card), self.term
        if c.way == "nfc":
            mark = self.nfc_gone.get(card)
            if mark is not None and not t.nfc.wait_empty_polls(
                mark + NFC_GONE_POLLS, IDENTIFY_WAIT_S
            ):
                raise ValueError("identify nfc: the agent stopped polling its NFC reader")
            t.nfc.tap(card)
            try:
                return self._post(path, {"wait": IDENTIFY_WAIT_S})
            finally:
                t.nfc.remove(card)
                self.nfc_gone[card] = t.nfc.empty_polls
        gone = self.rfid_gone.get(card)
        if gone is not None:
            time.sleep(max(0.0, gone + RFID_GONE_S - time.monotonic()))
        t.rfid.tap(card, frames=1)
        try:
            return self._post(path, {"wait": IDENTIFY_WAIT_S})
        finally:
            t.rfid.remove()  # (gone already unless the visit failed)
            self.rfid_gone[card] = time.monotonic()

    def serve(self, v: Visit, i: int) -> None:
        c, t = v.customer, self.term
        code, s = self._post("/v1/baskets", {"basket": {"id": f"{t.store}-{i}", "lines": v.lines}})
        if code != 201:
            raise ValueError(f"basket: {code} {s.get('error')}")
        sid = s["session"]
        s = self.identify(sid, c)
        opts: dict[str, Any] = {}
        if v.redeem:
            opts["redeem_points"] = "max"
        if v.wallet:
            opts["use_wallet"] = "max"
        if opts:
            code, s = self._post(f"/v1/sessions/{sid}/options", opts)
            if code != 200:
                raise ValueError(f"options: {code} {s.get('error')}")
        if v.decline and s["quote"]["payable"] > 0:
            t.bank.event("next", outcome="decline")
        code, r = self._post(f"/v1/sessions/{sid}/pay")
        if code != 200:
            raise ValueError(f"pay: {code} {r.get('error')}")
        if r["status"] != "approved":
            with self.truth.lock:
                self.truth.declined += 1
            return
        q = r["quote"]
        sale = {
            "store": t.store,
            "device": t.device,
            "seq": r["record"]["seq"],
            "amount": q["payable"],
            "trace": (r.get("bank") or {}).get("trace"),
            "member": (q.get("member") or {}).get("ref"),
            "points_earned": q["points_earned"],
            "points_redeemed": q["points_redeemed"],
            "wallet_used": q["wallet_used"],
            "wallet_earned": q["wallet_earned"],
        }
        with self.truth.lock:
            self.truth.sales.append(sale)
            if len(self.truth.receipts) < 3 or (
                q["points_redeemed"] and len(self.truth.receipts) < 4
            ):
                self.truth.receipts.append({"customer": c.name, **r["receipt"]})
        if v.refund:
            self.refund(sale)

    def refund(self, sale: dict[str, Any]) -> None:
        code, r = self._post(f"/v1/sales/{sale['seq']}/refund", {"lines": [{"line": 0, "qty": 1}]})
        if code != 200:
            raise ValueError(f"refund: {code} {r.get('error')}")
        f = r["refund"]
        with self.truth.lock:
            self.truth.refunds.append(
                {
                    "store": self.term.store,
                    "device": self.term.device,
                    "seq": r["record"]["seq"],
                    "orig_seq": sale["seq"],
                    "member": sale["member"],
                    "refund_amount": f["refund_amount"],
                    "points_reversed": f["points_reversed"],
                    "points_returned": f["points_returned"],
                    "wallet_returned": f["wallet_returned"],
                    "wallet_reversed": f["wallet_reversed"],
                }
            )
