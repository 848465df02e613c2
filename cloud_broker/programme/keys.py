"""Head office's rules-signing keys, and rotating them without visiting a terminal.

The private keys live in a folder of their own (``--rules-key-dir``, mode 0700; one file
per key, ``rules-<n>.key``, mode 0600), never in the ledger; the ledger's ``rules_keys``
table holds each key's public half, its number and its state: ``active`` (signs bundles),
``next`` (announced, not yet signing) or ``retired``.

Rotation (docs/programme.md, "Rotating the rules key"; the terminal's side is
edge.protocol.bundles.KeyRing):

1. :func:`prepare_next` makes key n+1 and an *endorsement* of it signed by the active key
   n; head office publishes every endorsement, retained, on the rules-keys topic.  A
   terminal verifies an endorsement with a key it already trusts and from then on accepts
   bundles signed by either key.
2. When the console shows the fleet has the endorsement, :func:`switch` makes key n+1 the
   one that signs and key n retired, and republishes the newest programme as the next
   version signed by n+1; a terminal that accepts it retires key n: a bundle signed by a
   retired or unknown key is refused and the terminal keeps selling on its last good rules.

A terminal that was offline through a rotation (or several) reads the retained chain of
endorsements when it reconnects and walks it from the key it holds.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_broker.club.errors import ClubError
from cloud_broker.club.operators import Operator
from cloud_broker.ledger import audit, rulebooks
from cloud_broker.ledger.db import Database, Tx
from cloud_broker.programme.drafts import queue
from edge.core.ruleset import RuleSet, compile_rules
from edge.errors import ConfigError
from edge.protocol import bundles, keys, topics


class Signer:
    """The active key: signs programme documents."""

    def __init__(self, number: int, key: Ed25519PrivateKey) -> None:
        self.number = number
        self.key = key

    def sign(self, doc: dict[str, Any]) -> bytes:
        return bundles.sign(doc, self.key)


class KeyDir:
    """The folder of private rules keys (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file(self, number: int) -> Path:
        return self.path / f"rules-{number}.key"

    def load(self, number: int) -> Ed25519PrivateKey:
        f = self.file(number)
        if not f.exists():
            raise ClubError(
                "no_key",
                f"the rules key {number} is not in {self.path}: start the console with the "
                "right --rules-key-dir",
                "کلید امضای قوانین در پوشه کلیدها نیست.",
            )
        if f.stat().st_mode & 0o077:
            raise ConfigError("rules key", f"{f} is readable by others: chmod 600 it")
        return keys.load_private(f)

    def create(self, number: int) -> Ed25519PrivateKey:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return keys.generate(self.file(number))

    def adopt(self, number: int, source: Path) -> Ed25519PrivateKey:
        """Copy an existing private key file in as key ``number``."""
        key = keys.load_private(source)
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.file(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(source.read_bytes())
        return key


def _now() -> int:
    return int(time.time() * 1000)


def table(db: Database) -> list[dict[str, Any]]:
    rows = db.read(
        "SELECT number, state, public_key, created_at, activated_at, retired_at, "
        "endorsement IS NOT NULL FROM rules_keys ORDER BY number"
    )
    keys_ = ("number", "state", "public_key", "created_at", "activated_at", "retired_at",
             "endorsed")  # fmt: skip
    return [dict(zip(keys_, r, strict=True)) for r in rows]


def adopt(db: Database, kd: KeyDir, tenant: str, source: Path, actor: str) -> int:
    """Head office's existing rules key (``firmware_tools rules keygen``) becomes key 1, the
    active one; refused once the ledger knows a key."""
    if db.read("SELECT 1 FROM rules_keys"):
        raise ClubError(
            "keys_known", "the ledger knows its rules keys already",
            "کلیدهای قوانین پیش‌تر ثبت شده‌اند.",
        )  # fmt: skip
    key = kd.adopt(1, source)

    def step(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO rules_keys (number, tenant, public_key, state, created_at, "
            "activated_at) VALUES (1, ?, ?, 'active', ?, ?)",
            (tenant, keys.public_raw(key), _now(), _now()),
        )
        audit.record(tx, actor, "rules_key.adopt", "rules_key:1", {})

    db.run(step)
    return 1


def _active(tx: Tx) -> tuple[int, str] | None:
    row = tx.one("SELECT number, tenant FROM rules_keys WHERE state = 'active'")
    return None if row is None else (int(row[0]), str(row[1]))


def signer(db: Database, kd: KeyDir | None) -> Signer:
    """The active key, ready to sign; ClubError saying what is missing."""
    if kd is None:
        raise ClubError(
            "no_key_dir",
            "this console cannot sign: start it with --rules-key-dir",
            "این کنسول کلید امضای قوانین ندارد؛ آن را با --rules-key-dir اجرا کنید.",
        )
    found = db.run(_active, write=False)
    if found is None:
        raise ClubError(
            "no_active_key",
            "no rules key is registered: python -m cloud_broker programme adopt-key --key FILE",
            "هیچ کلید امضایی ثبت نشده است.",
        )
    return Signer(found[0], kd.load(found[0]))


def endorsements(tx: Tx) -> list[bytes]:
    return [
        bytes(r[0])
        for r in tx.all(
            "SELECT endorsement FROM rules_keys WHERE endorsement IS NOT NULL ORDER BY number"
        )
    ]


def prepare_next(db: Database, kd: KeyDir, actor: Operator) -> int:
    """Make the next key and announce it (see the module docstring, step 1); its number."""
    actor.require("publish")
    current = signer(db, kd)

    def step(tx: Tx) -> int:
        if tx.one("SELECT 1 FROM rules_keys WHERE state = 'next'"):
            raise ClubError(
                "next_exists", "a next key is announced already: switch to it first",
                "کلید بعدی پیش‌تر اعلام شده است.",
            )  # fmt: skip
        active = _active(tx)
        assert active is not None
        number, tenant = active[0] + 1, active[1]
        new = kd.create(number)
        endorsement = bundles.endorse(new.public_key(), number, current.key, tenant)
        tx.execute(
            "INSERT INTO rules_keys (number, tenant, public_key, state, endorsement, "
            "created_at) VALUES (?, ?, ?, 'next', ?, ?)",
            (number, tenant, keys.public_raw(new), endorsement, _now()),
        )
        queue(tx, topics.rules_keys(tenant), bundles.encode_endorsements(endorsements(tx)))
        audit.record(tx, actor.username, "rules_key.prepare", f"rules_key:{number}", {})
        return number

    return db.run(step)


def switch(db: Database, kd: KeyDir, current: RuleSet, actor: Operator) -> RuleSet:
    """The next key signs from now on (step 2): the newest programme is republished as the
    next version signed by it; the bundle."""
    actor.require("publish")

    def step(tx: Tx) -> RuleSet:
        row = tx.one("SELECT number FROM rules_keys WHERE state = 'next'")
        if row is None:
            raise ClubError(
                "no_next", "announce a next key first", "نخست کلید بعدی را اعلام کنید.",
            )  # fmt: skip
        number = int(row[0])
        key = kd.load(number)
        top = tx.one("SELECT MAX(version) FROM rule_bundles WHERE tenant = ?", (current.tenant,))
        newest = max(int(top[0] or 0), current.version)
        src = tx.one(
            "SELECT doc FROM rule_bundles WHERE tenant = ? AND version = ?",
            (current.tenant, newest),
        )
        doc = dict(json.loads(src[0])) if src is not None else dict(current.doc)
        doc["version"] = newest + 1
        rs = compile_rules(doc)
        raw = bundles.sign(doc, key)
        now = _now()
        tx.execute(
            "UPDATE rules_keys SET state = 'retired', retired_at = ? WHERE state = 'active'",
            (now,),
        )
        tx.execute(
            "UPDATE rules_keys SET state = 'active', activated_at = ? WHERE number = ?",
            (now, number),
        )
        rulebooks.store_tx(tx, rs, doc, raw)
        queue(tx, topics.rules(rs.tenant), raw)
        audit.record(
            tx, actor.username, "rules_key.switch", f"rules_key:{number}",
            {"version": rs.version},
        )  # fmt: skip
        return rs

    return db.run(step)
