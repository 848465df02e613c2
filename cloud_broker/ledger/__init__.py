"""The master ledger: the database (SQLite or PostgreSQL) and its migrations, the
double-entry books with point lots, the rules bundles records are booked under, and the
invariants ``ledger check`` holds it to."""
