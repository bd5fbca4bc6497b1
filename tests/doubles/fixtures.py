"""Pytest fixtures: a started double per test; teardown fails on any recorded violation.

Load as a plugin from a test module or the root conftest:
``pytest_plugins = ["tests.doubles.fixtures"]``.  Settings can be changed at runtime
(``double.api_key = ...``, ``double.faults.rate_429 = ...``); a test that provokes a
violation on purpose takes it with ``double.take_violations()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from .openapi_server import OpenAPIDouble
from .pinecone import PineconeDouble
from .qdrant import QdrantDouble
from .weaviate import WeaviateDouble

_D = TypeVar("_D", bound=OpenAPIDouble)


def _serve(double: _D) -> Iterator[_D]:
    double.start()
    try:
        yield double
        violations = "\n".join(str(v) for v in double.violations)
        assert double.violations == [], f"the test double recorded spec violations:\n{violations}"
    finally:
        double.stop()


@pytest.fixture
def qdrant_double() -> Iterator[QdrantDouble]:
    yield from _serve(QdrantDouble())


@pytest.fixture
def pinecone_double() -> Iterator[PineconeDouble]:
    yield from _serve(PineconeDouble())


@pytest.fixture
def weaviate_double() -> Iterator[WeaviateDouble]:
    yield from _serve(WeaviateDouble())
