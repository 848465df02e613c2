"""Every rules bundle head office has published, by version: a record is booked under the
bundle it names, not under whatever head office read at start.

Terminals quote a sale with the bundle in force at the till and put its version in the
record (``K_RULES``).  Points expiry, the refund clawback policy, the point value and the
coupons' single-use flags must be those of that bundle at head office too, or the tills and
the ledger disagree.  So head office keeps them all (``rule_bundles``): the one it was
started with (``serve --rules``, or the embedded one), the signed bundles it sees on the
rules topic (``serve --rules-pub``: verified against head office's rules key), and those
added by hand (``python -m cloud_broker rules add BUNDLE --pub KEY``).

A record naming a version head office does not have waits in ``held`` (it is not guessed
at) with an alert, and is applied as soon as that bundle arrives.  A record naming no
version (enrolments, adjustments, heartbeats, a refund of a sale made before versions
were recorded) uses the newest bundle, as do tiers and the expiry job.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud_broker.ledger.db import Database, Tx
from edge.core.errors import RuleError
from edge.core.ruleset import RuleSet, compile_rules
from edge.errors import ProtocolError
from edge.protocol import bundles, cbor, cose

log = logging.getLogger("cloud_broker.ledger.rulebooks")


def store(db: Database, doc: dict[str, Any], raw: bytes | None = None) -> RuleSet:
    """Keep bundle ``doc`` (and its signed form); the same version again is a no-op, a
    different document under a version already kept is refused (RuleError)."""
    rs = compile_rules(doc)
    db.run(lambda tx: store_tx(tx, rs, doc, raw))
    return rs


def store_tx(tx: Tx, rs: RuleSet, doc: dict[str, Any], raw: bytes | None = None) -> None:
    """:func:`store` inside the caller's transaction (``rs`` compiled from ``doc``)."""
    text = json.dumps(doc, ensure_ascii=False, sort_keys=True)
    row = tx.one(
        "SELECT doc FROM rule_bundles WHERE tenant = ? AND version = ?", (rs.tenant, rs.version)
    )
    if row is not None:
        if json.loads(row[0]) != json.loads(text):
            raise RuleError(
                "bundle",
                f"head office already holds a different rules bundle v{rs.version}: a "
                "published version never changes; publish a higher one",
            )
        return
    tx.execute(
        "INSERT INTO rule_bundles (tenant, version, doc, raw, stored_at) VALUES (?, ?, ?, ?, ?)",
        (rs.tenant, rs.version, text, raw, int(time.time() * 1000)),
    )


def store_signed(db: Database, raw: bytes, pinned: Ed25519PublicKey) -> RuleSet:
    """Verify a signed bundle against head office's rules key and keep it."""
    rs = bundles.open_bundle(raw, pinned)
    doc = cbor.decode(cose.parse(raw, max_size=bundles.MAX_BUNDLE).payload, max_depth=12)
    store(db, doc, raw)
    return rs


class RuleBooks:
    """The bundles of one ledger, compiled once each, looked up by version."""

    def __init__(self, db: Database, seed: RuleSet | None = None) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._by_version: dict[int, RuleSet] = {}
        self._latest: RuleSet | None = None
        self._missing_checked: dict[int, float] = {}
        self.reload()
        if seed is not None and seed.version not in self._by_version:
            # the bundle head office was started with, when the ledger does not hold that
            # version yet (the ledger's own copy wins: a version never changes)
            with self._lock:
                self._add(seed)

    def _add(self, rs: RuleSet) -> None:
        self._by_version[rs.version] = rs
        if self._latest is None or rs.version > self._latest.version:
            self._latest = rs

    def reload(self, tx: Tx | None = None) -> None:
        """Read bundles added by other processes (the console, another reconciler); in
        ``tx`` when the caller is inside a transaction."""
        known = set(self._by_version)
        sql = "SELECT version, doc FROM rule_bundles ORDER BY version"
        rows = tx.all(sql) if tx is not None else self.db.read(sql)
        for version, text in rows:
            if int(version) in known:
                continue
            try:
                rs = compile_rules(json.loads(text))
            except (RuleError, ValueError) as e:  # kept by an older, laxer engine
                log.error("rules bundle v%s in the ledger does not compile: %s", version, e)
                continue
            with self._lock:
                self._add(rs)

    def get(self, version: int | None, tx: Tx | None = None) -> RuleSet | None:
        """The bundle of ``version`` (None or 0: the newest); None if head office does not
        have it (looked for again in the ledger, in ``tx`` if given, at most once a
        second)."""
        if not version:
            return self.latest
        rs = self._by_version.get(version)
        if rs is not None:
            return rs
        now = time.monotonic()
        if now - self._missing_checked.get(version, 0.0) >= 1.0:
            self._missing_checked[version] = now
            self.reload(tx)
        return self._by_version.get(version)

    def forget_missing(self) -> None:
        """Look for missing versions in the ledger again at the next ``get``."""
        self._missing_checked.clear()

    @property
    def latest(self) -> RuleSet:
        if self._latest is None:
            raise RuleError("bundle", "head office holds no rules bundle")
        return self._latest


def from_message(db: Database, raw: bytes, pinned: Ed25519PublicKey | None) -> RuleSet | None:
    """A bundle seen on the rules topic: kept if its signature is head office's own;
    None (logged) otherwise."""
    if pinned is None:
        return None
    try:
        rs = store_signed(db, raw, pinned)
    except (ProtocolError, RuleError) as e:
        log.error("refused a rules bundle from the rules topic: %s", e)
        return None
    log.info("rules bundle v%d kept (%d rules)", rs.version, len(rs.rules))
    return rs


class Newest:
    """The newest programme for a web process: read again from the ledger at most every
    ``max_age_s`` (another process publishes), or at once when asked ``fresh``."""

    def __init__(self, books: RuleBooks, max_age_s: float = 10.0) -> None:
        self.books = books
        self.max_age_s = max_age_s
        self._at = time.monotonic()

    def __call__(self, fresh: bool = False) -> RuleSet:
        if fresh or time.monotonic() - self._at > self.max_age_s:
            self._at = time.monotonic()
            self.books.reload()
        latest: RuleSet = self.books.latest
        return latest
