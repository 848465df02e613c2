"""Reports and analytics at head office (docs/reports.md)."""
