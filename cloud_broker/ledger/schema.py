"""Head office's schema, as migrations applied by :meth:`cloud_broker.db.Database.migrate`.

Tokens: ``{id}`` an auto-increment primary key, ``{blob}`` bytes, ``{bigint}`` a 64-bit
integer.  docs/ledger.md explains the tables.
"""

from cloud_broker.ledger.db import Migration, Tx
from cloud_broker.ledger.partitions import partition_ledger


def _months(tx: Tx, now_ms: int) -> None:
    """18: months.  The archive's tables (what a month took away: its file and counts, the
    balances, lot moves and chain ends it carried forward); each device's ``applied_at``
    (its records' times kept in seq order, see cloud_broker.ledger.partitions); entries and
    lot moves carry their journal's ``at``.  On PostgreSQL the four large tables become
    partitioned by month (a copy of each, once)."""
    blob = "BYTEA" if tx.dialect == "postgresql" else "BLOB"
    for stmt in (
        """CREATE TABLE archived_months (
            month INTEGER PRIMARY KEY,
            label TEXT NOT NULL,
            lo BIGINT NOT NULL,
            hi BIGINT NOT NULL,
            file TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            bytes BIGINT NOT NULL,
            records BIGINT NOT NULL,
            journals BIGINT NOT NULL,
            entries BIGINT NOT NULL,
            lot_moves BIGINT NOT NULL,
            admitted BIGINT NOT NULL,
            last_day INTEGER,
            archived_at BIGINT NOT NULL,
            actor TEXT NOT NULL
        )""",
        """CREATE TABLE archived_balances (
            account TEXT NOT NULL,
            unit TEXT NOT NULL,
            amount BIGINT NOT NULL,
            PRIMARY KEY (account, unit)
        )""",
        "CREATE TABLE archived_lots (lot_id BIGINT PRIMARY KEY, points BIGINT NOT NULL)",
        f"""CREATE TABLE archived_chains (
            device TEXT PRIMARY KEY,
            through_seq BIGINT NOT NULL,
            last_hash {blob} NOT NULL,
            records BIGINT NOT NULL
        )""",
        "ALTER TABLE devices ADD COLUMN applied_at BIGINT NOT NULL DEFAULT 0",
        "UPDATE devices SET applied_at = COALESCE((SELECT MAX(received_at) FROM records r "
        "WHERE r.device = devices.device), 0)",
    ):
        tx.execute(stmt)
    if tx.dialect == "postgresql":
        partition_ledger(tx, now_ms)
        return
    for table in ("entries", "lot_moves"):
        tx.execute(f"ALTER TABLE {table} ADD COLUMN at BIGINT NOT NULL DEFAULT 0")
        tx.execute(
            f"UPDATE {table} SET at = COALESCE((SELECT j.at FROM journals j WHERE "
            f"j.id = {table}.journal_id), 0)"
        )


