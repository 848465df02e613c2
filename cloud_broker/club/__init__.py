"""The club: head office's one read and write model of members, stores, devices, operators
and their changes.  The command line, the console, the API and the jobs call these
functions; none of them holds SQL of its own.

Every change a person makes (an adjustment, a card linked to a phone, a token issued, a
device revoked, a quarantined record admitted) happens in one ledger transaction with its
audit entry (``audit``) and, where a key is given, its idempotency row (``changes``), so a
form submitted twice changes nothing the second time; what tills must learn goes to the
``snapshot_queue`` the reconciler service publishes from.
"""
