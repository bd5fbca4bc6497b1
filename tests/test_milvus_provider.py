"""Milvus-specific behaviour of the ``milvus://`` provider (the generic contract is checked
by ``tests/conformance`` through ``harness_milvus.py``).

Runs against the Milvus Lite gRPC server of the ``milvus_server`` fixture and against
embedded Milvus Lite ``.db`` stores.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pytest

pymilvus = pytest.importorskip("pymilvus")

from pymilvus import DataType, MilvusClient  # noqa: E402

import vectra_io  # noqa: E402
from vectra_io.errors import (  # noqa: E402
    ConfigError,
    IncompatibleIndexError,
    IndexNotFoundError,
    RetryableError,
    UnsupportedError,
)
from vectra_io.providers.base import IndexSpec, VectorSpec  # noqa: E402
from vectra_io.providers.memory import MemoryProvider  # noqa: E402
from vectra_io.providers.milvus import (  # noqa: E402
    CONNECTION_OPTIONS,
    MilvusProvider,
    namespace_for,
    partition_for,
)
from vectra_io.providers.milvus.connection import parse_location  # noqa: E402
from vectra_io.providers.registry import open_provider  # noqa: E402
from vectra_io.records import (  # noqa: E402
    batch_from_records,
    dense_matrix,
    loads_metadata,
    record_schema,
)

DIM = 8
SPECIAL = np.array([-0.0, 1e-45, -1e-45, 1.1754942e-38, 3.4e38, -3.4e38, 1.0, 0.1], np.float32)
AWKWARD_IDS = ['a"b', "c\\d", "e'f", "new\nline", "tab\tcr\r", 'x\\"y', "ünï😀", " ", "z" * 300]


# -- fixtures ---------------------------------------------------------------------------
@pytest.fixture
def location(milvus_server: Any) -> str:
    return f"{milvus_server.host}:{milvus_server.port}"


@pytest.fixture
def client(milvus_server: Any) -> Any:
    c = MilvusClient(uri=milvus_server.url, **CONNECTION_OPTIONS)
    yield c
    c.close()


@pytest.fixture
def provider(location: str) -> Any:
    p = MilvusProvider(location)
    yield p
    p.close()


@pytest.fixture
def name(client: Any) -> Any:
    """A unique collection name, dropped afterwards."""
    n = f"vt_{uuid.uuid4().hex[:12]}"
    yield n
    if client.has_collection(n):
        client.drop_collection(n)


def records(n: int, *, prefix: str = "id", seed: int = 0, tag: str = "v1") -> list[dict]:
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    if n:
        vectors[0] = SPECIAL
    return [
        {
            "id": f"{prefix}{i}",
            "values": vectors[i],
            "metadata": None
            if i % 7 == 3
            else {
                "i": i,
                "tag": tag,
                "big": 2**64 + i,  # beyond what a Milvus JSON field takes
                "neg": -(2**63),
                "f": 0.1,
                "none": None,
                "nested": {"l": [1, None, {"x": []}], "empty": {}},
                "text": "näme-漢字-😀",
            },
        }
        for i in range(n)
    ]


def table_of(p: Any, index: str, namespace: str = "", batch_size: int = 1000) -> pa.Table:
    spec = p.describe_index(index)
    pages = [pg.batch for pg in p.scan(index, namespace, batch_size=batch_size)]
    return pa.Table.from_batches(pages, schema=record_schema(spec)).sort_by("id")


def assert_same(a: pa.Table, b: pa.Table) -> None:
    assert a.column("id").to_pylist() == b.column("id").to_pylist()
    for col in a.schema.names:
        if col == "metadata":
            ma = [loads_metadata(v) for v in a.column(col).to_pylist()]
            mb = [loads_metadata(v) for v in b.column(col).to_pylist()]
            assert ma == mb
        elif pa.types.is_fixed_size_list(a.schema.field(col).type):
            bits_a = dense_matrix(a.column(col)).view(np.uint32)
            bits_b = dense_matrix(b.column(col)).view(np.uint32)
            assert np.array_equal(bits_a, bits_b), col
        else:
            assert a.column(col).to_pylist() == b.column(col).to_pylist(), col


def milvus_count(client: Any, name: str, partition: str | None = None) -> int:
    kw = {"partition_names": [partition]} if partition else {}
    rows = client.query(name, filter="", output_fields=["count(*)"], **kw)
    return int(rows[0]["count(*)"])


# -- locations and names (no server) --------------------------------------------------
def test_parse_location_forms(tmp_path: Path) -> None:
    assert parse_location("h:1234", False, None) == (
        "http://h:1234",
        "milvus://h:1234",
        None,
        False,
    )
    assert parse_location("h", True, None)[:2] == ("https://h:19530", "milvus+https://h:19530")
    assert parse_location("h:1/db1", False, None)[2] == "db1"
    assert parse_location("h:1", False, "db2")[1] == "milvus://h:1/db2"
    assert parse_location("[::1]:5", False, None)[0] == "http://[::1]:5"
    lite = str(tmp_path / "x.db")
    assert parse_location(lite, False, None) == (lite, f"milvus://{lite}", None, True)
    for bad, db in [
        ("user:pw@h:1", None),
        ("h:1/a", "b"),
        ("h:x", None),
        ("h:1/a/b", None),
        (str(tmp_path / "x.sqlite"), None),
        (str(tmp_path / "nodir" / "x.db"), None),
        ("", None),
    ]:
        with pytest.raises(ConfigError):
            parse_location(bad, False, db)


def test_unknown_options_are_refused(location: str) -> None:
    with pytest.raises(ConfigError, match="unknown options"):
        MilvusProvider(location, colour="blue")
    with pytest.raises(ConfigError):
        MilvusProvider(location, metadata="xml")


@pytest.mark.parametrize(
    "namespace",
    ["", "alpha", "Tenant_1", "_default", "my-ns", "tenant/2", "ünï 漢", "_vx_x", "1st", "a" * 255],
)
def test_partition_names_are_valid_and_reversible(namespace: str) -> None:
    part = partition_for(namespace)
    assert len(part) <= 255 or namespace == "a" * 255
    assert part[0].isalpha() or part[0] == "_"
    assert all(c.isascii() and (c.isalnum() or c == "_") for c in part)
    assert namespace_for(part) == namespace
    if namespace == "":
        assert part == "_default"
    if namespace in ("alpha", "Tenant_1"):
        assert part == namespace  # readable when Milvus allows the name


def test_foreign_partition_names_map_to_themselves() -> None:
    for part in ("p1", "_x", "_vx_nothex_zz", "_vx_"):
        assert namespace_for(part) == part


# -- server mode ----------------------------------------------------------------------
def test_registry_url_and_token_stay_secret(location: str, monkeypatch) -> None:
    monkeypatch.setenv("MILVUS_TOKEN", "root:S3cretPassw0rd")
    p = open_provider(f"milvus://{location}")
    try:
        assert isinstance(p, MilvusProvider)
        assert p.endpoint == f"milvus://{location}"
        assert "S3cret" not in repr(vars(p).get("endpoint"))
        assert p._scrub("failed for root:S3cretPassw0rd") == "failed for ***"
        assert p.lite  # the fixture runs Milvus Lite
        with pytest.raises(IndexNotFoundError) as exc:
            p.describe_index("does_not_exist_here")
        assert "S3cret" not in str(exc.value)
    finally:
        p.close()


def test_unreachable_server_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RetryableError):
        MilvusProvider(f"127.0.0.1:{port}", timeout=5)


def _connections_to(port: int) -> int:
    """This process's open TCP connections to ``port``."""
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def test_close_drops_the_connection(milvus_server: Any, location: str) -> None:
    # pymilvus pools connections for the whole process, and a pooled connection keeps
    # pinging while idle until Milvus Lite answers GOAWAY "too many pings", which failed a
    # later connection in CI. The provider owns its connection; close() must drop it.
    before = _connections_to(milvus_server.port)
    p = MilvusProvider(location)
    p.list_indexes()
    assert _connections_to(milvus_server.port) > before
    p.close()
    deadline = time.monotonic() + 10
    while _connections_to(milvus_server.port) > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _connections_to(milvus_server.port) == before


