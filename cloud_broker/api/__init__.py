"""The public API and webhooks: the chain's e-shop, ERP and call centre reach the club
(docs/api.md)."""
