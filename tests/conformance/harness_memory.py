"""Conformance harness of the in-process ``memory`` provider (the reference)."""

from __future__ import annotations

import uuid

import pytest

from vectra_io.providers.memory import MemoryProvider

from .harness import Harness


def make_harness(request: pytest.FixtureRequest) -> Harness:
    # A named store: every factory() call is a new connection to the same data.
    store = f"conformance-{uuid.uuid4().hex}"
    return Harness(
        name="memory",
        factory=lambda: MemoryProvider(store),
    )
