"""IPPanel's Edge API, as documented at https://ippanelcom.github.io/Edge-Document."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.messages.fakes.server import FakeGateway, Reply, Stored, json_reply, parts


def _meta(
    status: bool, message: str, code: str, errors: dict[str, Any] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "status": status,
        "message": message,
        "message_parameters": [],
        "message_code": code,
    }
    if not status:
        meta["errors"] = errors or {}
    return meta


class FakeIPPanel(FakeGateway):
    """Edge API under ``/v1``: ``/api/send``, ``/api/report/recipients``,
    ``/api/report/by_bulk/{id}``; the key in the Authorization header."""

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.patterns = {"pt-otp"}
        self._next_id = 1_123_544_244

    def deliver(self, provider_id: str | int, message_status: int = 2) -> None:
        with self.lock:
            self.messages[int(provider_id)].extra["message_status"] = message_status

    def settle(self, provider_id: str | int, state_id: int) -> None:
        with self.lock:
            self.messages[int(provider_id)].status = state_id

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        url = urlsplit(path)
        if self.raw:
            with self.lock:
                self.raw_count += 1
                pid = self.raw_count
            return json_reply(
                200,
                {"data": {"message_outbox_ids": [pid]}, "meta": _meta(True, "انجام شد", "200-1")},
            )
        if headers.get("authorization") != self.api_key:
            return json_reply(
                401, {"data": None, "meta": _meta(False, "اطلاعات وارد شده صحیح نمی باشد", "400-1")}
            )
        fault = self._fault()
        if fault is not None and fault != "timeout":
            return self._fault_reply(fault)
        if method == "POST" and url.path == "/v1/api/send":
            reply = self._send(json.loads(body or b"{}"))
        elif method == "GET" and url.path == "/v1/api/report/recipients":
            reply = self._recipients(parse_qs(url.query).get("bulk_id", [""])[0])
        elif method == "POST" and (m := re.fullmatch(r"/v1/api/report/by_bulk/(\d+)", url.path)):
            reply = self._bulk(int(m[1]))
        else:
            return json_reply(404, {"data": None, "meta": _meta(False, "یافت نشد", "404-1")})
        if fault == "timeout":
            self._hold()
        return reply

    def _fault_reply(self, fault: str) -> Reply:
        if fault == "invalid_number":
            return self._invalid("params.recipients.0", "فرمت گیرنده صحیح نمی باشد")
        if fault == "no_credit":
            return json_reply(
                402, {"data": None, "meta": _meta(False, "اعتبار کافی نیست", "402-1")}
            )
        if fault == "rate_limited":
            return json_reply(429, {"message": "Too Many Attempts."}, {"Retry-After": "7"})
        if fault == "auth":
            return json_reply(
                401, {"data": None, "meta": _meta(False, f"توکن {self.api_key} نامعتبر", "400-1")}
            )
        if fault == "busy":
            return 503, {"Content-Type": "text/plain"}, b"Service Unavailable"
        if fault == "garbled":
            return 200, {"Content-Type": "text/html"}, b"<html>OK</html>"
        return 500, {"Content-Type": "text/html"}, b"<html>Server Error</html>"

    def _invalid(self, field_name: str, message: str) -> Reply:
        meta = _meta(False, message, "400-2", {field_name: [message]})
        return json_reply(422, {"data": None, "meta": meta})

    def _send(self, doc: dict[str, Any]) -> Reply:
        kind = doc.get("sending_type")
        if not doc.get("from_number"):
            return self._invalid("from_number", "تکمیل گزینه شماره فرستنده الزامی است")
        if kind == "pattern":
            recipients, text, template = (
                doc.get("recipients") or [],
                json.dumps(doc.get("params")),
                doc.get("code"),
            )
            if template not in self.patterns:
                return self._invalid("code", "الگو یافت نشد")
        elif kind in ("webservice", "normal"):
            recipients, text, template = (
                (doc.get("params") or {}).get("recipients") or [],
                doc.get("message") or "",
                None,
            )
            if not text:
                return self._invalid("message", "تکمیل گزینه پیام الزامی است")
        else:
            return self._invalid("sending_type", "نوع ارسال نامعتبر است")
        for i, r in enumerate(recipients):
            if not re.fullmatch(r"\+989[0-9]{9}", str(r)):
                return self._invalid(f"params.recipients.{i}", "فرمت گیرنده صحیح نمی باشد")
        with self.lock:
            pid = self._next_id
            self._next_id += 1
            cost = parts(text) * self.price_per_part
            self.messages[pid] = Stored(
                pid, recipients[0], text, doc["from_number"], None, cost, 5, template
            )
        return json_reply(
            200, {"data": {"message_outbox_ids": [pid]}, "meta": _meta(True, "انجام شد", "200-1")}
        )

    def _recipients(self, bulk_id: str) -> Reply:
        with self.lock:
            msg = self.messages.get(int(bulk_id)) if bulk_id.isdigit() else None
            if msg is None:
                return json_reply(
                    404, {"data": None, "meta": _meta(False, "پیام مورد نظر یافت نشد", "400-1")}
                )
            row: dict[str, Any] = {
                "recipient": msg.to,
                "message": msg.text,
                "is_readable": True,
                "msg_parts": str(parts(msg.text)),
            }
            if "message_status" in msg.extra:
                row["message_status"] = str(msg.extra["message_status"])
        meta = {"current_page": 1, "per_page": 1, "total": 1, **_meta(True, "انجام شد", "200-1")}
        return json_reply(200, {"data": [row], "meta": meta})

    def _bulk(self, bulk_id: int) -> Reply:
        with self.lock:
            msg = self.messages.get(bulk_id)
            if msg is None:
                return json_reply(
                    404, {"data": None, "meta": _meta(False, "پیام مورد نظر یافت نشد", "400-1")}
                )
            data = {
                "messages_outbox_id": str(bulk_id),
                "number": msg.sender,
                "cost": msg.cost,
                "state_id": msg.status,
            }
        return json_reply(200, {"data": data, "meta": _meta(True, "انجام شد", "200-1")})
