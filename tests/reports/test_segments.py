"""The nightly scores, saved segments, campaigns to a segment with a control group, and the
campaign's results; the exports; the periods."""

from __future__ import annotations

import io
from collections import Counter

import openpyxl
import pytest

from cloud_broker.club.errors import ClubError, NotAllowedError
from cloud_broker.club.operators import Operator
from cloud_broker.messaging import campaigns
from cloud_broker.reports import export, kpis, periods, sales, scores, segments
from cloud_broker.reports.periods import Period
from edge.core import jalali
from tests.helpers.chain import Chain

MINA = Operator(1, "mina", "Mina", "marketing")
VIEWER = Operator(2, "vida", "Vida", "viewer")


def test_lifetimes_reproduces_the_published_cdnow_parameters() -> None:
    """The models' library on today's numpy and pandas: Fader, Hardie and Lee's CDNOW
    figures (r 0.243, alpha 4.414, a 0.793, b 2.426; Gamma-Gamma p 6.25, q 3.74, v 15.44)."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    d = load_cdnow_summary_data_with_monetary_value()
    bgf = BetaGeoFitter().fit(d["frequency"], d["recency"], d["T"])
    got = {k: round(float(v), 3) for k, v in bgf.params_.items()}
    assert got == pytest.approx({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, abs=2e-3)
    rep = d[d["frequency"] > 0]
    ggf = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    assert float(ggf.params_["p"]) == pytest.approx(6.25, abs=0.01)
    assert float(ggf.params_["q"]) == pytest.approx(3.74, abs=0.01)
    assert float(ggf.params_["v"]) == pytest.approx(15.44, abs=0.02)


def test_rfm_grid() -> None:
    assert scores.segment_of(5, 5) == "champions"
    assert scores.segment_of(1, 5) == "cant_lose"
    assert scores.segment_of(2, 4) == "at_risk"
    assert scores.segment_of(5, 1) == "new"
    assert scores.segment_of(1, 1) == "lost"
    cuts = scores._cuts([1, 1, 1, 2, 2, 3, 4, 5, 8, 13])
    assert cuts == [1, 2, 4, 8]
    assert [scores.score(v, cuts) for v in (1, 2, 3, 8, 9, 100)] == [1, 2, 3, 4, 5, 5]


def test_scores_tell_the_drifters_from_the_regulars(chain: Chain) -> None:
    db = chain.ho.db
    done = scores.refresh(db, chain.last)
    assert done["models"] == "fitted"
    rows = chain.ho.q("SELECT member, segment, r, f, p_alive_bp, clv FROM member_scores")
    assert len(rows) == done["members"] == int(chain.ho.one(
        "SELECT COUNT(DISTINCT member) FROM member_spend WHERE amount > 0"))  # fmt: skip
    kind = {m.phone: m.kind for m in chain.members}
    by = {str(r[0]): r for r in rows}
    drift = [by[m] for m, k in kind.items() if k == "drifter" and m in by]
    regular = [by[m] for m, k in kind.items() if k in ("regular", "big") and m in by]
    assert all(r[2] <= 2 for r in drift)  # not seen for six weeks: low recency
    segs = Counter(str(r[1]) for r in drift)
    assert set(segs) <= {"at_risk", "cant_lose", "hibernating", "lost"}, segs
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean([r[4] for r in drift]) < mean([r[4] for r in regular]) - 2_000
    assert mean([r[5] for r in regular]) > mean([r[5] for r in drift])
    grid = scores.grid(db)
    assert grid["day"] == chain.last
    assert sum(s["members"] for s in grid["segments"]) == len(rows)


def test_a_segment_becomes_a_campaign_with_a_control_group_and_its_results(
    chain: Chain,
) -> None:
    db, rs = chain.ho.db, chain.ho.rs
    scores.refresh(db, chain.last, with_models=False)
    tiers = [t.id for t in rs.tiers]
    with pytest.raises(ClubError) as e:
        segments.save(db, MINA, "x", {"rfm": ["sleepy"]}, tiers)
    assert "RFM" in e.value.en and "وجود ندارد" in e.value.fa
    with pytest.raises(NotAllowedError):
        segments.save(db, VIEWER, "x", {"rfm": ["lost"]}, tiers)
    defn = {"rfm": ["at_risk", "cant_lose", "hibernating", "lost"]}
    sid = segments.save(db, MINA, "بازگشت", defn, tiers)
    want = {str(r[0]) for r in chain.ho.q(
        "SELECT member FROM member_scores WHERE segment IN ('at_risk', 'cant_lose', "
        "'hibernating', 'lost')")}  # fmt: skip
    assert segments.count(db, defn) == len(want) > 5
    assert {str(r[0]) for r in segments.members(db, defn, limit=1000)} == want
    assert chain.ho.one("SELECT action FROM audit_log WHERE target = ?", (f"segment:{sid}",)) \
        == "segment.save"  # fmt: skip

    cid = campaigns.create(db, rs, MINA, "come back", "{name}، دلمان برایتان تنگ شده",
                           {"segment": sid}, control_bp=3_000)  # fmt: skip
    c = campaigns.get(db, cid)
    assert c["audience"]["definition"] == defn and c["control_bp"] == 3_000
    est = campaigns.estimate(db, cid)
    assert est.recipients == len(want) - len(want) * 3_000 // 10_000
    campaigns.schedule(db, MINA, cid, None)
    campaigns.due(db, 2**62)
    while campaigns.feed(db):
        pass
    sent = {str(r[0]) for r in chain.ho.q(
        "SELECT member FROM sms_outbox WHERE campaign_id = ?", (cid,))}  # fmt: skip
    held = {str(r[0]) for r in chain.ho.q(
        "SELECT member FROM sms_campaign_control WHERE campaign_id = ?", (cid,))}  # fmt: skip
    assert sent | held == want and not sent & held
    assert held and sent
    assert held == {m for m in want if campaigns.in_control(cid, m, 3_000)}
    # the campaign was sent; half the control group and one recipient came back
    db.run(lambda tx: tx.execute("UPDATE sms_outbox SET state = 'delivered' WHERE campaign_id = ?",
                                 (cid,)))  # fmt: skip
    res = kpis.campaign_result(db, cid)
    assert res["recipients"]["members"] == len(sent)
    assert res["control"]["members"] == len(held)
    assert res["recipients"]["buyers"] == 0  # nobody has bought since (the chain ends today)
    with pytest.raises(ClubError):
        campaigns.create(db, rs, MINA, "x", "hi", {"all": True}, control_bp=6_000)
    segments.delete(db, MINA, sid)
    assert segments.listing(db) == []


def test_exports_csv_and_xlsx(chain: Chain) -> None:
    t = sales.by_store(chain.ho.db, Period(chain.first, chain.last))
    t.rows[0][0] = "=HYPERLINK(1)"  # a hostile store id from a device
    fa = {"Store": "فروشگاه", "Total": "جمع"}.get
    body = export.to_csv(t, lambda s: fa(s) or s)
    assert body.startswith("\ufeff".encode())
    text = body.decode("utf-8-sig").splitlines()
    assert text[0].startswith("فروشگاه,Sales")
    assert text[1].startswith("'=HYPERLINK")
    assert text[-1].startswith("جمع,")
    wb = openpyxl.load_workbook(io.BytesIO(export.to_xlsx(t, "stores", rtl=True)))
    ws = wb.active
    assert ws is not None and ws.sheet_view.rightToLeft
    values = list(ws.iter_rows(values_only=True))
    assert values[0][0] == "Store" and values[1][0] == "'=HYPERLINK(1)"
    assert [list(v) for v in values[2 : 1 + len(t.rows)]] == [[*r[:-1], r[-1]] for r in t.rows[1:]]


def test_periods_on_the_jalali_calendar() -> None:
    nowruz = jalali.to_days(1405, 1, 1)
    assert periods.start(nowruz, "year") == nowruz
    assert periods.start(nowruz + 40, "month") == jalali.to_days(1405, 2, 1)
    week = periods.start(nowruz + 3, "week")
    assert week % 7 == 2 and week <= nowruz + 3 < week + 7  # 1970-01-01 was a Thursday
    assert periods.start(nowruz, "week") == nowruz  # 1 Farvardin 1405 is a Saturday
    assert periods.buckets(Period(nowruz, nowruz + 31), "month") == [
        nowruz, jalali.to_days(1405, 2, 1)]  # fmt: skip
    assert periods.label(nowruz, "month") == "فروردین 1405"
    p = periods.parse_period("۱۴۰۵/۰۱/۰۱", "1405-1-31", nowruz + 100)
    assert (p.first, p.last, p.days) == (nowruz, nowruz + 30, 31)
    for bad in ("1405/13/01", "1405/12/31", "tomorrow"):  # 1405 is not a leap year
        with pytest.raises(ClubError) as e:
            periods.parse_period(bad, None, nowruz)
        assert "Jalali" in e.value.en and "تاریخ شمسی" in e.value.fa
    with pytest.raises(ClubError) as e:
        periods.parse_period("1405/02/01", "1405/01/01", nowruz)
    assert e.value.code == "bad_period"
