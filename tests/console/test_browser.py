"""The console in a real Chromium: log in, find a member typed in Persian digits, adjust,
link a card to a phone, and every refusal (a forged form, a role, an expired session, a
form sent twice, bad input) a clear page that changes nothing."""

from __future__ import annotations

import re
from typing import Any

from tests.console.conftest import ALI, CARD
from tests.helpers.console import PASSWORD, Console, login, shot
from tests.helpers.headoffice import HO


def _error(page: Any) -> str:
    return str(page.inner_text("[data-test=error]")).strip()


def _audits(ho: HO) -> int:
    return int(ho.one("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'member.%'"))


def test_login_persian_first_and_english_switch(page: Any, console: Console) -> None:
    page.goto(console.url + "/members")
    assert "/login" in page.url and "next=/members" in page.url  # no session: the login form
    page.fill("#username", "support")
    page.fill("#password", "wrong password!")
    page.click("button[type=submit]")
    assert "نام کاربری یا گذرواژه نادرست است" in page.inner_text(".alert-danger")
    shot(page, "login")
    page.fill("#username", "support")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/members$"))  # back where it was going
    page.goto(console.url + "/")
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.locator("link[href*='tabler.rtl']").count() == 1
    assert "امروز" in page.inner_text("h1")
    assert page.inner_text("[data-test=sales-1]") == "۴٬۲۰۰٬۰۰۰ ریال"  # today, Persian digits
    assert page.inner_text("[data-test=liability]") == "۳۰۴٬۰۰۰ ریال"  # 420 points × 700 + 10,000
    shot(page, "today")
    page.click("[data-test=lang]")
    assert page.get_attribute("html", "dir") == "ltr"
    assert "Today" in page.inner_text("h1")
    assert page.inner_text("[data-test=sales-1]") == "4,200,000 IRR"
    page.goto(console.url + "/switch?unit=toman&next=/")
    assert page.inner_text("[data-test=sales-1]") == "420,000 Toman"


def test_find_a_member_typed_in_persian_digits(page: Any, console: Console) -> None:
    login(page, console, "viewer")
    page.goto(console.url + "/members")
    page.fill("[data-test=search]", "۰۹۱۲ ۱۲۳ ۴۵۶۷")  # htmx searches as one types
    link = page.locator("[data-test=found] a", has_text=ALI)
    link.wait_for()
    shot(page, "search")
    link.click()
    page.wait_for_selector("[data-test=member-title]")
    assert page.inner_text("[data-test=points]") == "۳۰۰"
    assert "۱۰٬۰۰۰ ریال" in page.inner_text("[data-test=wallet]")
    assert page.locator("[data-test=purchases] details").count() == 2
    assert page.locator("[data-test=lots] tbody tr").count() == 2  # one lot per sale
    assert page.locator("form[data-test=adjust]").count() == 0  # a viewer sees, changes nothing
    for typed in ("00989121234567", "+98 912 123 4567", "٠٩١٢١٢٣٤٥٦٧"):  # Arabic-Indic too
        page.goto(console.url + "/members?go=1&q=" + typed.replace("+", "%2B"))
        assert page.inner_text("[data-test=member-title]").startswith(ALI), typed
    page.goto(console.url + "/members?q=09121234")  # too short to be a phone: no one
    assert page.locator("[data-test=none]").count() == 1


def test_adjust_once_with_a_reason_and_never_below_zero(
    page: Any, console: Console, ledger: HO
) -> None:
    login(page, console, "support")
    page.goto(console.url + "/members/" + ALI.replace("+", "%2B"))
    form = page.locator("form[data-test=adjust]")
    form.locator("[name=points]").fill("۵۰")
    form.locator("[name=reason]").fill("جبران تأخیر تحویل")
    shot(page, "member")
    idem = form.locator("[name=idem]").input_value()
    form.locator("button").click()
    page.wait_for_selector("[role=status]")
    assert page.inner_text("[data-test=points]") == "۳۵۰"
    assert ledger.member(ALI)[0] == 350
    assert "جبران تأخیر تحویل" in page.inner_text("[data-test=changes]")
    # the same form sent again (a double click, a browser retry): done once
    again = page.request.post(
        page.url + "/adjust",
        form={"csrf": _csrf(page), "idem": idem, "points": "50", "reason": "again"},
    )
    assert again.ok and "پیش‌تر انجام شده" in again.text()
    assert ledger.member(ALI)[0] == 350
    # more than the member holds: refused, says so, changes nothing
    form = page.locator("form[data-test=adjust]")
    form.locator("[name=points]").fill("-1000")
    form.locator("[name=reason]").fill("اشتباه")
    form.locator("button").click()
    assert "منفی" in _error(page)
    assert ledger.member(ALI)[0] == 350
    assert ledger.check() == []


def _csrf(page: Any) -> str:
    return str(page.locator("input[name=csrf]").first.input_value())


def test_link_a_card_member_to_a_phone(page: Any, console: Console, ledger: HO) -> None:
    login(page, console, "support")
    page.goto(console.url + f"/members?go=1&q=card:{CARD}")
    assert page.inner_text("[data-test=points]") == "۷۰"
    form = page.locator("form[data-test=link]")
    form.locator("[name=phone]").fill("۰۹۱۲-۱۲۳-۴۵۶۷")
    form.locator("[name=reason]").fill("مشتری شماره موبایلش را داد")
    form.locator("button").click()
    page.wait_for_selector("[role=status]")
    assert page.inner_text("[data-test=member-title]").startswith(ALI)
    assert page.inner_text("[data-test=points]") == "۳۷۰"  # 300 + the card's 70
    assert CARD in page.inner_text("body")
    assert page.locator("[data-test=purchases] details").count() == 3  # the card's sale too
    shot(page, "merged")
    assert ledger.member(ALI)[0] == 370 and ledger.member(f"card:{CARD}")[0] == 0
    assert ledger.one("SELECT COUNT(*) FROM member_merges") == 1
    assert ledger.check() == []
    # the card's own page now says where it went, with no forms to change it
    page.goto(console.url + f"/members/card:{CARD}")
    assert ALI in page.inner_text(".alert-info")
    assert page.locator("form[data-test=link]").count() == 0


