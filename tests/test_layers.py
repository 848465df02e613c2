"""The packages depend downwards only (docs/architecture.md): the engine on nothing, the
protocol on the engine, storage on the protocol, the agent on all of them; head office and
the technician's tools beside the agent, never inside it.  Checked on the imports in the
source, so an import loop cannot creep back."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

# package -> the packages its modules may import from (besides itself)
ALLOWED = {
    "edge.core": set(),
    "edge.protocol": {"edge.core", "edge.errors", "edge.backoff", "edge.sanitize"},
    "edge.drivers": {"edge.core", "edge.errors", "edge.sanitize"},
    "edge.ledger_cache": {"edge.core", "edge.errors", "edge.protocol", "edge.clock"},
}
NEVER = {
    "edge": ("cloud_broker", "firmware_tools", "demo", "tests"),
    "cloud_broker": ("firmware_tools", "demo", "tests", "edge.agent", "edge.posapi"),
    # head office: the ledger below everything, the console on top
    "cloud_broker/ledger": ("cloud_broker.reconcile", "cloud_broker.registry",
                            "cloud_broker.club", "cloud_broker.programme",
                            "cloud_broker.reports", "cloud_broker.console"),
    "cloud_broker/registry": ("cloud_broker.reconcile", "cloud_broker.club",
                              "cloud_broker.console"),
    "cloud_broker/reconcile": ("cloud_broker.club", "cloud_broker.programme",
                               "cloud_broker.console"),
    "cloud_broker/club": ("cloud_broker.programme", "cloud_broker.messaging",
                          "cloud_broker.reports", "cloud_broker.api", "cloud_broker.console"),
    "cloud_broker/reports": ("cloud_broker.messaging", "cloud_broker.console",
                             "cloud_broker.reconcile", "cloud_broker.api"),
    "cloud_broker/api": ("cloud_broker.console", "cloud_broker.panel"),
    "cloud_broker/panel": ("cloud_broker.api",),
    "cloud_broker/invoicing": ("cloud_broker.console", "cloud_broker.api", "cloud_broker.panel"),
    "cloud_broker/tax": ("cloud_broker.invoicing", "cloud_broker.console", "cloud_broker.ledger"),
    "cloud_broker/programme": ("cloud_broker.messaging", "cloud_broker.console"),
    "cloud_broker/messaging": ("cloud_broker.console",),
    "cloud_broker/messages": ("cloud_broker.messaging", "cloud_broker.console",
                              "cloud_broker.club", "cloud_broker.ledger"),
}  # fmt: skip


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def _package_of(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "edge" and len(parts) > 1 else parts[0]


def test_lower_layers_import_nothing_above_them() -> None:
    bad = []
    for pkg, allowed in ALLOWED.items():
        for path in (ROOT / pkg.replace(".", "/")).rglob("*.py"):
            for mod in _imports(path):
                if not mod.startswith("edge"):
                    continue
                target = _package_of(mod)
                if target != pkg and not any(mod == a or mod.startswith(a + ".") for a in allowed):
                    bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert bad == []


def test_nothing_imports_a_layer_it_must_not() -> None:
    bad = []
    for top, forbidden in NEVER.items():
        for path in (ROOT / top).rglob("*.py"):
            bad += [
                f"{path.relative_to(ROOT)} imports {mod}"
                for mod in _imports(path)
                if any(mod == f or mod.startswith(f + ".") for f in forbidden)
            ]
    assert bad == [], bad


def test_no_sql_in_the_console() -> None:
    """Pages call cloud_broker.club; a statement in a view or a template is a bug."""
    sql = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b")
    console = ROOT / "cloud_broker" / "console"
    files = [*console.glob("*.py"), *console.glob("views/*.py"), *console.glob("templates/*")]
    assert len(files) > 10
    assert [str(p.relative_to(ROOT)) for p in files if sql.search(p.read_text("utf-8"))] == []
