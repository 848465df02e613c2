"""The reports in Chromium on a synthetic chain's four months: the sales report and its
chart, a change of period, the CSV export, the key figures, a segment saved and sent a
campaign, a sale's invoice at A4 and 80 mm, and who may see what."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cloud_broker.club import operators
from cloud_broker.club import today as today_
from cloud_broker.reports import periods, scores
from tests.helpers import chain as chain_
from tests.helpers.console import PASSWORD, Console, http_session, login, shot
from tests.helpers.headoffice import HO

FA_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def test_reports_segments_and_invoice_in_the_browser(tmp_path: Path, page: Any) -> None:
    ho = HO(f"sqlite:///{tmp_path}/ledger.db")
    today = today_.local_day()
    ch = chain_.build(ho, tmp_path, today)
    scores.refresh(ho.db, today)  # the nightly job
    operators.add(ho.db, "mina", "Mina", "marketing", PASSWORD, "test")
    operators.add(ho.db, "sara", "Sara", "support", PASSWORD, "test")
    console = Console(ho.db.url, tmp_path)
    try:
        login(page, console, "mina")
        page.click("header >> text=گزارش‌ها")
        page.wait_for_selector("[data-test=report]")
        page.wait_for_selector("canvas[data-drawn='1']")  # Chart.js drew it, served locally
        first = periods.start(today, "month")
        assert page.input_value("[data-test=from]") == periods.show(first).translate(FA_DIGITS)
        # the last eight weeks, by week
        start = periods.show(today - 55)
        page.fill("[data-test=from]", start)
        page.select_option("[data-test=by]", "week")
        page.click("[data-test=apply]")
        page.wait_for_selector("canvas[data-drawn='1']")
        rows = page.locator("[data-test=report] tbody tr").count()
        assert rows == len(periods.buckets(periods.Period(today - 55, today), "week"))
        shot(page, "reports")
        with page.expect_download() as dl:
            page.click("[data-test=csv]")
        body = Path(dl.value.path()).read_bytes()
        assert body.startswith("\ufeff".encode())
        lines = body.decode("utf-8-sig").splitlines()
        assert lines[0].split(",")[0] == "دوره" and len(lines) == rows + 2
        page.click("[data-test=view-categories]")
        page.wait_for_selector("[data-test=report]")
        cats = page.locator("[data-test=report] tbody tr td:first-child").all_inner_texts()
        assert set(cats) <= set(chain_.CATALOGUE) and len(cats) == len(chain_.CATALOGUE)

        page.goto(console.url + "/reports/kpis")
        page.wait_for_selector("[data-test=participation]")
        assert "٪" in page.inner_text("[data-test=participation]")
        shot(page, "kpis")

        page.goto(console.url + "/reports/segments")
        for name in ("at_risk", "cant_lose", "hibernating", "lost"):
            page.check(f"[data-test=rfm-{name}]")
        page.fill("[data-test=segment-name]", "دلتنگ‌ها")
        page.click("[data-test=segment-save]")
        page.wait_for_selector("[data-test=segment-members]")
        want = ho.one("SELECT COUNT(*) FROM member_scores WHERE segment IN ('at_risk', "
                      "'cant_lose', 'hibernating', 'lost')")  # fmt: skip
        assert want > 5
        assert page.inner_text("[data-test=segment-count]").startswith(
            str(want).translate(FA_DIGITS))  # fmt: skip
        shot(page, "segment")
        page.click("[data-test=send-campaign]")
        page.wait_for_selector("[data-test=campaign-form]")
        assert page.is_checked("[data-test=saved]")
        assert page.input_value("[data-test=control]") == "10"
        page.fill("[data-test=name]", "بازگشت")
        page.fill("[data-test=text]", "{name} عزیز، دلمان برایتان تنگ شده است.")
        page.click("[data-test=create]")
        page.wait_for_selector("[data-test=estimate]")
        assert "دلتنگ‌ها" in page.inner_text("body")
        cid = ho.one("SELECT id FROM sms_campaigns")
        assert ho.one("SELECT control_bp FROM sms_campaigns WHERE id = ?", (cid,)) == 1_000

        sale = next(r for r in ch.records if r.type == "sale" and r.payload.get(8))
        page.goto(f"{console.url}/sales/{sale.device}/{sale.seq}")
        page.wait_for_selector("[data-test=invoice-lines]")
        n = len(sale.payload[10])
        assert page.locator("[data-test=invoice-lines] tbody tr").count() == n
        shot(page, "invoice")
        page.goto(f"{console.url}/sales/{sale.device}/{sale.seq}?size=80mm")
        width = page.evaluate("document.body.getBoundingClientRect().width")
        assert 260 < width < 310  # 72 mm of print area and the margins: 80 mm paper

        # support reads an invoice but not the reports; hostile paths get the error page
        s = http_session(console, "sara")
        assert s.get("/reports").status_code == 403
        assert s.get(f"/sales/{sale.device}/{sale.seq}").status_code == 200
        assert s.get(f"/sales/{sale.device}/x").status_code == 400
        m = http_session(console, "mina")
        bad = m.get("/reports", params={"from": "1405/13/40"})
        assert bad.status_code == 400 and "Jalali" in bad.text
    finally:
        console.stop()
