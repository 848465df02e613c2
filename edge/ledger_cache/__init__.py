"""The terminal's SQLite: cached rules, member snapshots, the outbox, device counters."""
