"""The migration guide's scenarios, end to end through a snapshot, with the real ``vectra``
executable (``--json`` parsed) against the OpenAPI-validating doubles of Qdrant, Pinecone
and Weaviate. API keys go through the providers' environment variables (each double is
configured to require its key); import state goes to a temporary ``VECTRA_STATE_DIR``.
Qdrant is the conformance harness's double, which also answers ``/facet`` as Qdrant >= 1.12
does.

1. LanceDB -> Qdrant (string ids, two namespaces, dimension 32; verify --sample).
2. Pinecone -> Qdrant (three namespaces, sparse values, flat metadata).
3. ... and back from Qdrant into a fresh Pinecone index: the original ids, not UUIDs.
4. Weaviate (multi-tenant) -> Qdrant -> a new Weaviate class.
5. ``vectra plan`` on lossy cases: refused records, mapped ids, a metric Pinecone cannot
   express; exit code 4 and nothing created.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import vectra_io
from tests.cli.helpers import Result, expect, run_vectra
from tests.conformance.harness_qdrant import serve_double
from tests.doubles.openapi_server import OpenAPIDouble
from tests.doubles.pinecone import PineconeDouble
from tests.doubles.qdrant import QdrantDouble
from tests.doubles.weaviate import WeaviateDouble
from tests.util import metadata_for
from vectra_io import Client
from vectra_io.ids import ORIGINAL_ID_KEY
from vectra_io.providers.base import IndexSpec
from vectra_io.providers.memory import MemoryProvider
from vectra_io.providers.pinecone import PineconeProvider
from vectra_io.records import ID, METADATA, SPARSE, VALUES, batch_from_records, dense_matrix

from .util import read_all, seed

QDRANT_KEY = "qdrant-guide-key-1"
PINECONE_KEY = "pinecone-guide-key-2"
WEAVIATE_KEY = "weaviate-guide-key-3"


@dataclass
class Stores:
    """The three doubles (each requiring its API key) and the environment of ``vectra``."""

    qdrant: QdrantDouble
    pinecone: PineconeDouble
    weaviate: WeaviateDouble
    env: dict[str, str]
    tmp: Path

    @property
    def qdrant_url(self) -> str:
        return self.qdrant.url.replace("http://", "qdrant://")

    @property
    def pinecone_url(self) -> str:
        return self.pinecone.url.replace("http://", "pinecone://")

    @property
    def weaviate_url(self) -> str:
        return self.weaviate.url.replace("http://", "weaviate://")

    def vectra(self, *args: str | Path, code: int = 0) -> Any:
        """``vectra ARGS --json`` with the keys in the environment; the parsed result."""
        result: Result = expect(run_vectra(*args, "--json", env=self.env), code)
        return result.json

    def client(self, url: str) -> Client:
        key = {"qdrant": QDRANT_KEY, "pinecone": PINECONE_KEY, "weaviate": WEAVIATE_KEY}
        return Client(url=url, api_key=key[url.split(":", 1)[0]])


@pytest.fixture
def stores(
    request: pytest.FixtureRequest,
    pinecone_double: PineconeDouble,
    weaviate_double: WeaviateDouble,
    tmp_path: Path,
) -> Iterator[Stores]:
    # Qdrant >= 1.12 answers /facet, which exports use to list namespaces: the shared
    # double does not model it (the provider would fall back to scrolling, recorded as a
    # spec violation), the conformance harness's double does
    qdrant_double = serve_double(request, api_key=QDRANT_KEY)
    pinecone_double.api_key = PINECONE_KEY
    weaviate_double.api_key = WEAVIATE_KEY
    state = tmp_path / "state"
    env = {
        "QDRANT_API_KEY": QDRANT_KEY,
        "PINECONE_API_KEY": PINECONE_KEY,
        "WEAVIATE_API_KEY": WEAVIATE_KEY,
        "VECTRA_STATE_DIR": str(state),
        "VECTRA_PROGRESS_INTERVAL": "0",
    }
    yield Stores(qdrant_double, pinecone_double, weaviate_double, env, tmp_path)


def _writes(double: OpenAPIDouble) -> list[str]:
    ops = type(double).WRITE_OPERATIONS | {
        "create_index",
        "create_collection",
        "schema.objects.create",
        "tenants.create",
    }
    return [r.operation for r in double.requests if r.operation in ops]


def _import(stores: Stores, snap: Path, target: str, *args: str) -> dict[str, Any]:
    result = stores.vectra("import", snap, target, *args)
    assert result["failed_count"] == 0, result
    state_file = Path(result["state_file"])
    assert state_file.is_relative_to(Path(stores.env["VECTRA_STATE_DIR"])), state_file
    return result


def _verify(stores: Stores, snap: Path, target: str, *args: str) -> dict[str, Any]:
    result = stores.vectra("verify", snap, target, "--sample", "1000", *args)
    assert result["match"] is True, result
    assert all(row["sample_mismatches"] == [] for row in result["namespaces"]), result
    return result


def _by_id(table: pa.Table) -> dict[str, dict[str, Any]]:
    """{id: {"values": float32 array | None, "sparse": ..., "metadata": JSON value}}."""
    names = table.schema.names
    dense = dense_matrix(table.column(VALUES).combine_chunks()) if VALUES in names else None
    out = {}
    for i, row in enumerate(table.to_pylist()):
        out[row[ID]] = {
            "values": None if dense is None else dense[i],
            "sparse": row.get(SPARSE),
            "metadata": None if row[METADATA] is None else json.loads(row[METADATA]),
        }
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float64)
    return v / np.linalg.norm(v)


# -- 1. LanceDB -> Qdrant --------------------------------------------------------------

LANCE_NAMESPACES = {"alpha": 90, "beta": 60}


def test_1_lancedb_to_qdrant(stores: Stores) -> None:
    pytest.importorskip("vectra_io.providers.lancedb")
    pytest.importorskip("lancedb")
    source = f"lancedb://{stores.tmp / 'prototype.lancedb'}"
    rng = np.random.default_rng(1)
    with Client(url=source) as client:
        client.create_index("articles", 32, "cosine")
        for ns, n in LANCE_NAMESPACES.items():
            client.upsert(
                "articles",
                [
                    {
                        "id": f"{ns}/doc-{i:04d}",
                        "values": rng.standard_normal(32).astype(np.float32),
                        "metadata": metadata_for(i),
                    }
                    for i in range(n)
                ],
                namespace=ns,
            )
    snap = stores.tmp / "snap"
    exported = stores.vectra("export", source, snap)
    rows = {key: ns["rows"] for key, ns in exported["indexes"]["articles"]["namespaces"].items()}
    assert rows == LANCE_NAMESPACES

    # the plan: a clean copy into an empty store; string ids mapped to UUIDs in Qdrant
    clean = stores.vectra("plan", snap, "memory://plan-check")
    assert clean["clean"] is True and clean["records"] == 150
    plan = stores.vectra("plan", snap, stores.qdrant_url)  # mapped ids are reversible: clean
    [idx] = plan["indexes"]
    assert idx["action"] == "create index" and idx["problems"] == []
    assert idx["vectors"]["dense"] == {
        "dimension": 32,
        "metric": "cosine",
        "target_metric": "Cosine",
    }
    assert plan["records_with_issues"] == 0 and plan["clean"] is True
    noted = [i for ns in idx["namespaces"] for i in ns["issues"]]
    assert sum(i["records"] for i in noted) == 150 and not any(i["lossy"] for i in noted)
    for ns in idx["namespaces"]:
        [issue] = ns["issues"]
        assert issue["reason"].startswith("id mapped to a UUID"), issue
        assert issue["records"] == LANCE_NAMESPACES[ns["source"]]
    assert stores.qdrant.collections == {}  # the plan wrote nothing

    imported = _import(stores, snap, stores.qdrant_url)
    assert imported["imported_count"] == 150
    checked = _verify(stores, snap, stores.qdrant_url, "--source", source)
    assert checked["source_count"] == checked["target_count"] == 150
    assert {ORIGINAL_ID_KEY} <= set(
        next(iter(stores.qdrant.stored_points("articles").values())).payload
    )


# -- 2 and 3. Pinecone -> Qdrant -> Pinecone --------------------------------------------

PINECONE_NAMESPACES = {"": 50, "us": 40, "eu-west": 30}
PINECONE_DIM = 16


def _pinecone_records(ns: str, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    records = []
    for i in range(n):
        k = 1 + i % 6
        records.append(
            {
                "id": f"{ns or 'main'}:sku-{i:03d}" + ("-é✓" if i % 7 == 0 else ""),
                "values": rng.standard_normal(PINECONE_DIM).astype(np.float32).tolist(),
                "sparseValues": {
                    "indices": sorted(rng.choice(50_000, size=k, replace=False).tolist()),
                    "values": rng.standard_normal(k).astype(np.float32).tolist(),
                },
                "metadata": {
                    "title": f"product {i} ({ns or 'default'})",
                    "price": round(float(rng.uniform(1, 500)), 2),
                    "in_stock": bool(i % 2),
                    "tags": ["a", f"t{i % 4}"],
                },
            }
        )
    return records


def _seed_pinecone(stores: Stores) -> dict[str, dict[str, dict[str, Any]]]:
    stores.pinecone.create_index("catalog", PINECONE_DIM, "dotproduct")
    rng = np.random.default_rng(2)
    seeded = {}
    for ns, n in PINECONE_NAMESPACES.items():
        records = _pinecone_records(ns, n, rng)
        stores.pinecone.upsert("catalog", records, namespace=ns)
        seeded[ns] = {r["id"]: r for r in records}
    return seeded


def _pinecone_to_qdrant(stores: Stores) -> dict[str, dict[str, dict[str, Any]]]:
    seeded = _seed_pinecone(stores)
    # the plan straight from the source: sparse kept, every string id mapped to a UUID
    plan = stores.vectra("plan", stores.pinecone_url, stores.qdrant_url)
    assert plan["source_kind"] == "provider" and plan["ok"] is True
    [idx] = plan["indexes"]
    assert idx["vectors"]["sparse"] == "kept"
    assert idx["vectors"]["dense"]["target_metric"] == "Dot"
    assert plan["records_with_issues"] == 0
    mapped = sum(i["records"] for ns in idx["namespaces"] for i in ns["issues"])
    assert mapped == plan["records"] == sum(PINECONE_NAMESPACES.values())
    assert stores.qdrant.collections == {}
    snap = stores.tmp / "from-pinecone"
    exported = stores.vectra("export", stores.pinecone_url, snap)
    namespaces = exported["indexes"]["catalog"]["namespaces"]
    assert {k: ns["rows"] for k, ns in namespaces.items()} == {
        ("__default__" if ns == "" else ns): n for ns, n in PINECONE_NAMESPACES.items()
    }
    _import(stores, snap, stores.qdrant_url)
    _verify(stores, snap, stores.qdrant_url, "--source", stores.pinecone_url)
    return seeded


def test_2_pinecone_to_qdrant(stores: Stores) -> None:
    seeded = _pinecone_to_qdrant(stores)
    points = stores.qdrant.stored_points("catalog")
    originals = {rid: rec for recs in seeded.values() for rid, rec in recs.items()}
    assert len(points) == len(originals)
    by_original = {p.payload[ORIGINAL_ID_KEY]: p for p in points.values()}
    assert set(by_original) == set(originals)  # every string id kept in the payload
    for rid, rec in originals.items():
        point = by_original[rid]
        assert uuid.UUID(str(point.id))  # Qdrant holds UUIDs ...
        sparse = point.vectors["sparse"]  # ... and the sparse values, exactly
        assert sparse.indices.tolist() == rec["sparseValues"]["indices"]
        expected = np.asarray(rec["sparseValues"]["values"], dtype=np.float32)
        assert np.array_equal(np.asarray(sparse.values, dtype=np.float32), expected)
        dense = np.asarray(point.vectors[""], dtype=np.float32)
        assert np.array_equal(dense, np.asarray(rec["values"], dtype=np.float32))
        user_payload = {k: v for k, v in point.payload.items() if not k.startswith("_vectra")}
        assert user_payload == rec["metadata"]


def test_3_qdrant_back_to_pinecone(stores: Stores) -> None:
    seeded = _pinecone_to_qdrant(stores)
    snap = stores.tmp / "from-qdrant"
    exported = stores.vectra("export", stores.qdrant_url, snap)
    assert exported["indexes"]["catalog"]["metric"] == "dot"
    _import(stores, snap, stores.pinecone_url, "--index", "catalog=catalog-back")
    created = stores.pinecone.indexes["catalog-back"]
    assert (created.metric, created.dimension) == ("dotproduct", PINECONE_DIM)
    _verify(stores, snap, stores.pinecone_url, "--index", "catalog=catalog-back")
    for ns, originals in seeded.items():
        back = stores.pinecone.records("catalog-back", ns)
        assert set(back) == set(originals)  # the original ids, not the UUIDs
        for rid, rec in originals.items():
            got = back[rid]
            assert np.array_equal(got.values, np.asarray(rec["values"], dtype=np.float32))
            assert got.sparse is not None
            assert got.sparse[0] == rec["sparseValues"]["indices"]
            expected = np.asarray(rec["sparseValues"]["values"], dtype=np.float32)
            assert np.array_equal(got.sparse[1], expected)
            assert got.metadata == rec["metadata"]


# -- 4. Weaviate -> Qdrant -> Weaviate ----------------------------------------------------

TENANTS = {"tenantA": 45, "tenantB": 35}
WEAVIATE_DIM = 24


def _seed_weaviate(stores: Stores) -> None:
    """A class created by the user (not by vectra): multi-tenant, typed properties."""
    w = stores.weaviate
    w.create_class(
        {
            "class": "Article",
            "vectorizer": "none",
            "vectorIndexConfig": {"distance": "cosine"},
            "multiTenancyConfig": {"enabled": True},
            "properties": [
                {"name": "title", "dataType": ["text"]},
                {"name": "year", "dataType": ["int"]},
                {"name": "score", "dataType": ["number"]},
                {"name": "published", "dataType": ["boolean"]},
                {"name": "tags", "dataType": ["text[]"]},
            ],
        }
    )
    w.add_tenants("Article", list(TENANTS))
    rng = np.random.default_rng(4)
    for tenant, n in TENANTS.items():
        objects = [
            {
                "class": "Article",
                "id": str(uuid.UUID(int=int(rng.integers(2**62)) << 64 | i, version=4)),
                "tenant": tenant,
                "vector": rng.standard_normal(WEAVIATE_DIM).astype(np.float32).tolist(),
                "properties": {
                    "title": f"{tenant} article {i}: ünïcode ✓",
                    "year": 1990 + i,
                    "score": i + 0.25,
                    "published": i % 3 == 0,
                    "tags": ["news", f"t{i % 5}"],
                },
            }
            for i in range(n)
        ]
        results = w.add_objects(objects)
        assert all(not (r.get("result") or {}).get("errors") for r in results), results


def test_4_weaviate_to_qdrant_and_back(stores: Stores) -> None:
    _seed_weaviate(stores)
    snap = stores.tmp / "from-weaviate"
    exported = stores.vectra("export", stores.weaviate_url, snap)
    assert {k: ns["rows"] for k, ns in exported["indexes"]["Article"]["namespaces"].items()} == (
        TENANTS
    )
    _import(stores, snap, stores.qdrant_url)
    _verify(stores, snap, stores.qdrant_url, "--source", stores.weaviate_url)

    snap2 = stores.tmp / "from-qdrant"
    stores.vectra("export", stores.qdrant_url, snap2)
    _import(stores, snap2, stores.weaviate_url, "--index", "Article=ArticleCopy")
    _verify(stores, snap2, stores.weaviate_url, "--index", "Article=ArticleCopy")

    with stores.client(stores.weaviate_url) as client:
        provider = client.backend
        assert set(provider.list_namespaces("ArticleCopy")) == set(TENANTS)
        for tenant in TENANTS:
            original = _by_id(read_all(provider, "Article", tenant))
            copy = _by_id(read_all(provider, "ArticleCopy", tenant))
            assert list(copy) == list(original)  # the same UUIDs
            assert len(original) == TENANTS[tenant]
            for rid, rec in original.items():
                assert rec["metadata"]["title"].startswith(tenant), rec
                assert copy[rid]["metadata"] == rec["metadata"], rid
                # Qdrant normalises cosine vectors: the direction is what is kept
                assert np.allclose(_unit(copy[rid]["values"]), _unit(rec["values"]), atol=1e-6)


# -- 5. vectra plan on lossy cases --------------------------------------------------------


def _lossy_snapshot(path: Path) -> dict[str, int]:
    """Index ``docs`` (cosine, string ids) with metadata Pinecone cannot store as it is, and
    index ``distances`` (manhattan). Returns the expected refusals per reason kind."""
    src = MemoryProvider()
    docs = IndexSpec("docs", 8, "cosine")
    src.create_index(docs)
    rng = np.random.default_rng(5)
    records = []
    kinds = {"nested": 0, "null": 0, "big_int": 0, "clean": 0}
    for i in range(40):
        meta: dict[str, Any] = {"title": f"doc {i}", "n": float(i)}
        kind = ("nested", "null", "big_int", "clean")[i % 4]
        if kind == "nested":
            meta["author"] = {"name": "Ada", "orcid": None}
        elif kind == "null":
            meta["deleted_at"] = None
        elif kind == "big_int":
            meta["snowflake"] = 2**53 + 1 + i
        kinds[kind] += 1
        values = rng.standard_normal(8).astype(np.float32)
        records.append({"id": f"doc-{i:02d}", "values": values, "metadata": meta})
    seed(src, docs, "", records[:30])
    seed(src, docs, "archive", records[30:])
    distances = IndexSpec("distances", 4, "manhattan")
    src.create_index(distances)
    seed(
        src,
        distances,
        "",
        [{"id": f"d{i}", "values": [1.0, 2.0, 3.0, float(i + 1)]} for i in range(5)],
    )
    vectra_io.export_snapshot(src, str(path))
    return kinds


def test_5_plan_lossy_cases(stores: Stores) -> None:
    snap = stores.tmp / "lossy"
    kinds = _lossy_snapshot(snap)
    with stores.client(stores.pinecone_url) as p, stores.client(stores.qdrant_url) as q:
        before = (p.backend.list_indexes(), q.backend.list_indexes())

    # Pinecone, on_lossy=error (the default): nested, null and big-int metadata refused
    plan = stores.vectra("plan", snap, stores.pinecone_url, code=4)
    assert plan["ok"] is False and plan["clean"] is False and plan["problems"] == 1
    indexes = {i["source_index"]: i for i in plan["indexes"]}
    docs, distances = indexes["docs"], indexes["distances"]
    assert docs["action"] == "create index" and docs["problems"] == []
    refused: dict[str, int] = {}
    for ns in docs["namespaces"]:
        for issue in ns["issues"]:
            if issue["reason"].startswith("refused:"):
                refused[issue["reason"]] = refused.get(issue["reason"], 0) + issue["records"]
                assert 1 <= len(issue["examples"]) <= 5
                assert all(e.startswith("doc-") for e in issue["examples"])
    by_field = {
        "author": "nested objects are not supported",
        "deleted_at": "null values are not supported",
        "snowflake": "beyond 2**53",
    }
    for fld, kind in zip(by_field, ("nested", "null", "big_int"), strict=True):
        [(reason, n)] = [(r, n) for r, n in refused.items() if f"field {fld!r}" in r]
        assert by_field[fld] in reason and n == kinds[kind], (reason, n)
    assert sum(refused.values()) == 30  # the 10 clean records are not among them
    assert plan["records_with_issues"] == 30 and plan["records"] == 45
    [problem] = distances["problems"]
    assert "manhattan" in problem and "cannot be expressed" in problem
    assert distances["vectors"]["dense"]["target_metric"] is None

    # the same snapshot against Qdrant: string ids reported as mapped to UUIDs, no problem
    plan = stores.vectra("plan", snap, stores.qdrant_url)
    assert plan["ok"] is True and plan["problems"] == 0
    assert plan["records_with_issues"] == 0 and plan["records"] == 45
    for idx in plan["indexes"]:
        for ns in idx["namespaces"]:
            assert [i["reason"].split(" (")[0] for i in ns["issues"]] == ["id mapped to a UUID"]
    distances = next(i for i in plan["indexes"] if i["source_index"] == "distances")
    assert distances["vectors"]["dense"]["target_metric"] == "Manhattan"

    # human output, a renamed index and --no-scan
    human = run_vectra(
        "plan", snap, stores.pinecone_url, "--index", "docs=docs-v2", "--no-scan", env=stores.env
    )
    assert human.code == 0, human  # index docs alone, records not checked: clean
    assert "Index docs -> docs-v2: create index" in human.stdout
    assert "Records not scanned (--no-scan)" in human.stdout
    assert "Plan clean: 40 records in 1 index" in human.stdout
    human = expect(run_vectra("plan", snap, stores.pinecone_url, env=stores.env), 4)
    assert "refused: metadata field 'author'" in human.stdout
    assert "Plan found 1 problem and 30 records with issues" in human.stdout
    assert PINECONE_KEY not in human.stdout + human.stderr

    missing = run_vectra("plan", snap, stores.qdrant_url, "--index", "nope", env=stores.env)
    expect(missing, 2)
    assert "no index 'nope'" in missing.stderr

    with stores.client(stores.pinecone_url) as p, stores.client(stores.qdrant_url) as q:
        assert (p.backend.list_indexes(), q.backend.list_indexes()) == before
    assert _writes(stores.pinecone) == [] and _writes(stores.qdrant) == []


# -- Pinecone's pre-flight agrees with its upsert ---------------------------------------------


@pytest.mark.parametrize("policy", ["error", "drop-field", "stringify"])
def test_pinecone_check_records_matches_upsert(
    pinecone_double: PineconeDouble, policy: str
) -> None:
    pinecone_double.create_index("pre", 4, "dotproduct")
    provider = PineconeProvider(
        pinecone_double.url.removeprefix("http://"), api_key="test-api-key", on_lossy=policy
    )
    spec = IndexSpec("pre", 4, "dot", sparse=True)
    records = [
        {"id": "flat", "values": [1, 2, 3, 4], "metadata": {"a": "x", "tags": ["p", "q"]}},
        {"id": "nested", "values": [1, 2, 3, 4], "metadata": {"a": {"b": 1}}},
        {"id": "null", "values": [1, 2, 3, 4], "metadata": {"a": None, "b": "kept"}},
        {"id": "big", "values": [1, 2, 3, 4], "metadata": {"a": 2**60}},
        {"id": "numbers", "values": [1, 2, 3, 4], "metadata": {"a": [1, 2]}},
        {"id": "huge", "values": [1, 2, 3, 4], "metadata": {"a": "x" * 50_000, "b": "y"}},
        {"id": "x" * 513, "values": [1, 2, 3, 4]},
        {
            "id": "sparse",
            "values": [1, 2, 3, 4],
            "sparse_values": {"indices": [3, 3], "values": [0.5, 0.5]},
        },
    ]
    batch = batch_from_records(spec, records)
    with provider:
        checked = provider.check_records(batch)
        assert pinecone_double.records("pre") == {}  # nothing sent
        assert provider.lossy_report["records_refused"] == 0  # nothing tallied
        refused = provider.upsert("pre", batch)
        stored = pinecone_double.records("pre")
    predicted = {rid for rid, why in checked.items() if why.startswith("refused:")}
    assert predicted == set(refused)
    changed = {rid for rid, why in checked.items() if why.startswith("changed")}
    assert changed == {rid for rid in stored if stored[rid].metadata != _meta(records, rid)}
    assert len(changed) == provider.lossy_report["records_changed"]
    assert "flat" not in checked and "flat" in stored
    assert {"x" * 513, "sparse"} <= predicted
    if policy == "error":
        assert changed == set()
        assert "'a': nested objects are not supported" in checked["nested"]
    if policy == "stringify":
        assert (
            checked["null"] == "changed (on_lossy=stringify): metadata fields dropped: 'a' (null)"
        )
        assert "huge" in predicted  # oversize metadata: only drop-field writes it
    if policy == "drop-field":
        assert "stringified" not in " ".join(checked.values())
        assert "huge" in changed


def _meta(records: list[dict[str, Any]], rid: str) -> Any:
    meta = next(r for r in records if r["id"] == rid).get("metadata")
    return {k: float(v) if isinstance(v, int) else v for k, v in meta.items()} if meta else None
