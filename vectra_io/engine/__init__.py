"""The streaming engine: export, import, verify, migrate."""
