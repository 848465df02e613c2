"""The API's OpenAPI 3.1 document, written out (the routes are few and each is documented
here as a caller needs it); ``tests/api/test_contract.py`` fuzzes the running server with
it."""

from __future__ import annotations

from typing import Any

ERROR = {"type": "object", "required": ["error", "en", "fa"],
         "properties": {"error": {"type": "string"}, "en": {"type": "string"},
                        "fa": {"type": "string"}}}  # fmt: skip
LINE = {
    "type": "object", "required": ["sku", "qty", "unit_price"],
    "properties": {"sku": {"type": "string", "maxLength": 64},
                   "category": {"type": "string", "maxLength": 64},
                   "qty": {"type": "integer", "minimum": 1, "maximum": 100000},
                   "unit_price": {"type": "integer", "minimum": 0,
                                  "description": "Rials"}},
}  # fmt: skip
BASKET = {"type": "object", "required": ["lines"],
          "properties": {"lines": {"type": "array", "items": LINE, "minItems": 1,
                                   "maxItems": 200},
                         "coupons": {"type": "array", "items": {"type": "string"}},
                         "redeem_points": {"type": "integer", "minimum": 0},
                         "use_wallet": {"type": "integer", "minimum": 0}}}  # fmt: skip
PHONE = {"type": "string", "description": "a mobile number in any form: 0912..., +98912..., "
         "Persian digits", "example": "09121234567"}  # fmt: skip
MEMBER = {"type": "object", "properties": {
    "member": {"type": "string"}, "name": {"type": ["string", "null"]},
    "points": {"type": "integer"}, "wallet": {"type": "integer", "description": "Rials"},
    "visits": {"type": "integer"}, "progress": {"type": "object"},
    "expiring": {"type": "object"}, "referral_code": {"type": ["string", "null"]}}}  # fmt: skip
IDEM = {"name": "Idempotency-Key", "in": "header", "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 100},
        "description": "Unique per write; a repeat gets the first answer"}  # fmt: skip


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "refused", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for c in codes}  # fmt: skip


def _ok(desc: str, schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    return {status: {"description": desc, "content": {"application/json": {"schema": schema}}}}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Customer club API", "version": "1.0.0",
                 "description": "Members, quotes, online sales and refunds, coupons. "
                 "Amounts are integer Rials; errors carry English and Persian."},
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"key": {"type": "http", "scheme": "bearer",
                                        "description": "an API key: lk_..."}},
            "schemas": {"Error": ERROR, "Member": MEMBER, "Basket": BASKET},
        },
        "security": [{"key": []}],
        "paths": {
            "/v1/members": {"get": {
                "summary": "Look a member up by phone or card (scope members:read)",
                "operationId": "lookupMember",
                "parameters": [
                    {"name": "phone", "in": "query", "schema": PHONE},
                    {"name": "card", "in": "query", "schema": {"type": "string"}}],
                "responses": {**_ok("the member", {"$ref": "#/components/schemas/Member"}),
                              **_errors(400, 401, 403, 404, 429)}}},
            "/v1/members/{member}/history": {"get": {
                "summary": "A member's purchases and points history (scope members:read)",
                "operationId": "memberHistory",
                "parameters": [{"name": "member", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {**_ok("purchases and history", {"type": "object"}),
                              **_errors(400, 401, 403, 404, 429)}}},
            "/v1/quote": {"post": {
                "summary": "Quote a basket with the tills' engine and rules (scope quote)",
                "operationId": "quote",
                "requestBody": json_body({"type": "object", "required": ["basket"],
                                          "properties": {"basket": BASKET, "phone": PHONE}}),
                "responses": {**_ok("the quote", {"type": "object"}),
                              **_errors(400, 401, 403, 404, 413, 429, 503)}}},
            "/v1/sales": {"post": {
                "summary": "Record an online sale the shop was paid for (scope sales:write)",
                "operationId": "recordSale",
                "parameters": [IDEM],
                "requestBody": json_body({"type": "object", "required": ["basket", "payment_ref"],
                                          "properties": {"basket": BASKET, "phone": PHONE,
                                                         "payment_ref": {"type": "string",
                                                                         "maxLength": 40}}}),
                "responses": {**_ok("the sale as booked", {"type": "object"}, "201"),
                              **_errors(400, 401, 403, 404, 409, 413, 422, 429, 503)}}},
            "/v1/sales/{seq}/refund": {"post": {
                "summary": "Refund (part of) an online sale (scope sales:write)",
                "operationId": "refundSale",
                "parameters": [IDEM, {"name": "seq", "in": "path", "required": True,
                                      "schema": {"type": "integer", "minimum": 1}}],
                "requestBody": json_body({"type": "object", "properties": {
                    "all": {"type": "boolean"},
                    "lines": {"type": "array", "items": {"type": "object", "properties": {
                        "line": {"type": "integer", "minimum": 0},
                        "qty": {"type": "integer", "minimum": 1}}}}}}),
                "responses": {**_ok("the refund as booked", {"type": "object"}, "201"),
                              **_errors(400, 401, 403, 404, 409, 413, 422, 429, 503)}}},
            "/v1/coupons": {"post": {
                "summary": "Give members a coupon of the programme (scope coupons:write)",
                "operationId": "issueCoupon",
                "parameters": [IDEM],
                "requestBody": json_body({"type": "object", "required": ["code", "phones"],
                                          "properties": {"code": {"type": "string"},
                                                         "phones": {"type": "array",
                                                                    "items": PHONE},
                                                         "valid_until": {"type": "string"}}}),
                "responses": {**_ok("issued", {"type": "object"}, "201"),
                              **_errors(400, 401, 403, 409, 413, 422, 429)}}},
        },
    }  # fmt: skip