def test_created_collection_schema(provider: Any, client: Any, name: str) -> None:
    spec = IndexSpec(name, DIM, "euclidean", sparse=True)
    provider.create_index(spec)
    desc = client.describe_collection(name)
    fields = {f["name"]: f for f in desc["fields"]}
    assert desc["auto_id"] is False and desc["enable_dynamic_field"] is False
    assert fields["id"]["type"] == DataType.VARCHAR and fields["id"]["is_primary"]
    assert fields["vector"]["type"] == DataType.FLOAT_VECTOR
    assert fields["vector"]["params"]["dim"] == DIM
    assert fields["sparse_values"]["type"] == DataType.SPARSE_FLOAT_VECTOR
    assert fields["metadata"]["type"] == DataType.VARCHAR and fields["metadata"]["nullable"]
    assert client.describe_index(name, "vector")["metric_type"] == "L2"
    assert client.describe_index(name, "vector")["index_type"] == "FLAT"  # Milvus Lite default
    stored = json.loads(desc["properties"]["vectra.spec"])
    assert stored["spec"]["metric"] == "euclidean" and stored["layout"]["metadata"] == "metadata"
    got = provider.describe_index(name)
    assert (got.dimension, got.metric, got.id_type, got.sparse) == (
        DIM,
        "euclidean",
        "string",
        True,
    )
    assert got.raw_config["milvus"]["vectra_layout"] is True
    provider.create_index(spec)  # idempotent
    with pytest.raises(IncompatibleIndexError):
        provider.create_index(IndexSpec(name, DIM + 1, "euclidean"))
    with pytest.raises(ConfigError):
        provider.create_index(IndexSpec("bad-name", DIM))
    with pytest.raises(IncompatibleIndexError):
        provider.create_index(IndexSpec(f"{name}_m", DIM, "manhattan"))