MIGRATIONS: list[Migration] = [
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
    # 3: head office as an application: operators and their sessions, the append-only audit
    #    log, stores, what terminals say of themselves, members' profiles, card-to-phone
    #    merges, idempotency of changes people make, and the durable queue of member
    #    snapshots other processes (the console) ask the reconciler service to publish
    """
    CREATE TABLE operators (
        id {id},
        username TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        disabled_at {bigint},
        failed_logins INTEGER NOT NULL DEFAULT 0,
        locked_until {bigint},
        last_login_at {bigint}
    );
    CREATE TABLE console_sessions (
        sid_hash {blob} PRIMARY KEY,
        operator_id {bigint} NOT NULL,
        csrf TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        last_seen_at {bigint} NOT NULL,
        ended_at {bigint}
    );
    CREATE TABLE audit_log (
        id {id},
        at {bigint} NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT NOT NULL,
        reason TEXT
    );
    CREATE INDEX audit_log_target ON audit_log (target, id);
    CREATE TABLE stores (
        store TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        name_fa TEXT NOT NULL,
        name_en TEXT NOT NULL,
        city TEXT,
        created_at {bigint} NOT NULL
    );
    CREATE TABLE device_status (
        device TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        reason TEXT,
        depth {bigint},
        applied_through {bigint},
        rules_version {bigint},
        device_wall_ms {bigint},
        received_at {bigint} NOT NULL
    );
    ALTER TABLE members ADD COLUMN name TEXT;
    ALTER TABLE members ADD COLUMN name_key TEXT;
    ALTER TABLE members ADD COLUMN anniversary TEXT;
    ALTER TABLE members ADD COLUMN sms_opt_out INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE members ADD COLUMN merged_into TEXT;
    CREATE INDEX members_name ON members (name_key);
    CREATE TABLE member_merges (
        from_member TEXT PRIMARY KEY,
        into_member TEXT NOT NULL,
        journal_id {bigint} NOT NULL,
        at {bigint} NOT NULL,
        actor TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE changes (
        idem TEXT PRIMARY KEY,
        action TEXT NOT NULL,
        journal_id {bigint},
        audit_id {bigint} NOT NULL,
        at {bigint} NOT NULL
    );
    CREATE TABLE snapshot_queue (
        id {id},
        member TEXT NOT NULL,
        queued_at {bigint} NOT NULL
    );
    CREATE INDEX journals_kind ON journals (kind, id);
    CREATE INDEX members_created ON members (created_at);
    CREATE TABLE sales_daily (
        tenant TEXT NOT NULL,
        store TEXT NOT NULL,
        day INTEGER NOT NULL,
        member INTEGER NOT NULL,
        sales {bigint} NOT NULL DEFAULT 0,
        gross {bigint} NOT NULL DEFAULT 0,
        discount {bigint} NOT NULL DEFAULT 0,
        wallet_used {bigint} NOT NULL DEFAULT 0,
        revenue {bigint} NOT NULL DEFAULT 0,
        points_earned {bigint} NOT NULL DEFAULT 0,
        points_redeemed {bigint} NOT NULL DEFAULT 0,
        cashback {bigint} NOT NULL DEFAULT 0,
        refunds {bigint} NOT NULL DEFAULT 0,
        refunded {bigint} NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, store, day, member)
    )
    """,
    # 4: the audit log is append-only in the database itself, whoever connects
    {
        "sqlite": [
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        ],
        "postgresql": [
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
            "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
        ],
    },
    # 5: a member's page answers from indexes on a chain's half a million members
    """
    CREATE INDEX member_cards_member ON member_cards (member);
    CREATE INDEX admitted_journal ON admitted (journal_id);
    CREATE INDEX member_merges_into ON member_merges (into_member);
    CREATE INDEX journals_member_id ON journals (member, id);
    DROP INDEX journals_member;
    """,
    # 6: the programme run from the console: drafts, sample baskets, the rules keys, what
    #    the service publishes retained, coupons members hold, referrals
    """
    CREATE TABLE programme_drafts (
        id {id},
        tenant TEXT NOT NULL,
        base_version {bigint} NOT NULL,
        doc TEXT NOT NULL,
        state TEXT NOT NULL,
        note TEXT,
        rollback_of {bigint},
        editors TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        updated_at {bigint} NOT NULL,
        submitted_by TEXT,
        submitted_at {bigint},
        approved_by TEXT,
        approved_at {bigint},
        published_version {bigint}
    );
    CREATE INDEX programme_drafts_state ON programme_drafts (state, id);
    CREATE TABLE programme_samples (
        id {id},
        name TEXT NOT NULL,
        basket TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at {bigint} NOT NULL
    );
    CREATE TABLE rules_keys (
        number {bigint} PRIMARY KEY,
        tenant TEXT NOT NULL,
        public_key {blob} NOT NULL,
        state TEXT NOT NULL,
        endorsement {blob},
        created_at {bigint} NOT NULL,
        activated_at {bigint},
        retired_at {bigint}
    );
    CREATE TABLE rules_outbox (
        id {id},
        topic TEXT NOT NULL,
        raw {blob} NOT NULL,
        queued_at {bigint} NOT NULL
    );
    CREATE TABLE member_coupons (
        id {id},
        member TEXT NOT NULL,
        code TEXT NOT NULL,
        rule TEXT NOT NULL,
        valid_until INTEGER,
        batch TEXT NOT NULL,
        issued_by TEXT NOT NULL,
        issued_at {bigint} NOT NULL,
        used_at {bigint},
        used_device TEXT,
        used_seq {bigint},
        revoked_at {bigint}
    );
    CREATE UNIQUE INDEX member_coupons_holding ON member_coupons (member, code);
    CREATE INDEX member_coupons_batch ON member_coupons (batch);
    ALTER TABLE members ADD COLUMN referral_code TEXT;
    ALTER TABLE members ADD COLUMN referred_by TEXT;
    ALTER TABLE members ADD COLUMN anniversary_claimed INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX members_referral ON members (referral_code);
    CREATE TABLE referral_rewards (
        referee TEXT PRIMARY KEY,
        referrer TEXT NOT NULL,
        journal_id {bigint} NOT NULL,
        at {bigint} NOT NULL
    );
    ALTER TABLE device_status ADD COLUMN rules_key {bigint};
    CREATE INDEX alerts_open ON alerts (acknowledged_at);
    CREATE INDEX quarantine_open ON quarantine (resolved_at, code);
    """,
    # 7: campaign budgets, watched by the reconciler (cloud_broker.ledger.budgets)
    """
    CREATE TABLE programme_budgets (
        tenant TEXT NOT NULL,
        rule TEXT NOT NULL,
        budget_rials {bigint} NOT NULL,
        spent_rials {bigint} NOT NULL DEFAULT 0,
        spent_points {bigint} NOT NULL DEFAULT 0,
        alerted INTEGER NOT NULL DEFAULT 0,
        set_by TEXT NOT NULL,
        set_at {bigint} NOT NULL,
        PRIMARY KEY (tenant, rule)
    );
    """,
    # 8: messages to members (cloud_broker.messaging): templates, settings, occasions,
    #    the durable SMS outbox and campaigns
    """
    CREATE TABLE sms_templates (
        key TEXT PRIMARY KEY,
        text TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 0,
        updated_by TEXT NOT NULL,
        updated_at {bigint} NOT NULL
    );
    CREATE TABLE sms_settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE sms_occasions (
        key TEXT PRIMARY KEY,
        fa TEXT NOT NULL,
        en TEXT NOT NULL,
        month INTEGER NOT NULL,
        day INTEGER NOT NULL,
        year INTEGER
    );
    CREATE TABLE sms_occasion_dates (
        key TEXT NOT NULL,
        year INTEGER NOT NULL,
        day INTEGER NOT NULL,
        PRIMARY KEY (key, year)
    );
    CREATE TABLE sms_marks (
        name TEXT PRIMARY KEY,
        value {bigint} NOT NULL
    );
    CREATE TABLE sms_member_tiers (
        member TEXT PRIMARY KEY,
        tier TEXT NOT NULL
    );
    CREATE TABLE sms_campaigns (
        id {id},
        name TEXT NOT NULL,
        text TEXT NOT NULL,
        audience TEXT NOT NULL,
        coupon TEXT,
        state TEXT NOT NULL,
        rate_per_min INTEGER NOT NULL,
        scheduled_at {bigint},
        planned INTEGER,
        estimated_parts {bigint},
        estimated_cost {bigint},
        created_by TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        planned_at {bigint},
        finished_at {bigint}
    );
    CREATE TABLE sms_campaign_list (
        campaign_id {bigint} NOT NULL,
        member TEXT NOT NULL,
        PRIMARY KEY (campaign_id, member)
    );
    CREATE TABLE sms_outbox (
        id {id},
        dedupe TEXT NOT NULL,
        member TEXT NOT NULL,
        phone TEXT NOT NULL,
        kind TEXT NOT NULL,
        campaign_id {bigint},
        params TEXT,
        transactional INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        not_before {bigint} NOT NULL,
        expires_at {bigint},
        attempts INTEGER NOT NULL DEFAULT 0,
        claimed_by TEXT,
        claimed_at {bigint},
        text TEXT,
        parts INTEGER,
        provider TEXT,
        provider_id TEXT,
        cost_rials {bigint},
        status TEXT,
        status_at {bigint},
        sent_at {bigint},
        reason TEXT
    );
    CREATE UNIQUE INDEX sms_outbox_dedupe ON sms_outbox (dedupe);
    CREATE INDEX sms_outbox_due ON sms_outbox (state, not_before);
    CREATE INDEX sms_outbox_member ON sms_outbox (member, created_at);
    CREATE INDEX sms_outbox_campaign ON sms_outbox (campaign_id, state);
    """,
    # 9: a campaign's recipients are queued in chunks behind a cursor
    "ALTER TABLE sms_campaigns ADD COLUMN cursor TEXT",
    # 10: reports (cloud_broker.reports): lines per product group and SKU per day, each
    # member's first and last day with a sale, tier changes, the nightly scores, saved
    # segments, and campaigns' control groups.  Ledgers that already hold records get their
    # new daily tables from ``python -m cloud_broker ledger rebuild-daily``.
    """
    CREATE TABLE category_daily (
        tenant TEXT NOT NULL,
        store TEXT NOT NULL,
        day INTEGER NOT NULL,
        tier TEXT NOT NULL,
        category TEXT NOT NULL,
        qty {bigint} NOT NULL DEFAULT 0,
        gross {bigint} NOT NULL DEFAULT 0,
        discount {bigint} NOT NULL DEFAULT 0,
        revenue {bigint} NOT NULL DEFAULT 0,
        points_earned {bigint} NOT NULL DEFAULT 0,
        cashback {bigint} NOT NULL DEFAULT 0,
        returned_qty {bigint} NOT NULL DEFAULT 0,
        refunded {bigint} NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, store, day, tier, category)
    );
    CREATE INDEX category_daily_day ON category_daily (day, category);
    CREATE TABLE sku_daily (
        tenant TEXT NOT NULL,
        day INTEGER NOT NULL,
        sku TEXT NOT NULL,
        category TEXT NOT NULL,
        qty {bigint} NOT NULL DEFAULT 0,
        gross {bigint} NOT NULL DEFAULT 0,
        discount {bigint} NOT NULL DEFAULT 0,
        revenue {bigint} NOT NULL DEFAULT 0,
        returned_qty {bigint} NOT NULL DEFAULT 0,
        refunded {bigint} NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, day, sku, category)
    );
    CREATE TABLE category_monthly (
        tenant TEXT NOT NULL,
        store TEXT NOT NULL,
        month INTEGER NOT NULL,
        tier TEXT NOT NULL,
        category TEXT NOT NULL,
        qty {bigint} NOT NULL DEFAULT 0,
        gross {bigint} NOT NULL DEFAULT 0,
        discount {bigint} NOT NULL DEFAULT 0,
        revenue {bigint} NOT NULL DEFAULT 0,
        points_earned {bigint} NOT NULL DEFAULT 0,
        cashback {bigint} NOT NULL DEFAULT 0,
        returned_qty {bigint} NOT NULL DEFAULT 0,
        refunded {bigint} NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, store, month, tier, category)
    );
    CREATE INDEX category_monthly_month ON category_monthly (month, category);
    CREATE TABLE sku_monthly (
        tenant TEXT NOT NULL,
        month INTEGER NOT NULL,
        sku TEXT NOT NULL,
        category TEXT NOT NULL,
        qty {bigint} NOT NULL DEFAULT 0,
        gross {bigint} NOT NULL DEFAULT 0,
        discount {bigint} NOT NULL DEFAULT 0,
        revenue {bigint} NOT NULL DEFAULT 0,
        returned_qty {bigint} NOT NULL DEFAULT 0,
        refunded {bigint} NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, month, sku, category)
    );
    CREATE INDEX sku_daily_day ON sku_daily (day);
    CREATE INDEX sales_daily_day ON sales_daily (day);
    ALTER TABLE members ADD COLUMN first_day INTEGER;
    ALTER TABLE members ADD COLUMN last_day INTEGER;
    UPDATE members SET
        first_day = (SELECT MIN(day) FROM member_spend s WHERE s.member = members.member
                     AND s.amount > 0),
        last_day = (SELECT MAX(day) FROM member_spend s WHERE s.member = members.member
                    AND s.amount > 0);
    CREATE INDEX members_last_day ON members (last_day);
    CREATE INDEX members_tier ON members (tier);
    CREATE TABLE tier_changes (
        id {id},
        member TEXT NOT NULL,
        day INTEGER NOT NULL,
        from_tier TEXT NOT NULL,
        to_tier TEXT NOT NULL,
        up INTEGER NOT NULL
    );
    CREATE INDEX tier_changes_day ON tier_changes (day);
    CREATE TABLE member_scores (
        member TEXT PRIMARY KEY,
        recency INTEGER NOT NULL,
        frequency INTEGER NOT NULL,
        monetary {bigint} NOT NULL,
        r INTEGER NOT NULL,
        f INTEGER NOT NULL,
        m INTEGER NOT NULL,
        segment TEXT NOT NULL,
        p_alive_bp INTEGER,
        clv {bigint},
        computed_day INTEGER NOT NULL
    );
    CREATE INDEX member_scores_segment ON member_scores (segment);
    CREATE TABLE report_marks (
        name TEXT PRIMARY KEY,
        value {bigint} NOT NULL
    );
    CREATE TABLE segments (
        id {id},
        name TEXT NOT NULL,
        definition TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        deleted_at {bigint}
    );
    ALTER TABLE sms_campaigns ADD COLUMN control_bp INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE sms_campaign_control (
        campaign_id {bigint} NOT NULL,
        member TEXT NOT NULL,
        PRIMARY KEY (campaign_id, member)
    );
    """,
    # 11: the public API and webhooks (cloud_broker.api): keys (their hash only), the answers
    # kept for idempotency keys, online sales, webhook endpoints, events and deliveries
    """
    CREATE TABLE api_keys (
        id {id},
        name TEXT NOT NULL,
        prefix TEXT NOT NULL UNIQUE,
        hash TEXT NOT NULL,
        scopes TEXT NOT NULL,
        rate_per_min INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        revoked_at {bigint},
        last_used_at {bigint}
    );
    CREATE TABLE api_idempotency (
        key_id {bigint} NOT NULL,
        idem TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        status INTEGER,
        body TEXT,
        created_at {bigint} NOT NULL,
        PRIMARY KEY (key_id, idem)
    );
    CREATE TABLE online_sales (
        device TEXT NOT NULL,
        seq {bigint} NOT NULL,
        quote TEXT NOT NULL,
        refunded TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (device, seq)
    );
    CREATE TABLE webhooks (
        id {id},
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        disabled_at {bigint}
    );
    CREATE TABLE webhook_events (
        id {id},
        ref TEXT NOT NULL UNIQUE,
        event TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at {bigint} NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        id {id},
        webhook_id {bigint} NOT NULL,
        event_id {bigint} NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        queued_at {bigint} NOT NULL,
        next_at {bigint} NOT NULL,
        last_status INTEGER,
        last_response TEXT,
        last_at {bigint},
        delivered_at {bigint},
        UNIQUE (webhook_id, event_id)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_at);
    CREATE TABLE webhook_marks (
        name TEXT PRIMARY KEY,
        value {bigint} NOT NULL
    );
    CREATE INDEX coupon_uses_record ON coupon_uses (device, seq);
    """,
    # 12: the member panel (cloud_broker.panel): one-time codes (their hash only), members'
    # sessions (their hash only), surveys and the answers to them
    """
    CREATE TABLE panel_codes (
        id {id},
        phone TEXT NOT NULL,
        code_hash TEXT NOT NULL,
        address TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        expires_at {bigint} NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        used_at {bigint}
    );
    CREATE INDEX panel_codes_phone ON panel_codes (phone, created_at);
    CREATE INDEX panel_codes_address ON panel_codes (address, created_at);
    CREATE TABLE panel_sessions (
        token_hash TEXT PRIMARY KEY,
        member TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        seen_at {bigint} NOT NULL,
        ended_at {bigint}
    );
    CREATE TABLE surveys (
        id TEXT PRIMARY KEY,
        question_fa TEXT NOT NULL,
        question_en TEXT NOT NULL,
        points {bigint} NOT NULL,
        open INTEGER NOT NULL DEFAULT 1,
        created_at {bigint} NOT NULL
    );
    CREATE TABLE survey_answers (
        survey TEXT NOT NULL,
        member TEXT NOT NULL,
        rating INTEGER NOT NULL,
        comment TEXT,
        answered_at {bigint} NOT NULL,
        PRIMARY KEY (survey, member)
    );
    """,
    # 13: tax invoices (cloud_broker.invoicing): each store's taxpayer (its key and
    # certificate stay in files), the product ids and VAT rates, and the durable queue
    """
    CREATE TABLE tax_stores (
        store TEXT PRIMARY KEY,
        memory_id TEXT NOT NULL,
        economic_code TEXT NOT NULL,
        key_file TEXT NOT NULL,
        cert_file TEXT NOT NULL,
        next_serial {bigint} NOT NULL DEFAULT 1,
        enabled INTEGER NOT NULL DEFAULT 1,
        since_journal {bigint} NOT NULL DEFAULT 0
    );
    CREATE TABLE tax_products (
        kind TEXT NOT NULL,
        code TEXT NOT NULL,
        sstid TEXT NOT NULL,
        description TEXT,
        vat_bp INTEGER,
        PRIMARY KEY (kind, code)
    );
    CREATE TABLE tax_invoices (
        id {id},
        store TEXT NOT NULL,
        device TEXT NOT NULL,
        seq {bigint} NOT NULL,
        kind TEXT NOT NULL,
        serial {bigint} NOT NULL,
        tax_id TEXT NOT NULL UNIQUE,
        original_tax_id TEXT,
        day INTEGER NOT NULL,
        amount {bigint} NOT NULL,
        state TEXT NOT NULL,
        uid TEXT,
        reference TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at {bigint} NOT NULL,
        errors TEXT,
        created_at {bigint} NOT NULL,
        sent_at {bigint},
        final_at {bigint},
        UNIQUE (device, seq)
    );
    CREATE INDEX tax_invoices_due ON tax_invoices (state, next_at);
    CREATE INDEX tax_invoices_day ON tax_invoices (store, day, state);
    CREATE TABLE tax_marks (
        name TEXT PRIMARY KEY,
        value {bigint} NOT NULL
    );
    """,
    # 14: the points expired in a period are read from the expiry journals by kind and day
    "CREATE INDEX journals_kind_day ON journals (kind, day)",
    # 15: points expired per tenant and day, kept by the expiry job (the key figures read a
    # row a day); the index of 14 goes: without statistics for it SQLite preferred it for
    # every query on sale journals (a member's page read all five million of them)
    """
    DROP INDEX IF EXISTS journals_kind_day;
    CREATE TABLE points_expired_daily (
        tenant TEXT NOT NULL,
        day INTEGER NOT NULL,
        points {bigint} NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, day)
    );
    INSERT INTO points_expired_daily (tenant, day, points)
        SELECT j.tenant, j.day, SUM(e.amount) FROM journals j JOIN entries e ON
        e.journal_id = j.id WHERE j.kind = 'expiry' AND e.account LIKE 'S:%:points_expired'
        GROUP BY j.tenant, j.day;
    """,
    # 16: the members a member referred, by index (a member's page scanned every member
    # for them: 110-370 ms on half a million)
    "CREATE INDEX members_referred_by ON members (referred_by)",
    # 17: a member's lots are read only when points leave them; earning needs just the
    # overdraft lot, if any (reading every open lot of every member in a batch grew with
    # each member's history: a third of the reconciler's time on a busy ledger)
    "CREATE INDEX lots_overdraft ON lots (member) WHERE kind = 'overdraft'",
    _months,
    # 19: the hashes of archived records and of archived admitted records: a record sent
    # again after its month is archived is still compared with what was applied at its seq
    # (a reinstalled terminal's new sale is a conflict, not a duplicate), and an admitted
    # record is not admitted twice
    """
    CREATE TABLE archived_hashes (
        device TEXT NOT NULL,
        seq {bigint} NOT NULL,
        hash {blob} NOT NULL,
        admitted INTEGER NOT NULL,
        PRIMARY KEY (device, seq, admitted, hash)
    );
    CREATE INDEX archived_hashes_hash ON archived_hashes (hash)
    """,
]
