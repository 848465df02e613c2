"""Small builders for rule bundles, baskets and members used across the core tests."""

from __future__ import annotations

from typing import Any

from edge.core.engine import quote
from edge.core.ruleset import compile_rules

AT = "2026-03-20T10:00:00+03:30"  # Friday 29 Esfand 1404, 10:00 Tehran


def name(text: str) -> dict[str, str]:
    return {"fa": "قاعده " + text, "en": "Rule " + text}


def rule(rid: str, kind: str, **kw: Any) -> dict[str, Any]:
    return {"id": rid, "kind": kind, "name": name(rid), **kw}


def bundle(*rules: dict[str, Any], **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"version": 1, "rules": list(rules)}
    doc.update(kw)
    return doc


def line(sku: str, price: int, qty: int = 1, category: str = "general") -> dict[str, Any]:
    return {"sku": sku, "category": category, "qty": qty, "unit_price": price}


def member(**kw: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"ref": "+989121234567", "points": 0, "wallet": 0, "visits": 5}
    m.update(kw)
    return m


def q(
    doc: dict[str, Any],
    lines: list[dict[str, Any]],
    mem: dict[str, Any] | None = None,
    at: str = AT,
    **basket: Any,
) -> dict[str, Any]:
    return quote(compile_rules(doc), {"lines": lines, **basket}, mem, at)


EARN = rule("earn", "earn_rate", points=100, per_rials=1_000_000)
