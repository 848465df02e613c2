"""The field technician's tools: device keys, enrollment, configuration, hardware
self-test, signed rules bundles, key rotation and decommissioning."""
