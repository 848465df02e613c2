"""Head office: the reconciler service attached to the MQTT broker, the device
registry and the double-entry master ledger.  (Not an MQTT broker itself.)"""
