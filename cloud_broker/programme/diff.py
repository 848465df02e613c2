"""What changed between two versions of the programme, as a list a person reads: a rule
added or removed, a field of a rule, a tier, the policy or a limit changed from one value to
another.  Rules are matched by id, so the order of the file never shows as a change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Change:
    where: str  # "rule:ID", "tiers", "policy", "limits", "groups", "bundle"
    what: str  # added, removed, changed
    field: str  # a dotted path inside it ("" for a whole rule)
    old: Any
    new: Any


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k in sorted(value):
            out.update(_flat(value[k], f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _fields(where: str, a: Any, b: Any) -> list[Change]:
    fa, fb = _flat(a or {}), _flat(b or {})
    out = []
    for k in sorted(set(fa) | set(fb)):
        if k not in fa:
            out.append(Change(where, "added", k, None, fb[k]))
        elif k not in fb:
            out.append(Change(where, "removed", k, fa[k], None))
        elif fa[k] != fb[k]:
            out.append(Change(where, "changed", k, fa[k], fb[k]))
    return out


def _tiers(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[Change]:
    la = {t["id"]: t for t in (a or {}).get("levels", [])}
    lb = {t["id"]: t for t in (b or {}).get("levels", [])}
    out = [
        Change("tiers", "changed", "window_days", (a or {}).get("window_days"),
               (b or {}).get("window_days"))
    ] if (a or {}).get("window_days") != (b or {}).get("window_days") else []  # fmt: skip
    for tid in sorted(set(la) | set(lb)):
        if tid not in la:
            out.append(Change(f"tier:{tid}", "added", "", None, lb[tid]))
        elif tid not in lb:
            out.append(Change(f"tier:{tid}", "removed", "", la[tid], None))
        else:
            out += _fields(f"tier:{tid}", la[tid], lb[tid])
    return out


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[Change]:
    """From version ``a`` to version ``b``."""
    out = [
        Change("bundle", "changed", key, a.get(key), b.get(key))
        for key in ("tenant", "currency", "schema")
        if a.get(key) != b.get(key)
    ]
    out += _tiers(a.get("tiers"), b.get("tiers"))
    for section in ("policy", "limits", "groups"):
        out += _fields(section, a.get(section), b.get(section))
    ra = {r["id"]: r for r in a.get("rules", [])}
    rb = {r["id"]: r for r in b.get("rules", [])}
    for rid in sorted(set(ra) | set(rb)):
        if rid not in ra:
            out.append(Change(f"rule:{rid}", "added", "", None, rb[rid]))
        elif rid not in rb:
            out.append(Change(f"rule:{rid}", "removed", "", ra[rid], None))
        else:
            out += _fields(f"rule:{rid}", ra[rid], rb[rid])
    return out
