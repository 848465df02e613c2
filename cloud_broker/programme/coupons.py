"""Coupons members really hold: head office gives a member-bound coupon of the programme to
one member, to a list or a CSV of phone numbers, and the holding travels in the member's
snapshot to the stores, so a till redeems it offline.

A coupon rule (``kind: coupon``, ``member_bound: true``) says what the coupon gives, its
dates and whether it is single use; issuing it says who holds it (and, if the holding
should end before the rule's dates, until when).  A single-use holding is used up by the
first sale head office books with it; a second use of it (two stores offline at once) is
booked and owed by the member (cloud_broker.reconcile.postings).  Every issue is one batch
in the audit log; issuing to a member who holds the code already changes nothing for them.

A list is refused whole, naming its bad lines (a mistyped number is a customer who would
not get their gift): fix and send it again.  Numbers that are not members are reported,
not made members: joining the club is the customer's decision.
"""

from __future__ import annotations

import csv
import io
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit
from cloud_broker.ledger.books import queue_snapshots
from cloud_broker.ledger.db import Database, Tx, chunks, marks
from edge.core import jalali
from edge.core.errors import CoreError
from edge.core.phone import normalise
from edge.core.ruleset import RuleSet
from edge.sanitize import clean

MAX_RECIPIENTS = 200_000


@dataclass(frozen=True, slots=True)
class Issued:
    batch: str
    code: str
    issued: int  # new holdings
    already: int  # members who held it already
    not_members: list[str]  # numbers given that are no members (shown, not issued)


def member_coupons(rs: RuleSet) -> list[dict[str, Any]]:
    """The programme's coupons a member must hold: (rule id, names, codes, single use)."""
    return [
        {"rule": r.id, "fa": r.fa, "en": r.en, "codes": list(r.p["codes"]),
         "single_use": bool(r.p["single_use"])}
        for r in rs.rules
        if r.kind == "coupon" and r.p["member_bound"]
    ]  # fmt: skip


def recipients(text: str) -> tuple[list[str], list[tuple[int, str]]]:
    """Members from what an operator pasted or uploaded: one per line (or comma), or a CSV
    whose first column is the phone number (a header line is skipped); phone numbers in any
    form and ``card:UID``.  (members, [(line number, bad text)])."""
    found: list[str] = []
    bad: list[tuple[int, str]] = []
    rows = list(csv.reader(io.StringIO(text.replace("،", ","))))
    for n, row in enumerate(rows, 1):
        cells = [c.strip() for c in row if c.strip()]
        if not cells:
            continue
        first = cells[0]
        if n == 1 and not any(ch.isdigit() for ch in first):
            continue  # a header
        values = cells if len(row) > 1 and all(_phone_like(c) for c in cells) else [first]
        for v in values:
            if v.startswith("card:") and len(v) > 5:
                found.append(clean(v, 64))
                continue
            try:
                found.append(normalise(v))
            except CoreError:
                bad.append((n, clean(v, 40)))
    return list(dict.fromkeys(found)), bad


def _phone_like(text: str) -> bool:
    return sum(ch.isdigit() for ch in text) >= 8 or text.startswith("card:")


def _day(text: str) -> int | None:
    t = text.strip().translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")).replace("/", "-")
    if not t:
        return None
    try:
        y, m, d = (int(x) for x in t.split("-"))
        return int(jalali.to_days(y, m, d))
    except (ValueError, CoreError):
        raise ClubError(
            "bad_date", "valid until: a Jalali date like 1405/01/13",
            "تاریخ اعتبار را مانند ۱۴۰۵/۰۱/۱۳ وارد کنید.",
        ) from None  # fmt: skip


