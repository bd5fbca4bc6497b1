"""Fault-injection helpers for tests that run the real ``vectra`` executable."""
