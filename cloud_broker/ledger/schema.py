"""Head office's schema, as migrations applied by :meth:`cloud_broker.db.Database.migrate`.

Tokens: ``{id}`` an auto-increment primary key, ``{blob}`` bytes, ``{bigint}`` a 64-bit
integer.  docs/ledger.md explains the tables.
"""

MIGRATIONS: list[str] = [
    # 1: registry, records, the double-entry ledger, lots, members, quarantine, alerts,
    #    the reconciled stream outbox
    """
    CREATE TABLE devices (
        device TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        store TEXT NOT NULL,
        public_key {blob} NOT NULL,
        status TEXT NOT NULL DEFAULT 'active',
        enrolled_at {bigint} NOT NULL,
        revoked_at {bigint},
        revoked_reason TEXT,
        revoked_after_seq {bigint},
        applied_through {bigint} NOT NULL DEFAULT 0,
        last_hash {blob},
        last_seen_at {bigint},
        last_gap_request_at {bigint}
    );
    CREATE TABLE device_keys (
        device TEXT NOT NULL REFERENCES devices (device),
        from_seq {bigint} NOT NULL,
        public_key {blob} NOT NULL,
        created_at {bigint} NOT NULL,
        PRIMARY KEY (device, from_seq)
    );
    CREATE TABLE records (
        device TEXT NOT NULL,
        seq {bigint} NOT NULL,
        hash {blob} NOT NULL,
        prev {blob} NOT NULL,
        tenant TEXT NOT NULL,
        store TEXT NOT NULL,
        type TEXT NOT NULL,
        member TEXT,
        device_time {bigint} NOT NULL,
        offline INTEGER NOT NULL,
        journal_id {bigint},
        received_at {bigint} NOT NULL,
        raw {blob} NOT NULL,
        PRIMARY KEY (device, seq)
    );
    CREATE UNIQUE INDEX records_hash ON records (hash);
    CREATE TABLE held (
        device TEXT NOT NULL,
        seq {bigint} NOT NULL,
        hash {blob} NOT NULL,
        received_at {bigint} NOT NULL,
        raw {blob} NOT NULL,
        PRIMARY KEY (device, seq)
    );
    CREATE TABLE quarantine (
        id {id},
        received_at {bigint} NOT NULL,
        topic TEXT NOT NULL,
        device TEXT,
        seq {bigint},
        code TEXT NOT NULL,
        reason TEXT NOT NULL,
        raw {blob} NOT NULL
    );
    CREATE TABLE security_events (
        id {id},
        at {bigint} NOT NULL,
        device TEXT,
        seq {bigint},
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE TABLE alerts (
        id {id},
        at {bigint} NOT NULL,
        severity TEXT NOT NULL,
        kind TEXT NOT NULL,
        member TEXT,
        device TEXT,
        seq {bigint},
        detail TEXT NOT NULL
    );
    CREATE TABLE members (
        member TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        points {bigint} NOT NULL DEFAULT 0,
        wallet {bigint} NOT NULL DEFAULT 0,
        tier TEXT NOT NULL DEFAULT '',
        visits {bigint} NOT NULL DEFAULT 0,
        birthday TEXT,
        birthday_claimed INTEGER NOT NULL DEFAULT 0,
        version {bigint} NOT NULL DEFAULT 0,
        device_seqs TEXT NOT NULL DEFAULT '{{}}'
    );
    CREATE TABLE member_cards (
        card TEXT PRIMARY KEY,
        member TEXT NOT NULL REFERENCES members (member)
    );
    CREATE TABLE member_spend (
        member TEXT NOT NULL,
        day INTEGER NOT NULL,
        amount {bigint} NOT NULL,
        PRIMARY KEY (member, day)
    );
    CREATE TABLE coupon_uses (
        code TEXT NOT NULL,
        member TEXT NOT NULL,
        device TEXT NOT NULL,
        seq {bigint} NOT NULL,
        PRIMARY KEY (code, device, seq)
    );
    CREATE TABLE journals (
        id {id},
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL,
        device TEXT,
        seq {bigint},
        member TEXT,
        day INTEGER NOT NULL,
        at {bigint} NOT NULL
    );
    CREATE INDEX journals_member ON journals (member);
    CREATE TABLE entries (
        journal_id {bigint} NOT NULL,
        account TEXT NOT NULL,
        unit TEXT NOT NULL,
        amount {bigint} NOT NULL
    );
    CREATE INDEX entries_journal ON entries (journal_id);
    CREATE INDEX entries_account ON entries (account);
    CREATE TABLE lots (
        id {id},
        member TEXT NOT NULL,
        journal_id {bigint} NOT NULL,
        device TEXT,
        seq {bigint},
        kind TEXT NOT NULL,
        earned {bigint} NOT NULL,
        remaining {bigint} NOT NULL,
        earned_day INTEGER NOT NULL,
        expires_day INTEGER
    );
    CREATE INDEX lots_member ON lots (member, remaining);
    CREATE INDEX lots_origin ON lots (device, seq);
    CREATE TABLE lot_moves (
        id {id},
        journal_id {bigint} NOT NULL,
        lot_id {bigint} NOT NULL,
        points {bigint} NOT NULL,
        ref_journal {bigint}
    );
    CREATE INDEX lot_moves_journal ON lot_moves (journal_id);
    CREATE TABLE stream (
        id {id},
        tenant TEXT NOT NULL,
        store TEXT NOT NULL,
        body {blob} NOT NULL,
        published INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX stream_unpublished ON stream (published, id);
    CREATE TABLE enroll_tokens (
        token_hash {blob} PRIMARY KEY,
        tenant TEXT NOT NULL,
        store TEXT NOT NULL,
        device TEXT,
        created_at {bigint} NOT NULL,
        expires_at {bigint} NOT NULL,
        used_at {bigint},
        used_by TEXT
    )
    """,
    # 2: every rules bundle by version; quarantine resolved (validly signed records admitted
    #    into the ledger, or dismissed with a reason); records admitted out of their chain;
    #    alerts acknowledged
    """
    CREATE TABLE rule_bundles (
        tenant TEXT NOT NULL,
        version {bigint} NOT NULL,
        doc TEXT NOT NULL,
        raw {blob},
        stored_at {bigint} NOT NULL,
        PRIMARY KEY (tenant, version)
    );
    ALTER TABLE quarantine ADD COLUMN resolved_at {bigint};
    ALTER TABLE quarantine ADD COLUMN resolution TEXT;
    ALTER TABLE quarantine ADD COLUMN resolved_by TEXT;
    ALTER TABLE quarantine ADD COLUMN resolution_note TEXT;
    CREATE INDEX quarantine_device ON quarantine (device, seq);
    CREATE TABLE admitted (
        hash {blob} PRIMARY KEY,
        device TEXT NOT NULL,
        seq {bigint} NOT NULL,
        tenant TEXT NOT NULL,
        store TEXT NOT NULL,
        type TEXT NOT NULL,
        member TEXT,
        quarantine_id {bigint} NOT NULL,
        journal_id {bigint} NOT NULL,
        admitted_at {bigint} NOT NULL,
        admitted_by TEXT NOT NULL,
        reason TEXT NOT NULL,
        raw {blob} NOT NULL
    );
    ALTER TABLE alerts ADD COLUMN acknowledged_at {bigint};
    ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT
    """,
]
