"""The demo looks at head office's console the way a person does: it logs in over HTTP and
reads members' pages, and holds what they show to the ledger."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from demo.report import Check
from demo.world import HeadOffice

NAME = "head office's console shows each member as the ledger holds them"


class ConsoleClient:
    """A browser without the browser: cookies, the login form's CSRF token, pages."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.url + path, timeout=15) as r:
            return str(r.read().decode("utf-8"))

    def login(self, username: str, password: str) -> bool:
        self.get("/switch?lang=en&next=/login")  # English, so numbers read 1,234
        form = self.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form)
        if token is None:
            return False
        data = urllib.parse.urlencode(
            {"username": username, "password": password, "csrf": token.group(1), "next": "/"}
        ).encode()
        try:
            with self.opener.open(self.url + "/login", data=data, timeout=15) as r:
                return bool(r.url.rstrip("/") == self.url)
        except urllib.error.HTTPError as e:  # 401: the login form again, refused
            if e.code in (401, 403):
                return False
            raise

    def member(self, key: str) -> dict[str, Any]:
        page = self.get("/members/" + urllib.parse.quote(key, safe=""))
        out: dict[str, Any] = {}
        for field, end in (("points", "div"), ("wallet", "div"), ("member-title", "h1")):
            m = re.search(rf'data-test="{field}"[^>]*>(.*?)</{end}>', page, re.S)
            out[field] = re.sub(r"<[^>]+>", "", m.group(1)).strip() if m else None
        return out


def console_check(ho: HeadOffice, members: list[str]) -> Check:
    """Log in as the demo's admin and read ``members``' pages: their points, wallet and
    name as the ledger holds them."""
    client = ConsoleClient(ho.console_url)
    try:
        if not client.login("admin", ho.console_password):
            return Check(NAME, False, "the demo's admin could not log in")
        wrong = []
        for m in members:
            want = ho.q("SELECT points, wallet, name FROM members WHERE member = ?", (m,))[0]
            got = client.member(m)
            shown = (got["points"], got["wallet"])
            if shown != (f"{want[0]:,}", f"{want[1]:,} IRR") or (
                want[2] and want[2] not in str(got["member-title"])
            ):
                wrong.append(f"{m}: shows {shown}, ledger {want[0]:,} points {want[1]:,} IRR")
    except OSError as e:
        return Check(NAME, False, f"the console did not answer: {e}")
    if wrong:
        return Check(NAME, False, "; ".join(wrong[:3]))
    return Check(NAME, True, f"{len(members)} members' pages read at {ho.console_url}")
