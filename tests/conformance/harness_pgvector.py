"""Conformance harness of the ``pgvector`` provider, against a real PostgreSQL + pgvector.

The server comes from the session fixture ``postgres_server`` (tests/servers/fixtures.py).
Each test's tables live in a schema of their own (dropped at teardown), so tests never see
each other's tables in ``list_indexes``. Index names from :func:`unique_index_name`
(``vc`` + letters and digits) are valid table names.
"""

from __future__ import annotations

import contextlib
import uuid

import pytest

from .harness import Harness


def make_harness(request: pytest.FixtureRequest) -> Harness:
    pytest.importorskip("psycopg")
    import psycopg
    from psycopg import sql

    from vectra_io.providers.pgvector import PgVectorProvider

    server = request.getfixturevalue("postgres_server")
    location = f"{server.user}@{server.host}:{server.port}/{server.dbname}"
    schema = f"vc_{uuid.uuid4().hex[:12]}"

    def drop_schema() -> None:
        with (
            contextlib.suppress(psycopg.OperationalError),
            psycopg.connect(server.dsn, autocommit=True) as conn,
        ):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    request.addfinalizer(drop_schema)
    return Harness(
        name="pgvector",
        factory=lambda: PgVectorProvider(location, schema=schema),
        skip={
            "test_sparse_vectors_round_trip": (
                "pgvector's sparsevec holds indices below 1,000,000,000 (its largest "
                "dimension); the test writes index 4,000,000,000, which is refused per record. "
                "tests/test_pgvector_provider.py covers the round trip within the range and "
                "the refusal"
            )
        },
    )
