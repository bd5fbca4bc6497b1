"""The CLI round trip for each provider pair, through a snapshot on local disk and on S3.

For each pair (lancedb -> pgvector, pgvector -> chroma, chroma -> milvus, milvus -> lancedb)
and each snapshot location (a tmp dir; ``s3://bucket/prefix`` on the moto server, its
endpoint and keys in the standard ``AWS_*`` variables, or for one pair given with
``--storage-option`` instead), the source is seeded through the Python API and the real
``vectra`` executable runs ``export``, ``validate``, ``import`` and ``verify``. Then every
record of both stores is read back through the vectra_io providers and compared: ids,
vectors (bit for bit, or within a few float32 ulps where the target declares
``exact_floats=False``: Chroma's cosine collections) and metadata (JSON-equal, with
``True``, ``1`` and ``1.0`` told apart).

The metadata is flat (strings, ints, floats, bools, non-empty lists of strings): what every
store of the chain holds exactly (Chroma refuses nested objects, nulls and mixed lists).
Floats have at most 15 significant digits: the Chroma 1.5 server stores some longer ones
1 ulp off (its log crate parses JSON with serde_json without ``float_roundtrip``, fixed
upstream in chroma-core/chroma#7755); vectra's chroma provider sees that when it reads the
batch back and refuses those records by id, so the import would exit with 3. Ids are unique
across the namespaces of an index (a Milvus primary key is unique across a collection's
partitions).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tests.cli.helpers import VECTRA, Result, expect, run_vectra
from vectra_io import Client
from vectra_io.engine.retry import RetryPolicy
from vectra_io.errors import IndexNotFoundError
from vectra_io.providers.base import IndexSpec, Provider
from vectra_io.records import ID, METADATA, VALUES, dense_matrix, record_schema

DIM = 64
METRIC = "cosine"
#: records per namespace ("" is the default namespace): 3,000 in all
NAMESPACES = {"": 1000, "tenant-eu": 1200, "tenant_us": 800}
SAMPLE = 200
#: Chroma's cosine collections store vectors normalised and scale them back (measured: <= 2)
MAX_ULPS = 4

PAIRS = [
    ("lancedb", "pgvector"),
    ("pgvector", "chroma"),
    ("chroma", "milvus"),
    ("milvus", "lancedb"),
]
STORAGE_OPTIONS_PAIR = ("milvus", "lancedb")  # its S3 snapshot goes through --storage-option
DRIVERS = {"lancedb": "lancedb", "pgvector": "psycopg", "milvus": "pymilvus"}
SERVERS = {"pgvector": "postgres_server", "chroma": "chroma_server", "milvus": "milvus_server"}

CASES = [
    pytest.param(src, dst, location, id=f"{src}-{dst}-{location}")
    for src, dst in PAIRS
    for location in ("local", "s3-options" if (src, dst) == STORAGE_OPTIONS_PAIR else "s3-env")
]


@pytest.fixture(scope="module", autouse=True)
def _vectra_installed() -> None:
    if not VECTRA.exists():
        pytest.fail(f"{VECTRA} not found: install the package (pip install -e .)", pytrace=False)


# -- stores ----------------------------------------------------------------------------------


def store_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path, role: str) -> str:
    """The URL of a fresh store of provider ``kind`` (its server started if needed)."""
    if kind in DRIVERS:
        pytest.importorskip(DRIVERS[kind])
    if kind == "lancedb":
        return f"lancedb://{tmp_path / f'{role}.lancedb'}"  # tmp_path is absolute: lancedb:///
    server = request.getfixturevalue(SERVERS[kind])
    if kind == "pgvector":
        return f"pgvector://{server.user}@{server.host}:{server.port}/{server.dbname}"
    return f"{kind}://{server.host}:{server.port}"


@dataclass
class Snapshot:
    url: str
    files: Callable[[], list[str]]  # the snapshot's files, relative to url, read directly
    args: list[str] = field(default_factory=list)  # --storage-option KEY=VALUE ...
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def snapshot(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Snapshot]:
    location: str = request.node.callspec.params["location"]
    if location == "local":
        root = tmp_path / "snapshot"

        def on_disk() -> list[str]:
            return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

        yield Snapshot(str(root), on_disk)
        return
    pytest.importorskip("s3fs")
    server = request.getfixturevalue("s3_server")
    bucket = server.make_bucket(f"vectra-pairs-{uuid.uuid4().hex[:12]}")
    url = f"s3://{bucket}/snapshots/{request.node.callspec.id}"
    prefix = url.removeprefix("s3://")

    def on_s3() -> list[str]:
        return sorted(k.removeprefix(f"{prefix}/") for k in server.filesystem().find(prefix))

    if location == "s3-env":
        yield Snapshot(url, on_s3, env=server.env())
    else:
        # only the options reach the snapshot's filesystem: no AWS_* from this process
        for name in (*server.env(), "AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        options = {
            "endpoint_url": server.endpoint_url,
            "key": server.access_key,
            "secret": server.secret_key,
        }
        args = [a for k, v in options.items() for a in ("--storage-option", f"{k}={v}")]
        yield Snapshot(url, on_s3, args=args)
    with contextlib.suppress(Exception):
        server.filesystem().rm(bucket, recursive=True)


def delete_index(url: str, index: str) -> None:
    with contextlib.suppress(IndexNotFoundError), Client(url=url) as client:
        client.delete_index(index)


# -- data ------------------------------------------------------------------------------------

CATEGORIES = ["electronics", "books", "garden", "toys", "grocery", "sports"]
WORDS = ["new", "sale", "eco", "premium", "refurbished", "bundle", "gift", "limited"]


def make_records(namespace: str, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Products with flat metadata every provider of the chain holds exactly."""
    label = namespace or "main"
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    out = []
    for i in range(n):
        tags = [WORDS[j] for j in sorted(rng.choice(len(WORDS), 1 + i % 3, replace=False))]
        metadata: dict[str, Any] = {
            "title": f"{label} product {i}: Größe M — 商品 ✓",
            "category": CATEGORIES[i % len(CATEGORIES)],
            "sku": f"SKU-{label.upper()}-{i:06d}",
            "year": 1990 + i % 35,
            "stock": int(rng.integers(-50, 10_000)),
            "views": int(rng.integers(0, 2**53)),
            "price": round(float(rng.uniform(0.5, 999.0)), 2),
            # at most 15 significant digits: Chroma 1.5 parses longer floats 1 ulp off
            # (serde_json without float_roundtrip), and vectra's chroma provider then
            # refuses the record rather than store another value (module docstring)
            "rating": round(float(rng.random() * 5), 6),
            "score": round(float(rng.standard_normal()), 12),
            "discount": float(i % 4) / 4,  # 0.0, 0.25, 0.5, 0.75: 0.0 stays a float
            "in_stock": bool(i % 3),
            "featured": i % 17 == 0,
            "tags": tags,
        }
        out.append({"id": f"{label}-{i:05d}", "values": vectors[i], "metadata": metadata})
    return out


