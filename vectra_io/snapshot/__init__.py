"""Snapshot format v1: layout, manifest, parts (see docs/FORMAT.md)."""
