"""The double-entry master ledger: journals, entries, point lots, member balances.

Units: ``PTS`` (points) and ``IRR`` (wallet Rials).  Every journal's entries add up to
zero per unit.  Accounts are text codes:

    M:{member}:PTS / M:{member}:IRR             a member's points and wallet
    S:{tenant}:points_issued                    source of earned points
    S:{tenant}:points_redeemed                  sink of points spent at the till
    S:{tenant}:points_expired                   breakage
    S:{tenant}:points_adjusted / wallet_adjusted  manual adjustments
    S:{tenant}:cashback_issued                  source of wallet credit
    ST:{tenant}:{store}:wallet_redeemed         store liability: wallet credit a store
                                                accepted as payment, owed to it

Points are **lots**: each earning is a lot with its own expiry; spending draws the
oldest-expiring lots first (FIFO); a refund takes back earned points from the lot the sale
created and returns redeemed points to the lots the sale drew from.  A member who spends
more than they have (offline, at two stores) gets an **overdraft lot** with a negative
balance and an alert; later earnings fill it first.  ``members.points`` always equals the
sum of the member's lots and of their ``M:...:PTS`` entries (``ledger check``).

:class:`Books` does all this inside one transaction, caching member rows and lots, and
writes them back in :meth:`Books.flush`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cloud_broker.ledger import referrals
from cloud_broker.ledger.db import Tx
from edge.core.ruleset import RuleSet

PTS = "PTS"
IRR = "IRR"
NEVER = 2**31 - 1


def m_acct(member: str, unit: str) -> str:
    return f"M:{member}:{unit}"


def s_acct(tenant: str, name: str) -> str:
    return f"S:{tenant}:{name}"


def st_acct(tenant: str, store: str, name: str) -> str:
    return f"ST:{tenant}:{store}:{name}"


@dataclass(slots=True)
class Lot:
    id: int
    kind: str
    remaining: int
    expires_day: int | None
    device: str | None = None
    seq: int | None = None
    dirty: bool = False
    new: tuple[Any, ...] | None = None  # the INSERT row while not written yet


_LOT_COLUMNS = "id, kind, remaining, expires_day, device, seq"
# what a batch writes back to each member it touched (Tx.update_by_key: name, PostgreSQL type)
_MEMBER_COLUMNS = (
    ("points", "bigint"),
    ("wallet", "bigint"),
    ("tier", "text"),
    ("visits", "bigint"),
    ("birthday", "text"),
    ("birthday_claimed", "integer"),
    ("anniversary_claimed", "integer"),
    ("version", "bigint"),
    ("device_seqs", "text"),
)


def _lot(r: Sequence[Any]) -> Lot:
    """A lot from a row of :data:`_LOT_COLUMNS`."""
    return Lot(int(r[0]), r[1], int(r[2]), r[3], r[4], r[5])


@dataclass(slots=True)
class MemberState:
    member: str
    tenant: str
    points: int
    wallet: int
    tier: str
    visits: int
    birthday: str | None
    birthday_claimed: int
    version: int
    device_seqs: dict[str, int]
    # the overdraft lot and the lots this transaction made or touched; every lot with
    # points left once Books.lots() has read them (only when points leave)
    lots: list[Lot] = field(default_factory=list)
    lots_loaded: bool = False
    spend_delta: dict[int, int] = field(default_factory=dict)
    dirty: bool = False
    anniversary_claimed: int = 0  # the Jalali year of the last anniversary gift
    referred_by: str | None = None  # who referred them (cloud_broker.ledger.referrals)


@dataclass(slots=True)
class Alert:
    severity: str
    kind: str
    member: str | None
    device: str | None
    seq: int | None
    detail: str


class Books:
    """Ledger operations within one transaction."""

    def __init__(self, tx: Tx, rs: RuleSet, now_ms: int) -> None:
        self.tx = tx
        self.rs = rs
        self.now = now_ms
        self.expiry_days = rs.policy.get("points_expiry_days", 365)
        self.members: dict[str, MemberState] = {}
        self.journals: list[tuple[Any, ...]] = []
        self.entries: list[tuple[int, str, str, int]] = []
        self.moves: list[tuple[int, int, int, int | None]] = []
        self.alerts: list[Alert] = []

    def use(self, rs: RuleSet) -> None:
        """Book what follows under bundle ``rs`` (the one the record names)."""
        self.rs = rs
        self.expiry_days = rs.policy.get("points_expiry_days", 365)

    # -- members ----------------------------------------------------------------------

    def ensure_members(self, tenant: str, members: list[str]) -> None:
        """Create missing member rows and lock all of them, in key order."""
        todo = sorted({m for m in members if m not in self.members})
        if not todo:
            return
        self.tx.insert_many(
            "members",
            (("member", "text"), ("tenant", "text"), ("created_at", "bigint")),
            [(m, tenant, self.now) for m in todo],
            "ON CONFLICT (member) DO NOTHING",
        )
        self.tx.lock("members", "member", todo)
        for part in self.tx.parts(todo):
            where, args = self.tx.among("member", part)
            for row in self.tx.all(
                "SELECT member, tenant, points, wallet, tier, visits, "
                "birthday, birthday_claimed, version, device_seqs, anniversary_claimed, "
                f"referred_by FROM members WHERE {where}",
                args,
            ):
                self.members[row[0]] = MemberState(
                    row[0],
                    row[1],
                    int(row[2]),
                    int(row[3]),
                    row[4],
                    int(row[5]),
                    row[6],
                    int(row[7]),
                    int(row[8]),
                    json.loads(row[9]),
                    anniversary_claimed=int(row[10]),
                    referred_by=row[11],
                )
            for r in self.tx.all(
                f"SELECT {_LOT_COLUMNS}, member FROM lots WHERE {where} "
                "AND kind = 'overdraft' ORDER BY id",
                args,
            ):
                self.members[r[6]].lots.append(_lot(r))

    def load_lots(self, members: list[str]) -> None:
        """Read the lots of members whose points are about to leave, together (members
        already read or not in this transaction are skipped)."""
        todo = [self.members[m] for m in members if m in self.members]
        todo = [ms for ms in todo if not ms.lots_loaded]
        for part in self.tx.parts([ms.member for ms in todo]):
            where, args = self.tx.among("member", part)
            rows = self.tx.all(
                f"SELECT {_LOT_COLUMNS}, member FROM lots WHERE {where} "
                "AND remaining != 0 ORDER BY id",
                args,
            )
            found: dict[str, list[Lot]] = {}
            for r in rows:
                found.setdefault(r[6], []).append(_lot(r))
            for m in part:
                ms = self.members[m]
                have = {lot.id for lot in ms.lots}
                ms.lots[:0] = [lot for lot in found.get(m, []) if lot.id not in have]
                ms.lots_loaded = True

    def lots(self, ms: MemberState) -> list[Lot]:
        """Every lot of the member with points left (and the overdraft), read once per
        transaction when points are about to leave them; the lots already in memory (new,
        changed or read before) stay as they are."""
        if not ms.lots_loaded:
            have = {lot.id for lot in ms.lots}
            rows = self.tx.all(
                f"SELECT {_LOT_COLUMNS} FROM lots WHERE member = ? AND remaining != 0 ORDER BY id",
                (ms.member,),
            )
            ms.lots[:0] = [_lot(r) for r in rows if int(r[0]) not in have]
            ms.lots_loaded = True
        return ms.lots

    def member(self, m: str) -> MemberState:
        return self.members[m]

    def _lot_by_id(self, ms: MemberState, lot_id: int) -> Lot | None:
        """The member's lot ``lot_id`` (an emptied one is read again); None if it is not
        theirs."""
        for lot in ms.lots:
            if lot.id == lot_id:
                return lot
        r = self.tx.one(
            f"SELECT {_LOT_COLUMNS} FROM lots WHERE id = ? AND member = ?", (lot_id, ms.member)
        )
        if r is None:
            return None
        lot = _lot(r)
        ms.lots.append(lot)
        return lot

    def _new_lot(
        self,
        ms: MemberState,
        jid: int,
        kind: str,
        points: int,
        day: int,
        device: str | None,
        seq: int | None,
    ) -> Lot:
        expires = day + self.expiry_days if self.expiry_days and kind != "overdraft" else None
        lid = self.tx.next_id("lots")
        lot = Lot(
            lid,
            kind,
            points,
            expires,
            device,
            seq,
            new=(lid, ms.member, jid, device, seq, kind, points, day, expires),
        )
        ms.lots.append(lot)
        return lot

    def _overdraft(self, ms: MemberState, jid: int, day: int) -> Lot:
        for lot in ms.lots:
            if lot.kind == "overdraft":
                return lot
        return self._new_lot(ms, jid, "overdraft", 0, day, None, None)

    def _move(self, jid: int, lot: Lot, points: int, ref: int | None = None) -> None:
        lot.remaining += points
        lot.dirty = True
        self.moves.append((jid, lot.id, points, ref))

    # -- journals ------------------------------------------------------------------------

    def journal(
        self,
        tenant: str,
        kind: str,
        device: str | None,
        seq: int | None,
        member: str | None,
        day: int,
    ) -> int:
        jid = self.tx.next_id("journals")
        self.journals.append((jid, tenant, kind, device, seq, member, day, self.now))
        return jid

    def transfer(self, jid: int, to: str, frm: str, unit: str, amount: int) -> None:
        """``amount`` moves from account ``frm`` to account ``to`` (two entries)."""
        if amount:
            self.entries.append((jid, to, unit, amount))
            self.entries.append((jid, frm, unit, -amount))

    def alert(
        self,
        severity: str,
        kind: str,
        detail: str,
        member: str | None = None,
        device: str | None = None,
        seq: int | None = None,
    ) -> None:
        self.alerts.append(Alert(severity, kind, member, device, seq, detail))

    # -- points -------------------------------------------------------------------------

    def earn(
        self,
        jid: int,
        ms: MemberState,
        points: int,
        day: int,
        device: str | None,
        seq: int | None,
        source: str,
        kind: str = "earn",
    ) -> None:
        """The member gains ``points`` (from account ``source``); an overdraft is filled
        first, the rest becomes a new lot."""
        if points <= 0:
            return
        rest = points
        od = next((lot for lot in ms.lots if lot.kind == "overdraft"), None)
        if od is not None and od.remaining < 0:
            fill = min(rest, -od.remaining)
            self._move(jid, od, fill)
            rest -= fill
            if od.remaining == 0:
                self.alert(
                    "info",
                    "overdraft_recovered",
                    f"{fill} points recovered",
                    ms.member,
                    device,
                    seq,
                )
        if rest:
            lot = self._new_lot(ms, jid, kind, rest, day, device, seq)
            self.moves.append((jid, lot.id, rest, None))
        self.transfer(jid, m_acct(ms.member, PTS), source, PTS, points)
        ms.points += points
        ms.dirty = True

    def spend(
        self,
        jid: int,
        ms: MemberState,
        points: int,
        day: int,
        sink: str,
        device: str | None,
        seq: int | None,
        prefer: tuple[str, int] | None = None,
    ) -> None:
        """The member loses ``points`` (to account ``sink``): from the lot ``prefer``
        (device, seq) first, then oldest-expiring first, then the overdraft lot."""
        if points <= 0:
            return
        need = points
        lots = self.lots(ms)
        order = [
            lot
            for lot in lots
            if lot.kind != "overdraft"
            and lot.remaining > 0
            and (lot.expires_day is None or lot.expires_day >= day)
        ]
        order.sort(
            key=lambda lot: (lot.expires_day if lot.expires_day is not None else NEVER, lot.id)
        )
        if prefer is not None:
            order.sort(key=lambda lot: (lot.device, lot.seq) != prefer)  # stable: keeps FIFO
        for lot in order:
            if not need:
                break
            take = min(need, lot.remaining)
            self._move(jid, lot, -take)
            need -= take
        if need:
            od = self._overdraft(ms, jid, day)
            self._move(jid, od, -need)
            limit = self.rs.policy.get("offline_points_limit", 0)
            sev = "warning" if -od.remaining <= limit else "critical"
            self.alert(
                sev,
                "points_overdraft",
                f"spent {need} points more than held; "
                f"balance of the overdraft {od.remaining} (offline limit {limit})",
                ms.member,
                device,
                seq,
            )
        self.transfer(jid, sink, m_acct(ms.member, PTS), PTS, points)
        ms.points -= points
        ms.dirty = True

    def give_back(
        self,
        jid: int,
        ms: MemberState,
        points: int,
        day: int,
        orig_jid: int | None,
        device: str | None,
        seq: int | None,
    ) -> None:
        """Return redeemed points to the lots the original sale drew them from."""
        if points <= 0:
            return
        left = points
        if orig_jid is not None:
            # moves already written, then those of this batch not flushed yet
            draws = [
                (int(a), int(b))
                for a, b in self.tx.all(
                    "SELECT lot_id, -points FROM lot_moves WHERE journal_id = ? AND points < 0 "
                    "ORDER BY id",
                    (orig_jid,),
                )
            ]
            draws += [(lot, -pts) for j, lot, pts, _ in self.moves if j == orig_jid and pts < 0]
            back: dict[int, int] = {
                int(a): int(b)
                for a, b in self.tx.all(
                    "SELECT lot_id, SUM(points) FROM lot_moves WHERE ref_journal = ? AND "
                    "points > 0 GROUP BY lot_id",
                    (orig_jid,),
                )
            }
            for _j, lot, pts, ref in self.moves:
                if ref == orig_jid and pts > 0:
                    back[lot] = back.get(lot, 0) + pts
            for lot_id, drawn in draws:
                if not left:
                    break
                room = drawn - back.get(lot_id, 0)
                give = min(left, room)
                target = self._lot_by_id(ms, lot_id) if give > 0 else None
                if target is not None:
                    self._move(jid, target, give, ref=orig_jid)
                    back[lot_id] = back.get(lot_id, 0) + give
                    left -= give
        if left:
            self.alert(
                "warning",
                "refund_beyond_sale",
                f"{left} redeemed points returned "
                "beyond what the original sale drew; credited as a new lot",
                ms.member,
                device,
                seq,
            )
            extra = self._new_lot(ms, jid, "adjust", left, day, device, seq)
            self.moves.append((jid, extra.id, left, None))
        self.transfer(
            jid, m_acct(ms.member, PTS), s_acct(ms.tenant, "points_redeemed"), PTS, points
        )
        ms.points += points
        ms.dirty = True

    # -- wallet -------------------------------------------------------------------------

    def wallet(
        self,
        jid: int,
        ms: MemberState,
        amount: int,
        other: str,
        device: str | None,
        seq: int | None,
    ) -> None:
        """Credit (amount > 0) or debit (amount < 0) the member's wallet against ``other``."""
        if amount == 0:
            return
        if amount > 0:
            self.transfer(jid, m_acct(ms.member, IRR), other, IRR, amount)
        else:
            self.transfer(jid, other, m_acct(ms.member, IRR), IRR, -amount)
        before = ms.wallet
        ms.wallet += amount
        ms.dirty = True
        if ms.wallet < 0 and ms.wallet < before:
            limit = self.rs.policy.get("offline_wallet_limit", 0)
            sev = "warning" if -ms.wallet <= limit else "critical"
            self.alert(
                sev,
                "wallet_overdraft",
                f"wallet at {ms.wallet} Rials (offline limit {limit})",
                ms.member,
                device,
                seq,
            )

    # -- spend and tier ---------------------------------------------------------------------

    def add_spend(self, ms: MemberState, day: int, amount: int) -> None:
        if amount:
            ms.spend_delta[day] = ms.spend_delta.get(day, 0) + amount
            ms.dirty = True

    def _rolling_spend(self, members: list[str], today: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for part in self.tx.parts(members):
            where, args = self.tx.among("member", part)
            for m, total in self.tx.all(
                f"SELECT member, SUM(amount) FROM member_spend WHERE {where} "
                "AND day > ? AND day <= ? GROUP BY member",
                (*args, today - self.rs.window_days, today),
            ):
                out[str(m)] = int(total)
        return out

    # -- writing back ---------------------------------------------------------------------

    def flush(self, today: int) -> list[str]:
        """Write entries, lot moves, lots, spend, members and alerts; returns the members
        whose snapshot changed."""
        tx = self.tx
        tx.executemany(
            "INSERT INTO journals (id, tenant, kind, device, seq, member, day, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            self.journals,
        )
        new_lots = []
        for ms in self.members.values():
            for lot in ms.lots:
                if lot.new is not None:
                    new_lots.append((*lot.new[:6], lot.new[6], lot.remaining, *lot.new[7:]))
                    lot.new = None
                    lot.dirty = False
        tx.executemany(
            "INSERT INTO lots (id, member, journal_id, device, seq, kind, earned, "
            "remaining, earned_day, expires_day) VALUES (?,?,?,?,?,?,?,?,?,?)",
            new_lots,
        )
        at = self.now  # every journal of these books has it; its rows carry it (its month)
        tx.executemany(
            "INSERT INTO entries (journal_id, account, unit, amount, at) VALUES (?, ?, ?, ?, ?)",
            [(*e, at) for e in self.entries],
        )
        tx.executemany(
            "INSERT INTO lot_moves (journal_id, lot_id, points, ref_journal, at) VALUES "
            "(?, ?, ?, ?, ?)",
            [(*m, at) for m in self.moves],
        )
        lots = [
            (lot.remaining, lot.id) for ms in self.members.values() for lot in ms.lots if lot.dirty
        ]
        tx.executemany("UPDATE lots SET remaining = ? WHERE id = ?", lots)  # few: spends
        dirty = [ms for ms in self.members.values() if ms.dirty]
        tx.insert_many(
            "member_spend",
            (("member", "text"), ("day", "int"), ("amount", "bigint")),
            [(ms.member, d, a) for ms in dirty for d, a in sorted(ms.spend_delta.items())],
            "ON CONFLICT (member, day) DO UPDATE SET amount = member_spend.amount "
            "+ excluded.amount",
        )
        rolling = self._rolling_spend([ms.member for ms in dirty], today)
        rows = []
        bought: list[tuple[int, int, int, int, str]] = []  # first and last day with a sale
        moved: list[tuple[str, int, str, str, int]] = []  # tier changes
        rank = {t.id: i for i, t in enumerate(self.rs.tiers)}
        for ms in dirty:
            days = [d for d, a in ms.spend_delta.items() if a > 0]
            if days:
                lo, hi = min(days), max(days)
                bought.append((lo, lo, hi, hi, ms.member))
            before = ms.tier
            ms.tier = self.rs.tier_for_spend(rolling.get(ms.member, 0)).id
            if before and before != ms.tier and before in rank:
                up = int(rank[ms.tier] > rank[before])
                moved.append((ms.member, today, before, ms.tier, up))
            ms.version += 1
            rows.append(
                (
                    ms.points,
                    ms.wallet,
                    ms.tier,
                    ms.visits,
                    ms.birthday,
                    ms.birthday_claimed,
                    ms.anniversary_claimed,
                    ms.version,
                    json.dumps(ms.device_seqs, sort_keys=True),
                    ms.member,
                )
            )
            ms.spend_delta = {}
            ms.dirty = False
        tx.update_by_key("members", "member", _MEMBER_COLUMNS, rows)
        if tx.dialect == "postgresql" and len(bought) > 8:  # one statement, not one a member
            tx.execute(
                "UPDATE members AS t SET first_day = LEAST(COALESCE(t.first_day, u.lo), u.lo), "
                "last_day = GREATEST(COALESCE(t.last_day, u.hi), u.hi) FROM unnest(?::int[], "
                "?::int[], ?::text[]) AS u(lo, hi, k) WHERE t.member = u.k",
                ([b[0] for b in bought], [b[2] for b in bought], [b[4] for b in bought]),
            )
        else:
            tx.executemany(
                "UPDATE members SET first_day = CASE WHEN first_day IS NULL OR first_day > ? "
                "THEN ? ELSE first_day END, last_day = CASE WHEN last_day IS NULL OR last_day < "
                "? THEN ? ELSE last_day END WHERE member = ?",
                bought,
            )
        tx.executemany(
            "INSERT INTO tier_changes (member, day, from_tier, to_tier, up) VALUES (?, ?, ?, ?, ?)",
            moved,
        )
        changed = [ms.member for ms in dirty]
        tx.executemany(
            "INSERT INTO alerts (at, severity, kind, member, device, seq, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (self.now, a.severity, a.kind, a.member, a.device, a.seq, a.detail)
                for a in self.alerts
            ],
        )
        self.journals.clear()
        self.entries.clear()
        self.moves.clear()
        self.alerts.clear()
        for ms in self.members.values():
            for lot in ms.lots:
                lot.dirty = False
        referrals.ensure_codes(tx, changed)  # a member's code travels in their snapshot
        return changed