def seed(url: str, index: str, seed_value: int) -> dict[str, list[str]]:
    """Create ``index`` at ``url`` and write the records; return the ids per namespace.

    Load first, index later (what an import does): pgvector builds its HNSW index in
    ``finalize_index``, several times faster than inserting into an existing one.
    """
    rng = np.random.default_rng(seed_value)
    ids: dict[str, list[str]] = {}
    with Client(url=url) as client:
        client.backend.create_index(IndexSpec(index, DIM, METRIC))
        for namespace, n in NAMESPACES.items():
            records = make_records(namespace, n, rng)
            for start in range(0, n, 1000):
                result = client.upsert(index, records[start : start + 1000], namespace or None)
                assert result["errors"] == {}, result["errors"]
            ids[namespace] = sorted(r["id"] for r in records)
        finalize = getattr(client.backend, "finalize_index", None)
        if finalize is not None:
            finalize(index)
    return ids


# -- comparison ------------------------------------------------------------------------------


def read_all(provider: Provider, index: str, namespace: str) -> pa.Table:
    """Every record of a namespace, sorted by id."""
    spec = provider.describe_index(index)
    pages = list(provider.scan(index, namespace, batch_size=1000))
    failures = {k: v for page in pages for k, v in page.failures.items()}
    assert not failures, f"{provider.name} could not read {index}/{namespace}: {failures}"
    batches = [page.batch for page in pages]
    return pa.Table.from_batches(batches, schema=record_schema(spec)).sort_by(ID)


def typed(value: Any) -> Any:
    """A JSON value with the type of every scalar attached (``True``, ``1``, ``1.0`` differ)."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float32 units in the last place, element-wise (-0.0 and 0.0 are 0 apart)."""
    ia = a.view(np.int32).astype(np.int64)
    ib = b.view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, np.int64(-(2**31)) - ia, ia)  # monotonic over the float order
    ib = np.where(ib < 0, np.int64(-(2**31)) - ib, ib)
    return np.abs(ia - ib)


