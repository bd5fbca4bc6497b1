"""The ``qdrant`` provider against the spec-validating Qdrant double: ids, namespaces,
vectors, configuration, normalisation, retries, timeouts, auth and refusals.

The shared conformance suite covers the Provider contract (tests/conformance,
``-k qdrant``); these tests cover what is specific to Qdrant.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest

import vectra_io
from tests.conformance.harness_qdrant import FacetQdrantDouble, serve_double
from tests.doubles.openapi_server import HTTPError, Request, Response, operation
from tests.doubles.qdrant import QdrantDouble
from vectra_io.engine.retry import RetryPolicy
from vectra_io.engine.writer import row_nbytes
from vectra_io.errors import (
    AuthError,
    ConfigError,
    IndexNotFoundError,
    RecordsRejectedError,
    RetryableError,
    UnsupportedError,
)
from vectra_io.ids import ORIGINAL_ID_KEY, mapped_uuid
from vectra_io.providers.base import IndexSpec, VectorSpec
from vectra_io.providers.memory import MemoryProvider
from vectra_io.providers.qdrant import (
    QDRANT_CAPABILITIES,
    QdrantProvider,
    dumps,
    namespace_collection,
    namespace_of_collection,
    parse_retry_after,
)
from vectra_io.providers.registry import open_provider
from vectra_io.records import batch_from_records, records_from_batch

pytest_plugins = ["tests.doubles.fixtures"]

NS_KEY = "_vectra_namespace"
PINECONE_IDS = [
    "doc#1",
    "user:42/chunk-3",
    "ÄÖÜ ☃ id with spaces",
    "007",  # not a canonical uint64
    "-5",
    str(uuid.UUID(int=0xABCDEF)).upper(),  # a UUID, but not canonical
    uuid.UUID(int=9).hex,  # simple form
    "",
]


@pytest.fixture
def qdrant(request: pytest.FixtureRequest) -> FacetQdrantDouble:
    """A Qdrant double that also answers ``/facet``; fails the test on spec violations."""
    return serve_double(request)


def provider_for(double: QdrantDouble, **options: Any) -> QdrantProvider:
    return QdrantProvider(double.url.removeprefix("http://"), **options)


def vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def records(ids: list[str], dim: int = 8, seed: int = 0, **meta: Any) -> list[dict[str, Any]]:
    vec = vectors(len(ids), dim, seed)
    return [
        {"id": rid, "values": vec[i], "metadata": {"i": i, **meta}} for i, rid in enumerate(ids)
    ]


def retry_policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=30, max_elapsed=120.0, base_delay=0.02, max_delay=0.5)


def scanned(p: QdrantProvider, index: str, namespace: str = "") -> pa.RecordBatch:
    pages = [page.batch for page in p.scan(index, namespace, batch_size=100)]
    return pa.Table.from_batches(pages).combine_chunks().to_batches()[0]


# -- URL and options ------------------------------------------------------------------------
def test_location_options_and_endpoint(qdrant: FacetQdrantDouble) -> None:
    host = qdrant.url.removeprefix("http://")
    p = open_provider(f"qdrant://{host}?namespaces=collection&timeout=5&max_batch_rows=300")
    assert isinstance(p, QdrantProvider)
    assert p.namespace_mode == "collection"
    assert p.capabilities.max_batch_rows == 300
    assert p.endpoint == f"qdrant://{host}"
    p.close()
    tls = QdrantProvider("example.com", tls=True, namespace_key="tenant")
    assert tls.endpoint == "qdrant+https://example.com:6333"
    assert tls.namespace_key == "tenant"
    tls.close()
    with pytest.raises(ConfigError, match="unknown options"):
        QdrantProvider("h:1?bogus=1")
    with pytest.raises(ConfigError, match="namespaces must be"):
        QdrantProvider("h:1?namespaces=tenant")
    with pytest.raises(ConfigError, match="does not belong in the URL") as exc:
        QdrantProvider("h:1?api_key=s3cret-value")
    assert "s3cret-value" not in str(exc.value)
    with pytest.raises(ConfigError):
        QdrantProvider("")


def test_collection_names_of_namespaces() -> None:
    for ns in ["alpha", "a.b-c_d", "a/b", "ü", "with space", "x__y", "~"]:
        name = namespace_collection("idx", ns)
        assert namespace_of_collection("idx", name) == ns
        assert "/" not in name and " " not in name
    assert namespace_collection("idx", "") == "idx"
    assert namespace_of_collection("other", "idx__alpha") is None


def test_retry_after_parsing() -> None:
    assert parse_retry_after("0.2") == pytest.approx(0.2)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = parse_retry_after("Wed, 21 Oct 2099 07:28:00 GMT")
    assert later is not None and later > 1e6
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


# -- ids ----------------------------------------------------------------------------------------
def test_string_ids_mapped_and_restored_through_snapshots(
    qdrant: FacetQdrantDouble, tmp_path: Path
) -> None:
    """Pinecone-like ids -> memory -> snapshot -> Qdrant -> snapshot -> memory: same ids."""
    ids = [*PINECONE_IDS, "42", str(uuid.UUID(int=5))]
    spec = IndexSpec("pine", 8, "dot", "string")
    source = MemoryProvider()
    source.create_index(spec)
    written = batch_from_records(spec, records(ids, tag="x"))
    source.upsert("pine", written)
    vectra_io.export_snapshot(source, str(tmp_path / "a"))
    p = provider_for(qdrant)
    result = vectra_io.import_snapshot(str(tmp_path / "a"), p, state=False)
    assert result["failed_count"] == 0

    stored = qdrant.stored_points("pine")
    assert stored[42].payload.get(ORIGINAL_ID_KEY) is None  # uint64 passes through
    assert ORIGINAL_ID_KEY not in stored[str(uuid.UUID(int=5))].payload  # canonical UUID too
    for rid in PINECONE_IDS:
        point = stored[mapped_uuid(rid)]
        assert point.payload[ORIGINAL_ID_KEY] == rid
    assert p.describe_index("pine").id_type == "string"

    vectra_io.export_snapshot(p, str(tmp_path / "b"))
    back = MemoryProvider()
    vectra_io.import_snapshot(str(tmp_path / "b"), back, state=False)
    got = back.fetch("pine", ids)
    assert sorted(got.column("id").to_pylist()) == sorted(ids)
    for rec in records_from_batch(got):
        assert ORIGINAL_ID_KEY not in (rec["metadata"] or {})
        assert rec["metadata"]["tag"] == "x"
    fetched = p.fetch("pine", ids)
    assert sorted(fetched.column("id").to_pylist()) == sorted(ids)
    p.close()


def test_uint64_and_uuid_ids_pass_through(qdrant: FacetQdrantDouble) -> None:
    """A collection made by another tool: ids come back as strings; id_type is guessed."""
    qdrant.create_collection("ints", vectors={"size": 4, "distance": "Euclid"})
    qdrant.create_collection("uuids", vectors={"size": 4, "distance": "Euclid"})
    big = [0, 1, 2**53 + 1, 2**63 + 7, 2**64 - 1]
    qdrant.add_points(
        "ints", [{"id": i, "vector": [1.0, 2.0, 3.0, 4.0], "payload": {"n": i}} for i in big]
    )
    uids = [str(uuid.UUID(int=i + 1)) for i in range(3)]
    qdrant.add_points(
        "uuids",
        [{"id": uuid.UUID(u).hex, "vector": [0.5, 0.25, 0.0, -1.0], "payload": {}} for u in uids],
    )
    p = provider_for(qdrant)
    assert p.describe_index("ints").id_type == "uint64"
    assert p.describe_index("uuids").id_type == "uuid"
    pages = list(p.scan("ints", batch_size=2))
    assert [page.batch.num_rows for page in pages] == [2, 2, 1]
    for page in pages[:-1]:
        assert json.loads(json.dumps(page.cursor)) == page.cursor
    got = [rid for page in pages for rid in page.batch.column("id").to_pylist()]
    assert got == [str(i) for i in big]
    resumed = list(p.scan("ints", batch_size=2, cursor=pages[0].cursor))
    assert [r for pg in resumed for r in pg.batch.column("id").to_pylist()] == got[2:]
    assert sorted(scanned(p, "uuids").column("id").to_pylist()) == uids
    assert p.fetch("ints", [str(2**64 - 1), "3"]).column("id").to_pylist() == [str(2**64 - 1)]
    meta = records_from_batch(p.fetch("ints", ["1"]))[0]["metadata"]
    assert meta == {"n": 1}
    # writing them back keeps them native
    spec = p.describe_index("ints")
    p.upsert("ints", batch_from_records(spec, [{"id": "77", "values": [1, 1, 1, 1]}]))
    assert 77 in qdrant.stored_points("ints")
    assert ORIGINAL_ID_KEY not in qdrant.stored_points("ints")[77].payload
    p.close()


# -- namespaces -------------------------------------------------------------------------------
def _write_namespaces(p: QdrantProvider, index: str) -> dict[str, list[str]]:
    spec = IndexSpec(index, 8, "dot", "string")
    p.create_index(spec)
    layout = {"": ["a", "b", "shared"], "alpha": ["shared", "c"], "beta/ü x": ["shared"]}
    for k, (ns, ids) in enumerate(layout.items()):
        p.upsert(index, batch_from_records(spec, records(ids, seed=k, ns=ns or "default")), ns)
    return layout


def test_namespaces_as_payload_key(qdrant: FacetQdrantDouble) -> None:
    p = provider_for(qdrant)
    layout = _write_namespaces(p, "tenants")
    info = p._info("tenants", fresh=True)
    assert info.payload_schema[NS_KEY]["data_type"] == "keyword"
    assert p.list_namespaces("tenants") == sorted(layout)
    assert any(r.operation == "facet" for r in qdrant.requests)
    for ns, ids in layout.items():
        assert p.count("tenants", ns) == len(ids)
        got = scanned(p, "tenants", ns)
        assert sorted(got.column("id").to_pylist()) == sorted(ids)
        for rec in records_from_batch(got):
            assert NS_KEY not in rec["metadata"] and rec["metadata"]["ns"] == (ns or "default")
        assert sorted(p.fetch("tenants", ["shared", "a", "c"], ns).column("id").to_pylist()) == (
            sorted(set(ids) & {"shared", "a", "c"})
        )
    assert p.count("tenants", "gamma") == 0
    assert list(p.scan("tenants", "gamma")) == [] or all(
        page.batch.num_rows == 0 for page in p.scan("tenants", "gamma")
    )
    payloads = [pt.payload for pt in qdrant.stored_points("tenants").values()]
    assert sum(1 for pl in payloads if pl.get(NS_KEY) == "alpha") == 2
    assert sum(1 for pl in payloads if NS_KEY not in pl) == 3
    # one id in three namespaces: three points, the namespaced ones always mapped
    assert len(payloads) == 6
    spec = p.describe_index("tenants")
    p.upsert("tenants", batch_from_records(spec, records(["5"])), "alpha")
    p.upsert("tenants", batch_from_records(spec, records(["5"])), "")
    stored = qdrant.stored_points("tenants")
    assert ORIGINAL_ID_KEY not in stored[5].payload and NS_KEY not in stored[5].payload
    alpha5 = [pt for pt in stored.values() if pt.payload.get(ORIGINAL_ID_KEY) == "5"]
    assert len(alpha5) == 1 and alpha5[0].payload[NS_KEY] == "alpha"
    assert scanned(p, "tenants", "alpha").column("id").to_pylist().count("5") == 1
    p.close()


def test_namespaces_listed_by_scrolling_without_an_index(qdrant_double: QdrantDouble) -> None:
    """Without a keyword index on the key (and on the shared double, without /facet), the
    namespaces are found by scrolling only that payload key."""
    p = provider_for(qdrant_double, namespace_index=False)
    layout = _write_namespaces(p, "noindex")
    assert NS_KEY not in p._info("noindex", fresh=True).payload_schema
    assert p.list_namespaces("noindex") == sorted(layout)
    assert not any(r.operation == "facet" for r in qdrant_double.requests)
    p.close()


class NoFacetDouble(FacetQdrantDouble):
    """A server without ``/facet`` (Qdrant before 1.12 answers unknown routes with 404)."""

    @operation("facet")
    def facet(self, req: Request) -> Response:
        raise HTTPError(404, "Not found")


def test_namespaces_listed_by_scrolling_when_facet_fails(request: pytest.FixtureRequest) -> None:
    double = NoFacetDouble()
    double.start()
    request.addfinalizer(double.stop)
    p = provider_for(double)
    layout = _write_namespaces(p, "oldserver")
    assert p.list_namespaces("oldserver") == sorted(layout)
    assert [r.status for r in double.requests if r.operation == "facet"] == [404]
    assert double.violations == []
    p.close()


def test_namespaces_as_collections(qdrant: FacetQdrantDouble, tmp_path: Path) -> None:
    p = provider_for(qdrant, namespaces="collection")
    layout = _write_namespaces(p, "percoll")
    names = {c for c in qdrant.collections}
    assert {"percoll", "percoll__alpha", namespace_collection("percoll", "beta/ü x")} <= names
    assert p.list_indexes() == ["percoll"]
    assert p.list_namespaces("percoll") == sorted(layout)
    for ns, ids in layout.items():
        assert p.count("percoll", ns) == len(ids)
        assert sorted(scanned(p, "percoll", ns).column("id").to_pylist()) == sorted(ids)
    # namespace collections carry no namespace payload key (ids map as in the default one)
    alpha = qdrant.stored_points("percoll__alpha")
    assert all(NS_KEY not in pt.payload for pt in alpha.values())
    spec = p.describe_index("percoll")
    p.upsert("percoll", batch_from_records(spec, records(["5"])), "alpha")
    assert ORIGINAL_ID_KEY not in qdrant.stored_points("percoll__alpha")[5].payload
    p.upsert("percoll", batch_from_records(spec, records(["5"])), "alpha")  # replaced
    assert p.count("percoll", "alpha") == len(layout["alpha"]) + 1
    # export / import through the engine keeps the namespaces
    vectra_io.export_snapshot(p, str(tmp_path / "s"))
    back = MemoryProvider()
    vectra_io.import_snapshot(str(tmp_path / "s"), back, state=False)
    assert back.list_namespaces("percoll") == sorted(layout)
    with pytest.raises(ConfigError, match="__"):
        p.create_index(IndexSpec("bad__name", 8, "dot"))
    p.delete_index("percoll")
    assert not any(n.startswith("percoll") for n in qdrant.collections)
    with pytest.raises(IndexNotFoundError):
        p.describe_index("percoll")
    p.close()


# -- vectors -----------------------------------------------------------------------------------
def test_named_and_sparse_vectors(qdrant: FacetQdrantDouble) -> None:
    p = provider_for(qdrant)
    spec = IndexSpec(
        "multi",
        8,
        "dot",
        "string",
        named_vectors={"title": VectorSpec(4, "euclidean"), "image": VectorSpec(3, "manhattan")},
        sparse=True,
    )
    p.create_index(spec)
    config = qdrant.collections["multi"].params
    assert set(config["vectors"]) == {"", "title", "image"}
    assert config["sparse_vectors"] == {"sparse": {}}
    described = p.describe_index("multi")
    assert described.dimension == 8 and described.sparse
    assert dict(described.named_vectors) == dict(spec.named_vectors)
    assert not described.normalized
    rows = [
        {
            "id": "r1",
            "values": vectors(1, 8)[0],
            "vectors": {"title": [1, 2, 3, 4], "image": [0.5, 0.5, -1]},
            "sparse_values": {"indices": [3, 4_000_000_000], "values": [0.5, -2.0]},
            "metadata": {"k": 1},
        },
        {"id": "r2", "values": None, "vectors": {"title": [4, 3, 2, 1]}, "metadata": None},
        {"id": "r3", "values": vectors(1, 8, 1)[0], "sparse_values": {"indices": [], "values": []}},
    ]
    batch = batch_from_records(described, rows)
    assert p.upsert("multi", batch) == {}
    stored = qdrant.stored_points("multi")[mapped_uuid("r2")]
    assert set(stored.vectors) == {"title"}
    for got in (p.fetch("multi", ["r1", "r2", "r3"]), scanned(p, "multi")):
        by_id = {r["id"]: r for r in records_from_batch(got)}
        assert by_id["r1"]["sparse_values"] == rows[0]["sparse_values"]
        assert by_id["r1"]["vectors"]["image"] == [0.5, 0.5, -1.0]
        assert by_id["r2"]["values"] is None and by_id["r2"]["vectors"] == {"title": [4, 3, 2, 1]}
        assert by_id["r3"]["sparse_values"] == {"indices": [], "values": []}
        assert np.array_equal(np.asarray(by_id["r1"]["values"], np.float32), rows[0]["values"])
    p.close()


def test_config_carried_from_qdrant_to_qdrant(qdrant: FacetQdrantDouble, tmp_path: Path) -> None:
    qdrant.create_collection(
        "src",
        vectors={"size": 4, "distance": "Cosine", "hnsw_config": {"m": 8}, "on_disk": True},
        sparse_vectors={"bm25": {"modifier": "idf", "index": {"on_disk": True}}},
        hnsw_config={"m": 32, "ef_construct": 200},
        optimizers_config={"indexing_threshold": 5000},
        quantization_config={"scalar": {"type": "int8", "quantile": 0.99}},
        shard_number=2,
    )
    qdrant.call(
        "create_field_index",
        params={"collection_name": "src"},
        body={"field_name": "genre", "field_schema": "keyword"},
    )
    qdrant.add_points(
        "src",
        [
            {
                "id": i + 1,
                "vector": {
                    "": [1.0, 2.0, 3.0, float(i)],
                    "bm25": {"indices": [i], "values": [1.0]},
                },
                "payload": {"genre": "jazz" if i % 2 else "rock"},
            }
            for i in range(5)
        ],
    )
    p = provider_for(qdrant)
    spec = p.describe_index("src")
    assert spec.sparse and spec.normalized and spec.metric == "cosine"
    assert spec.raw_config["qdrant"]["params"]["sparse_vectors"]["bm25"]["modifier"] == "idf"
    vectra_io.export_snapshot(p, str(tmp_path / "s"))
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["indexes"]["src"]["normalized"] is True

    target = FacetQdrantDouble()
    target.start()
    try:
        q = provider_for(target)
        result = vectra_io.import_snapshot(str(tmp_path / "s"), q, state=False)
        assert result["failed_count"] == 0
        coll = target.collections["src"]
        assert coll.params["vectors"]["hnsw_config"] == {"m": 8}
        assert coll.params["vectors"]["on_disk"] is True
        assert coll.params["sparse_vectors"]["bm25"]["modifier"] == "idf"
        assert coll.params["shard_number"] == 2
        assert coll.extra["hnsw_config"]["m"] == 32
        assert coll.extra["optimizer_config"]["indexing_threshold"] == 5000
        assert coll.extra["quantization_config"] == {"scalar": {"type": "int8", "quantile": 0.99}}
        assert coll.extra["metadata"]["vectra_io"]["id_type"] == "uint64"
        assert coll.payload_schema["genre"]["data_type"] == "keyword"
        assert NS_KEY in coll.payload_schema
        got = {r["id"]: r for r in records_from_batch(q.fetch("src", ["1", "2"]))}
        assert got["2"]["sparse_values"] == {"indices": [1], "values": [1.0]}
        assert got["2"]["metadata"] == {"genre": "jazz"}
        check = vectra_io.verify_snapshot(str(tmp_path / "s"), q, sample=5)
        assert check["match"], check
        q.close()
        assert target.violations == []
    finally:
        target.stop()
    p.close()


def test_cosine_normalisation_recorded_and_verified(
    qdrant: FacetQdrantDouble, tmp_path: Path
) -> None:
    """Qdrant keeps cosine vectors unit-length: the export says ``normalized`` and verify
    compares directions, against Qdrant and against the copy in memory."""
    p = provider_for(qdrant)
    spec = IndexSpec("cos", 16, "cosine", "string")
    p.create_index(spec)
    assert p.describe_index("cos").normalized
    written = batch_from_records(spec, records([f"v{i}" for i in range(300)], dim=16))
    p.upsert("cos", written)
    raw = qdrant.stored_points("cos")[mapped_uuid("v0")].vectors[""]
    assert isinstance(raw, np.ndarray) and np.isclose(np.linalg.norm(raw), 1.0)
    vectra_io.export_snapshot(p, str(tmp_path / "s"))
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["indexes"]["cos"]["normalized"] is True
    assert vectra_io.verify_snapshot(str(tmp_path / "s"), p, sample=100)["match"]
    memory = MemoryProvider()
    vectra_io.import_snapshot(str(tmp_path / "s"), memory, state=False)
    check = vectra_io.verify_snapshot(str(tmp_path / "s"), memory, source=p, sample=100)
    assert check["match"], check
    p.close()


def test_verify_into_cosine_qdrant_from_exact_source(
    qdrant: FacetQdrantDouble, tmp_path: Path
) -> None:
    source = MemoryProvider()
    spec = IndexSpec("cos", 16, "cosine", "string")
    source.create_index(spec)
    source.upsert("cos", batch_from_records(spec, records([f"v{i}" for i in range(50)], dim=16)))
    vectra_io.export_snapshot(source, str(tmp_path / "s"))
    p = provider_for(qdrant)
    vectra_io.import_snapshot(str(tmp_path / "s"), p, state=False)
    assert vectra_io.verify_snapshot(str(tmp_path / "s"), p, sample=20)["match"]


def test_multivector_collection_refused_loudly(qdrant: FacetQdrantDouble, tmp_path: Path) -> None:
    qdrant.create_collection(
        "colbert",
        vectors={
            "dense": {"size": 4, "distance": "Dot"},
            "tokens": {
                "size": 4,
                "distance": "Dot",
                "multivector_config": {"comparator": "max_sim"},
            },
        },
    )
    p = provider_for(qdrant)
    assert "colbert" in p.list_indexes()
    with pytest.raises(UnsupportedError, match="'tokens' is a multivector"):
        p.describe_index("colbert")
    with pytest.raises(UnsupportedError, match="tokens"):
        list(p.scan("colbert"))
    with pytest.raises(UnsupportedError, match="tokens"):
        vectra_io.export_snapshot(p, str(tmp_path / "s"), indexes=["colbert"])
    p.close()


# -- writes: refusals, limits --------------------------------------------------------------
def test_records_refused_by_id_and_the_rest_written(qdrant: FacetQdrantDouble) -> None:
    p = provider_for(qdrant)
    spec = IndexSpec("refuse", 4, "dot", "string", sparse=True)
    p.create_index(spec)
    ok = [1.0, 2.0, 3.0, 4.0]
    rows: list[dict[str, Any]] = [
        {"id": "good", "values": ok, "metadata": {"big": 2**64 - 1, "neg": -(2**63)}},
        {"id": "nan", "values": [1.0, float("nan"), 0.0, 0.0]},
        {"id": "reserved", "values": ok, "metadata": {ORIGINAL_ID_KEY: "x"}},
        {"id": "nskey", "values": ok, "metadata": {NS_KEY: "x"}},
        {"id": "huge", "values": ok, "metadata": {"n": 2**64}},
        {"id": "dup", "values": ok, "sparse_values": {"indices": [1, 1], "values": [1.0, 2.0]}},
    ]
    refused = p.upsert("refuse", batch_from_records(spec, rows))
    assert set(refused) == {"nan", "reserved", "nskey", "huge", "dup"}, refused
    assert "NaN" in refused["nan"] and "64-bit" in refused["huge"] and "repeats" in refused["dup"]
    got = records_from_batch(p.fetch("refuse", [r["id"] for r in rows]))
    assert [r["id"] for r in got] == ["good"]
    assert got[0]["metadata"] == {"big": 2**64 - 1, "neg": -(2**63)}
    p.close()


def test_oversize_request_is_split_before_sending(request: pytest.FixtureRequest) -> None:
    double = serve_double(request, max_request_bytes=64 * 1024)
    p = provider_for(double, max_request_bytes=64 * 1024)
    assert p.capabilities.max_batch_bytes == int(64 * 1024 * 0.75)
    spec = IndexSpec("small", 64, "dot", "string")
    p.create_index(spec)
    batch = batch_from_records(spec, records([f"r{i}" for i in range(400)], dim=64))
    assert len(dumps([list(v) for v in vectors(400, 64)])) > 64 * 1024  # premise
    assert p.upsert("small", batch) == {}
    assert p.count("small") == 400
    ups = [r for r in double.requests if r.operation == "upsert_points"]
    assert len(ups) > 1 and all(r.status == 200 for r in ups)
    p.close()


def test_wire_factor_covers_768d_vectors() -> None:
    """JSON bytes per Arrow byte of an upsert of 768-d vectors stays under the declared
    ``wire_factor`` (normal and unit-norm embedding-like values)."""
    spec = IndexSpec("w", 768, "dot", "string")
    rng = np.random.default_rng(0)
    for matrix in (
        rng.standard_normal((64, 768)).astype(np.float32),
        (rng.standard_normal((64, 768)) / np.sqrt(768)).astype(np.float32),
    ):
        rows = [{"id": f"doc-{i}", "values": matrix[i], "metadata": {"n": i}} for i in range(64)]
        batch = batch_from_records(spec, rows)
        body = dumps(
            {
                "points": [
                    {"id": mapped_uuid(r["id"]), "vector": r["values"], "payload": r["metadata"]}
                    for r in rows
                ]
            }
        )
        ratio = len(body) / float(row_nbytes(batch).sum())
        assert 2.0 < ratio <= QDRANT_CAPABILITIES.wire_factor, ratio


# -- retries, timeouts, auth, errors --------------------------------------------------------
def _memory_snapshot(tmp_path: Path, n: int, dim: int = 8) -> tuple[str, list[str]]:
    spec = IndexSpec("retry", dim, "dot", "string")
    source = MemoryProvider()
    source.create_index(spec)
    ids = [f"id-{i}" for i in range(n)]
    source.upsert("retry", batch_from_records(spec, records(ids, dim=dim)))
    path = str(tmp_path / "snap")
    vectra_io.export_snapshot(source, path)
    return path, ids


def test_import_survives_429_and_503_and_respects_retry_after(
    qdrant: FacetQdrantDouble, tmp_path: Path
) -> None:
    snapshot, ids = _memory_snapshot(tmp_path, 3000)
    p = provider_for(qdrant)
    p.create_index(IndexSpec("retry", 8, "dot", "string"))
    f = qdrant.faults
    f.rate_429, f.retry_after, f.rate_503 = 0.3, 0.2, 0.1
    f.operations = set(qdrant.WRITE_OPERATIONS)
    start = len(qdrant.requests)
    result = vectra_io.import_snapshot(
        snapshot, p, chunk_size=100, concurrency=4, retry=retry_policy(), state=False
    )
    f.reset()
    assert result["failed_count"] == 0 and result["imported_count"] == 3000
    assert p.count("retry") == 3000
    assert sorted(scanned(p, "retry").column("id").to_pylist()) == sorted(ids)

    ups = [r for r in qdrant.requests[start:] if r.operation == "upsert_points"]
    faults = [r for r in ups if r.status == 429]
    assert faults and any(r.status == 503 for r in ups)
    # every worker waits out a Retry-After (the engine's shared gate): after a 429 answered
    # at t, upserts arrive in (t + 0.1, t + 0.2) only if they had passed the gate before the
    # client saw the 429 - at most one per other worker (concurrency 4). Without the shared
    # wait the three other workers would keep sending. (Exact per-request waits: see the
    # concurrency-1 test below.)
    for r in faults:
        early = [u for u in ups if r.responded + 0.1 < u.time < r.responded + 0.195]
        assert len(early) <= 3, (
            f"{len(early)} upserts arrived {early[0].time - r.responded:.3f}s after a 429 "
            "with Retry-After 0.2"
        )
    p.close()


def test_retry_after_waits_exactly_at_concurrency_one(
    qdrant: FacetQdrantDouble, tmp_path: Path
) -> None:
    snapshot, _ = _memory_snapshot(tmp_path, 600)
    p = provider_for(qdrant)
    p.create_index(IndexSpec("retry", 8, "dot", "string"))
    f = qdrant.faults
    f.rate_429, f.retry_after = 0.4, 0.2
    f.operations = {"upsert_points"}
    start = len(qdrant.requests)
    result = vectra_io.import_snapshot(
        snapshot, p, chunk_size=50, concurrency=1, retry=retry_policy(), state=False
    )
    f.reset()
    assert result["failed_count"] == 0 and p.count("retry") == 600
    ups = [r for r in qdrant.requests[start:] if r.operation == "upsert_points"]
    waits = [b.time - a.responded for a, b in itertools.pairwise(ups) if a.status == 429]
    assert waits and min(waits) >= 0.2, sorted(waits)[:3]
    p.close()


def test_timeouts_are_retried_and_recovered(qdrant: FacetQdrantDouble, tmp_path: Path) -> None:
    snapshot, ids = _memory_snapshot(tmp_path, 1000)
    p = provider_for(qdrant, timeout=0.5)
    p.create_index(IndexSpec("retry", 8, "dot", "string"))
    f = qdrant.faults
    f.rate_timeout, f.timeout_sleep_s = 0.3, 1.5
    f.operations = {"upsert_points"}
    start = len(qdrant.requests)
    result = vectra_io.import_snapshot(
        snapshot, p, chunk_size=50, concurrency=4, retry=retry_policy(), state=False
    )
    f.reset()
    assert result["failed_count"] == 0
    assert p.count("retry") == 1000
    assert sorted(scanned(p, "retry").column("id").to_pylist()) == sorted(ids)
    time.sleep(2.0)  # the double logs a late answer once it has been (too late) sent
    assert any(r.fault == "timeout" for r in qdrant.requests[start:])
    p.close()


def test_timeout_is_a_retryable_error(qdrant: FacetQdrantDouble) -> None:
    p = provider_for(qdrant, timeout=0.3)
    p.create_index(IndexSpec("t", 4, "dot"))
    spec = p.describe_index("t")
    qdrant.faults.rate_timeout, qdrant.faults.timeout_sleep_s = 1.0, 1.0
    qdrant.faults.operations = {"upsert_points"}
    with pytest.raises(RetryableError, match="did not answer in time"):
        p.upsert("t", batch_from_records(spec, [{"id": "a", "values": [1, 2, 3, 4]}]))
    qdrant.faults.reset()
    p.close()


def test_bad_api_key_is_an_auth_error_without_the_key(
    qdrant: FacetQdrantDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, wrong = "right-key-0123456789", "wrong-key-SECRET-9876"
    qdrant.api_key = secret
    host = qdrant.url.removeprefix("http://")
    bad = QdrantProvider(host, api_key=wrong)
    for call in (bad.list_indexes, lambda: bad.describe_index("x")):
        with pytest.raises(AuthError) as exc:
            call()
        assert wrong not in str(exc.value) and secret not in str(exc.value)
        assert exc.value.status == 403
    assert wrong not in repr(bad) and wrong not in bad.endpoint
    bad.close()
    monkeypatch.setenv("QDRANT_API_KEY", secret)
    good = open_provider(f"qdrant://{host}")
    assert good.list_indexes() == []
    assert secret not in repr(good) and secret not in good.endpoint
    good.close()
    missing = QdrantProvider(host)
    with pytest.raises(AuthError):
        missing.list_indexes()
    missing.close()


def _mock(handler: Any) -> QdrantProvider:
    return QdrantProvider("qdrant.test:6333", transport=httpx.MockTransport(handler), api_key="k")


def test_errors_are_translated() -> None:
    def unavailable(req: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"status": {"error": "busy"}}, headers={"Retry-After": "7"})

    with pytest.raises(RetryableError) as exc:
        _mock(unavailable).list_indexes()
    assert exc.value.retry_after == 7.0 and exc.value.status == 503

    def refuse(req: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"status": {"error": "Unauthorized: k"}})

    with pytest.raises(AuthError) as auth:
        _mock(refuse).list_indexes()
    assert "Unauthorized: ***" in str(auth.value)

    def down(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(RetryableError, match="cannot reach Qdrant"):
        _mock(down).list_indexes()

    def missing(req: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"status": {"error": "Not found: Collection `x`"}})

    with pytest.raises(IndexNotFoundError):
        _mock(missing).count("x")


def test_rejected_upsert_names_the_record() -> None:
    info = {
        "status": "green",
        "optimizer_status": "ok",
        "segments_count": 1,
        "payload_schema": {},
        "config": {
            "params": {"vectors": {"size": 2, "distance": "Dot"}},
            "hnsw_config": {},
            "optimizer_config": {},
            "metadata": {"vectra_io": {"id_type": "string"}},
        },
    }
    bad_point = mapped_uuid("bad one")

    def handler(req: httpx.Request) -> httpx.Response:
        if req.method == "GET":
            return httpx.Response(200, json={"result": info, "status": "ok"})
        return httpx.Response(
            400, json={"status": {"error": f"Wrong input: point {bad_point} is invalid"}}
        )

    p = _mock(handler)
    spec = p.describe_index("c")
    batch = batch_from_records(
        spec, [{"id": "fine", "values": [1, 2]}, {"id": "bad one", "values": [3, 4]}]
    )
    with pytest.raises(RecordsRejectedError) as exc:
        p.upsert("c", batch)
    assert set(exc.value.failures) == {"bad one"}


def test_missing_index_everywhere(qdrant: FacetQdrantDouble) -> None:
    p = provider_for(qdrant)
    for call in (
        lambda: p.count("nope"),
        lambda: list(p.scan("nope")),
        lambda: p.fetch("nope", ["a"]),
        lambda: p.list_namespaces("nope"),
        lambda: p.delete_index("nope"),
    ):
        with pytest.raises(IndexNotFoundError):
            call()
    p.close()


# -- query ----------------------------------------------------------------------------------
def test_client_query(qdrant: FacetQdrantDouble) -> None:
    host = qdrant.url.removeprefix("http://")
    client = vectra_io.Client(url=f"qdrant://{host}")
    client.create_index("songs", 3, "euclidean")
    client.upsert(
        "songs",
        [
            {"id": "near", "values": [1, 0, 0], "metadata": {"genre": "jazz", "year": 1959}},
            {"id": "far", "values": [9, 9, 9], "metadata": {"genre": "jazz", "year": 1970}},
            {"id": "mid", "values": [2, 1, 0], "metadata": {"genre": "rock", "year": 1959}},
        ],
    )
    client.upsert("songs", [{"id": "near", "values": [1, 0, 0]}], namespace="other")
    hits = client.query("songs", [1, 0, 0], top_k=3)
    assert [h["id"] for h in hits] == ["near", "mid", "far"]
    assert hits[0]["score"] == pytest.approx(0.0) and hits[1]["score"] < 0  # higher is closer
    assert hits[0]["metadata"] == {"genre": "jazz", "year": 1959}
    jazz = client.query("songs", [1, 0, 0], top_k=5, filter={"genre": "jazz", "year": 1970})
    assert [h["id"] for h in jazz] == ["far"]
    other = client.query("songs", [1, 0, 0], top_k=5, namespace="other")
    assert [h["id"] for h in other] == ["near"] and other[0]["metadata"] is None
    client.close()
