"""Weaviate-specific behaviour of the ``weaviate://`` provider, against the REST test double
(tests/doubles/weaviate.py: every request and answer is validated against Weaviate's
OpenAPI document). The generic contract is checked by ``tests/conformance`` through
``harness_weaviate.py``.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import vectra_io
from tests.doubles.weaviate import WeaviateDouble
from tests.util import assert_tables_equal, make_records, metadata_for, read_all, seed
from vectra_io.engine.retry import RetryPolicy
from vectra_io.errors import (
    AuthError,
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    RetryableError,
    UnsupportedError,
)
from vectra_io.ids import ORIGINAL_ID_KEY, mapped_uuid
from vectra_io.providers.base import IndexSpec, VectorSpec
from vectra_io.providers.memory import MemoryProvider
from vectra_io.providers.registry import open_provider
from vectra_io.providers.weaviate import (
    DEFAULT_TENANT,
    METADATA_PROPERTY,
    WeaviateProvider,
    class_name_for,
    namespace_for,
    rename_properties,
    tenant_for,
)
from vectra_io.records import batch_from_records, dense_matrix, loads_metadata

pytest_plugins = ["tests.doubles.fixtures"]

DIM = 8
SECRET = "s3cret-weaviate-key-XYZ"


def fast_retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=5, max_elapsed=30.0, base_delay=0.01, max_delay=0.2)


@pytest.fixture
def location(weaviate_double: WeaviateDouble) -> str:
    return weaviate_double.url.removeprefix("http://")


@pytest.fixture
def provider(location: str) -> Iterator[WeaviateProvider]:
    p = WeaviateProvider(location, timeout=10)
    try:
        yield p
    finally:
        p.close()


def _memory_source(name: str, records: list[dict[str, Any]], **spec_kw: Any) -> MemoryProvider:
    source = MemoryProvider()
    spec = IndexSpec(name, spec_kw.pop("dimension", DIM), **spec_kw)
    source.create_index(spec)
    seed(source, spec, "", records)
    return source


def _vec(seed_: int, dim: int = DIM) -> list[float]:
    return np.random.default_rng(seed_).standard_normal(dim).astype(np.float32).tolist()


# -- names ------------------------------------------------------------------------------


def test_class_tenant_and_property_names() -> None:
    assert class_name_for("Products") == "Products"
    assert class_name_for("products") == "Products"
    assert class_name_for("my-index") == "My_2dindex"
    assert class_name_for("9lives") == "V9lives"
    assert class_name_for("ключ").startswith("V_d0_ba")
    with pytest.raises(ConfigError):
        class_name_for("")

    namespaces = ["", "alpha", "with_under-dash", "a b/c", "ключ", DEFAULT_TENANT, "__vx_x"]
    namespaces += ["x" * 64, "_lead", "a.b"]
    tenants = [tenant_for(ns) for ns in namespaces]
    assert tenants[:3] == [DEFAULT_TENANT, "alpha", "with_under-dash"]
    assert tenants[3] == "__vx_a_20b_2fc"
    assert len(set(tenants)) == len(tenants)
    for ns, tenant in zip(namespaces, tenants, strict=True):
        assert len(tenant) <= 64 and all(c.isalnum() or c in "-_" for c in tenant)
        assert namespace_for(tenant) == ns, tenant
    with pytest.raises(ConfigError, match="64"):
        tenant_for("é" * 40)

    renames = rename_properties(["Title", "id", "my-key", "_id", "title", "9x", "ok_name"])
    assert renames == {
        "9x": "p9x",
        "Title": "title",
        "_id": "p_id",
        "id": "id_",
        "my-key": "my_key",
        "ok_name": "ok_name",
        "title": "title_2",
    }


def test_url_endpoint_and_secrets(
    weaviate_double: WeaviateDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = open_provider("weaviate+https://example.com/proxy/", api_key=SECRET)
    assert p.endpoint == "weaviate+https://example.com:443/proxy"
    assert SECRET not in repr(p) and SECRET not in p.endpoint
    p.close()
    p = open_provider("weaviate://localhost")
    assert p.endpoint == "weaviate://localhost:8080"
    p.close()
    with pytest.raises(ConfigError, match="credentials"):
        open_provider("weaviate://user:pw@localhost:8080")
    with pytest.raises(ConfigError, match="unknown options"):
        open_provider("weaviate://localhost:8080", bogus=1)
    with pytest.raises(ConfigError, match="data type"):
        open_provider("weaviate://localhost:8080", properties={"x": "object"})

    # the key comes from $WEAVIATE_API_KEY when not given
    weaviate_double.api_key = SECRET
    monkeypatch.setenv("WEAVIATE_API_KEY", SECRET)
    wp = open_provider(weaviate_double.url.replace("http://", "weaviate://"))
    try:
        assert wp.list_indexes() == []
    finally:
        wp.close()


def test_bad_api_key_raises_auth_error_without_the_key(
    weaviate_double: WeaviateDouble, location: str, caplog: pytest.LogCaptureFixture
) -> None:
    weaviate_double.api_key = "the-right-key"
    caplog.set_level(logging.DEBUG)
    for key in (SECRET, None):
        p = WeaviateProvider(location, api_key=key)
        with pytest.raises(AuthError) as info:
            p.list_indexes()
        assert info.value.status == 401
        assert SECRET not in str(info.value) and SECRET not in repr(info.value)
        assert SECRET not in repr(p)
        p.close()
    # the engine does not retry an AuthError: it aborts at once
    before = len(weaviate_double.requests)
    with pytest.raises(AuthError):
        vectra_io.migrate(
            _memory_source("src", make_records(3, DIM)),
            WeaviateProvider(location, api_key=SECRET),
            retry=fast_retry(),
        )
    assert len(weaviate_double.requests) - before == 1
    assert SECRET not in caplog.text
    with WeaviateProvider(location, api_key="the-right-key") as good:
        assert good.list_indexes() == []


# -- namespaces = tenants ---------------------------------------------------------------


def _docs_class(double: WeaviateDouble) -> dict[str, list[dict[str, Any]]]:
    """A multi-tenant class made by 'another client': t1, t2 ACTIVE, t3 INACTIVE."""
    double.create_class(
        {
            "class": "Docs",
            "vectorIndexConfig": {"distance": "l2-squared"},
            "properties": [
                {"name": "title", "dataType": ["text"]},
                {"name": "n", "dataType": ["int"]},
                {"name": "tags", "dataType": ["text[]"]},
            ],
            "multiTenancyConfig": {"enabled": True},
        }
    )
    double.add_tenants("Docs", ["t1", "t2", "t3"])
    objects: dict[str, list[dict[str, Any]]] = {}
    for k, tenant in enumerate(["t1", "t2", "t3"]):
        objects[tenant] = [
            {
                "class": "Docs",
                "id": str(uuid.UUID(int=1000 * k + i + 1)),
                "properties": {"title": f"{tenant}-{i}", "n": i, "tags": ["x", tenant]},
                "vector": _vec(100 * k + i),
                "tenant": tenant,
            }
            for i in range(5 + k)
        ]
        results = double.add_objects(objects[tenant])
        assert all(r["result"]["status"] == "SUCCESS" for r in results)
    double.add_tenants("Docs", ["t3"], status="INACTIVE")
    return objects


def test_multi_tenant_export_skips_and_reports_inactive_tenant(
    weaviate_double: WeaviateDouble,
    provider: WeaviateProvider,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    objects = _docs_class(weaviate_double)
    caplog.set_level(logging.WARNING, logger="vectra_io.providers.weaviate")

    assert provider.list_indexes() == ["Docs"]
    spec = provider.describe_index("Docs")
    assert (spec.dimension, spec.metric, spec.id_type) == (DIM, "euclidean", "uuid")
    assert provider.list_namespaces("Docs") == ["t1", "t2"]
    skipped = provider.skipped_tenants["Docs"]
    assert [(s["tenant"], s["namespace"], s["status"]) for s in skipped] == [
        ("t3", "t3", "INACTIVE")
    ]
    assert "ACTIVE" in skipped[0]["reason"]
    assert any("t3" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert provider.count("Docs", "t1") == 5 and provider.count("Docs", "t2") == 6
    assert provider.count("Docs", "nope") == 0 and provider.count("Docs") == 0
    with pytest.raises(FatalError, match="INACTIVE"):
        list(provider.scan("Docs", "t3"))

    snapshot = str(tmp_path / "snap")
    vectra_io.export_snapshot(provider, snapshot, batch_size=4, retry=fast_retry())
    memory = MemoryProvider()
    result = vectra_io.import_snapshot(snapshot, memory, retry=fast_retry())
    assert result["failed_count"] == 0 and result["imported_count"] == 11
    assert memory.list_namespaces("Docs") == ["t1", "t2"]
    for tenant in ("t1", "t2"):
        got = {r["id"]: r for r in _rows(memory, "Docs", tenant)}
        assert len(got) == len(objects[tenant])
        for obj in objects[tenant]:
            rec = got[obj["id"]]
            assert rec["metadata"] == obj["properties"]
            assert np.array_equal(
                np.asarray(rec["values"], np.float32).view(np.uint32),
                np.asarray(obj["vector"], np.float32).view(np.uint32),
            )


def _rows(p: Any, index: str, namespace: str) -> list[dict[str, Any]]:
    table = read_all(p, index, namespace)
    out = []
    for row in table.to_pylist():
        row["metadata"] = loads_metadata(row["metadata"])
        out.append(row)
    return out


def test_namespaces_become_tenants(
    weaviate_double: WeaviateDouble, provider: WeaviateProvider
) -> None:
    spec = IndexSpec("tenants-test", DIM, "cosine")
    provider.create_index(spec)
    cls = class_name_for(spec.name)
    assert cls == "Tenants_2dtest"
    assert weaviate_double.classes[cls].multi_tenant
    namespaces = ["", "plain", "a b/c", "ключ", DEFAULT_TENANT]
    for k, ns in enumerate(namespaces):
        seed(provider, spec, ns, make_records(3 + k, DIM, prefix=f"n{k}-"))
    assert sorted(weaviate_double.classes[cls].tenants) == sorted(map(tenant_for, namespaces))
    assert "__default__" in weaviate_double.classes[cls].tenants
    assert provider.list_namespaces(spec.name) == sorted(namespaces)
    for k, ns in enumerate(namespaces):
        assert provider.count(spec.name, ns) == 3 + k
    # a second connection sees the same names
    with WeaviateProvider(weaviate_double.url.removeprefix("http://")) as other:
        assert other.list_indexes() == ["tenants-test"]
        assert other.list_namespaces("tenants-test") == sorted(namespaces)
    # writing into an inactive tenant is refused, never silently dropped
    weaviate_double.add_tenants(cls, ["plain"], status="INACTIVE")
    fresh = WeaviateProvider(weaviate_double.url.removeprefix("http://"))
    with pytest.raises(FatalError, match="INACTIVE"):
        seed(fresh, spec, "plain", make_records(1, DIM))
    fresh.close()


def test_single_tenant_classes_hold_only_the_default_namespace(
    weaviate_double: WeaviateDouble, location: str
) -> None:
    with WeaviateProvider(location, multi_tenancy=False) as p:
        spec = IndexSpec("single", DIM, "dot")
        p.create_index(spec)
        assert not weaviate_double.classes["Single"].multi_tenant
        seed(p, spec, "", make_records(4, DIM))
        assert p.list_namespaces("single") == [""]
        assert p.count("single") == 4 and p.count("single", "alpha") == 0
        assert list(p.scan("single", "alpha")) == []
        with pytest.raises(UnsupportedError, match="not multi-tenant"):
            seed(p, spec, "alpha", make_records(1, DIM))


# -- vectors ----------------------------------------------------------------------------


def test_named_vectors_of_a_foreign_class(
    weaviate_double: WeaviateDouble, provider: WeaviateProvider
) -> None:
    weaviate_double.create_class(
        {
            "class": "Pics",
            "vectorConfig": {
                "text": {"vectorIndexConfig": {"distance": "dot"}},
                "image": {"vectorIndexConfig": {"distance": "l2-squared"}},
            },
            "properties": [{"name": "caption", "dataType": ["text"]}],
        }
    )
    objs: list[dict[str, Any]] = [
        {
            "class": "Pics",
            "id": str(uuid.UUID(int=i + 1)),
            "properties": {"caption": f"c{i}"},
            "vectors": {"text": _vec(i), "image": _vec(50 + i, 4)},
        }
        for i in range(3)
    ]
    weaviate_double.add_objects(objs)
    spec = provider.describe_index("Pics")
    assert spec.dimension is None
    assert dict(spec.named_vectors) == {
        "text": VectorSpec(DIM, "dot"),
        "image": VectorSpec(4, "euclidean"),
    }
    assert spec.raw_config["class"] == "Pics"
    rows = {r["id"]: r for r in _rows(provider, "Pics", "")}
    for obj in objs:
        row = rows[obj["id"]]
        assert row["metadata"] == obj["properties"]
        for name in ("text", "image"):
            assert np.array_equal(
                np.asarray(row[f"vector.{name}"], np.float32).view(np.uint32),
                np.asarray(obj["vectors"][name], np.float32).view(np.uint32),
            )


def test_default_and_named_vectors_round_trip(
    weaviate_double: WeaviateDouble, provider: WeaviateProvider, tmp_path: Path
) -> None:
    named: dict[str, VectorSpec] = {
        "my-vec": VectorSpec(4, "manhattan"),
        "default": VectorSpec(3, "cosine"),
    }
    spec = IndexSpec("both", DIM, "dot", named_vectors=named)
    records = make_records(25, DIM, seed=3)
    for i, rec in enumerate(records):
        rec["vectors"] = {"my-vec": _vec(i, 4), "default": None if i % 5 == 0 else _vec(i, 3)}
        if i % 7 == 0:
            rec["values"] = None
    source = _memory_source("both", records, dimension=DIM, metric="dot", named_vectors=named)
    vectra_io.migrate(source, provider, batch_size=10, chunk_size=7, retry=fast_retry())
    config = weaviate_double.classes["Both"].definition["vectorConfig"]
    assert sorted(config) == ["default", "default_2", "my_vec"]
    assert config["my_vec"]["vectorIndexConfig"]["distance"] == "manhattan"
    # the record's own vector "default" keeps its name; the index's default vector moves
    assert config["default"]["vectorIndexConfig"]["distance"] == "cosine"
    assert config["default_2"]["vectorIndexConfig"]["distance"] == "dot"
    described = provider.describe_index("both")
    assert (described.dimension, described.metric) == (DIM, "dot")
    assert dict(described.named_vectors) == named

    snapshot = str(tmp_path / "snap")
    vectra_io.export_snapshot(provider, snapshot, batch_size=6, retry=fast_retry())
    copy = MemoryProvider()
    vectra_io.import_snapshot(snapshot, copy, retry=fast_retry())
    assert_tables_equal(read_all(source, spec.name, ""), read_all(copy, spec.name, ""))


# -- ids and metadata -------------------------------------------------------------------


def test_string_ids_mapped_and_restored_through_a_snapshot(
    weaviate_double: WeaviateDouble, provider: WeaviateProvider, tmp_path: Path
) -> None:
    canonical = str(uuid.uuid4())
    upper = str(uuid.uuid4()).upper()
    awkward = ['a"b', "c\\d", "new\nline", "ünï😀", " ", "z" * 300, "42", canonical, upper]
    records = make_records(len(awkward) + 30, DIM, seed=5)
    for rec, rid in zip(records, awkward, strict=False):
        rec["id"] = rid
    source = _memory_source("strings", records)
    snap1 = str(tmp_path / "one")
    vectra_io.export_snapshot(source, snap1, retry=fast_retry())
    result = vectra_io.import_snapshot(snap1, provider, chunk_size=8, retry=fast_retry())
    assert result["failed_count"] == 0, result["errors"][:2]

    described = provider.describe_index("strings")
    assert (described.id_type, described.metric) == ("string", "cosine")
    stored = weaviate_double.stored_objects("Strings", DEFAULT_TENANT)
    assert len(stored) == len(records)
    for rid in awkward:
        oid = canonical if rid == canonical else mapped_uuid(rid)
        obj = stored[oid]
        if rid == canonical:
            assert ORIGINAL_ID_KEY not in obj.properties
        else:
            assert obj.properties[ORIGINAL_ID_KEY] == rid
    # the metadata is kept as its exact JSON text
    some = stored[mapped_uuid(records[-1]["id"])]
    assert json.loads(some.properties[METADATA_PROPERTY]) == records[-1]["metadata"]

    snap2 = str(tmp_path / "two")
    vectra_io.export_snapshot(provider, snap2, batch_size=7, retry=fast_retry())
    copy = MemoryProvider()
    vectra_io.import_snapshot(snap2, copy, retry=fast_retry())
    assert copy.describe_index("strings").id_type == "string"
    assert_tables_equal(read_all(source, "strings", ""), read_all(copy, "strings", ""))
    fetched = provider.fetch("strings", [*awkward, "missing"])
    assert sorted(fetched.column("id").to_pylist()) == sorted(awkward)


def test_property_rename_map_restores_original_keys(
    weaviate_double: WeaviateDouble, location: str, tmp_path: Path
) -> None:
    typed = {"Title": "text", "id": "int", "my-key": "text", "tags": "text[]", "when": "date"}
    records: list[dict[str, Any]] = []
    for i in range(12):
        meta: dict[str, Any] = {
            "Title": f"Hello {i}",
            "id": i if i != 3 else "not an int",  # does not fit: left out of the typed copy
            "my-key": None if i == 4 else f"v{i}",
            "tags": ["a", str(i)],
            "when": "2024-05-01T12:00:00Z",
            "nested": {"deep": [1, None, {"x": 2**64 + 1}]},
            "_id": "untyped key",
        }
        records.append({"id": f"doc-{i}", "values": _vec(i), "metadata": meta})
    records.append({"id": "doc-none", "values": _vec(99), "metadata": None})
    source = _memory_source("renamed", records)
    with WeaviateProvider(location, properties=typed) as p:
        vectra_io.migrate(source, p, retry=fast_retry())
        expected_map = {
            "Title": "title",
            "id": "id_",
            "my-key": "my_key",
            "tags": "tags",
            "when": "when",
        }
        assert p.rename_map("renamed") == expected_map
    cls = weaviate_double.classes["Renamed"]
    assert {"title", "id_", "my_key", "tags", "when"} <= set(cls.properties)
    stored = weaviate_double.stored_objects("Renamed", DEFAULT_TENANT)
    obj = stored[mapped_uuid("doc-1")].properties
    typed_copies = (obj["title"], obj["id_"], obj["my_key"], obj["tags"])
    assert typed_copies == ("Hello 1", 1, "v1", ["a", "1"])
    assert "id_" not in stored[mapped_uuid("doc-3")].properties
    assert "my_key" not in stored[mapped_uuid("doc-4")].properties

    # a new connection without options reads the map stored with the class
    with WeaviateProvider(location) as p:
        assert p.rename_map("renamed") == expected_map
        snapshot = str(tmp_path / "snap")
        vectra_io.export_snapshot(p, snapshot, retry=fast_retry())
        copy = MemoryProvider()
        vectra_io.import_snapshot(snapshot, copy, retry=fast_retry())
        assert_tables_equal(read_all(source, "renamed", ""), read_all(copy, "renamed", ""))

        # objects written by another client (typed properties only): keys restored by the map
        oid = str(uuid.uuid4())
        weaviate_double.add_objects(
            [
                {
                    "class": "Renamed",
                    "id": oid,
                    "tenant": DEFAULT_TENANT,
                    "properties": {"title": "T", "id_": 5, "my_key": "k"},
                    "vector": _vec(7),
                }
            ]
        )
        got = p.fetch("renamed", [oid])
        assert loads_metadata(got.column("metadata")[0].as_py()) == {
            "Title": "T",
            "id": 5,
            "my-key": "k",
        }

        # Weaviate -> Weaviate: the target keeps the typed properties and the map
        vectra_io.migrate(p, p, indexes=["renamed"], index_map={"renamed": "renamed2"})
        assert p.rename_map("renamed2") == expected_map
        assert_tables_equal(read_all(p, "renamed", ""), read_all(p, "renamed2", ""))


def test_foreign_class_properties_are_metadata(
    weaviate_double: WeaviateDouble, provider: WeaviateProvider
) -> None:
    weaviate_double.create_class(
        {
            "class": "Article",
            "properties": [
                {"name": "title", "dataType": ["text"]},
                {"name": "year", "dataType": ["int"]},
            ],
        }
    )
    spec = provider.describe_index("Article")
    assert spec.dimension is None and spec.id_type == "uuid"  # empty: dimension unknown
    assert provider.rename_map("Article") == {"title": "title", "year": "year"}
    rid = str(uuid.uuid4())
    batch = batch_from_records(
        IndexSpec("Article", DIM),
        [
            {"id": rid, "values": _vec(1), "metadata": {"Title": "x", "year": 2020}},
            {"id": "not-a-uuid", "values": _vec(2), "metadata": {"title": "y", "year": 1}},
        ],
    )
    provider.upsert("Article", batch)  # written with Weaviate's own capitalisation rule
    refused = provider.upsert("Article", batch)
    # the class has no _vectra_id property: the mapped id is refused by name, not dropped
    assert list(refused) == ["not-a-uuid"] and "_vectra_id" in refused["not-a-uuid"]
    assert provider.describe_index("Article").dimension == DIM
    rows = _rows(provider, "Article", "")
    assert [(r["id"], r["metadata"]) for r in rows] == [(rid, {"title": "x", "year": 2020})]


# -- writes and errors ------------------------------------------------------------------


def test_per_object_errors_are_failures_with_their_ids(
    weaviate_double: WeaviateDouble, provider: WeaviateProvider, tmp_path: Path
) -> None:
    records = make_records(60, DIM, seed=9)
    source = _memory_source("partial", records)
    snapshot = str(tmp_path / "snap")
    vectra_io.export_snapshot(source, snapshot, retry=fast_retry())
    bad = ["id3", "id17", "id42"]
    weaviate_double.fail_objects([mapped_uuid(b) for b in bad], "disk full on shard")

    result = vectra_io.import_snapshot(
        snapshot, provider, chunk_size=20, concurrency=2, retry=fast_retry()
    )
    assert result["failed_count"] == 3 and result["imported_count"] == 57
    failed_ids = sorted(i for e in result["errors"] for i in e["ids"])
    assert failed_ids == sorted(bad)
    assert all("disk full on shard" in e["error"] for e in result["errors"])
    assert provider.count("partial") == 57
    assert result["namespaces"][0]["failed"] == 3

    # upsert itself returns {original id: reason}
    weaviate_double.fail_objects([mapped_uuid("id5")], "boom")
    spec = provider.describe_index("partial")
    refused = provider.upsert("partial", batch_from_records(spec, records[:8]))
    assert refused == {"id5": "boom"}


def test_429_and_503_are_retried_by_the_engine(
    weaviate_double: WeaviateDouble, provider: WeaviateProvider, tmp_path: Path
) -> None:
    records = make_records(40, DIM, seed=11)
    source = _memory_source("flaky", records)
    spec = source.describe_index("flaky")
    provider.create_index(spec)
    faults = weaviate_double.faults
    faults.retry_after = 0.05

    # the provider reports a 429 as retryable with the server's Retry-After, never sleeps
    faults.fail_next(1, status=429)
    with pytest.raises(RetryableError) as info:
        provider.upsert("flaky", batch_from_records(spec, records[:2]))
    assert info.value.status == 429 and info.value.retry_after == pytest.approx(0.05)

    faults.operations = {"batch.objects.create"}
    faults.fail_next(3, status=429)
    result = vectra_io.migrate(source, provider, chunk_size=10, concurrency=2, retry=fast_retry())
    assert result["failed_count"] == 0 and result["migrated_count"] == 40
    hits = [r for r in weaviate_double.requests if r.fault == "fail_next"]
    assert [r.status for r in hits].count(429) >= 3

    faults.operations = {"objects.list"}
    faults.fail_next(2, status=503)
    snapshot = str(tmp_path / "snap")
    vectra_io.export_snapshot(provider, snapshot, batch_size=9, retry=fast_retry())
    copy = MemoryProvider()
    vectra_io.import_snapshot(snapshot, copy, retry=fast_retry())
    assert_tables_equal(read_all(source, "flaky", ""), read_all(copy, "flaky", ""))


def test_timeouts_and_connection_errors_are_retryable(
    weaviate_double: WeaviateDouble, location: str
) -> None:
    weaviate_double.faults.rate_timeout = 1.0
    weaviate_double.faults.timeout_sleep_s = 2.0
    with WeaviateProvider(location, timeout=0.3) as p, pytest.raises(RetryableError, match="timed"):
        p.list_indexes()
    weaviate_double.faults.reset()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with WeaviateProvider(f"127.0.0.1:{port}") as p, pytest.raises(RetryableError):
        p.list_indexes()


def test_missing_indexes_and_name_collisions(
    weaviate_double: WeaviateDouble, provider: WeaviateProvider
) -> None:
    for call in (
        lambda: provider.describe_index("nothere"),
        lambda: provider.count("nothere"),
        lambda: list(provider.scan("nothere")),
        lambda: provider.fetch("nothere", ["a"]),
        lambda: provider.delete_index("nothere"),
        lambda: provider.upsert(
            "nothere", batch_from_records(IndexSpec("nothere", DIM), make_records(1, DIM))
        ),
    ):
        with pytest.raises(IndexNotFoundError):
            call()
    provider.create_index(IndexSpec("products", DIM, "euclidean"))
    assert weaviate_double.classes["Products"].definition["vectorIndexConfig"]["distance"] == (
        "l2-squared"
    )
    provider.create_index(IndexSpec("products", DIM, "euclidean"))  # exists: fine
    with pytest.raises(IncompatibleIndexError, match="dimension"):
        provider.create_index(IndexSpec("products", 4))
    with pytest.raises(IncompatibleIndexError, match="holds the vectra index 'products'"):
        provider.create_index(IndexSpec("Products", DIM))
    with pytest.raises(IndexNotFoundError):
        provider.describe_index("Products")
    with pytest.raises(IncompatibleIndexError, match="sparse"):
        provider.create_index(IndexSpec("sparse", DIM, sparse=True))
    assert provider.list_indexes() == ["products"]
    # the class deleted by another client: the next upsert says so instead of failing records
    spec = provider.describe_index("products")
    seed(provider, spec, "", make_records(2, DIM))
    weaviate_double.call("schema.objects.delete", params={"className": "Products"})
    with pytest.raises(IndexNotFoundError):
        seed(provider, spec, "", make_records(2, DIM))


def test_vectors_are_bit_exact_on_the_wire(
    weaviate_double: WeaviateDouble, provider: WeaviateProvider
) -> None:
    spec = IndexSpec("exact", DIM, "dot", id_type="uuid")
    provider.create_index(spec)
    records = make_records(10, DIM, seed=1)
    for rec in records:
        rec["id"] = str(uuid.uuid4())
    batch = batch_from_records(spec, records)
    assert provider.upsert("exact", batch) == {}
    stored = weaviate_double.stored_objects("Exact", DEFAULT_TENANT)
    for rec in records:
        obj = stored[rec["id"]]
        assert ORIGINAL_ID_KEY not in obj.properties and obj.vector is not None
        assert np.array_equal(
            obj.vector.view(np.uint32), np.asarray(rec["values"], np.float32).view(np.uint32)
        )
    got = provider.fetch("exact", [r["id"] for r in records])
    order = {rid: i for i, rid in enumerate(got.column("id").to_pylist())}
    got = got.take(pa.array([order[r["id"]] for r in records]))
    assert np.array_equal(
        dense_matrix(got.column("values")).view(np.uint32),
        dense_matrix(batch.column("values")).view(np.uint32),
    )
    # a repeated id inside one batch: the last one wins, one object
    twice = batch_from_records(spec, [{**records[0], "metadata": {"v": k}} for k in (1, 2)])
    assert provider.upsert("exact", twice) == {}
    assert provider.count("exact") == 10
    assert loads_metadata(provider.fetch("exact", [records[0]["id"]])["metadata"][0].as_py()) == {
        "v": 2
    }


def test_metadata_for_is_exact(provider: WeaviateProvider) -> None:
    """Nested metadata with ints beyond 2**63 and nulls, through upsert, scan and fetch."""
    spec = IndexSpec("meta", DIM, "cosine")
    provider.create_index(spec)
    records = make_records(23, DIM, seed=2)
    seed(provider, spec, "", records)
    rows = {r["id"]: r for r in _rows(provider, "meta", "")}
    for i, rec in enumerate(records):
        assert rows[rec["id"]]["metadata"] == metadata_for(i)
