"""Reconciliation: records from the broker screened, applied exactly once in order, acked;
the service around it; what each record books; quarantine resolved (admission)."""
