"""Conformance harness of the embedded ``lancedb`` provider (a database in a tmp directory)."""

from __future__ import annotations

import pytest

from .harness import Harness


def make_harness(request: pytest.FixtureRequest) -> Harness:
    pytest.importorskip("lancedb")
    from vectra_io.providers.lancedb import LanceDBProvider

    tmp = request.getfixturevalue("tmp_path_factory").mktemp("lancedb")
    location = str(tmp / "db")
    # every factory() call is a new connection to the same database directory
    return Harness(name="lancedb", factory=lambda: LanceDBProvider(location))
