"""Conformance harness of the ``pinecone`` provider, against the spec-validating Pinecone
double (``tests/doubles/pinecone.py``): a control plane plus one data-plane port per index,
every request and answer checked against the official 2026-04 OpenAPI documents."""

from __future__ import annotations

import pytest

from vectra_io.providers.pinecone import PineconeProvider

from .harness import Harness


def make_harness(request: pytest.FixtureRequest) -> Harness:
    double = request.getfixturevalue("pinecone_double")
    location = double.url.removeprefix("http://")  # http control plane -> http index hosts
    return Harness(
        name="pinecone",
        factory=lambda: PineconeProvider(location, api_key=double.api_key, ready_poll=0.01),
    )
