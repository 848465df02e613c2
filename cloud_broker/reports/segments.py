"""Saved segments: a name and a definition over the nightly scores and the members' own
columns, chosen as the audience of a message campaign or a coupon issue.

A definition is a JSON object; every key is optional and all of them must hold:

* ``rfm``: named RFM segments (cloud_broker.reports.scores.SEGMENTS), any of;
* ``tiers``: tier ids, any of;
* ``churn_at_least``: the chance of having left, in basis points (1 - p_alive);
* ``value_at_least``: the expected spend of the next year, in Rials;
* ``min_points``: points held at least.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.reports.scores import SEGMENTS
from edge.sanitize import clean

KEYS = ("rfm", "tiers", "churn_at_least", "value_at_least", "min_points")


def check(defn: dict[str, Any], tiers: list[str]) -> dict[str, Any]:
    """The definition, cleaned; refuses unknown keys, segments, tiers and bad numbers."""
    bad = [k for k in defn if k not in KEYS]
    if bad:
        raise ClubError("bad_segment", f"unknown condition {bad[0]!r}", "شرط ناشناخته.")
    out: dict[str, Any] = {}
    rfm = [str(s) for s in defn.get("rfm") or []]
    if any(s not in SEGMENTS for s in rfm):
        raise ClubError("bad_segment", "no such RFM segment", "چنین بخش RFM وجود ندارد.")
    if rfm:
        out["rfm"] = rfm
    ts = [str(t) for t in defn.get("tiers") or []]
    if any(t not in tiers for t in ts):
        raise ClubError("bad_segment", "no such tier", "چنین سطحی وجود ندارد.")
    if ts:
        out["tiers"] = ts
    for k in ("churn_at_least", "value_at_least", "min_points"):
        v = defn.get(k)
        if v in (None, ""):
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ClubError("bad_segment", f"{k}: a whole number, 0 or more",
                            "مقدار شرط باید عددی صحیح و نامنفی باشد.")  # fmt: skip
        if k == "churn_at_least" and v > 10_000:
            raise ClubError("bad_segment", "churn: at most 100%", "ریسک ریزش حداکثر ۱۰۰٪.")
        out[k] = v
    return out


def where(defn: dict[str, Any]) -> tuple[str, list[Any]]:
    """The WHERE on ``members m`` selecting the definition's members (built from constants;
    values travel as parameters)."""
    sql, args = ["1 = 1"], []
    if defn.get("tiers"):
        sql.append(f"m.tier IN ({', '.join('?' * len(defn['tiers']))})")
        args += defn["tiers"]
    if defn.get("min_points"):
        sql.append("m.points >= ?")
        args.append(int(defn["min_points"]))
    scored = []
    if defn.get("rfm"):
        scored.append(f"s.segment IN ({', '.join('?' * len(defn['rfm']))})")
        args += defn["rfm"]
    if defn.get("churn_at_least"):
        scored.append("s.p_alive_bp <= ?")
        args.append(10_000 - int(defn["churn_at_least"]))
    if defn.get("value_at_least"):
        scored.append("s.clv >= ?")
        args.append(int(defn["value_at_least"]))
    if scored:
        sql.append(
            "EXISTS (SELECT 1 FROM member_scores s WHERE s.member = m.member AND "
            + " AND ".join(scored)
            + ")"
        )
    return " AND ".join(sql), args


def save(db: Database, actor: Operator, name: str, defn: dict[str, Any],
         tiers: list[str]) -> int:  # fmt: skip
    actor.require("messages")
    name = clean(name, 60).strip()
    if not name:
        raise ClubError("bad_segment", "a segment needs a name", "بخش باید نام داشته باشد.")
    d = check(defn, tiers)

    def run(tx: Tx) -> int:
        sid = tx.next_id("segments")
        tx.execute(
            "INSERT INTO segments (id, name, definition, created_by, created_at) VALUES "
            "(?, ?, ?, ?, ?)",
            (sid, name, json.dumps(d, sort_keys=True), actor.username, int(time.time() * 1000)),
        )
        audit.record(tx, actor.username, "segment.save", f"segment:{sid}", {"name": name, **d})
        return sid

    return db.run(run)


def get(db: Database, segment_id: int) -> dict[str, Any]:
    rows = db.read("SELECT id, name, definition, created_by, created_at FROM segments "
                   "WHERE id = ? AND deleted_at IS NULL", (segment_id,))  # fmt: skip
    if not rows:
        raise ClubError("no_segment", "no such segment", "چنین بخشی وجود ندارد.")
    r = rows[0]
    return {"id": int(r[0]), "name": str(r[1]), "definition": json.loads(r[2]),
            "created_by": str(r[3]), "created_at": int(r[4])}  # fmt: skip


def listing(db: Database) -> list[dict[str, Any]]:
    rows = db.read("SELECT id FROM segments WHERE deleted_at IS NULL ORDER BY id DESC")
    return [get(db, int(r[0])) for r in rows]


def delete(db: Database, actor: Operator, segment_id: int) -> None:
    actor.require("messages")
    seg = get(db, segment_id)

    def run(tx: Tx) -> None:
        tx.execute("UPDATE segments SET deleted_at = ? WHERE id = ?",
                   (int(time.time() * 1000), segment_id))  # fmt: skip
        audit.record(tx, actor.username, "segment.delete", f"segment:{segment_id}",
                    {"name": seg["name"]})  # fmt: skip

    db.run(run)


def count(db: Database, defn: dict[str, Any]) -> int:
    w, args = where(defn)
    rows = db.read(f"SELECT COUNT(*) FROM members m WHERE m.merged_into IS NULL AND {w}", args)
    return int(rows[0][0])


def members(db: Database, defn: dict[str, Any], after: str = "", limit: int = 50) -> list[Any]:
    """A page of the segment's members with their scores, by member id."""
    w, args = where(defn)
    return db.read(
        "SELECT m.member, m.name, m.tier, m.points, s.segment, s.r, s.f, s.m, s.p_alive_bp, "
        "s.clv FROM members m LEFT JOIN member_scores s ON s.member = m.member WHERE "
        f"m.merged_into IS NULL AND m.member > ? AND {w} ORDER BY m.member LIMIT ?",
        (after, *args, limit),
    )


def phones(db: Database, defn: dict[str, Any], limit: int) -> list[str]:
    """The segment's members known by a phone number (a coupon or a message reaches them)."""
    w, args = where(defn)
    return [str(r[0]) for r in db.read(
        "SELECT m.member FROM members m WHERE m.merged_into IS NULL AND m.member LIKE '+%' "
        f"AND {w} ORDER BY m.member LIMIT ?", (*args, limit))]  # fmt: skip
