"""What each record type books in the ledger (sale, refund or void, adjustment, enroll),
and the entry it adds to the reconciled stream.  Mixed into the reconciler's per-batch
applier, inside its transaction."""

from __future__ import annotations

import json
from typing import Any

from cloud_broker.ledger import budgets, referrals
from cloud_broker.ledger.books import Books, MemberState, s_acct, st_acct
from cloud_broker.ledger.daily import DailyBook
from cloud_broker.ledger.db import Tx
from edge.core import record as R
from edge.core.dates import format_timestamp
from edge.core.ruleset import RuleSet
from edge.protocol.record import Record


class Postings:
    """Ledger postings of one applied record; the applier provides the state below."""

    books: Books
    tx: Tx
    rs: RuleSet
    # (device, seq) -> (hash, journal id, member, day, store, tenant) of records applied
    in_batch: dict[tuple[str, int], tuple[bytes, int, str | None, int, str, str]]
    daily: DailyBook
    rule_use: dict[budgets.UseKey, list[int]]  # what each rule gave (campaign budgets)

    def count_day(self, p: dict[int, Any], day: int, ms: MemberState | None) -> None:
        if ms is None:
            self.daily.count(p, day, None)
        else:  # a member new in this batch has no tier yet: the first one
            self.daily.count(p, day, ms.tier or self.rs.tiers[0].id)

    def sale(
        self, jid: int, p: dict[int, Any], ms: MemberState | None, day: int, d: str, seq: int
    ) -> None:
        earned, redeemed = p[R.K_POINTS][R.P_EARNED], p[R.K_POINTS][R.P_REDEEMED]
        used, cashback = p[R.K_WALLET][R.W_USED], p[R.K_WALLET][R.W_CASHBACK]
        self.count_day(p, day, ms)
        if ms is None:
            if earned or redeemed or used or cashback:
                self.books.alert(
                    "warning",
                    "anonymous_benefits",
                    "a sale without a member carries points or wallet amounts; nothing booked",
                    None,
                    d,
                    seq,
                )
            return
        b = self.books
        tenant, store = p[R.K_TENANT], p[R.K_STORE]
        b.spend(jid, ms, redeemed, day, s_acct(tenant, "points_redeemed"), d, seq)
        b.earn(jid, ms, earned, day, d, seq, s_acct(tenant, "points_issued"))
        b.wallet(jid, ms, cashback, s_acct(tenant, "cashback_issued"), d, seq)
        b.wallet(jid, ms, -used, st_acct(tenant, store, "wallet_redeemed"), d, seq)
        if ms.visits == 0:
            self.referral(ms, tenant, day)
        ms.visits += 1
        b.add_spend(ms, day, p[R.K_AMOUNTS][R.A_PAID])
        budgets.count(self.rule_use, tenant, p.get(R.K_APPLIED, []))
        for a in p.get(R.K_APPLIED, ()):
            if a.get(R.AP_BIRTHDAY):
                ms.birthday_claimed = max(ms.birthday_claimed, a[R.AP_BIRTHDAY])
            if a.get(R.AP_ANNIVERSARY):
                ms.anniversary_claimed = max(ms.anniversary_claimed, a[R.AP_ANNIVERSARY])
            code = a.get(R.AP_COUPON)
            if code:
                self.coupon(code, ms, d, seq, jid, day, a)

    def referral(self, ms: MemberState, tenant: str, day: int) -> None:
        """The new member's first sale: both they and whoever referred them get the
        programme's referral points, once (cloud_broker.ledger.referrals)."""
        who = referrals.due(self.tx, ms.member, ms.referred_by)
        pol = self.rs.policy
        to_referrer = int(pol.get("referral_referrer_points", 0))
        to_referee = int(pol.get("referral_referee_points", 0))
        if who is None or not (to_referrer or to_referee):
            return
        b = self.books
        b.ensure_members(tenant, [who])
        jid = b.journal(tenant, "referral", None, None, ms.member, day)
        source = s_acct(tenant, "points_referral")
        b.earn(jid, ms, to_referee, day, None, None, source, kind="referral")
        other = b.member(who)
        b.earn(jid, other, to_referrer, day, None, None, source, kind="referral")
        other.dirty = True
        referrals.rewarded(self.tx, ms.member, who, jid, b.now)

    def coupon(
        self, code: str, ms: MemberState, d: str, seq: int, jid: int, day: int, a: dict[int, Any]
    ) -> None:
        """The member used ``code`` on this sale: a coupon they held is used up (single use);
        a single-use code they had used already (at two stores during an outage) was still
        honoured at the till, so the sale stands, and what the second use gave is taken back
        from the member as an overdraft (wallet Rials for the discount, points for points),
        with an alert."""
        r = self.rs.by_code.get(code)
        member = ms.member
        uses = self.tx.all(
            "SELECT member, device, seq FROM coupon_uses WHERE code = ? AND NOT (device = ? AND "
            "seq = ?)",
            (code, d, seq),
        )
        self.tx.execute(
            "INSERT INTO coupon_uses (code, member, device, seq) VALUES (?,?,?,?) "
            "ON CONFLICT (code, device, seq) DO NOTHING",
            (code, member, d, seq),
        )
        if r is None or not r.p.get("single_use"):
            return
        self.tx.execute(
            "UPDATE member_coupons SET used_at = ?, used_device = ?, used_seq = ? WHERE "
            "member = ? AND code = ? AND used_at IS NULL",
            (self.books.now, d, seq, member, code),
        )
        mine = [u for u in uses if u[0] == member]
        if mine:
            self._reused(code, ms, d, seq, jid, day, a, mine[0])
        elif uses and not r.p.get("member_bound"):  # one voucher, two customers
            self.books.alert(
                "warning",
                "coupon_reuse",
                f"single-use coupon {code} used again "
                f"(first by {uses[0][0]} at {uses[0][1]} seq {uses[0][2]})",
                member,
                d,
                seq,
            )

    def _reused(self, code: str, ms: MemberState, d: str, seq: int, jid: int, day: int,
                a: dict[int, Any], first: Any) -> None:  # fmt: skip
        tenant = str(self.tx.one("SELECT tenant FROM members WHERE member = ?", (ms.member,))[0])
        discount, points = int(a.get(R.AP_DISCOUNT) or 0), int(a.get(R.AP_POINTS) or 0)
        self.books.wallet(jid, ms, -discount, s_acct(tenant, "coupon_reuse"), d, seq)
        self.books.spend(jid, ms, points, day, s_acct(tenant, "coupon_reuse"), d, seq)
        self.books.alert(
            "critical" if discount or points else "warning",
            "coupon_reuse",
            f"single-use coupon {code} used again by the same member (first at {first[1]} seq "
            f"{first[2]}): the sale stands; the {discount:,} Rials and {points:,} points it gave "
            "are owed by the member",
            ms.member,
            d,
            seq,
        )

    def _orig(
        self, p: dict[int, Any], member: str | None
    ) -> tuple[int | None, int | None, str | None]:
        """(journal id, local day, store) of the sale a refund refers to, if head office
        applied it with that hash, for the same member and tenant; Nones otherwise (points
        must never go back to another member's lots)."""
        o = p[R.K_ORIG]
        key = (o[R.O_DEVICE], o[R.O_SEQ])
        tenant = p[R.K_TENANT]
        hit = self.in_batch.get(key)
        if hit is not None:
            h, jid, m, day, store, t = hit
            ok = (h, m, t) == (o[R.O_HASH], member, tenant)
            return (jid, day, store) if ok else (None, None, None)
        row = self.tx.one(
            "SELECT hash, journal_id, store, member, tenant FROM records WHERE device = ? "
            "AND seq = ?",
            key,
        )
        if row is None or (bytes(row[0]), row[3], row[4]) != (o[R.O_HASH], member, tenant):
            return None, None, None
        jrow = self.tx.one("SELECT day FROM journals WHERE id = ?", (row[1],))
        return int(row[1]), int(jrow[0]), str(row[2])

    def refund(
        self, jid: int, p: dict[int, Any], ms: MemberState | None, day: int, d: str, seq: int
    ) -> None:
        reversed_, returned = p[R.K_POINTS][R.P_EARNED], p[R.K_POINTS][R.P_REDEEMED]
        w_returned, cb_reversed = p[R.K_WALLET][R.W_USED], p[R.K_WALLET][R.W_CASHBACK]
        orig_jid, orig_day, orig_store = self._orig(p, ms.member if ms else None)
        self.count_day(p, day, ms)
        o = p[R.K_ORIG]
        if orig_jid is None:
            self.books.alert(
                "warning",
                "refund_without_sale",
                f"refund of {o[R.O_DEVICE]} seq {o[R.O_SEQ]} which head office has not applied "
                "(or whose hash, member or tenant differs)",
                ms.member if ms else None,
                d,
                seq,
            )
        if ms is None:
            return
        b = self.books
        tenant = p[R.K_TENANT]
        store = orig_store or p[R.K_STORE]
        b.spend(
            jid,
            ms,
            reversed_,
            day,
            s_acct(tenant, "points_issued"),
            d,
            seq,
            prefer=(o[R.O_DEVICE], o[R.O_SEQ]),
        )
        b.give_back(jid, ms, returned, day, orig_jid, d, seq)
        b.wallet(jid, ms, w_returned, st_acct(tenant, store, "wallet_redeemed"), d, seq)
        b.wallet(jid, ms, -cb_reversed, s_acct(tenant, "cashback_issued"), d, seq)
        # the purchase value taken back: the money refunded and what was withheld from it
        # for points and cashback already spent (amounts.4)
        back = p[R.K_AMOUNTS][R.A_PAID] + p[R.K_AMOUNTS].get(R.A_WITHHELD, 0)
        b.add_spend(ms, orig_day if orig_day is not None else day, -back)

    def adjustment(
        self, jid: int, p: dict[int, Any], ms: MemberState | None, day: int, d: str, seq: int
    ) -> None:
        extra = p.get(R.K_EXTRA, {})
        points = extra.get(R.ADJ_POINTS, 0)  # integers (the schema checks)
        wallet = extra.get(R.ADJ_WALLET, 0)
        if ms is None:
            if points or wallet:
                self.books.alert("warning", "adjustment_without_member", "ignored", None, d, seq)
            return
        tenant = p[R.K_TENANT]
        if points > 0:
            self.books.earn(
                jid, ms, points, day, d, seq, s_acct(tenant, "points_adjusted"), kind="adjust"
            )
        elif points < 0:
            self.books.spend(jid, ms, -points, day, s_acct(tenant, "points_adjusted"), d, seq)
        self.books.wallet(jid, ms, wallet, s_acct(tenant, "wallet_adjusted"), d, seq)

    def enroll(self, p: dict[int, Any], ms: MemberState | None) -> None:
        extra = p.get(R.K_EXTRA, {})
        if ms is None:
            return
        if extra.get(R.EN_HOW) == "card" and extra.get(R.EN_REF):
            card = str(extra[R.EN_REF])
            self.tx.execute(
                "INSERT INTO member_cards (card, member) VALUES (?, ?) "
                "ON CONFLICT (card) DO UPDATE SET member = excluded.member",
                (card, ms.member),
            )
        code = extra.get(R.EN_REFERRAL)
        if isinstance(code, str) and code:
            why = referrals.remember(self.tx, ms.member, code)
            if why is None:  # the member's first sale rewards them (referral())
                ms.referred_by = referrals.referrer(self.tx, code)
            else:
                self.books.alert("warning", "referral_refused", why[0], ms.member, None, None)
        bday = extra.get(R.EN_BIRTHDAY)
        if isinstance(bday, str) and not ms.birthday:
            ms.birthday = bday
            ms.dirty = True


