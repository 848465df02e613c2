"""Tax invoices at head office: every reconciled sale and refund handed to the national
e-invoice system through cloud_broker.tax (docs/tax-invoices.md)."""