def test_round_trip_with_awkward_ids_and_resumed_cursor(
    provider: Any, location: str, name: str
) -> None:
    spec = IndexSpec(name, DIM, "cosine")
    provider.create_index(spec)
    recs = records(40) + [
        {"id": rid, "values": np.full(DIM, k, np.float32), "metadata": {"k": k}}
        for k, rid in enumerate(AWKWARD_IDS)
    ]
    assert provider.upsert(name, batch_from_records(spec, recs)) == {}
    want = pa.Table.from_batches([batch_from_records(spec, recs)]).sort_by("id")
    assert_same(table_of(provider, name, batch_size=7), want)
    assert provider.count(name) == len(recs)
    fetched = provider.fetch(name, [*AWKWARD_IDS, "nope", AWKWARD_IDS[0]])
    assert fetched.column("id").to_pylist() == AWKWARD_IDS
    # a cursor, JSON round-tripped, resumes exactly in another connection
    pages = list(provider.scan(name, batch_size=10))
    assert pages[-1].cursor is None and all(p.cursor is not None for p in pages[:-1])
    other = MilvusProvider(location)
    try:
        for k in range(1, len(pages)):
            cursor = json.loads(json.dumps(pages[k - 1].cursor))
            resumed = list(other.scan(name, batch_size=10, cursor=cursor))
            ids = [i for p in pages[:k] for i in p.batch.column("id").to_pylist()]
            ids += [i for p in resumed for i in p.batch.column("id").to_pylist()]
            assert sorted(ids) == sorted(r["id"] for r in recs) and len(ids) == len(set(ids))
        with pytest.raises(ConfigError):
            list(other.scan(name, cursor={"after": 5}))
    finally:
        other.close()


def test_reimport_leaves_one_entity_per_id(
    provider: Any, client: Any, name: str, tmp_path: Path
) -> None:
    source = MemoryProvider()
    spec = IndexSpec(name, DIM, "dot")
    source.create_index(spec)
    source.upsert(name, batch_from_records(spec, records(300)))
    snap = str(tmp_path / "snap")
    vectra_io.export_snapshot(source, snap, batch_size=100)
    for _ in range(2):
        res = vectra_io.import_snapshot(snap, provider, chunk_size=64, concurrency=4, state=False)
        assert res["errors"] == [] and res["imported_count"] == 300
    assert milvus_count(client, name) == 300
    assert provider.count(name) == 300
    ids = [r["id"] for r in client.query(name, filter="", output_fields=["id"], limit=1000)]
    assert len(ids) == len(set(ids)) == 300
    # a changed record replaces the old one: no stale metadata
    spec = provider.describe_index(name)
    provider.upsert(name, batch_from_records(spec, [{"id": "id1", "values": np.ones(DIM)}]))
    got = provider.fetch(name, ["id1"])
    assert got.column("metadata").to_pylist() == [None]
    assert milvus_count(client, name) == 300
    check = vectra_io.verify_snapshot(snap, provider, sample=50)
    assert check["target_count"] == 300