def issue(
    db: Database, rs: RuleSet, actor: Operator, code: str, to: str, valid_until: str = "",
    idem: str | None = None,
) -> Issued:  # fmt: skip
    """Give ``code`` (a member-bound coupon of ``rs``) to the members listed in ``to``."""
    actor.require("programme")
    code = code.strip().upper()
    rule = rs.by_code.get(code)
    if rule is None or not rule.p["member_bound"]:
        raise ClubError(
            "not_a_member_coupon",
            f"{clean(code, 40)} is not a coupon of the programme that members hold",
            "این کد، کد تخفیف ویژه دارندگان در برنامه جاری نیست.",
        )
    members, bad = recipients(to)
    if bad:
        lines = ", ".join(f"{n}: {t}" for n, t in bad[:5])
        raise ClubError(
            "bad_recipients",
            f"{len(bad)} lines are no phone number (line {lines}): nothing was issued",
            f"{len(bad)} سطر شماره موبایل معتبر نیست (سطر {lines})؛ چیزی صادر نشد.",
        )
    if not members:
        raise ClubError("no_recipients", "give at least one phone number",
                        "دست‌کم یک شماره موبایل وارد کنید.")  # fmt: skip
    if len(members) > MAX_RECIPIENTS:
        raise ClubError("too_many", f"at most {MAX_RECIPIENTS:,} at once",
                        "تعداد گیرندگان بیش از حد است.")  # fmt: skip
    until = _day(valid_until)
    batch = idem or secrets.token_hex(8)

    def step(tx: Tx) -> Issued:
        done = tx.all("SELECT code, COUNT(*) FROM member_coupons WHERE batch = ? GROUP BY code",
                      (batch,))  # fmt: skip
        if done:  # the same form again: the first answer
            return Issued(batch, str(done[0][0]), int(done[0][1]), 0, [])
        known: set[str] = set()
        held: set[str] = set()
        for part in chunks(members):
            q = marks(len(part))
            known |= {
                str(r[0])
                for r in tx.all(
                    f"SELECT member FROM members WHERE member IN ({q}) AND merged_into IS NULL",
                    part,
                )
            }
            held |= {str(r[0]) for r in tx.all(
                f"SELECT member FROM member_coupons WHERE code = ? AND member IN ({q})",
                (code, *part))}  # fmt: skip
        new = [m for m in members if m in known and m not in held]
        now = int(time.time() * 1000)
        tx.executemany(
            "INSERT INTO member_coupons (id, member, code, rule, valid_until, batch, issued_by, "
            "issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(tx.next_id("member_coupons"), m, code, rule.id, until, batch, actor.username, now)
             for m in new],
        )  # fmt: skip
        queue_snapshots(tx, new, now)
        missing = [m for m in members if m not in known]
        audit.record(
            tx, actor.username, "coupon.issue", f"coupon:{code}",
            {"batch": batch, "rule": rule.id, "issued": len(new), "already": len(held),
             "not_members": len(missing), "valid_until": until},
        )  # fmt: skip
        return Issued(batch, code, len(new), len(held), missing)

    return db.run(step)


def batches(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """The latest issues: code, how many hold it, how many used it, by whom, when."""
    rows = db.read(
        "SELECT batch, code, rule, COUNT(*), SUM(CASE WHEN used_at IS NULL THEN 0 ELSE 1 END), "
        "MIN(issued_by), MIN(issued_at), MIN(valid_until) FROM member_coupons GROUP BY batch, "
        "code, rule ORDER BY MIN(issued_at) DESC LIMIT ?",
        (limit,),
    )
    keys = ("batch", "code", "rule", "held", "used", "by", "at", "valid_until")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def held(db: Database, member: str) -> list[dict[str, Any]]:
    """What one member holds and held (for their page)."""
    rows = db.read(
        "SELECT id, code, rule, valid_until, issued_at, used_at, used_device, used_seq, "
        "revoked_at FROM member_coupons WHERE member = ? ORDER BY issued_at DESC",
        (member,),
    )
    keys = ("id", "code", "rule", "valid_until", "issued_at", "used_at", "used_device",
            "used_seq", "revoked_at")  # fmt: skip
    return [dict(zip(keys, r, strict=True)) for r in rows]


def revoke(db: Database, actor: Operator, member: str, code: str, reason: str) -> None:
    """Take back a holding not used yet; the stores learn it with the next snapshot."""
    actor.require("programme")
    why = clean(reason, 200).strip()
    if not why:
        raise ClubError("no_reason", "say why", "علت را بنویسید.")

    def step(tx: Tx) -> None:
        n = tx.execute(
            "UPDATE member_coupons SET revoked_at = ? WHERE member = ? AND code = ? AND used_at "
            "IS NULL AND revoked_at IS NULL",
            (int(time.time() * 1000), member, code),
        ).rowcount
        if n != 1:
            raise ClubError("not_held", "the member holds no such unused coupon",
                            "عضو چنین کد استفاده‌نشده‌ای ندارد.")  # fmt: skip
        queue_snapshots(tx, [member], int(time.time() * 1000))
        audit.record(tx, actor.username, "coupon.revoke", f"member:{member}", {"code": code}, why)

    db.run(step)
