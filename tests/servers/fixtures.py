"""Session-scoped pytest fixtures for the real servers in :mod:`tests.servers.launch`.

Load as a plugin (``pytest_plugins = ["tests.servers.fixtures"]``). A server starts the
first time a test asks for it and stops at the end of the session. If it cannot start,
the tests that need it error out, unless ``VECTRA_SKIP_SERVERS=1``: then they skip with
the reason. Under pytest-xdist every worker starts its own servers (free ports, own dirs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.servers.launch import ChromaServer, MilvusServer, PostgresServer, S3Server, Server

SKIP_ENV = "VECTRA_SKIP_SERVERS"

_S = TypeVar("_S", bound=Server)


def _start(server: Server) -> str | None:
    """Start ``server``; return why it could not start (it cleans up after itself)."""
    try:
        server.start()
    except Exception as exc:
        return f"{type(server).__name__} could not start: {exc}"
    return None


def _serve(factory: Callable[[], _S]) -> Iterator[_S]:
    server = factory()
    reason = _start(server)
    if reason is not None:  # outside the except block: no chained traceback in the report
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(reason)
        pytest.fail(f"{reason}\n(set {SKIP_ENV}=1 to skip these tests instead)", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """PostgreSQL + pgvector: ``.dsn``, ``.host``, ``.port``."""
    yield from _serve(PostgresServer)


@pytest.fixture(scope="session")
def chroma_server() -> Iterator[ChromaServer]:
    """Chroma HTTP server (API v2): ``.url``, ``.host``, ``.port``."""
    yield from _serve(ChromaServer)


@pytest.fixture(scope="session")
def milvus_server() -> Iterator[MilvusServer]:
    """Milvus Lite gRPC server: ``.url``, ``.host``, ``.port``."""
    yield from _serve(MilvusServer)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto S3: ``.endpoint_url``, ``.env()``, ``.make_bucket(name)``, ``.filesystem()``."""
    yield from _serve(S3Server)