def test_auto_id_collection_is_refused_as_target(provider: Any, client: Any, name: str) -> None:
    client.create_collection(name, dimension=DIM, auto_id=True, metric_type="IP")
    client.insert(name, [{"vector": np.ones(DIM).tolist(), "note": "x"}])
    spec = provider.describe_index(name)  # a fine source
    assert spec.metric == "dot" and spec.id_type == "uint64"
    assert table_of(provider, name).num_rows == 1
    batch = batch_from_records(spec, [{"id": "1", "values": np.ones(DIM)}])
    with pytest.raises(IncompatibleIndexError, match="auto_id"):
        provider.upsert(name, batch)
    with pytest.raises(IncompatibleIndexError, match="auto_id"):
        provider.create_index(IndexSpec(name, DIM, "dot"))
    res = vectra_io.migrate(provider, MemoryProvider(), indexes=[name])
    assert res["migrated_count"] == 1
    assert milvus_count(client, name) == 1


def test_int64_primary_key(provider: Any, client: Any, name: str) -> None:
    spec = IndexSpec(name, DIM, "cosine", id_type="uint64")
    provider.create_index(spec)
    fields = {f["name"]: f for f in client.describe_collection(name)["fields"]}
    assert fields["id"]["type"] == DataType.INT64
    assert provider.describe_index(name).id_type == "uint64"
    good = ["0", "1", str(2**53 + 1), str(2**63 - 1)]
    bad = [str(2**63), str(2**64 - 1), "007", "abc", "-0", ""]
    vecs = np.random.default_rng(1).standard_normal((len(good) + len(bad), DIM))
    recs = [{"id": rid, "values": v} for rid, v in zip(good + bad, vecs, strict=True)]
    refused = provider.upsert(name, batch_from_records(spec, recs))
    assert set(refused) == set(bad)
    assert "INT64" in refused[str(2**63)]
    assert sorted(table_of(provider, name).column("id").to_pylist()) == sorted(good)
    assert provider.fetch(name, [str(2**63 - 1), "abc", "5"]).column("id").to_pylist() == [
        str(2**63 - 1)
    ]
    pages = list(provider.scan(name, batch_size=2))
    assert pages[0].cursor == {"after": 1} and pages[-1].cursor is None
    # a foreign INT64 collection with negative keys: ids are the decimal strings
    other = f"{name}_neg"
    client.create_collection(other, dimension=DIM, metric_type="L2")
    try:
        client.insert(other, [{"id": -5, "vector": vecs[0].tolist()}])
        assert provider.describe_index(other).metric == "euclidean"
        assert table_of(provider, other).column("id").to_pylist() == ["-5"]
    finally:
        client.drop_collection(other)


def test_foreign_collection_fields_become_metadata(provider: Any, client: Any, name: str) -> None:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("emb", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("title", DataType.VARCHAR, max_length=100, nullable=True)
    schema.add_field("year", DataType.INT64)
    schema.add_field("score", DataType.DOUBLE)
    schema.add_field("ok", DataType.BOOL)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=8,
                     max_length=16)  # fmt: skip
    schema.add_field("info", DataType.JSON, nullable=True)
    index = client.prepare_index_params()
    index.add_index("emb", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=index)
    rows: list[dict[str, Any]] = [
        {"pk": "a", "emb": [1.0, 2.0, 3.0, -0.0], "title": None, "year": 1999, "score": 0.1,
         "ok": True, "tags": ["x", "y"], "info": {"k": [1, None]}, "extra": "dyn", "n": None},
        {"pk": "b", "emb": [1e-45, 0.0, 3.4e38, 1.0], "title": "t", "year": 2000, "score": 1.5,
         "ok": False, "tags": [], "info": None},
    ]  # fmt: skip
    client.insert(name, rows)

    spec = provider.describe_index(name)
    assert (spec.dimension, spec.metric, spec.id_type) == (4, "dot", "string")
    assert spec.raw_config["milvus"]["vectra_layout"] is False
    got = table_of(provider, name)
    metas = [loads_metadata(m) for m in got.column("metadata").to_pylist()]
    assert metas[0] == {
        "title": None, "year": 1999, "score": 0.1, "ok": True, "tags": ["x", "y"],
        "info": {"k": [1, None]}, "extra": "dyn", "n": None,
    }  # fmt: skip
    assert metas[1] == {
        "title": "t",
        "year": 2000,
        "score": 1.5,
        "ok": False,
        "tags": [],
        "info": None,
    }
    want = np.array([r["emb"] for r in rows], np.float32)
    assert np.array_equal(dense_matrix(got.column("values")).view(np.uint32), want.view(np.uint32))

    # and back: metadata keys map to the fields (the rest to the dynamic field)
    copy = f"{name}_copy"
    client.create_collection(copy, schema=schema, index_params=index)
    try:
        assert provider.upsert(copy, got.to_batches()[0]) == {}
        assert_same(table_of(provider, copy), got)
        bad = batch_from_records(
            provider.describe_index(copy),
            [
                {"id": "c", "values": [1, 2, 3, 4], "metadata": {"title": "no year"}},
                {"id": "d", "values": [1, 2, 3, 4], "metadata": {"year": "not a number",
                                                                  "score": 1.0, "ok": True,
                                                                  "tags": []}},
                {"id": "e", "values": [1, 2, 3, 4], "metadata": {"year": 1, "score": 2.0,
                                                                  "ok": True, "emb": 1,
                                                                  "tags": []}},
                {"id": "f", "values": [1, 2, 3, 4], "metadata": {"year": 1, "score": 2.0,
                                                                  "ok": True, "tags": []}},
            ],
        )  # fmt: skip
        refused = provider.upsert(copy, bad)
        assert set(refused) == {"c", "d", "e"}
        assert "year" in refused["c"] and "emb" in refused["e"], refused
        assert sorted(table_of(provider, copy).column("id").to_pylist()) == ["a", "b", "f"]
    finally:
        client.drop_collection(copy)