def assert_same_records(
    source: Provider, target: Provider, index: str, namespace: str, want_ids: list[str]
) -> None:
    a = read_all(source, index, namespace)
    b = read_all(target, index, namespace)
    where = f"{index}/{namespace or '__default__'}"
    assert a.column(ID).to_pylist() == want_ids, f"{where}: source ids differ from the seeded"
    assert b.column(ID).to_pylist() == want_ids, f"{where}: target ids differ from the source"

    va, vb = a.column(VALUES), b.column(VALUES)
    assert va.null_count == 0 and vb.null_count == 0, where
    ma, mb = dense_matrix(va), dense_matrix(vb)
    if target.capabilities.exact_floats:
        differ = np.flatnonzero((ma.view(np.uint32) != mb.view(np.uint32)).any(axis=1))
        assert differ.size == 0, (
            f"{where}: {differ.size} vectors differ bit-wise, e.g. {b.column(ID)[differ[0]]}"
        )
    else:
        distance = ulps(ma, mb)
        assert distance.max() <= MAX_ULPS, (
            f"{where}: vectors differ by up to {distance.max()} ulps (allowed {MAX_ULPS}), "
            f"e.g. {b.column(ID)[int(np.argmax(distance.max(axis=1)))]}"
        )

    meta_a = a.column(METADATA).to_pylist()
    meta_b = b.column(METADATA).to_pylist()
    bad = [
        (rid, x, y)
        for rid, x, y in zip(want_ids, meta_a, meta_b, strict=True)
        if x is None or y is None or typed(json.loads(x)) != typed(json.loads(y))
    ]
    assert not bad, f"{where}: {len(bad)} metadata differ, e.g. {bad[0]}"


# -- the round trip --------------------------------------------------------------------------


def run(snap: Snapshot, *args: str, env: dict[str, str]) -> Result:
    return run_vectra(*args, *snap.args, env={**env, **snap.env}, timeout=240)


@pytest.mark.parametrize(("source_kind", "target_kind", "location"), CASES)
def test_cli_round_trip(
    source_kind: str,
    target_kind: str,
    location: str,
    snapshot: Snapshot,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    source_url = store_url(source_kind, request, tmp_path, "source")
    target_url = store_url(target_kind, request, tmp_path, "target")
    index = f"pairs_{source_kind[:2]}{target_kind[:2]}_{uuid.uuid4().hex[:10]}"
    request.addfinalizer(lambda: delete_index(source_url, index))
    request.addfinalizer(lambda: delete_index(target_url, index))
    env = {"VECTRA_STATE_DIR": str(tmp_path / "vectra-state")}

    seeded = seed(source_url, index, seed_value=sum(map(ord, f"{source_kind}{target_kind}")))
    rows = {ns or "__default__": n for ns, n in NAMESPACES.items()}
    total = sum(NAMESPACES.values())

    # --index: the servers are shared by the whole session, other tests' indexes stay out
    snap = snapshot
    manifest = expect(
        run(snap, "export", source_url, snap.url, "--index", index, "--json", env=env), 0
    ).json
    assert manifest["complete"] is True
    assert manifest["errors"] == []
    assert list(manifest["indexes"]) == [index]
    entry = manifest["indexes"][index]
    assert entry["dimension"] == DIM and entry["metric"] == METRIC
    assert {ns: e["rows"] for ns, e in entry["namespaces"].items()} == rows
    parts = [p["path"] for e in entry["namespaces"].values() for p in e["parts"]]
    assert snap.files() == sorted(["manifest.json", *parts])  # where the snapshot was asked
    assert len(parts) == len(NAMESPACES)

    valid = expect(run(snap, "validate", snap.url, "--json", env=env), 0).json
    assert valid["valid"] is True
    assert valid["rows_checked"] == total

    imported = expect(run(snap, "import", snap.url, target_url, "--json", env=env), 0).json
    assert imported["imported_count"] == total
    assert imported["failed_count"] == 0
    assert imported["errors"] == []
    assert imported["state_file"].startswith(env["VECTRA_STATE_DIR"])

    verify_args = ("--source", source_url, "--sample", str(SAMPLE), "--json")
    verified = expect(run(snap, "verify", snap.url, target_url, *verify_args, env=env), 0).json
    assert verified["match"] is True, verified
    assert verified["manifest_count"] == verified["source_count"] == total
    assert verified["target_count"] == total
    by_ns = {r["target_namespace"]: r for r in verified["namespaces"]}
    assert set(by_ns) == set(NAMESPACES)
    for ns, n in NAMESPACES.items():
        row = by_ns[ns]
        assert row["target_index"] == index
        assert row["manifest_count"] == row["source_count"] == row["target_count"] == n, row
        assert row["sample_checked"] == SAMPLE, row
        assert row["sample_mismatches"] == [] and row["reasons"] == [], row

    # a fresh connection from this process: a transient refusal is retried like the engine does
    connect = RetryPolicy(max_attempts=5).call
    with (
        connect(lambda: Client(url=source_url)) as src,
        connect(lambda: Client(url=target_url)) as dst,
    ):
        source, target = src.backend, dst.backend
        assert sorted(target.list_namespaces(index)) == sorted(NAMESPACES)
        spec = target.describe_index(index)
        assert (spec.dimension, spec.metric) == (DIM, METRIC)
        for ns, n in NAMESPACES.items():
            assert source.count(index, ns) == target.count(index, ns) == n
            assert_same_records(source, target, index, ns, seeded[ns])
