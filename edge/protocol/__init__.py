"""Wire formats: deterministic CBOR, COSE_Sign1 records, MQTT topics and the uplink."""