@pytest.mark.parametrize(("milvus_metric", "metric"), [("COSINE", "cosine"), ("IP", "dot"),
                                                       ("L2", "euclidean")])  # fmt: skip
def test_metric_is_read_from_the_index(
    provider: Any, client: Any, name: str, milvus_metric: str, metric: str
) -> None:
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("a", DataType.FLOAT_VECTOR, dim=3)
    schema.add_field("b", DataType.FLOAT_VECTOR, dim=2)
    index = client.prepare_index_params()
    index.add_index("a", index_type="HNSW", metric_type=milvus_metric, params={"M": 8})
    index.add_index("b", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=index)
    spec = provider.describe_index(name)
    # no field called "vector": the first vector field is the dense vector, the rest named
    assert (spec.dimension, spec.metric) == (3, metric)
    assert dict(spec.named_vectors) == {"b": VectorSpec(2, "euclidean")}
    client.insert(name, [{"id": 7, "a": [1.0, 2.0, 3.0], "b": [4.0, 5.0]}])
    got = table_of(provider, name)
    assert got.column("vector.b").to_pylist() == [[4.0, 5.0]]


def test_partitions_are_namespaces(provider: Any, client: Any, name: str) -> None:
    spec = IndexSpec(name, DIM, "cosine")
    provider.create_index(spec)
    spaces = {"": "d", "alpha": "a", "my-ns": "m", "_default": "u"}
    for ns, prefix in spaces.items():
        recs = records(5 + len(prefix), prefix=prefix, seed=len(ns))
        assert provider.upsert(name, batch_from_records(spec, recs), ns) == {}
    assert sorted(provider.list_namespaces(name)) == sorted(spaces)
    parts = set(client.list_partitions(name))
    assert parts == {"_default", "alpha", partition_for("my-ns"), partition_for("_default")}
    for ns, prefix in spaces.items():
        ids = table_of(provider, name, ns).column("id").to_pylist()
        assert ids and all(i.startswith(prefix) for i in ids), ns
        assert provider.count(name, ns) == len(ids)
        assert milvus_count(client, name, partition_for(ns)) == len(ids) or provider.lite
        assert provider.fetch(name, [f"{prefix}0", "a0" if prefix != "a" else "d0"], ns).column(
            "id"
        ).to_pylist() == [f"{prefix}0"]
    assert provider.count(name, "nothing") == 0
    assert list(provider.scan(name, "nothing")) == []
    # one id, two namespaces: refused, never moved out of the first namespace
    moved = batch_from_records(spec, [{"id": "a0", "values": np.ones(DIM)},
                                      {"id": "new", "values": np.ones(DIM)}])  # fmt: skip
    refused = provider.upsert(name, moved, "")
    assert set(refused) == {"a0"} and "another namespace" in refused["a0"]
    assert "a0" in table_of(provider, name, "alpha").column("id").to_pylist()
    assert provider.count(name, "") == 5 + len("d") + 1


