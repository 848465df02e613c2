"""Running the programme from head office: drafts of the rules bundle edited with forms,
validated by the engine, previewed against real sales, approved by a second admin, signed
and published; the rules keys; coupons members hold; referrals and engagement points.
docs/programme.md is the operator's guide."""
