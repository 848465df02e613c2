"""The device registry (devices, keys by seq, revocation) and head office's half of field
provisioning (enrolment tokens and the answers to enroll, rotate and decommission)."""