def test_sparse_vectors(provider: Any, name: str) -> None:
    spec = IndexSpec(name, DIM, "dot", sparse=True)
    provider.create_index(spec)
    vec = np.ones(DIM, np.float32)
    recs = [
        {"id": "a", "values": vec, "sparse_values": {"indices": [7, 0, 4_000_000_000],
                                                     "values": [0.5, 1e-45, 3.4e38]}},
        {"id": "b", "values": vec, "sparse_values": {"indices": [3], "values": [2.5]}},
        {"id": "neg", "values": vec, "sparse_values": {"indices": [1], "values": [-1.0]}},
        {"id": "zero", "values": vec, "sparse_values": {"indices": [1, 2], "values": [0.0, 1.0]}},
        {"id": "none", "values": vec},
        {"id": "big", "values": vec, "sparse_values": {"indices": [2**32 - 1], "values": [1.0]}},
    ]  # fmt: skip
    refused = provider.upsert(name, batch_from_records(spec, recs))
    assert set(refused) == {"neg", "zero", "none", "big"}
    got = provider.fetch(name, ["a", "b"]).column("sparse_values").to_pylist()
    assert got[0]["indices"] == [0, 7, 4_000_000_000]  # Milvus sorts the indices
    assert (
        np.array(got[0]["values"], np.float32).view(np.uint32).tolist()
        == np.array([1e-45, 0.5, 3.4e38], np.float32).view(np.uint32).tolist()
    )
    assert got[1] == {"indices": [3], "values": [2.5]}


def test_named_vectors_need_every_vector(provider: Any, name: str) -> None:
    spec = IndexSpec(
        name, None, "cosine", named_vectors={"title": VectorSpec(4, "dot"), "img-1": VectorSpec(2)}
    )
    provider.create_index(spec)
    assert provider.describe_index(name).named_vectors == spec.named_vectors
    recs = [
        {"id": "ok", "vectors": {"title": [1, 2, 3, 4], "img-1": [5, 6]}},
        {"id": "partial", "vectors": {"title": [1, 2, 3, 4]}},
    ]
    refused = provider.upsert(name, batch_from_records(spec, recs))
    assert set(refused) == {"partial"} and "img-1" in refused["partial"]
    assert table_of(provider, name).column("vector.img-1").to_pylist() == [[5.0, 6.0]]


def test_records_without_dense_vector_are_refused(provider: Any, name: str) -> None:
    spec = IndexSpec(name, DIM, "cosine")
    provider.create_index(spec)
    recs: list[dict[str, Any]] = [{"id": "x", "values": None}, {"id": "y", "values": np.ones(DIM)}]
    refused = provider.upsert(name, batch_from_records(spec, recs))
    assert set(refused) == {"x"}
    assert provider.count(name) == 1


def test_metadata_limits_and_json_mode(location: str, client: Any, name: str) -> None:
    p = MilvusProvider(location, metadata="json")
    try:
        spec = IndexSpec(name, DIM, "cosine")
        p.create_index(spec)
        fields = {f["name"]: f for f in client.describe_collection(name)["fields"]}
        assert fields["metadata"]["type"] == DataType.JSON
        fine = {"big": 2**63 - 1, "neg": -(2**63), "n": None, "l": [1, {"x": None}], "f": 0.1}
        recs: list[dict[str, Any]] = [
            {"id": "fine", "values": np.ones(DIM), "metadata": fine},
            {"id": "none", "values": np.ones(DIM), "metadata": None},
            {"id": "empty", "values": np.ones(DIM), "metadata": {}},
            {"id": "huge", "values": np.ones(DIM), "metadata": {"big": 2**64}},
            {"id": "long", "values": np.ones(DIM), "metadata": {"t": "x" * 70_000}},
        ]
        refused = p.upsert(name, batch_from_records(spec, recs))
        assert set(refused) == {"huge", "long"}
        got = p.fetch(name, ["fine", "none", "empty"])
        assert [loads_metadata(m) for m in got.column("metadata").to_pylist()] == [fine, None, {}]
        assert client.query(name, filter="metadata['big'] > 0", output_fields=["id"])[0]["id"] == (
            "fine"
        )
    finally:
        p.close()