def test_forged_csrf_token_changes_nothing(page: Any, console: Console, ledger: HO) -> None:
    login(page, console, "admin")
    page.goto(console.url + "/members/" + ALI.replace("+", "%2B"))
    before = _audits(ledger)
    form = page.locator("form[data-test=adjust]")
    form.locator("input[name=csrf]").evaluate("e => e.value = 'forged-by-another-site'")
    form.locator("[name=points]").fill("1000")
    form.locator("[name=reason]").fill("x")
    form.locator("button").click()
    assert "از کنسول نیامده" in _error(page)
    assert ledger.member(ALI)[0] == 300 and _audits(ledger) == before
    # and a POST with no token at all (another site's form): the same
    r = page.request.post(
        page.url, form={"points": "1000", "reason": "x"}, fail_on_status_code=False
    )
    assert r.status in (403, 405)


def test_a_viewer_may_not_write(page: Any, console: Console, ledger: HO) -> None:
    login(page, console, "viewer")
    page.goto(console.url + "/members/" + ALI.replace("+", "%2B"))
    assert page.locator("form[data-test=adjust], form[data-test=link]").count() == 0
    r = page.request.post(
        page.url + "/adjust",
        form={"csrf": _csrf(page), "idem": "v1", "points": "1000", "reason": "I want points"},
        fail_on_status_code=False,
    )
    assert r.status == 403 and "نقش شما اجازه" in r.text()
    assert ledger.member(ALI)[0] == 300
    for path in ("/operators", "/audit"):
        page.goto(console.url + path)
        assert "نقش شما اجازه" in _error(page)
    shot(page, "refused")


def test_bad_input_is_a_clear_page(page: Any, console: Console, ledger: HO) -> None:
    login(page, console, "admin")
    page.goto(console.url + "/members/%2B989000000000")
    assert "چنین عضوی" in _error(page)
    page.goto(console.url + "/members/" + ALI.replace("+", "%2B"))
    form = page.locator("form[data-test=link]")
    form.locator("[name=card]").fill("bad card id")
    form.locator("[name=reason]").fill("test")
    form.locator("button").click()
    assert "شناسه کارت" in _error(page)
    page.goto(console.url + "/members/" + ALI.replace("+", "%2B"))
    form = page.locator("form[data-test=adjust]")
    form.locator("[name=points]").fill("12abc")
    form.locator("[name=reason]").fill("test")
    form.locator("button").click()
    assert "عدد صحیح" in _error(page)
    # a hostile name is shown as text, never run
    page.goto(console.url + "/members/" + ALI.replace("+", "%2B"))
    form = page.locator("form[data-test=edit]")
    form.locator("[name=name]").fill("<script>document.title='pwned'</script>علی")
    form.locator("[name=birthday]").fill("۱۳۷۰/۱۳/۰۱")  # no 13th month
    form.locator("button").click()
    assert "۱۳۷۰/۰۵/۲۳" in _error(page)
    page.goto(console.url + "/members/" + ALI.replace("+", "%2B"))
    form = page.locator("form[data-test=edit]")
    form.locator("[name=name]").fill("<script>document.title='pwned'</script>علی")
    form.locator("button").click()
    page.wait_for_selector("[role=status]")
    assert "<script>" in page.inner_text("[data-test=member-title]")
    assert page.title() != "pwned"
    assert ledger.check() == []


def test_an_expired_session_logs_in_again_and_changes_nothing(
    page: Any, console: Console, ledger: HO
) -> None:
    login(page, console, "support")
    page.goto(console.url + "/members/" + ALI.replace("+", "%2B"))
    ledger.db.run(lambda tx: tx.execute("UPDATE console_sessions SET last_seen_at = 0"))
    form = page.locator("form[data-test=adjust]")
    form.locator("[name=points]").fill("10")
    form.locator("[name=reason]").fill("late")
    form.locator("button").click()
    assert "نشست شما پایان یافته" in _error(page)
    assert ledger.member(ALI)[0] == 300
    page.goto(console.url + "/stores")
    assert "/login" in page.url


def test_five_wrong_passwords_lock_the_account(page: Any, console: Console) -> None:
    for _ in range(5):
        page.goto(console.url + "/login")
        page.fill("#username", "finance")
        page.fill("#password", "not the password")
        page.click("button[type=submit]")
    page.goto(console.url + "/login")
    page.fill("#username", "finance")
    page.fill("#password", PASSWORD)  # right, but too late
    page.click("button[type=submit]")
    assert "قفل" in page.inner_text(".alert-danger")


def test_usable_on_a_phone(browser: Any, console: Console) -> None:
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="fa-IR")
    page = ctx.new_page()
    try:
        login(page, console, "support")
        for path in ("/", "/members/" + ALI.replace("+", "%2B"), "/stores", "/incidents"):
            page.goto(console.url + path)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, overflow)  # nothing to scroll sideways
        assert page.locator(".navbar-toggler").is_visible()  # the menu folds
        page.goto(console.url + "/members/" + ALI.replace("+", "%2B"))
        shot(page, "phone")
    finally:
        ctx.close()
