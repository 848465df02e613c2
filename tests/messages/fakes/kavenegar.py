"""Kavenegar's REST API v1, as documented at https://kavenegar.com/rest.html."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.messages.fakes.server import FakeGateway, Reply, Stored, json_reply, parts

_KN_PATH = re.compile(r"/v1/(?P<key>[^/]+)/(?P<scope>sms|verify)/(?P<method>\w+)\.json")
_KN_STATUS_TEXT = {1: "در صف ارسال", 4: "ارسال شده به مخابرات", 10: "رسیده به گیرنده"}


class FakeKavenegar(FakeGateway):
    """``/v1/{API-KEY}/sms/send.json``, ``sms/status.json``, ``verify/lookup.json``."""

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.templates = {"loyalty-otp"}
        self.error_http_status = "same"  # "same": HTTP status = return.status; "200": always 200
        self._next_id = 8_792_343
        self._by_localid: dict[str, int] = {}

    def deliver(self, provider_id: str | int, status: int = 10) -> None:
        with self.lock:
            self.messages[int(provider_id)].status = status

    def _env(self, code: int, message: str, entries: Any = None, **headers: str) -> Reply:
        http = code if self.error_http_status == "same" else 200
        return json_reply(
            http, {"return": {"status": code, "message": message}, "entries": entries}, headers
        )

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        m = _KN_PATH.fullmatch(urlsplit(path).path)
        if m is None:
            return self._env(404, "متد نامشخص است")
        if self.raw:
            with self.lock:
                self.raw_count += 1
                pid = self.raw_count
            return self._env(200, "تایید شد", [{"messageid": pid, "status": 1, "cost": 1230}])
        if m["key"] != self.api_key:
            return self._env(403, "API-Key معتبر نیست")
        form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        fault = self._fault()
        if fault is not None and fault != "timeout":
            return self._fault_reply(fault)
        route = (m["scope"], m["method"])
        if route == ("sms", "send"):
            reply = self._send(form, None)
        elif route == ("verify", "lookup"):
            if form.get("template") not in self.templates:
                return self._env(424, "الگوی مورد نظر پیدا نشد")
            if not form.get("token"):
                return self._env(406, "پارامترهای اجباری خالی ارسال شده اند")
            reply = self._send(form, form["template"])
        elif route == ("sms", "status"):
            reply = self._status(form)
        else:
            return self._env(404, "متد نامشخص است")
        if fault == "timeout":
            self._hold()
        return reply

    def _fault_reply(self, fault: str) -> Reply:
        if fault == "invalid_number":
            return self._env(411, "دریافت کننده نامعتبر است")
        if fault == "no_credit":
            return self._env(418, "اعتبار حساب شما کافی نیست")
        if fault == "rate_limited":
            return self._env(451, "فراخوانی بیش از حد در بازه زمانی", **{"Retry-After": "30"})
        if fault == "busy":
            return self._env(409, "سرور قادر به پاسخگوئی نیست لطفا بعدا تلاش کنید")
        if fault == "auth":
            return self._env(403, f"API-Key {self.api_key} معتبر نیست")  # echoes the key
        if fault == "garbled":
            return 200, {"Content-Type": "text/html"}, b"<html>OK</html>"
        return 502, {"Content-Type": "text/html"}, b"<html>502 Bad Gateway</html>"

    def _send(self, form: dict[str, str], template: str | None) -> Reply:
        receptor = form.get("receptor", "")
        text = form.get("message", "") if template is None else form.get("token", "")
        if not re.fullmatch(r"09[0-9]{9}", receptor):
            return self._env(411, "دریافت کننده نامعتبر است")
        if not text:
            return self._env(413, "پیام خالی است")
        localid = form.get("localid") or None
        with self.lock:
            pid = self._by_localid.get(localid) if localid else None
            if pid is None:
                pid = self._next_id
                self._next_id += 1
                cost = parts(text) * self.price_per_part
                self.messages[pid] = Stored(
                    pid, receptor, text, form.get("sender"), localid, cost, 1, template
                )
                if localid:
                    self._by_localid[localid] = pid
            msg = self.messages[pid]
        entry = {
            "messageid": pid,
            "message": msg.text,
            "status": 1,
            "statustext": "در صف ارسال",
            "sender": msg.sender or "10004346",
            "receptor": msg.to,
            "date": int(time.time()),
            "cost": msg.cost,
        }
        return self._env(200, "تایید شد", [entry])

    def _status(self, form: dict[str, str]) -> Reply:
        ids = [s for s in form.get("messageid", "").split(",") if s]
        if len(ids) > 500:
            return self._env(414, "حجم درخواست بیشتر از حد مجاز است")
        entries = []
        with self.lock:
            for s in ids:
                msg = self.messages.get(int(s)) if s.isdigit() else None
                code = msg.status if msg else 100
                entries.append(
                    {
                        "messageid": int(s) if s.isdigit() else s,
                        "status": code,
                        "statustext": _KN_STATUS_TEXT.get(code, ""),
                    }
                )
        return self._env(200, "تایید شد", entries)