def test_embedded_lite_file_round_trip(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "lite.db"
    spec = IndexSpec("docs", DIM, "cosine")
    recs = records(120, seed=3)
    p = open_provider(f"milvus://{path}")
    try:
        assert isinstance(p, MilvusProvider) and p.embedded and p.lite
        assert p.endpoint == f"milvus://{path}"
        p.create_index(spec)
        assert p.upsert("docs", batch_from_records(spec, recs)) == {}
        tenant = records(10, prefix="t", seed=4)
        assert p.upsert("docs", batch_from_records(spec, tenant), "tenant/1") == {}
    finally:
        p.close()
    q = MilvusProvider(str(path))  # a new connection to the same store
    try:
        want = pa.Table.from_batches([batch_from_records(spec, recs)]).sort_by("id")
        assert_same(table_of(q, "docs", batch_size=50), want)
        assert q.count("docs") == 120 and q.count("docs", "tenant/1") == 10
        assert sorted(q.list_namespaces("docs")) == ["", "tenant/1"]
        # exports to a snapshot and back into a fresh embedded store
        snap = str(tmp_path / "snap")
        manifest = vectra_io.export_snapshot(q, snap, batch_size=40)
        assert manifest["complete"] is True
    finally:
        q.close()
    monkeypatch.chdir(tmp_path)
    r = MilvusProvider("./copy.db")  # a relative location
    try:
        assert r.endpoint == f"milvus://{tmp_path / 'copy.db'}"
        res = vectra_io.import_snapshot(snap, r)
        assert res["errors"] == [] and res["imported_count"] == 130
        assert_same(table_of(r, "docs"), want)
        assert r.describe_index("docs").metric == "cosine"
    finally:
        r.close()


def test_hung_or_stopped_server_is_retryable() -> None:
    """A server that stops answering times out (RetryableError); one that is gone fails
    fast (RetryableError); the engine's retry policy does the retrying."""
    import os
    import signal

    from tests.servers.launch import MilvusServer

    with MilvusServer() as server:
        p = MilvusProvider(f"{server.host}:{server.port}", timeout=2)
        try:
            p.create_index(IndexSpec("hang", 4))
            assert server.pid is not None
            os.kill(server.pid, signal.SIGSTOP)
            try:
                with pytest.raises(RetryableError, match="DEADLINE_EXCEEDED"):
                    p.count("hang")
            finally:
                os.kill(server.pid, signal.SIGCONT)
            assert p.count("hang") == 0
            server.stop()
            with pytest.raises(RetryableError):
                p.list_indexes()
        finally:
            p.close()


def test_database_from_path_or_option(location: str, client: Any) -> None:
    db = f"vdb_{uuid.uuid4().hex[:8]}"
    client.create_database(db)
    p = MilvusProvider(f"{location}/{db}")
    q = MilvusProvider(location, db=db)
    try:
        assert p.endpoint == f"milvus://{location}/{db}"
        p.create_index(IndexSpec("in_db", 4))
        assert "in_db" in q.list_indexes()
        assert "in_db" not in client.list_collections()  # not in the default database
        p.delete_index("in_db")
    finally:
        p.close()
        q.close()
        client.drop_database(db)
    missing = MilvusProvider(location, db="no_such_db")
    try:
        with pytest.raises(ConfigError, match="database"):
            missing.list_indexes()
    finally:
        missing.close()


def test_partition_key_collection_has_one_namespace(provider: Any, client: Any, name: str) -> None:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=32)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("tenant", DataType.VARCHAR, max_length=32, is_partition_key=True)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="COSINE")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(
        name, [{"id": f"r{i}", "vector": [1.0, i], "tenant": f"t{i % 3}"} for i in range(9)]
    )
    assert provider.list_namespaces(name) == [""]
    assert provider.count(name) == 9
    got = table_of(provider, name, batch_size=4)
    assert got.num_rows == 9
    assert loads_metadata(got.column("metadata")[0].as_py()) == {"tenant": "t0"}
    spec = provider.describe_index(name)
    batch = batch_from_records(spec, [{"id": "x", "values": [1, 1], "metadata": {"tenant": "t9"}}])
    with pytest.raises(UnsupportedError):
        provider.upsert(name, batch, "elsewhere")
    assert provider.upsert(name, batch) == {}
    assert provider.count(name) == 10


