"""Device drivers behind small interfaces, chosen by name in the configuration."""
