"""The master ledger: double entry, lots, expiry, refunds, overdrafts, tiers; both databases."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cloud_broker.reconcile.reconciler import run_expiry
from edge.core import record as R
from tests.helpers.headoffice import HO
from tests.helpers.terminal import DAY0, Terminal, sale_body

ALI = "+989121234567"
SARA = "+989351112233"


def lots(ho: HO, member: str) -> list[tuple[Any, ...]]:
    return ho.q(
        "SELECT kind, earned, remaining, earned_day, expires_day FROM lots WHERE "
        "member = ? ORDER BY id",
        (member,),
    )


def balance(ho: HO, account: str) -> int:
    return int(ho.one("SELECT COALESCE(SUM(amount), 0) FROM entries WHERE account = ?", (account,)))


def test_lots_fifo_by_expiry_and_breakage(ho: HO, pos: Terminal) -> None:
    a = pos.sale(ALI, earned=100)
    pos.time.to_day(DAY0 + 10)
    b = pos.sale(ALI, earned=50)
    pos.time.to_day(DAY0 + 20)
    c = pos.sale(ALI, redeemed=120)
    ho.feed(pos, [a, b, c])
    assert lots(ho, ALI) == [
        ("earn", 100, 0, DAY0, DAY0 + 365),
        ("earn", 50, 30, DAY0 + 10, DAY0 + 375),
    ]
    assert ho.member(ALI)[0] == 30
    assert run_expiry(ho.db, ho.rs, today=DAY0 + 375) == {}  # the last day still counts
    assert run_expiry(ho.db, ho.rs, today=DAY0 + 376) == {ALI: 30}
    assert ho.member(ALI)[0] == 0
    assert balance(ho, "S:hypershahr:points_expired") == 30
    assert balance(ho, "S:hypershahr:points_issued") == -150
    assert balance(ho, "S:hypershahr:points_redeemed") == 120
    assert run_expiry(ho.db, ho.rs, today=DAY0 + 400) == {}  # nothing twice
    assert ho.check() == []


def test_refund_returns_to_the_original_lots(ho: HO, pos: Terminal) -> None:
    a = pos.sale(ALI, earned=100)
    pos.time.to_day(DAY0 + 1)
    b = pos.sale(ALI, earned=40)
    pos.time.to_day(DAY0 + 2)
    c = pos.sale(ALI, subtotal=2_000_000, discount=600_000, redeemed=60, earned=10)
    ho.feed(pos, [a, b, c])
    assert [x[2] for x in lots(ho, ALI)] == [40, 40, 10]  # 60 drawn from the oldest lot
    # refund the whole of sale c: 60 redeemed points go back to lot 1, 10 earned leave lot 3
    r = pos.refund(
        ALI, c, gross=2_000_000, discount=600_000, refunded=1_400_000, reversed_=10, returned=60
    )
    ho.feed(pos, [r])
    assert [x[2] for x in lots(ho, ALI)] == [100, 40, 0]
    assert ho.member(ALI)[0] == 140
    assert ho.check() == []


def test_reversal_takes_from_the_sales_own_lot_first(ho: HO, pos: Terminal) -> None:
    a = pos.sale(ALI, earned=100)
    b = pos.sale(ALI, earned=50)
    ho.feed(pos, [a, b, pos.refund(ALI, b, gross=1_000_000, refunded=1_000_000, reversed_=50)])
    assert [x[2] for x in lots(ho, ALI)] == [100, 0]
    assert ho.check() == []


def test_partial_refunds_return_redeemed_points_once_only(ho: HO, pos: Terminal) -> None:
    a = pos.sale(ALI, earned=500)
    s = pos.sale(ALI, subtotal=1_000_000, discount=300_000, redeemed=300)
    r1 = pos.refund(ALI, s, gross=500_000, discount=150_000, refunded=350_000, returned=150)
    r2 = pos.refund(ALI, s, gross=500_000, discount=150_000, refunded=350_000, returned=150)
    ho.feed(pos, [a, s, r1, r2])
    assert lots(ho, ALI)[0][2] == 500
    assert ho.one("SELECT COUNT(*) FROM alerts WHERE kind = 'refund_beyond_sale'") == 0
    # a third refund returning more than the sale drew is booked, with an alert
    r3 = pos.refund(ALI, s, gross=1, refunded=1, returned=10)
    ho.feed(pos, [r3])
    assert ho.one("SELECT COUNT(*) FROM alerts WHERE kind = 'refund_beyond_sale'") == 1
    assert ho.member(ALI)[0] == 510
    assert ho.check() == []


def test_offline_overdraft_across_two_stores_then_recovery(ho: HO, tmp_path: Path) -> None:
    north, south = Terminal(tmp_path, "pos-n", "north"), Terminal(tmp_path, "pos-s", "south")
    ho.register(north, south)
    ho.feed(north, [north.sale(ALI, earned=1000)])
    # both stores let Ali spend his 1,000 points while offline
    ho.feed(north, [north.sale(ALI, redeemed=1000)])
    ho.feed(south, [south.sale(ALI, redeemed=1000)])
    assert ho.member(ALI)[0] == -1000
    assert ho.q("SELECT severity, kind FROM alerts") == [("warning", "points_overdraft")]
    assert [x[0] for x in lots(ho, ALI)] == ["earn", "overdraft"]
    # beyond the offline limit (3,000 in the rules' policy): a critical alert, still booked
    ho.feed(south, [south.sale(ALI, redeemed=2500)])
    assert ho.q("SELECT severity FROM alerts ORDER BY id")[-1] == ("critical",)
    assert ho.member(ALI)[0] == -3500
    # later earnings fill the overdraft first
    ho.feed(north, [north.sale(ALI, earned=4000)])
    assert ho.member(ALI)[0] == 500
    assert [x[2] for x in lots(ho, ALI)] == [0, 0, 500]
    assert ho.q("SELECT kind FROM alerts ORDER BY id")[-1] == ("overdraft_recovered",)
    assert ho.check() == []


def test_wallet_cashback_store_liability_and_refund(ho: HO, pos: Terminal) -> None:
    s1 = pos.sale(ALI, subtotal=10_000_000, cashback=200_000)
    s2 = pos.sale(ALI, subtotal=1_000_000, wallet=150_000)
    ho.feed(pos, [s1, s2])
    assert ho.member(ALI)[1] == 50_000
    assert balance(ho, "ST:hypershahr:s1:wallet_redeemed") == 150_000
    assert balance(ho, "S:hypershahr:cashback_issued") == -200_000
    r = pos.refund(ALI, s2, gross=1_000_000, wallet=150_000, refunded=850_000)
    ho.feed(pos, [r])
    assert ho.member(ALI)[1] == 200_000
    assert balance(ho, "ST:hypershahr:s1:wallet_redeemed") == 0
    # reversing cashback the member already spent leaves a negative wallet and an alert
    ho.feed(pos, [pos.sale(ALI, subtotal=500_000, wallet=200_000)])
    ho.feed(pos, [pos.refund(ALI, s1, gross=10_000_000, refunded=10_000_000, cb_reversed=200_000)])
    assert ho.member(ALI)[1] == -200_000
    assert ho.one("SELECT kind FROM alerts ORDER BY id DESC") == "wallet_overdraft"
    assert ho.check() == []


def test_tier_from_rolling_spend_and_refunds(ho: HO, pos: Terminal) -> None:
    pos.time.to_day(ho_today() - 5)
    s = pos.sale(ALI, subtotal=60_000_000)
    ho.feed(pos, [s])
    assert ho.member(ALI)[2] == "bronze"
    ho.feed(pos, [pos.refund(ALI, s, gross=20_000_000, refunded=20_000_000)])
    assert ho.member(ALI)[2] == "regular"
    assert ho.one("SELECT amount FROM member_spend WHERE member = ?", (ALI,)) == 40_000_000
    # spend older than the 365-day window does not count
    pos.time.to_day(ho_today() - 400)
    ho.feed(pos, [pos.sale(SARA, subtotal=600_000_000)])
    assert ho.member(SARA)[2] == "regular"
    pos.time.to_day(ho_today())
    ho.feed(pos, [pos.sale(SARA, subtotal=250_000_000)])
    assert ho.member(SARA)[2] == "silver"


def ho_today() -> int:
    return (int(time.time()) + 210 * 60) // 86400


def test_coupon_reuse_birthday_and_visits(ho: HO, pos: Terminal) -> None:
    ho.feed(
        pos,
        [
            pos.sale(ALI, discount=100_000, coupon="WELCOME10", birthday_year=1405),
            pos.sale(SARA, discount=100_000, coupon="WELCOME10"),
        ],
    )
    assert ho.q("SELECT kind, member FROM alerts") == [("coupon_reuse", SARA)]
    assert ho.one("SELECT birthday_claimed FROM members WHERE member = ?", (ALI,)) == 1405
    assert ho.member(ALI)[3] == 1


def test_card_enrolment_links_the_card_to_the_member(ho: HO, pos: Terminal) -> None:
    ho.feed(pos, [pos.enroll(ALI, card="04A1B2C3D4E5F6", birthday="1370-01-02")])
    rec = pos.outbox.commit(
        "sale",
        sale_body(1_000_000, earned=100),
        member=R.member_field("card", "04A1B2C3D4E5F6"),
        charged=True,
    )
    ho.feed(pos, [rec])
    assert ho.member(ALI)[0] == 100
    assert ho.one("SELECT birthday FROM members WHERE member = ?", (ALI,)) == "1370-01-02"
    # an unknown card is kept as its own member until someone links it
    rec = pos.outbox.commit(
        "sale", sale_body(1_000_000, earned=7), member=R.member_field("card", "99FF"), charged=True
    )
    ho.feed(pos, [rec])
    assert ho.member("card:99FF")[0] == 7


def test_refund_of_an_unknown_sale_is_booked_with_an_alert(
    ho: HO, pos: Terminal, tmp_path: Path
) -> None:
    other = Terminal(tmp_path, "pos-x")
    ghost = other.sale(ALI, redeemed=50)  # never reaches head office
    ho.feed(
        pos, [pos.sale(ALI, earned=100), pos.refund(ALI, ghost, gross=1, refunded=1, returned=50)]
    )
    assert ho.one("SELECT kind FROM alerts") == "refund_without_sale"
    assert ho.member(ALI)[0] == 150
    assert ho.check() == []


def test_adjustments_and_anonymous_sales(ho: HO, pos: Terminal) -> None:
    ho.feed(
        pos,
        [
            pos.adjust(ALI, points=300, wallet=50_000),
            pos.adjust(ALI, points=-100),
            pos.sale(None, subtotal=5_000),
            pos.heartbeat(),
        ],
    )
    assert ho.member(ALI)[:2] == (200, 50_000)
    assert balance(ho, "S:hypershahr:points_adjusted") == -200
    assert ho.one("SELECT COUNT(*) FROM journals") == 4
    assert ho.check() == []


@pytest.mark.parametrize(
    ("tamper", "invariant"),
    [
        ("UPDATE entries SET amount = amount + 1 WHERE id_dummy", "journals balance"),
        ("UPDATE members SET points = points + 5", "member points = lots"),
        ("UPDATE lots SET remaining = remaining - 1", "lot = its moves"),
        ("DELETE FROM records WHERE seq = 2", "applied_through contiguous"),
        ("UPDATE records SET prev = hash WHERE seq = 3", "hash chain"),
        ("UPDATE devices SET last_hash = NULL", "last hash"),
    ],
)
def test_ledger_check_finds_each_broken_invariant(
    ho: HO, pos: Terminal, tamper: str, invariant: str
) -> None:
    ho.feed(
        pos,
        [pos.sale(ALI, earned=100), pos.sale(ALI, redeemed=30, earned=5), pos.sale(ALI, earned=1)],
    )
    assert ho.check() == []
    if "id_dummy" in tamper:
        jid = ho.one("SELECT MIN(journal_id) FROM entries")
        ho.db.run(
            lambda tx: tx.execute(
                "UPDATE entries SET amount = amount + 1 WHERE "
                "journal_id = ? AND unit = 'PTS' AND amount > 0",
                (jid,),
            )
        )
    else:
        ho.db.run(lambda tx: tx.execute(tamper))
    assert invariant in {f.invariant for f in ho.check()}


def test_concurrent_reconcilers_apply_each_record_once(ledger_url: str, tmp_path: Path) -> None:
    hos = [HO(ledger_url), HO(ledger_url)]
    terms = [Terminal(tmp_path, f"pos-{i}", f"s{i % 2}") for i in range(4)]
    hos[0].register(*terms)
    recs = {
        t.device: [t.sale(ALI if i % 2 else SARA, earned=3, cashback=10) for i in range(60)]
        for t in terms
    }
    errors: list[BaseException] = []

    def worker(h: HO, reverse: bool) -> None:
        try:
            for t in terms:
                rs = recs[t.device][::-1] if reverse else recs[t.device]
                for i in range(0, len(rs), 7):
                    h.feed(t, rs[i : i + 7])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(h, i == 1)) for i, h in enumerate(hos)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    h = hos[0]
    assert h.one("SELECT COUNT(*) FROM records") == 240
    assert h.member(ALI)[0] + h.member(SARA)[0] == 240 * 3
    assert h.check() == []
    for x in hos:
        x.close()


@pytest.mark.parametrize("same_batch", [False, True])
def test_a_refund_naming_another_member_never_touches_the_sales_lots(
    ho: HO, pos: Terminal, same_batch: bool
) -> None:
    a = pos.sale(ALI, earned=500)
    s = pos.sale(ALI, subtotal=1_000_000, discount=300_000, redeemed=300)
    # a refund of Ali's sale that names Sara: Ali's lots must not get the points back
    r = pos.refund(SARA, s, gross=1_000_000, discount=300_000, refunded=700_000, returned=300)
    if same_batch:
        ho.feed(pos, [a, s, r])
    else:
        ho.feed(pos, [a, s])
        ho.feed(pos, [r])
    assert [x[2] for x in lots(ho, ALI)] == [200]
    assert ho.member(ALI)[0] == 200
    assert ho.q("SELECT kind, member FROM alerts ORDER BY id") == [
        ("refund_without_sale", SARA),
        ("refund_beyond_sale", SARA),
    ]
    assert ho.member(SARA)[0] == 300  # booked for Sara, with the alerts, as any unknown sale
    assert ho.check() == []


def test_a_refund_of_another_tenants_sale_is_a_refund_without_sale(
    ho: HO, pos: Terminal, tmp_path: Path
) -> None:
    # a ledger from before one-tenant-per-ledger, with a device of a second chain
    other = Terminal(tmp_path, "pos-o", "s1", tenant="otherchain")

    def legacy(tx: Any) -> None:
        tx.execute(
            "INSERT INTO devices (device, tenant, store, public_key, enrolled_at) "
            "VALUES (?, 'otherchain', 's1', ?, 0)",
            (other.device, other.public_key),
        )
        tx.execute(
            "INSERT INTO device_keys (device, from_seq, public_key, created_at) "
            "VALUES (?, 1, ?, 0)",
            (other.device, other.public_key),
        )

    ho.db.run(legacy)
    ho.feed(pos, [pos.sale(ALI, earned=1000)])
    s = other.sale(ALI, subtotal=1_000_000, discount=300_000, redeemed=300)
    ho.feed(other, [s])
    r = pos.refund(ALI, s, gross=1_000_000, discount=300_000, refunded=700_000, returned=300)
    ho.feed(pos, [r])
    assert ho.one("SELECT kind FROM alerts WHERE device = ? ORDER BY id", (pos.device,)) == (
        "refund_without_sale"
    )
    assert [x[2] for x in lots(ho, ALI)] == [700, 300]  # a new lot, not otherchain's draw
    assert ho.check() == []


def test_first_and_last_day_of_many_members_in_one_batch(ho: HO, pos: Terminal) -> None:
    """Members' first and last days with a sale only widen, also when a batch carries many
    members (PostgreSQL writes them in one statement)."""
    phones = [f"+98912000{i:04d}" for i in range(20)]
    pos.time.to_day(DAY0 + 5)
    ho.feed(pos, [pos.sale(p) for p in phones])
    pos.time.to_day(DAY0 + 2)  # an offline sale from earlier arrives later
    early = [pos.sale(p) for p in phones[:10]]
    pos.time.to_day(DAY0 + 9)
    ho.feed(pos, [*early, *(pos.sale(p) for p in phones[5:])])
    days = {r[0]: (r[1], r[2]) for r in ho.q("SELECT member, first_day, last_day FROM members")}
    for i, p in enumerate(phones):
        assert days[p] == (DAY0 + 2 if i < 10 else DAY0 + 5, DAY0 + 9 if i >= 5 else DAY0 + 5)
