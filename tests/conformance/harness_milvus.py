"""Conformance harness of the ``milvus`` provider, against a Milvus Lite gRPC server.

The server comes from the session fixture ``milvus_server`` (tests/servers/fixtures.py).
Collection names from :func:`unique_index_name` (``vc`` + letters and digits) are valid
Milvus names. The embedded ``.db`` form and the Milvus specifics are covered by
tests/test_milvus_provider.py.
"""

from __future__ import annotations

import pytest

from .harness import Harness


def make_harness(request: pytest.FixtureRequest) -> Harness:
    pytest.importorskip("pymilvus")
    from vectra_io.providers.milvus import MilvusProvider

    server = request.getfixturevalue("milvus_server")
    location = f"{server.host}:{server.port}"
    return Harness(
        name="milvus",
        factory=lambda: MilvusProvider(location, timeout=60),
        skip={
            "test_namespaces_are_isolated": (
                "the test writes one id into three namespaces; a Milvus primary key is "
                "unique across a collection's partitions, so the provider refuses an id "
                "that lives in another namespace (tests/test_milvus_provider.py checks "
                "isolation with distinct ids and the refusal)"
            ),
            "test_sparse_vectors_round_trip": (
                "the test writes negative sparse weights, which Milvus Lite refuses (the "
                "provider refuses those records by id); positive weights round-trip "
                "bit-exact in tests/test_milvus_provider.py"
            ),
        },
    )
