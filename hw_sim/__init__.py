"""Simulated store hardware (NFC and RFID readers, scanner, keypad, bank terminal) on
pseudo-terminals and TCP: a registered driver target, not a test fixture."""