def expire_points(tx: Tx, rs: RuleSet, today: int, now_ms: int) -> dict[str, int]:
    """Book breakage for every lot past its expiry day; returns points expired per member."""
    rows = tx.all(
        "SELECT member, tenant FROM members WHERE member IN (SELECT DISTINCT member "
        "FROM lots WHERE kind != 'overdraft' AND remaining > 0 AND expires_day "
        "IS NOT NULL AND expires_day < ?) ORDER BY member",
        (today,),
    )
    out: dict[str, int] = {}
    expired: dict[str, int] = {}  # per tenant, for the key figures (points_expired_daily)
    books = Books(tx, rs, now_ms)
    by_tenant: dict[str, list[str]] = {}
    for member, tenant in rows:
        by_tenant.setdefault(tenant, []).append(member)
    for tenant, members in by_tenant.items():
        books.ensure_members(tenant, members)
        for m in members:
            ms = books.member(m)
            due = [
                lot
                for lot in books.lots(ms)
                if lot.kind != "overdraft"
                and lot.remaining > 0
                and lot.expires_day is not None
                and lot.expires_day < today
            ]
            total = sum(lot.remaining for lot in due)
            if not total:
                continue
            jid = books.journal(tenant, "expiry", None, None, m, today)
            for lot in due:
                books._move(jid, lot, -lot.remaining)
            books.transfer(jid, s_acct(tenant, "points_expired"), m_acct(m, PTS), PTS, total)
            ms.points -= total
            ms.dirty = True
            out[m] = total
            expired[tenant] = expired.get(tenant, 0) + total
    books.flush(today)
    tx.executemany(
        "INSERT INTO points_expired_daily (tenant, day, points) VALUES (?, ?, ?) ON CONFLICT "
        "(tenant, day) DO UPDATE SET points = points_expired_daily.points + excluded.points",
        [(t, today, n) for t, n in sorted(expired.items())],
    )
    return out


def queue_snapshots(tx: Tx, members: list[str], now_ms: int) -> None:
    """Members head office changed outside a record (the console, the API: a coupon, a
    profile, a merge): a new version of each, queued for the reconciler service to publish
    (a till keeps a snapshot only if its version is newer than the one it holds)."""
    for part in tx.parts(members):
        where, args = tx.among("member", part)
        tx.execute(f"UPDATE members SET version = version + 1 WHERE {where}", args)
    tx.executemany(
        "INSERT INTO snapshot_queue (member, queued_at) VALUES (?, ?)",
        [(m, now_ms) for m in members],
    )
