"""Head office in a test: a migrated ledger and a reconciler, fed directly (no MQTT)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cloud_broker.ledger.check import Failure, check
from cloud_broker.ledger.db import Database
from cloud_broker.ledger.schema import MIGRATIONS
from cloud_broker.reconcile import admission
from cloud_broker.reconcile.reconciler import Incoming, Outcome, Reconciler
from cloud_broker.registry import devices as registry
from cloud_broker.registry.devices import RegistryCache
from edge.core.ruleset import compile_rules
from edge.protocol.record import Record
from tests.conftest import RULES_PATH
from tests.helpers.terminal import Terminal


class HO:
    def __init__(self, url: str, rules: dict[str, Any] | None = None) -> None:
        self.db = Database(url)
        self.db.migrate(MIGRATIONS)
        doc = rules or json.loads(RULES_PATH.read_text("utf-8"))
        self.rs = compile_rules(doc)
        self.rc = Reconciler(self.db, self.rs, registry=RegistryCache(self.db, ttl=0))

    def register(self, *terms: Terminal) -> None:
        for t in terms:
            registry.register(self.db, t.device, t.identity.tenant, t.identity.store, t.public_key)

    def feed(
        self,
        t: Terminal,
        recs: Sequence[Record],
        topic: str | None = None,
        now_ms: int | None = None,
    ) -> Outcome:
        """Apply ``recs`` as one batch; ``now_ms``: head office's time (default: now)."""
        return self.rc.process([Incoming(topic or t.topic, r.raw) for r in recs], now_ms)

    def raw(self, topic: str, *data: bytes) -> Outcome:
        return self.rc.process([Incoming(topic, d) for d in data])

    def q(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return [tuple(r) for r in self.db.read(sql, params)]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.q(sql, params)
        return rows[0][0] if rows else None

    def member(self, m: str) -> tuple[int, int, str, int]:
        row = self.q("SELECT points, wallet, tier, visits FROM members WHERE member = ?", (m,))
        return row[0] if row else (0, 0, "", 0)

    def check(self) -> list[Failure]:
        return check(self.db)[0]

    def check_refused(self) -> list[dict[str, Any]]:
        """``ledger check`` names every validly signed record left in quarantine (it may
        be a paid sale) and nothing else; once an operator dismisses them it is clean.
        Returns the entries it named."""
        entries = admission.open_entries(self.db)
        failures = self.check()
        assert entries, "nothing validly signed is in quarantine"
        assert [f.invariant for f in failures] == ["quarantine resolved"] * len(entries), failures
        for e in entries:
            assert f"quarantine #{e['id']}:" in " ".join(f.detail for f in failures)
            admission.dismiss(self.db, int(str(e["id"])), "test", "a refusal the test provoked")
        assert self.check() == []
        return entries

    def codes(self) -> list[str]:
        return [r[0] for r in self.q("SELECT code FROM quarantine ORDER BY id")]

    def close(self) -> None:
        self.rc.close()
        self.db.close()