def stream_body(rec: Record, member: str | None, ms: MemberState | None, jid: int) -> bytes:
    """One entry of the reconciled stream (docs/ledger.md), JSON."""
    p = rec.payload
    t = p[R.K_TIME]
    body: dict[str, Any] = {
        "v": 1,
        "tenant": p[R.K_TENANT],
        "store": p[R.K_STORE],
        "device": rec.device,
        "seq": rec.seq,
        "hash": rec.hash.hex(),
        "type": p[R.K_TYPE],
        "member": member,
        "device_time": format_timestamp(t[R.T_WALL] // 1000, t[R.T_OFFSET]),
        "offline": p[R.K_OFFLINE],
        "journal": jid,
        "basket": p.get(R.K_BASKET),
    }
    if R.K_AMOUNTS in p:
        a = p[R.K_AMOUNTS]
        names = (
            ("subtotal", "discount", "wallet", "payable")
            if body["type"] == "sale"
            else ("gross", "discount", "wallet", "refunded")
        )
        money = (a[R.A_GROSS], a[R.A_DISCOUNT], a[R.A_WALLET], a[R.A_PAID])
        body["amounts"] = dict(zip(names, money, strict=True))
        if R.A_WITHHELD in a:
            body["amounts"]["withheld"] = a[R.A_WITHHELD]
        pts = p[R.K_POINTS]
        body["points"] = (
            {"plus": pts[R.P_EARNED], "minus": pts[R.P_REDEEMED]}
            if body["type"] == "sale"
            else {"reversed": pts[R.P_EARNED], "returned": pts[R.P_REDEEMED]}
        )
        body["rules_version"] = p[R.K_RULES]
    if p.get(R.K_BANK):
        b = p[R.K_BANK]
        body["bank"] = {k: b[i] for i, k in enumerate(R.BANK_NAMES) if i in b}
    if p.get(R.K_ORIG):
        o = p[R.K_ORIG]
        body["orig"] = {"device": o[R.O_DEVICE], "seq": o[R.O_SEQ], "hash": o[R.O_HASH].hex()}
    if ms is not None:
        body["balances"] = {"points": ms.points, "wallet": ms.wallet}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
