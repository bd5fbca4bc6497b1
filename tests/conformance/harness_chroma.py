"""Conformance harness of the ``chroma`` provider: a real Chroma server (HTTP API v2).

The server is the session fixture ``chroma_server`` (``tests/servers/fixtures.py``); every
``factory()`` call is a new ``ChromaProvider`` (its own connection pool) on the same
server. The suite's index names (``vc`` + letters and digits, at most 36 characters) are
valid Chroma collection names and never contain ``__ns``, which the provider reserves for
namespace collections; the default cleanup (``delete_index``) also removes those.
"""

from __future__ import annotations

import pytest

from vectra_io.providers.chroma import ChromaProvider

from .harness import Harness


def make_harness(request: pytest.FixtureRequest) -> Harness:
    server = request.getfixturevalue("chroma_server")
    location = f"{server.host}:{server.port}"
    return Harness(name="chroma", factory=lambda: ChromaProvider(location))
