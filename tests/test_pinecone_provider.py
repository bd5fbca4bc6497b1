"""Pinecone-specific behaviour of the ``pinecone://`` provider (the generic contract is checked
by ``tests/conformance`` through ``harness_pinecone.py``).

Runs against the spec-validating Pinecone double (``tests/doubles/pinecone.py``): every
request and answer is checked against the official 2026-04 OpenAPI documents, and a
violation fails the test at teardown.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest

import vectra_io
from tests.doubles.pinecone import PineconeDouble
from vectra_io.engine.progress import Progress
from vectra_io.engine.retry import RetryPolicy
from vectra_io.engine.writer import UpsertPool, WriteTask
from vectra_io.errors import (
    AuthError,
    ConfigError,
    IncompatibleIndexError,
    IndexNotFoundError,
    RetryableError,
    UnsupportedError,
)
from vectra_io.providers.base import DEFAULT_NAMESPACE, IndexSpec
from vectra_io.providers.memory import MemoryProvider
from vectra_io.providers.pinecone import (
    MAX_REQUEST_BYTES,
    PineconeProvider,
    fetch_groups,
    parse_location,
)
from vectra_io.providers.registry import open_provider
from vectra_io.records import batch_from_records, loads_metadata, records_from_batch

pytest_plugins = ["tests.doubles.fixtures"]

KEY = "test-api-key"
DIM = 8
SPECIAL = np.array([-0.0, 1e-45, -1e-45, 1.1754942e-38, 3.4e38, -3.4e38, 1.0, 0.1], np.float32)
AWKWARD_IDS = [
    "doc#1",
    "a/b?c=d&e",
    "100%+plus",
    "ünï😀",
    'quote"back\\slash',
    "tab\tx",
    "x" * 512,
]


def fast_retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=6, max_elapsed=30.0, base_delay=0.01, max_delay=0.2)


def location(d: PineconeDouble) -> str:
    return d.url.removeprefix("http://")


@pytest.fixture
def double(pinecone_double: PineconeDouble) -> PineconeDouble:
    return pinecone_double


@pytest.fixture
def provider(double: PineconeDouble) -> Iterator[PineconeProvider]:
    p = PineconeProvider(location(double), api_key=KEY, ready_poll=0.01)
    yield p
    p.close()


def open_pc(d: PineconeDouble, **options: Any) -> PineconeProvider:
    options.setdefault("ready_poll", 0.01)
    return PineconeProvider(location(d), api_key=KEY, **options)


def vec(seed: int, dim: int = DIM) -> list[float]:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32).tolist()


def seed_records(
    d: PineconeDouble, index: str, namespace: str, ids: list[str], *, sparse: bool = False
) -> None:
    rows = []
    for i, rid in enumerate(ids):
        row: dict[str, Any] = {"id": rid, "values": vec(i), "metadata": {"i": i, "tag": [rid]}}
        if sparse:
            row["sparseValues"] = {"indices": [i, 1000 + i], "values": [0.5, -1.25]}
        rows.append(row)
    for start in range(0, len(rows), 500):
        d.upsert(index, rows[start : start + 500], namespace)


def operations(d: PineconeDouble, op: str) -> list[Any]:
    return [r for r in d.requests if r.operation == op]


class BodySizes:
    """Records (rows, bytes) of every upsert request the provider's httpx client sends."""

    def __init__(self, p: PineconeProvider) -> None:
        self.sizes: list[tuple[int, int]] = []
        self._lock = threading.Lock()
        p._client.event_hooks = {"request": [self._hook], "response": []}

    def _hook(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/vectors/upsert"):
            body = request.content
            rows = len(json.loads(body)["vectors"])
            with self._lock:
                self.sizes.append((rows, len(body)))


# -- URLs, options, secrets --------------------------------------------------------------
def test_location_forms() -> None:
    real = parse_location("", False)
    assert (real.base_url, real.https) == ("https://api.pinecone.io", True)
    assert parse_location("api.pinecone.io", False).base_url == "https://api.pinecone.io"
    assert parse_location("127.0.0.1:9000", False).base_url == "http://127.0.0.1:9000"
    assert parse_location("127.0.0.1:9000/", True).base_url == "https://127.0.0.1:9000"
    opts = parse_location("?ids_from=/tmp/ids.txt&on_lossy=stringify", False)
    assert opts.base_url == "https://api.pinecone.io"
    assert opts.options == {"ids_from": "/tmp/ids.txt", "on_lossy": "stringify"}
    with pytest.raises(ConfigError, match="credentials"):
        parse_location("secret-key@api.pinecone.io", False)
    with pytest.raises(ConfigError, match="path"):
        parse_location("h:1/some/path", False)


def test_open_provider_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINECONE_API_KEY", "sk-from-env-123")
    p = open_provider("pinecone://")
    assert p.endpoint == "pinecone://api.pinecone.io"
    assert "sk-from-env-123" not in repr(p) and "sk-from-env-123" not in p.endpoint
    p.close()
    ids = tmp_path / "ids.txt"
    ids.write_text("a\nb\n")
    p = open_provider(f"pinecone+https://10.0.0.1:8443?ids_from={ids}&on_lossy=drop_field")
    assert isinstance(p, PineconeProvider)
    assert p.endpoint == "pinecone+https://10.0.0.1:8443" and p.on_lossy == "drop-field"
    p.close()
    with pytest.raises(ConfigError, match="unknown options"):
        open_provider("pinecone://?color=blue")
    with pytest.raises(ConfigError, match="on_lossy"):
        open_provider("pinecone://", on_lossy="maybe")
    with pytest.raises(ConfigError, match="differs"):
        open_provider("pinecone://?on_lossy=error", on_lossy="stringify")
    with pytest.raises(ConfigError, match="not found"):
        open_provider("pinecone://", ids_from=str(tmp_path / "nope.txt"))


def test_headers_and_index_host_discovery(double: PineconeDouble) -> None:
    double.create_index("hosts", DIM, "cosine")
    seed_records(double, "hosts", "", ["a", "b"])
    for with_scheme in (False, True):
        double.host_with_scheme = with_scheme
        p = open_pc(double)
        seen: list[httpx.Request] = []
        p._client.event_hooks = {"request": [seen.append], "response": []}
        try:
            assert sorted(r["id"] for r in records_from_batch(p.fetch("hosts", ["a", "b"]))) == [
                "a",
                "b",
            ]
        finally:
            p.close()
        assert seen[0].url.path == "/indexes/hosts"  # discovered on the control plane
        data = seen[-1]
        assert f"{data.url.host}:{data.url.port}" == double.index_host("hosts")
        assert data.url.scheme == "http"  # http control plane -> http index host
        assert data.headers["Api-Key"] == KEY
        assert data.headers["X-Pinecone-Api-Version"] == "2026-04"
    double.host_with_scheme = False


def test_bad_api_key_is_auth_error_without_the_key(double: PineconeDouble) -> None:
    secret = "sk-very-secret-0123456789"
    p = PineconeProvider(location(double), api_key=secret)
    try:
        with pytest.raises(AuthError) as info:
            p.list_indexes()
        text = f"{info.value} {info.value!r} {p!r} {p.endpoint}"
        assert secret not in text
        assert "401" in str(info.value) or "API key" in str(info.value)
    finally:
        p.close()
    with pytest.raises(ConfigError) as bad:
        PineconeProvider(location(double), api_key="sk-with space\n")
    assert "sk-with" not in str(bad.value)
    anonymous = PineconeProvider(location(double))
    try:
        with pytest.raises(AuthError, match="PINECONE_API_KEY"):
            anonymous.list_indexes()
    finally:
        anonymous.close()
    assert not any(r.operation == "list_indexes" and r.status == 200 for r in double.requests)


def test_error_translation(double: PineconeDouble, provider: PineconeProvider) -> None:
    with pytest.raises(IndexNotFoundError):
        provider.describe_index("missing")
    double.create_index("errs", DIM, "cosine")
    double.faults.operations = {"describeIndexStats"}
    double.faults.retry_after = 2.5
    double.faults.fail_next(1, 429)
    with pytest.raises(RetryableError) as info:
        provider.count("errs")
    assert info.value.retry_after == 2.5 and info.value.status == 429
    double.faults.fail_next(1, 503)
    with pytest.raises(RetryableError) as info:
        provider.count("errs")
    assert info.value.retry_after is None and info.value.status == 503
    double.faults.reset()
    assert provider.count("errs") == 0
    dead = PineconeProvider("127.0.0.1:9", api_key=KEY)  # nothing listens on the discard port
    try:
        with pytest.raises(RetryableError):
            dead.list_indexes()
    finally:
        dead.close()


# -- export / import ---------------------------------------------------------------------
def test_namespaces_sparse_awkward_ids_export_import_exact(
    double: PineconeDouble, provider: PineconeProvider, tmp_path: Path
) -> None:
    spec = IndexSpec("hybrid", DIM, "dot", sparse=True)
    provider.create_index(spec)
    assert provider.describe_index("hybrid").sparse
    sizes = {DEFAULT_NAMESPACE: 130, "alpha": 45, "beta/β": 7}
    written: dict[str, pa.RecordBatch] = {}
    for k, (ns, n) in enumerate(sizes.items()):
        ids = [f"{ns or 'default'}-{i:04d}" for i in range(n)]
        if ns == "alpha":
            ids[: len(AWKWARD_IDS)] = AWKWARD_IDS
        rng = np.random.default_rng(k)
        dense = rng.standard_normal((n, DIM)).astype(np.float32)
        dense[0] = SPECIAL
        rows = []
        for i, rid in enumerate(ids):
            sv = {"indices": [i, 70_000, 4_000_000_000], "values": [0.5, 1e-45, 3.4e38]}
            meta = None if i % 5 == 0 else {"ns": ns, "i": i, "ok": True, "tags": ["x", "ü"]}
            rows.append(
                {
                    "id": rid,
                    "values": dense[i],
                    "sparse_values": sv if i % 3 else None,
                    "metadata": meta,
                }
            )
        written[ns] = batch_from_records(spec, rows)
        for start in range(0, n, 60):
            assert provider.upsert("hybrid", written[ns].slice(start, 60), ns) == {}
    assert provider.list_namespaces("hybrid") == sorted(sizes)

    snapshot = str(tmp_path / "snap")
    manifest = vectra_io.export_snapshot(
        provider, snapshot, indexes=["hybrid"], batch_size=40, retry=fast_retry()
    )
    assert manifest["errors"] == []
    memory = MemoryProvider()
    result = vectra_io.import_snapshot(snapshot, memory, chunk_size=50, retry=fast_retry())
    assert result["failed_count"] == 0 and result["imported_count"] == sum(sizes.values())
    copy = memory.describe_index("hybrid")
    assert (copy.dimension, copy.metric, copy.sparse) == (DIM, "dot", True)
    for ns, batch in written.items():
        got = memory.fetch("hybrid", batch.column("id").to_pylist(), ns)
        want = {r["id"]: r for r in records_from_batch(batch)}
        have = {r["id"]: r for r in records_from_batch(got)}
        assert want.keys() == have.keys()
        for rid, w in want.items():
            h = have[rid]
            a = np.asarray(w["values"], np.float32).view(np.uint32)
            b = np.asarray(h["values"], np.float32).view(np.uint32)
            assert (a == b).all(), rid
            assert (w.get("sparse_values") is None) == (h.get("sparse_values") is None), rid
            if w.get("sparse_values"):
                ws, hs = w["sparse_values"], h["sparse_values"]
                assert ws["indices"] == hs["indices"]
                assert (
                    np.asarray(ws["values"], np.float32).view(np.uint32)
                    == np.asarray(hs["values"], np.float32).view(np.uint32)
                ).all()
            assert vectra_io.records.json_equal(w["metadata"], h["metadata"]), rid
    # fetch GETs are URL-encoded and bounded
    fetches = operations(double, "fetchVectors")
    assert fetches and all(len(r.path) < 8000 for r in fetches)


def test_fetch_groups_bound_ids_and_url_length() -> None:
    ids = [f"id-{i}" for i in range(250)]
    assert [len(g) for g in fetch_groups(ids, 100)] == [100, 100, 50]
    long_ids = ["é" * 500 for _ in range(5)]  # 3,000 encoded chars each
    groups = fetch_groups(long_ids, 100)
    assert all(len(g) <= 2 for g in groups) and sum(map(len, groups)) == 5


def test_ids_with_spaces_use_query_or_are_reported(
    double: PineconeDouble, provider: PineconeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    double.create_index("spaces", 2, "dotproduct")
    big = [{"id": f"big-{i:03d}", "values": [float(10 + i), 0.0]} for i in range(120)]
    double.upsert("spaces", big)
    double.upsert(
        "spaces",
        [
            {"id": "has space", "values": [0.0, 5.0], "metadata": {"k": "v"}},
            {"id": "lost one", "values": [0.001, 0.0]},  # 120 records outrank it by id-query
        ],
    )
    got = provider.fetch("spaces", ["has space", "big-001", "nope here"])
    assert got.column("id").to_pylist() == ["has space", "big-001"]  # in the order asked
    assert loads_metadata(got.column("metadata")[0].as_py()) == {"k": "v"}
    assert got.column("values")[0].as_py() == [0.0, 5.0]
    assert operations(double, "queryVectors")  # read through a query by id
    with caplog.at_level(logging.ERROR, logger="vectra_io.providers.pinecone"):
        pages = list(provider.scan("spaces", batch_size=50))
    ids = [rid for p in pages for rid in p.batch.column("id").to_pylist()]
    assert "has space" in ids and "lost one" not in ids and len(ids) == 121
    report = provider.scan_report["unexportable"]["spaces"][""]
    assert report == {"count": 1, "ids": ["lost one"]}
    assert "could not be exported" in caplog.text and "lost one" in caplog.text


def test_pod_index_scan_refused_then_ids_from(
    double: PineconeDouble, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pod = {"pod": {"environment": "us-east1-gcp", "pod_type": "p1.x1"}}
    double.create_index("pods", DIM, "euclidean", spec=pod)
    seed_records(double, "pods", "", [f"p{i}" for i in range(25)])
    seed_records(double, "pods", "ns2", ["q0", "q1"])
    p = open_pc(double)
    try:
        assert p.list_namespaces("pods") == ["", "ns2"]
        with pytest.raises(UnsupportedError) as info:
            list(p.scan("pods"))
        assert "--ids-from" in str(info.value) and "ids_from" in str(info.value)
        with pytest.raises(UnsupportedError, match="--ids-from"):
            vectra_io.export_snapshot(p, str(tmp_path / "refused"), retry=fast_retry())
    finally:
        p.close()
    assert not operations(double, "listVectors")  # never tried to enumerate some other way

    ids_file = tmp_path / "ids.txt"
    wanted = [f"p{i}" for i in range(25)] + ["q0", "ghost-1", "ghost-2", "p3"]
    ids_file.write_text("\r\n".join(wanted) + "\n\n")
    url = f"pinecone://{location(double)}?ids_from={ids_file}"
    p2 = open_provider(url, api_key=KEY, ready_poll=0.01)
    assert isinstance(p2, PineconeProvider)
    try:
        with caplog.at_level(logging.WARNING, logger="vectra_io.providers.pinecone"):
            manifest = vectra_io.export_snapshot(
                p2, str(tmp_path / "snap"), batch_size=10, retry=fast_retry()
            )
        missing = p2.scan_report["missing"]["pods"]
    finally:
        p2.close()
    assert manifest["errors"] == []
    assert missing[""]["count"] == 3 and set(missing[""]["ids"]) == {"q0", "ghost-1", "ghost-2"}
    assert missing["ns2"]["count"] == 27  # the file is read for every namespace
    assert "3 ids of the ids_from file were not found" in caplog.text
    memory = MemoryProvider()
    vectra_io.import_snapshot(str(tmp_path / "snap"), memory, retry=fast_retry())
    assert memory.count("pods", "") == 25 and memory.count("pods", "ns2") == 1

    # the cursor of an ids_from scan resumes, and belongs to its file
    p3 = open_pc(double, ids_from=str(ids_file))
    try:
        pages = list(p3.scan("pods", batch_size=10))
        assert [pg.batch.num_rows for pg in pages] == [10, 10, 5] and pages[-1].cursor is None
        rest = list(p3.scan("pods", batch_size=10, cursor=json.loads(json.dumps(pages[0].cursor))))
        assert sum(pg.batch.num_rows for pg in rest) == 15
        with pytest.raises(ConfigError, match="ids_from"):
            list(p3.scan("pods", cursor={"offset": 3, "ids": "other"}))
    finally:
        p3.close()


# -- lossy metadata ----------------------------------------------------------------------
LOSSY_ROWS: list[dict[str, Any]] = [
    {"id": "clean", "metadata": {"s": "x", "n": 1, "f": 0.5, "b": True, "l": ["a"]}},
    {"id": "null", "metadata": {"s": "x", "gone": None}},
    {"id": "nested", "metadata": {"s": "x", "obj": {"a": [1, {"b": None}]}}},
    {"id": "numbers", "metadata": {"nums": [1, 2.5, "three"]}},
    {"id": "big", "metadata": {"big": 2**53 + 1, "fine": 2**53}},
    {"id": "huge", "metadata": {"pad": "y" * 30_000, "pad2": "z" * 20_000}},
]


def lossy_batch() -> pa.RecordBatch:
    spec = IndexSpec("lossy", DIM, "cosine")
    rows = [{**r, "values": vec(i)} for i, r in enumerate(LOSSY_ROWS)]
    return batch_from_records(spec, rows)


def stored_metadata(d: PineconeDouble, index: str) -> dict[str, Any]:
    return {rid: rec.metadata for rid, rec in d.records(index).items()}


def test_on_lossy_error_refuses_naming_the_field(
    double: PineconeDouble, caplog: pytest.LogCaptureFixture
) -> None:
    p = open_pc(double)  # default policy: error
    try:
        p.create_index(IndexSpec("lossy", DIM, "cosine"))
        with caplog.at_level(logging.WARNING, logger="vectra_io.providers.pinecone"):
            refused = p.upsert("lossy", lossy_batch())
        report = p.lossy_report
    finally:
        p.close()
    assert set(refused) == {"null", "nested", "numbers", "big", "huge"}
    assert "'gone'" in refused["null"] and "null" in refused["null"]
    assert "'obj'" in refused["nested"] and "nested objects" in refused["nested"]
    assert "'nums'" in refused["numbers"] and "only strings" in refused["numbers"]
    assert "'big'" in refused["big"] and "2**53" in refused["big"]
    assert "bytes" in refused["huge"]
    assert all("on_lossy" in reason for reason in refused.values())
    assert set(double.records("lossy")) == {"clean"}
    assert stored_metadata(double, "lossy")["clean"] == {
        "s": "x",
        "n": 1.0,
        "f": 0.5,
        "b": True,
        "l": ["a"],
    }
    assert report["policy"] == "error" and report["records_refused"] == 5
    assert report["records_changed"] == 0
    assert "refused 5 records" in caplog.text


def test_on_lossy_drop_field_drops_and_reports(
    double: PineconeDouble, caplog: pytest.LogCaptureFixture
) -> None:
    p = open_pc(double, on_lossy="drop-field")
    try:
        p.create_index(IndexSpec("lossy", DIM, "cosine"))
        with caplog.at_level(logging.WARNING, logger="vectra_io.providers.pinecone"):
            assert p.upsert("lossy", lossy_batch()) == {}
        report = p.lossy_report
    finally:
        p.close()
    stored = stored_metadata(double, "lossy")
    assert stored["null"] == {"s": "x"}
    assert stored["nested"] == {"s": "x"}
    assert stored["numbers"] is None  # every field dropped: no metadata
    assert stored["big"] == {"fine": float(2**53)}
    assert stored["huge"] == {"pad2": "z" * 20_000}  # the largest field dropped until it fits
    assert report["records_changed"] == 5 and report["fields_dropped"] == 5
    assert report["fields_stringified"] == 0 and report["records_refused"] == 0
    assert report["by_kind"] == {
        "null": {"dropped": 1},
        "object": {"dropped": 1},
        "list": {"dropped": 1},
        "big_int": {"dropped": 1},
        "oversize": {"dropped": 1},
    }
    assert report["by_field"]["obj"] == {"dropped": 1} and report["by_field"]["pad"] == {
        "dropped": 1
    }
    assert "on_lossy=drop-field changed the metadata of 5 records" in caplog.text


def test_on_lossy_stringify_converts_and_reports(
    double: PineconeDouble, caplog: pytest.LogCaptureFixture
) -> None:
    p = open_pc(double, on_lossy="stringify")
    try:
        p.create_index(IndexSpec("lossy", DIM, "cosine"))
        with caplog.at_level(logging.WARNING, logger="vectra_io.providers.pinecone"):
            refused = p.upsert("lossy", lossy_batch())
        report = p.lossy_report
        got = {
            r["id"]: r["metadata"] for r in records_from_batch(p.fetch("lossy", ["nested", "big"]))
        }
    finally:
        p.close()
    assert set(refused) == {"huge"}  # stringify cannot shrink metadata beyond 40 KB
    stored = stored_metadata(double, "lossy")
    assert stored["null"] == {"s": "x"}  # nulls are dropped
    assert json.loads(stored["nested"]["obj"]) == {"a": [1, {"b": None}]}
    assert json.loads(stored["numbers"]["nums"]) == [1, 2.5, "three"]
    assert stored["big"] == {"big": str(2**53 + 1), "fine": float(2**53)}
    assert json.loads(got["nested"]["obj"]) == {"a": [1, {"b": None}]}
    assert report["records_changed"] == 4 and report["records_refused"] == 1
    assert report["fields_stringified"] == 3 and report["fields_dropped"] == 1
    assert report["by_kind"]["big_int"] == {"stringified": 1}
    assert report["by_kind"]["null"] == {"dropped": 1}
    assert "stringified object" in caplog.text


def test_record_refusals(double: PineconeDouble, provider: PineconeProvider) -> None:
    spec = IndexSpec("refuse", 3, "dot", sparse=True)
    provider.create_index(spec)
    rows: list[dict[str, Any]] = [
        {"id": "ok", "values": [1.0, 0.0, 0.0]},
        {"id": "zeros", "values": [0.0, -0.0, 0.0]},
        {"id": "x" * 513, "values": [1.0, 1.0, 1.0]},
        {"id": "", "values": [1.0, 1.0, 1.0]},
        {
            "id": "sparse-big",
            "values": [1.0, 2.0, 3.0],
            "sparse_values": {"indices": list(range(1001)), "values": [1.0] * 1001},
        },
        {"id": "dup", "values": [0.0, 0.0, 0.0]},
        {"id": "dup", "values": [3.0, 2.0, 1.0]},  # the last row of an id wins
    ]
    refused = provider.upsert("refuse", batch_from_records(spec, rows))
    assert set(refused) == {"zeros", "x" * 513, "", "sparse-big"}
    assert "all zeros" in refused["zeros"]
    assert "513 characters" in refused["x" * 513]
    assert "1001 non-zeros" in refused["sparse-big"]
    assert set(double.records("refuse")) == {"ok", "dup"}
    dup = double.records("refuse")["dup"].values
    assert dup is not None and dup.tolist() == [3.0, 2.0, 1.0]

    # sparse vectors into an index that cannot hold them are refused, not dropped
    provider.create_index(IndexSpec("densecos", 3, "cosine"))
    batch = batch_from_records(spec, rows[4:5])
    refused = provider.upsert("densecos", batch)
    assert "cannot store sparse" in refused["sparse-big"]


# -- index lifecycle ---------------------------------------------------------------------
def test_create_index_options_and_incompatibilities(double: PineconeDouble) -> None:
    p = open_pc(double, cloud="gcp", region="europe-west4")
    try:
        before = len(double.requests)
        with pytest.raises(IncompatibleIndexError, match="dotproduct"):
            p.create_index(IndexSpec("sparsecos", DIM, "cosine", sparse=True))
        with pytest.raises(IncompatibleIndexError, match="manhattan"):
            p.create_index(IndexSpec("l1", DIM, "manhattan"))
        with pytest.raises(ConfigError, match="index name"):
            p.create_index(IndexSpec("Bad_Name", DIM, "cosine"))
        assert len(double.requests) == before  # refused before any request

        p.create_index(IndexSpec("regional", DIM, "euclidean"))
        assert double.indexes["regional"].spec["serverless"]["cloud"] == "gcp"
        assert double.indexes["regional"].spec["serverless"]["region"] == "europe-west4"
        assert double.indexes["regional"].vector_type == "dense"
        p.create_index(IndexSpec("regional", DIM, "euclidean"))  # exists, compatible: no-op
        with pytest.raises(IncompatibleIndexError, match="dimension"):
            p.create_index(IndexSpec("regional", DIM + 1, "euclidean"))

        p.create_index(IndexSpec("sparseonly", None, "dot", sparse=True))
        described = p.describe_index("sparseonly")
        assert (described.dimension, described.sparse, described.metric) == (None, True, "dot")
        spec = described
        rows: list[dict[str, Any]] = [
            {"id": "s1", "sparse_values": {"indices": [3, 9], "values": [0.25, 2.0]}},
            {"id": "s2", "sparse_values": None},
        ]
        refused = p.upsert("sparseonly", batch_from_records(spec, rows))
        assert set(refused) == {"s2"}
        got = records_from_batch(p.fetch("sparseonly", ["s1"]))
        assert got[0]["sparse_values"] == {"indices": [3, 9], "values": [0.25, 2.0]}

        p.create_index(IndexSpec("densedot", DIM, "dot"))
        assert double.indexes["densedot"].tags == {"vectra_sparse": "0"}
        assert not p.describe_index("densedot").sparse
        double.create_index("foreigndot", DIM, "dotproduct")  # no tag: may hold sparse values
        assert p.describe_index("foreigndot").sparse
        assert set(p.list_indexes()) >= {"regional", "sparseonly", "densedot", "foreigndot"}
        p.delete_index("regional")
        with pytest.raises(IndexNotFoundError):
            p.describe_index("regional")
        with pytest.raises(IndexNotFoundError):
            p.delete_index("regional")
    finally:
        p.close()


def test_query(double: PineconeDouble, provider: PineconeProvider) -> None:
    double.create_index("search", 2, "cosine")
    double.upsert(
        "search",
        [
            {"id": "east", "values": [1.0, 0.0], "metadata": {"dir": "e"}},
            {"id": "north", "values": [0.0, 1.0], "metadata": {"dir": "n"}},
            {"id": "ne", "values": [1.0, 1.0], "metadata": {"dir": "ne"}},
        ],
        "geo",
    )
    hits = provider.query("search", [1.0, 0.1], top_k=2, namespace="geo")
    assert [h["id"] for h in hits] == ["east", "ne"]
    assert hits[0]["metadata"] == {"dir": "e"} and hits[0]["score"] > hits[1]["score"]
    hits = provider.query("search", [1.0, 0.1], top_k=3, namespace="geo", filter={"dir": "n"})
    assert [h["id"] for h in hits] == ["north"]
    assert provider.query("search", [1.0, 0.0], top_k=3) == []  # default namespace is empty


# -- limits, counts, retries through the engine ------------------------------------------
def test_engine_split_respects_1000_rows_and_2mb(
    double: PineconeDouble, provider: PineconeProvider
) -> None:
    dim = 256
    spec = IndexSpec("limits", dim, "cosine")
    provider.create_index(spec)
    sizes = BodySizes(provider)
    rng = np.random.default_rng(5)
    n = 2600
    vectors = rng.standard_normal((n, dim)).astype(np.float32) * 1e-30  # long JSON floats
    rows = [
        {"id": f"r{i:05d}", "values": vectors[i], "metadata": {"pad": "p" * (i % 3) * 700}}
        for i in range(n)
    ]
    batch = batch_from_records(spec, rows)
    progress = Progress(None, "test", n, 1)
    with UpsertPool(provider, concurrency=4, retry=fast_retry(), progress=progress) as pool:
        pool.submit(WriteTask("limits", "", batch))
        pool.drain()
    assert not pool.failures and pool.written == n
    assert len(double.records("limits")) == n
    assert sizes.sizes and max(r for r, _ in sizes.sizes) <= 1000
    assert max(b for _, b in sizes.sizes) <= MAX_REQUEST_BYTES
    assert max(b for _, b in sizes.sizes) > 1_000_000  # the byte limit was what bound
    assert provider.stats["upsert_splits"] == 0  # the engine did the splitting
    statuses = {r.status for r in operations(double, "upsertVectors")}
    assert statuses == {200}

    # a caller that ignores the declared limits still never sends an oversize request
    sizes.sizes.clear()
    assert provider.upsert("limits", batch.slice(0, 1500)) == {}
    assert len(sizes.sizes) >= 2 and provider.stats["upsert_splits"] >= 1
    assert all(r <= 1000 and b <= MAX_REQUEST_BYTES for r, b in sizes.sizes)


def test_stats_lag_makes_counts_inexact_and_is_surfaced(
    double: PineconeDouble,
    provider: PineconeProvider,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert provider.capabilities.exact_count is False
    double.stats_lag_writes = 2
    double.create_index("lag", DIM, "cosine")
    seed_records(double, "lag", "", [f"a{i}" for i in range(30)])  # one write
    seed_records(double, "lag", "", [f"b{i}" for i in range(20)])  # another
    seed_records(double, "lag", "", [f"c{i}" for i in range(10)])  # a third
    with caplog.at_level(logging.INFO):
        assert provider.count("lag") == 30  # two writes behind
        manifest = vectra_io.export_snapshot(
            provider, str(tmp_path / "snap"), indexes=["lag"], retry=fast_retry()
        )
    entry = manifest["indexes"]["lag"]["namespaces"]
    (ns_entry,) = entry.values()
    assert ns_entry["source_count"] == 30 and ns_entry["rows"] == 60
    assert "eventually consistent" in caplog.text
    assert "count is approximate" in caplog.text  # the engine's warning
    double.stats_lag_writes = 0
    assert provider.count("lag") == 60


def test_429_with_retry_after_is_retried_by_the_engine(
    double: PineconeDouble, provider: PineconeProvider, tmp_path: Path
) -> None:
    source = MemoryProvider()
    spec = IndexSpec("retried", DIM, "cosine")
    source.create_index(spec)
    rows: list[dict[str, Any]] = [
        {"id": f"id-{i}", "values": vec(i), "metadata": {"i": i}} for i in range(300)
    ]
    source.upsert("retried", batch_from_records(spec, rows))
    snapshot = str(tmp_path / "snap")
    vectra_io.export_snapshot(source, snapshot, retry=fast_retry())

    double.faults.operations = {"upsertVectors"}
    double.faults.retry_after = 0.05
    double.faults.fail_next(4, 429)
    result = vectra_io.import_snapshot(
        snapshot, provider, chunk_size=50, concurrency=2, retry=fast_retry()
    )
    assert result["failed_count"] == 0 and result["imported_count"] == 300
    upserts = operations(double, "upsertVectors")
    assert sum(1 for r in upserts if r.status == 429) == 4
    assert sorted(double.records("retried")) == sorted(r["id"] for r in rows)
    stored = double.records("retried")["id-7"]
    assert stored.metadata == {"i": 7.0}
    assert stored.values is not None
    assert (stored.values.view(np.uint32) == np.asarray(vec(7), np.float32).view(np.uint32)).all()


def test_create_index_waits_until_ready(
    double: PineconeDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    describes = {"n": 0}
    real_model = double._model

    def initializing(ix: Any) -> dict[str, Any]:
        model = real_model(ix)
        if ix.name == "slow":
            describes["n"] += 1
            if describes["n"] <= 3:
                model["status"] = {"ready": False, "state": "Initializing"}
        if ix.name == "never":
            model["status"] = {"ready": False, "state": "Initializing"}
        return model

    monkeypatch.setattr(double, "_model", initializing)
    p = open_pc(double, ready_timeout=2.0)
    try:
        p.create_index(IndexSpec("slow", DIM, "cosine"))
        assert describes["n"] >= 4  # polled until status.ready
        short = open_pc(double, ready_timeout=0.1, ready_poll=0.02)
        try:
            with pytest.raises(vectra_io.errors.FatalError, match="not ready after"):
                short.create_index(IndexSpec("never", DIM, "cosine"))
        finally:
            short.close()
    finally:
        p.close()