class _RpcError(Exception):
    """A stand-in for the grpc errors pymilvus raises."""

    def __init__(self, code: Any, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> Any:
        return self._code

    def details(self) -> str:
        return self._details


def test_error_translation(location: str) -> None:
    import grpc
    from pymilvus.exceptions import DataNotMatchException, MilvusException

    from vectra_io.errors import AuthError, FatalError, RecordsRejectedError

    class RpcError(_RpcError, grpc.RpcError):
        pass

    p = MilvusProvider(location, api_key="root:Hunter2Secret")
    try:

        def tr(exc: BaseException, records: bool = False) -> Exception:
            return p._translated(exc, "coll", records=records)

        login = MilvusException(code=2, message="Fail connecting to server on h:1")
        login.__cause__ = RpcError(grpc.StatusCode.UNAUTHENTICATED, "auth check failure")
        cases: list[tuple[BaseException, bool, type]] = [
            (MilvusException(code=100, message="collection not found[coll]"), False,
             IndexNotFoundError),
            (MilvusException(code=1400, message="not authenticated"), False, AuthError),
            (MilvusException(code=1401, message="privilege not permitted"), False, AuthError),
            (login, False, AuthError),
            (RpcError(grpc.StatusCode.UNAUTHENTICATED, "bad token"), False, AuthError),
            (MilvusException(code=8, message="rate limit exceeded"), False, RetryableError),
            (MilvusException(code=2, message="service unavailable"), False, RetryableError),
            (MilvusException(code=5, message="x", retriable=True), False, RetryableError),
            (MilvusException(code=1, message="current_seq is monotonic; tried to set 44000 < "
             "45000"), True, RetryableError),
            (RpcError(grpc.StatusCode.UNAVAILABLE, "connection refused"), False, RetryableError),
            (RpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline"), False, RetryableError),
            (MilvusException(code=grpc.StatusCode.UNAVAILABLE, message="Retry timeout: 60s"),
             False, RetryableError),
            (MilvusException(code=1100, message="invalid parameter"), True, RecordsRejectedError),
            (MilvusException(code=1100, message="dim mismatch", is_input_error=True), False,
             IncompatibleIndexError),
            (DataNotMatchException(message="field year should be int64"), True,
             RecordsRejectedError),
            (RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "message larger than max"), True,
             RecordsRejectedError),
            (MilvusException(code=65535, message="unexpected"), False, FatalError),
            (ConnectionResetError("reset"), False, RetryableError),
        ]  # fmt: skip
        for exc, records, want in cases:
            got = tr(exc, records)
            assert type(got) is want, (exc, got)
            assert "Hunter2Secret" not in str(got)
        looped = MilvusException(code=2, message="Fail connecting to server on h:1")
        looped.__cause__ = looped  # pymilvus raises ``e from e``
        assert type(tr(looped)) is RetryableError
        leaky = MilvusException(code=1, message="token root:Hunter2Secret refused")
        assert "Hunter2Secret" not in str(tr(leaky))
    finally:
        p.close()


def test_writes_to_milvus_lite_go_one_at_a_time(location: str, client: Any, name: str) -> None:
    """Milvus Lite has no write lock: an upsert that overlaps another one's MemTable flush can
    be acknowledged and lost. Every provider of the process sends one write at a time to a
    Lite store, while queries stay concurrent."""
    first, second = MilvusProvider(location), MilvusProvider(location)
    try:
        assert first.lite and second.lite
        spec = IndexSpec(name, DIM, "dot")
        first.create_index(spec)
        in_flight, most, guard = [0], [0], threading.Lock()

        def counted(real: Any) -> Any:
            def call(*args: Any, **kw: Any) -> Any:
                with guard:
                    in_flight[0] += 1
                    most[0] = max(most[0], in_flight[0])
                try:
                    time.sleep(0.02)  # long enough for the other threads to arrive
                    return real(*args, **kw)
                finally:
                    with guard:
                        in_flight[0] -= 1

            return call

        for p in (first, second):
            p._client.upsert = counted(p._client.upsert)
        rows = records(240)

        def write(k: int) -> None:
            p = (first, second)[k % 2]
            p.upsert(name, batch_from_records(spec, rows[k * 20 : (k + 1) * 20]))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write, range(12)))
        assert most[0] == 1, f"{most[0]} upserts reached Milvus Lite at once"
        assert milvus_count(client, name) == 240

        # reads are not serialized: a query runs while a write holds the store's lock
        query_done = threading.Event()
        with first._write_lock:
            threading.Thread(
                target=lambda: (second.count(name), query_done.set()), daemon=True
            ).start()
            assert query_done.wait(30), "a count waited for the write lock"
    finally:
        first.close()
        second.close()
