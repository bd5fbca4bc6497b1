"""Chroma specifics of the ``chroma`` provider (the shared behaviour is in tests/conformance).

Most tests talk to a real Chroma server (``chroma_server``, tests/servers/fixtures.py);
the error-translation tests use ``httpx.MockTransport``. The chromadb client appears only
here, to create collections the way other Chroma users do.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest

import vectra_io
from tests.servers.fixtures import chroma_server  # noqa: F401
from tests.servers.launch import ChromaServer
from vectra_io.errors import (
    AuthError,
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    RetryableError,
    UnsupportedError,
)
from vectra_io.providers.base import IndexSpec
from vectra_io.providers.chroma import (
    DOCUMENT_KEY,
    URI_KEY,
    ChromaProvider,
    collection_name,
    valid_collection_name,
)
from vectra_io.providers.memory import MemoryProvider
from vectra_io.providers.registry import open_provider
from vectra_io.records import batch_from_records, records_from_batch

EXTREME = np.array(
    [-0.0, 1e-45, -1e-45, 1.1754942e-38, 3.4e38, -3.4e38, 1.0, 0.0], dtype=np.float32
)
SECRET = "s3cr3t-token-value"


# -- fixtures and helpers -------------------------------------------------------------------
@pytest.fixture
def server(chroma_server: ChromaServer) -> ChromaServer:  # noqa: F811
    return chroma_server


@pytest.fixture
def provider(server: ChromaServer) -> Iterator[ChromaProvider]:
    p = ChromaProvider(f"{server.host}:{server.port}")
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def index(provider: ChromaProvider) -> Iterator[Callable[..., IndexSpec]]:
    """``index(dim, metric)`` creates a uniquely named index, deleted at teardown."""
    names: list[str] = []

    def make(dimension: int = 4, metric: str = "euclidean", **kw: Any) -> IndexSpec:
        spec = IndexSpec(f"vt{uuid.uuid4().hex[:12]}", dimension, metric, **kw)
        provider.create_index(spec)
        names.append(spec.name)
        return spec

    yield make
    for name in names:
        with contextlib.suppress(IndexNotFoundError):
            provider.delete_index(name)


@pytest.fixture
def raw(server: ChromaServer) -> Iterator[httpx.Client]:
    """A plain HTTP client on the default database (to look behind the provider)."""
    base = f"{server.url}/api/v2/tenants/default_tenant/databases/default_database"
    with httpx.Client(base_url=base, timeout=30) as client:
        yield client


def _raw_get(raw: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    cid = raw.get(f"/collections/{name}").raise_for_status().json()["id"]
    body.setdefault("include", ["metadatas", "documents", "uris", "embeddings"])
    result: dict[str, Any] = raw.post(f"/collections/{cid}/get", json=body).json()
    return result


def _records(spec: IndexSpec, rows: list[dict[str, Any]]) -> pa.RecordBatch:
    return batch_from_records(spec, rows)


def _by_id(batch: pa.RecordBatch) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in records_from_batch(batch)}


def _record_requests(provider: ChromaProvider) -> list[str]:
    """The last path segment of every request the provider sends from now on, in order."""
    sent: list[str] = []
    real_send = provider._send

    def recording(method: str, path: str, **kw: Any) -> Any:
        sent.append(path.rsplit("/", 1)[-1])
        return real_send(method, path, **kw)

    provider._send = recording  # type: ignore[method-assign]
    return sent


def _bits(values: Any) -> list[int]:
    return np.asarray(values, dtype=np.float32).view(np.uint32).tolist()


def _chromadb_client(server: ChromaServer) -> Any:
    chromadb = pytest.importorskip("chromadb")
    from chromadb.config import Settings

    return chromadb.HttpClient(
        host=server.host, port=server.port, settings=Settings(anonymized_telemetry=False)
    )


# -- location, options, secrets (no server) --------------------------------------------------
@pytest.mark.parametrize(
    ("location", "tls", "endpoint", "base"),
    [
        ("127.0.0.1:8011", False, "chroma://127.0.0.1:8011", "http://127.0.0.1:8011"),
        ("db.example:8000", False, "chroma://db.example", "http://db.example:8000"),
        ("db.example", True, "chroma+https://db.example", "https://db.example"),
        ("h:9/acme/prod", False, "chroma://h:9/acme/prod", "http://h:9"),
        ("h:9/default_tenant/default_database/", False, "chroma://h:9", "http://h:9"),
        ("[::1]:8000", False, "chroma://[::1]", "http://[::1]:8000"),
    ],
)
def test_location_syntax(location: str, tls: bool, endpoint: str, base: str) -> None:
    p = ChromaProvider(location, tls=tls)
    try:
        assert p.endpoint == endpoint
        assert str(p._api.client.base_url).rstrip("/") == base
    finally:
        p.close()


@pytest.mark.parametrize(
    "location", ["", "user:pw@h:8000", "h:8000/only-tenant", "h:8000/a/b/c", "h:x", "h:1?x=1"]
)
def test_bad_locations_are_config_errors(location: str) -> None:
    with pytest.raises(ConfigError):
        ChromaProvider(location)


def test_unknown_options_and_auth_header_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown options"):
        ChromaProvider("h:1", colour="blue")
    with pytest.raises(ConfigError, match="auth_header"):
        ChromaProvider("h:1", auth_header="cookie")


def test_registry_opens_chroma_with_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHROMA_API_KEY", SECRET)
    p = open_provider("chroma+https://chroma.example/acme/prod")
    try:
        assert isinstance(p, ChromaProvider)
        assert p.endpoint == "chroma+https://chroma.example/acme/prod"
        assert SECRET not in p.endpoint
        assert p._api.client.headers["x-chroma-token"] == SECRET
    finally:
        p.close()


def _mock(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> ChromaProvider:
    return ChromaProvider("chroma.test:8000", transport=httpx.MockTransport(handler), **kw)


def _json(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def _ready(request: httpx.Request) -> httpx.Response | None:
    """Answers the provider's connection checks; None for every other request."""
    if request.url.path == "/api/v2/pre-flight-checks":
        return _json(200, {"max_batch_size": 100, "supports_base64_encoding": True})
    if request.url.path == "/api/v2/tenants/default_tenant/databases/default_database":
        return _json(200, {"id": "x", "name": "default_database", "tenant": "default_tenant"})
    return None


@pytest.mark.parametrize("mode", ["x-chroma-token", "authorization", "both"])
def test_api_key_headers_and_auth_errors_never_show_the_key(mode: str) -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        # a server that echoes the credential back must not leak it through our errors
        return _json(401, {"error": "AuthError", "message": f"bad token {SECRET}"})

    p = _mock(handler, api_key=SECRET, auth_header=mode)
    with pytest.raises(AuthError) as info:
        p.list_indexes()
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.args)
    assert SECRET not in p.endpoint
    headers = seen[0]
    assert (headers.get("x-chroma-token") == SECRET) == (mode in ("x-chroma-token", "both"))
    assert (headers.get("authorization") == f"Bearer {SECRET}") == (
        mode in ("authorization", "both")
    )


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (429, {"retry-after": "3"}, RetryableError, 3.0),
        (503, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, RetryableError, 0.0),
        (500, {}, RetryableError, None),
        (502, {}, RetryableError, None),
        (501, {}, UnsupportedError, None),
        (403, {}, AuthError, None),
        (404, {}, IndexNotFoundError, None),
        (400, {}, FatalError, None),
    ],
)
def test_http_errors_are_translated(
    status: int, headers: dict[str, str], error: type[Exception], retry_after: float | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        ready = _ready(request)
        if ready is not None:
            return ready
        return _json(status, {"error": "SomeError", "message": "the server's reason"}, **headers)

    p = _mock(handler)
    with pytest.raises(error) as info:
        p.describe_index("some-index")
    assert type(info.value) is error
    if error is not IndexNotFoundError:
        assert "the server's reason" in str(info.value)
    if retry_after is not None:
        assert isinstance(info.value, RetryableError)
        assert info.value.retry_after == retry_after


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
def test_transport_failures_are_retryable(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    p = _mock(handler)
    with pytest.raises(RetryableError):
        p.list_indexes()
    # the capabilities stay readable (static defaults) while the server is away
    assert p.capabilities.max_batch_rows and p.capabilities.nested_metadata is False


def test_missing_database_is_a_config_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/pre-flight-checks":
            return _json(200, {"max_batch_size": 100, "supports_base64_encoding": True})
        return _json(404, {"error": "NotFoundError", "message": "Database [x] not found"})

    with pytest.raises(ConfigError, match="database 'prod' of tenant 'acme'"):
        ChromaProvider(
            "chroma.test:8000/acme/prod", transport=httpx.MockTransport(handler)
        ).list_indexes()


def test_scan_does_not_stop_at_a_short_page() -> None:
    """A server that caps ``limit`` (Chroma Cloud: 300) returns short pages mid-scan: the
    scan ends only at an empty page, and the last page yielded has the cursor None."""
    ids = [f"r{i}" for i in range(23)]
    collection = {
        "id": str(uuid.uuid4()),
        "name": "capped",
        "configuration_json": {"hnsw": {"space": "l2"}},
        "metadata": None,
        "dimension": 2,
    }
    gets: list[tuple[int, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ready = _ready(request)
        if ready is not None:
            return ready
        if request.method == "GET" and request.url.path.endswith("/collections/capped"):
            return _json(200, collection)
        body = json.loads(request.content)
        limit, offset = body["limit"], body["offset"]
        gets.append((offset, limit))
        chunk = ids[offset : offset + min(limit, 7)]
        return _json(
            200,
            {
                "ids": chunk,
                "embeddings": [[float(i), 0.5] for i in range(len(chunk))],
                "metadatas": [None] * len(chunk),
                "documents": [None] * len(chunk),
                "uris": [None] * len(chunk),
                "include": body["include"],
            },
        )

    p = _mock(handler)
    pages = list(p.scan("capped", batch_size=10))
    got = [rid for page in pages for rid in page.batch.column("id").to_pylist()]
    assert got == ids
    assert [page.cursor for page in pages][-1] is None
    assert all(page.cursor == {"offset": 7 * (k + 1)} for k, page in enumerate(pages[:-1]))
    resumed = list(p.scan("capped", batch_size=10, cursor=json.loads(json.dumps(pages[1].cursor))))
    assert [r for page in resumed for r in page.batch.column("id").to_pylist()] == ids[14:]
    assert all(limit == 10 for _, limit in gets)
    with pytest.raises(ConfigError):
        list(p.scan("capped", cursor={"offset": -1}))


# -- names ------------------------------------------------------------------------------------
def test_namespace_collection_names_are_valid_and_distinct() -> None:
    namespaces = ["alpha", "v1.2", "a__b", "x-", "_x", "a..b", "", "ns with space/ü", "ünï", "9"]
    names = {ns: collection_name("idx", ns) for ns in namespaces}
    assert names["alpha"] == "idx__ns__alpha" and names["v1.2"] == "idx__ns__v1.2"
    assert names["x-"] == "idx__nsx__" + b"x-".hex()
    assert names[""] == "idx"
    assert len(set(names.values())) == len(names)
    assert all(valid_collection_name(n) for n in names.values())
    long = collection_name("idx", "y" * 600)
    assert long.startswith("idx__nsh__") and valid_collection_name(long)
    for bad in ["ab", "-ab", "ab-", "a..b", "10.0.0.1", "a b", "é" * 3, "x" * 513]:
        assert not valid_collection_name(bad)


# -- real server -------------------------------------------------------------------------------
def test_capabilities_come_from_the_pre_flight_check(
    provider: ChromaProvider, server: ChromaServer
) -> None:
    checks = httpx.get(f"{server.url}/api/v2/pre-flight-checks").json()
    caps = provider.capabilities
    assert caps.max_batch_rows == checks["max_batch_size"]
    assert caps.wire_factor == (1.5 if checks["supports_base64_encoding"] else 5.5)
    assert caps.namespaces and caps.exact_count and caps.idempotent_upsert
    assert not caps.sparse and not caps.named_vectors and not caps.nested_metadata
    assert caps.metrics == {"cosine", "dot", "euclidean"}


def test_pre_flight_batch_size_is_honoured(server: ChromaServer, index: Callable) -> None:
    """An upsert larger than max_batch_size reaches the server in requests within it."""
    sizes: list[int] = []
    inner = httpx.HTTPTransport()

    class Recording(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/upsert"):
                sizes.append(len(json.loads(request.read())["ids"]))
            return inner.handle_request(request)

    p = ChromaProvider(f"{server.host}:{server.port}", transport=Recording())
    try:
        limit = p.capabilities.max_batch_rows
        assert limit
        spec = index(2)
        n = limit + 17
        rows = [{"id": f"r{i}", "values": [float(i), 1.0], "metadata": None} for i in range(n)]
        assert p.upsert(spec.name, _records(spec, rows)) == {}
        assert sorted(sizes) == [17, limit]
        assert p.count(spec.name) == n
    finally:
        p.close()


def test_payload_limit_splits_and_refuses_oversize_records(
    server: ChromaServer, index: Callable
) -> None:
    p = ChromaProvider(f"{server.host}:{server.port}", max_payload_bytes=20_000)
    try:
        spec = index(2)
        rows = [
            {"id": f"r{i}", "values": [1.0, 2.0], "metadata": {"pad": "x" * 3000}}
            for i in range(20)
        ]
        rows.append({"id": "huge", "values": [1.0, 2.0], "metadata": {"pad": "y" * 30_000}})
        refused = p.upsert(spec.name, _records(spec, rows))
        assert set(refused) == {"huge"} and "bytes" in refused["huge"]
        assert p.count(spec.name) == 20
    finally:
        p.close()


@pytest.mark.parametrize(
    ("metric", "space"), [("euclidean", "l2"), ("cosine", "cosine"), ("dot", "ip")]
)
def test_metric_is_set_as_the_collection_space(
    provider: ChromaProvider, index: Callable, raw: httpx.Client, metric: str, space: str
) -> None:
    spec = index(3, metric)
    info = raw.get(f"/collections/{spec.name}").json()
    assert info["configuration_json"]["hnsw"]["space"] == space
    described = provider.describe_index(spec.name)
    assert (described.metric, described.dimension) == (metric, 3)
    with pytest.raises(IncompatibleIndexError):
        provider.create_index(IndexSpec(f"vt{uuid.uuid4().hex[:10]}", 3, "manhattan"))


def test_index_name_rules(provider: ChromaProvider) -> None:
    for bad in ["ab", "has space", "a__ns__b", "x..y"]:
        with pytest.raises(ConfigError):
            provider.create_index(IndexSpec(bad, 4, "cosine"))
    with pytest.raises(IncompatibleIndexError):
        provider.create_index(IndexSpec("vtsparse", 4, "cosine", sparse=True))


def test_create_existing_index_checks_dimension(provider: ChromaProvider, index: Callable) -> None:
    spec = index(4, "dot", id_type="uuid")
    provider.create_index(spec)  # idempotent
    with pytest.raises(IncompatibleIndexError):
        provider.create_index(IndexSpec(spec.name, 5, "dot"))
    assert provider.describe_index(spec.name).id_type == "uuid"


@pytest.mark.parametrize("metric", ["euclidean", "dot"])
def test_l2_and_ip_vectors_are_bit_exact(
    provider: ChromaProvider, index: Callable, metric: str
) -> None:
    """-0.0, subnormals, +-3.4e38 and random bit patterns survive base64 in, JSON out."""
    spec = index(8, metric)
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2**32, size=(300, 8), dtype=np.uint64).astype(np.uint32)
    vectors = bits.view(np.float32).copy()
    vectors[~np.isfinite(vectors)] = 0.5
    vectors[0], vectors[1] = EXTREME, -EXTREME
    rows = [{"id": f"b{i}", "values": v, "metadata": None} for i, v in enumerate(vectors)]
    assert provider.upsert(spec.name, _records(spec, rows)) == {}
    scanned = {
        r["id"]: r["values"]
        for page in provider.scan(spec.name, batch_size=70)
        for r in records_from_batch(page.batch)
    }
    got = np.array([scanned[f"b{i}"] for i in range(len(rows))], dtype=np.float32)
    assert got.view(np.uint32).tolist() == vectors.view(np.uint32).tolist()
    fetched = _by_id(provider.fetch(spec.name, ["b0", "b1"]))
    assert _bits(fetched["b0"]["values"]) == _bits(EXTREME)


def test_json_vectors_are_bit_exact_without_base64(server: ChromaServer, index: Callable) -> None:
    p = ChromaProvider(f"{server.host}:{server.port}")
    try:
        assert p.capabilities.max_batch_rows  # connect, then force JSON-number vectors
        p._base64 = False
        spec = index(8, "euclidean")
        rows = [{"id": "x", "values": EXTREME, "metadata": None}]
        assert p.upsert(spec.name, _records(spec, rows)) == {}
        assert _bits(_by_id(p.fetch(spec.name, ["x"]))["x"]["values"]) == _bits(EXTREME)
    finally:
        p.close()


def test_cosine_collections_are_close_and_refuse_vectors_chroma_destroys(
    provider: ChromaProvider, index: Callable
) -> None:
    """Chroma's single-node cosine index stores normalised vectors and scales them back:
    close (hence exact_floats=False) but not bit-exact; a squared norm that over- or
    underflows float32 would come back as nulls/zeros, so such records are refused."""
    spec = index(4, "cosine")
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((200, 4)).astype(np.float32)
    rows = [{"id": f"c{i}", "values": v, "metadata": None} for i, v in enumerate(vectors)]
    rows += [
        {"id": "overflow", "values": [2e19, 0.0, 0.0, 0.0]},
        {"id": "underflow", "values": [1e-23, 0.0, 0.0, 0.0]},
        {"id": "zero", "values": [0.0, 0.0, 0.0, 0.0]},
        {"id": "tiny-ok", "values": [3e-23, 0.0, 0.0, 1e-30]},
    ]
    refused = provider.upsert(spec.name, _records(spec, rows))
    assert set(refused) == {"overflow", "underflow"}
    assert "cosine" in refused["overflow"]
    got = _by_id(provider.fetch(spec.name, [f"c{i}" for i in range(200)] + ["zero", "tiny-ok"]))
    back = np.array([got[f"c{i}"]["values"] for i in range(200)], dtype=np.float32)
    assert np.allclose(back, vectors, rtol=1e-6, atol=0)
    assert got["zero"]["values"] == [0.0] * 4
    assert math.isclose(got["tiny-ok"]["values"][0], 3e-23, rel_tol=1e-5)
    assert provider.count(spec.name) == 202


def test_documents_and_uris_round_trip(
    provider: ChromaProvider, index: Callable, raw: httpx.Client
) -> None:
    spec = index(2)
    rows: list[dict[str, Any]] = [
        {"id": "d1", "values": [1.0, 2.0], "metadata": {DOCUMENT_KEY: "hello ☃", "k": 1}},
        {"id": "d2", "values": [1.0, 2.0], "metadata": {URI_KEY: "s3://b/k"}},
        {"id": "d3", "values": [1.0, 2.0], "metadata": {DOCUMENT_KEY: "", URI_KEY: "u"}},
        {"id": "d4", "values": [1.0, 2.0], "metadata": None},
    ]
    assert provider.upsert(spec.name, _records(spec, rows)) == {}
    stored = _raw_get(raw, spec.name, ids=["d1", "d2", "d3", "d4"])
    by_id = {
        rid: (m, d, u)
        for rid, m, d, u in zip(
            stored["ids"], stored["metadatas"], stored["documents"], stored["uris"], strict=True
        )
    }
    assert by_id["d1"] == ({"k": 1}, "hello ☃", None)
    assert by_id["d2"][1:] == (None, "s3://b/k") and not by_id["d2"][0]
    assert by_id["d3"][1:] == ("", "u")
    assert by_id["d4"] == (None, None, None)
    back = _by_id(provider.fetch(spec.name, ["d1", "d2", "d3", "d4"]))
    assert {rid: back[rid]["metadata"] for rid in back} == {r["id"]: r["metadata"] for r in rows}


def test_reimport_leaves_no_stale_metadata_documents_or_uris(
    provider: ChromaProvider, index: Callable, raw: httpx.Client
) -> None:
    spec = index(2)
    first = [
        {
            "id": f"r{i}",
            "values": [1.0, float(i)],
            "metadata": {"old": "stale", "tags": ["x"], DOCUMENT_KEY: "old doc", URI_KEY: "old"},
        }
        for i in range(10)
    ]
    second = [
        {"id": f"r{i}", "values": [2.0, float(i)], "metadata": None if i == 0 else {"new": i}}
        for i in range(10)
    ]
    assert provider.upsert(spec.name, _records(spec, first)) == {}
    assert provider.upsert(spec.name, _records(spec, second)) == {}
    stored = _raw_get(raw, spec.name, ids=[f"r{i}" for i in range(10)])
    assert all(d is None for d in stored["documents"]) and all(u is None for u in stored["uris"])
    metas = dict(zip(stored["ids"], stored["metadatas"], strict=True))
    assert metas == {f"r{i}": None if i == 0 else {"new": i} for i in range(10)}
    assert provider.count(spec.name) == 10


def test_repeated_ids_in_a_batch_keep_the_last_version(
    provider: ChromaProvider, index: Callable
) -> None:
    spec = index(2)
    rows = [
        {"id": "x", "values": [1.0, 1.0], "metadata": {"a": 1}},
        {"id": "x", "values": [2.0, 2.0], "metadata": {"b": 2}},
    ]
    assert provider.upsert(spec.name, _records(spec, rows)) == {}
    got = _by_id(provider.fetch(spec.name, ["x"]))["x"]
    assert got["values"] == [2.0, 2.0] and got["metadata"] == {"b": 2}


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ({"obj": {"a": 1}}, "nested object"),
        ({"n": None}, "null"),
        ({"l": []}, "empty list"),
        ({"l": [1, "two"]}, "one type"),
        ({"l": [1, None]}, "one type"),
        ({"l": [[1]]}, "one type"),
        ({"big": 2**63}, "int64"),
        ({"l": [1.5, 2**60]}, "2**53"),
        ({"#k": 1}, "reserves"),
        ({"$k": 1}, "reserves"),
        ({"": 1}, "empty key"),
        ({"chroma:other": 1}, "chroma:"),
        ({DOCUMENT_KEY: 5}, "must be a string"),
        ({URI_KEY: None}, "must be a string"),
    ],
)
def test_metadata_chroma_cannot_hold_is_refused_naming_the_id(
    provider: ChromaProvider, index: Callable, metadata: dict[str, Any], fragment: str
) -> None:
    spec = index(2)
    rows: list[dict[str, Any]] = [
        {"id": "ok", "values": [1.0, 2.0], "metadata": {"flat": "yes", "tags": ["a"]}},
        {"id": "bad", "values": [1.0, 2.0], "metadata": {"title": "x", **metadata}},
    ]
    refused = provider.upsert(spec.name, _records(spec, rows))
    assert set(refused) == {"bad"}
    assert fragment in refused["bad"]
    assert provider.fetch(spec.name, ["ok", "bad"]).column("id").to_pylist() == ["ok"]


def test_records_without_vector_and_wrong_dimension(
    provider: ChromaProvider, index: Callable
) -> None:
    spec = index(2)
    rows: list[dict[str, Any]] = [
        {"id": "nov", "values": None},
        {"id": "v", "values": [1.0, 2.0]},
        {"id": "", "values": [1.0, 1.0]},
    ]
    refused = provider.upsert(spec.name, _records(spec, rows))
    assert set(refused) == {"nov", ""}
    other = IndexSpec(spec.name, 3)
    with pytest.raises(IncompatibleIndexError):
        provider.upsert(spec.name, _records(other, [{"id": "w", "values": [1.0, 2.0, 3.0]}]))


def test_namespaces_are_collections_named_by_the_convention(
    provider: ChromaProvider, index: Callable, raw: httpx.Client
) -> None:
    spec = index(2)
    odd = ["alpha", "ns with space/ü", "a__b", "y" * 600]
    for k, ns in enumerate(["", *odd]):
        rows = [
            {"id": f"{k}-{i}", "values": [float(k), float(i)], "metadata": {"k": k}}
            for i in range(k + 1)
        ]
        assert provider.upsert(spec.name, _records(spec, rows), ns) == {}
    assert provider.list_namespaces(spec.name) == sorted(["", *odd])
    for k, ns in enumerate(["", *odd]):
        assert provider.count(spec.name, ns) == k + 1
        info = raw.get(f"/collections/{collection_name(spec.name, ns)}").json()
        if ns:
            assert info["metadata"]["vectra:namespace"] == ns
            assert info["metadata"]["vectra:index"] == spec.name
        assert info["configuration_json"]["hnsw"]["space"] == "l2"
    assert raw.get(f"/collections/{spec.name}__ns__alpha").status_code == 200
    assert provider.list_indexes().count(spec.name) == 1
    assert not [n for n in provider.list_indexes() if n.startswith(spec.name + "__")]
    assert provider.count(spec.name, "never") == 0
    assert list(provider.scan(spec.name, "never")) == []
    provider.delete_index(spec.name)
    listed = [c["name"] for c in raw.get("/collections", params={"limit": 1000}).json()]
    assert not [n for n in listed if n.startswith(spec.name)]


def test_concurrent_first_writes_into_a_namespace(
    provider: ChromaProvider, index: Callable
) -> None:
    spec = index(2)
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            rows = [{"id": f"{k}-{i}", "values": [1.0, float(i)]} for i in range(20)]
            assert provider.upsert(spec.name, _records(spec, rows), "fresh") == {}
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert provider.list_namespaces(spec.name) == ["fresh"]
    assert provider.count(spec.name, "fresh") == 120


def test_missing_index_and_namespace_collection_is_not_an_index(
    provider: ChromaProvider, index: Callable
) -> None:
    spec = index(2)
    provider.upsert(spec.name, _records(spec, [{"id": "a", "values": [1.0, 2.0]}]), "alpha")
    with pytest.raises(IndexNotFoundError):
        provider.describe_index(collection_name(spec.name, "alpha"))
    with pytest.raises(IndexNotFoundError):
        provider.count("vtdoesnotexist")
    with pytest.raises(IndexNotFoundError):
        list(provider.scan("vtdoesnotexist"))


def test_list_metadata_left_by_a_deleted_collection_is_removed(
    provider: ChromaProvider, index: Callable, raw: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Chroma 1.5 (SQLite) keeps the list metadata of a deleted collection and attaches it to
    later records that reuse its row ids; upsert reads back and deletes such keys."""
    name = f"vtgarbage{uuid.uuid4().hex[:8]}"
    cid = raw.post("/collections", json={"name": name}).raise_for_status().json()["id"]
    n = 30
    raw.post(
        f"/collections/{cid}/upsert",
        json={
            "ids": [f"g{i}" for i in range(n)],
            "embeddings": [[1.0, 2.0]] * n,
            "metadatas": [{"ghost": [f"g{i}"]} for i in range(n)],
        },
    ).raise_for_status()
    raw.delete(f"/collections/{name}").raise_for_status()

    spec = index(2)
    rows: list[dict[str, Any]] = [
        {"id": f"v{i}", "values": [1.0, 2.0], "metadata": None if i % 2 else {"k": i}}
        for i in range(n)
    ]
    with caplog.at_level("INFO", logger="vectra_io.providers.chroma"):
        assert provider.upsert(spec.name, _records(spec, rows)) == {}
    assert "not written" in caplog.text  # the server did attach them: the repair ran
    stored = _raw_get(raw, spec.name, include=["metadatas"])
    assert not [m for m in stored["metadatas"] if m and "ghost" in m]
    got = _by_id(provider.fetch(spec.name, [r["id"] for r in rows]))
    assert {rid: r["metadata"] for rid, r in got.items()} == {r["id"]: r["metadata"] for r in rows}


def test_delete_index_does_not_leave_list_metadata_behind(
    provider: ChromaProvider, raw: httpx.Client
) -> None:
    spec = IndexSpec(f"vtpurge{uuid.uuid4().hex[:8]}", 2, "euclidean")
    provider.create_index(spec)
    rows = [
        {"id": f"p{i}", "values": [1.0, 2.0], "metadata": {"tags": ["left"]}} for i in range(25)
    ]
    provider.upsert(spec.name, _records(spec, rows))
    provider.upsert(spec.name, _records(spec, rows), "alpha")
    provider.delete_index(spec.name)
    name = f"vtafter{uuid.uuid4().hex[:8]}"
    cid = raw.post("/collections", json={"name": name}).raise_for_status().json()["id"]
    try:
        raw.post(
            f"/collections/{cid}/upsert",
            json={"ids": [f"n{i}" for i in range(60)], "embeddings": [[1.0, 2.0]] * 60},
        ).raise_for_status()
        stored = _raw_get(raw, name, include=["metadatas"])
        assert stored["metadatas"] == [None] * 60
    finally:
        raw.delete(f"/collections/{name}")


def test_collection_created_by_chromadb_exports_exactly(
    server: ChromaServer, provider: ChromaProvider, raw: httpx.Client, tmp_path: Path
) -> None:
    """A collection made by the chromadb client (documents, uris, list metadata, cosine)
    exports through vectra-io and imports back into a new Chroma collection unchanged."""
    client = _chromadb_client(server)
    name = f"native{uuid.uuid4().hex[:8]}"
    target = f"vtcopy{uuid.uuid4().hex[:8]}"
    embeddings = np.array([[0.5, 0.25, 1.0], [1.0, 0.0, -2.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    col = client.create_collection(
        name, embedding_function=None, configuration={"hnsw": {"space": "ip"}}
    )
    try:
        col.add(
            ids=["n1", "n2", "n3"],
            embeddings=embeddings.tolist(),
            documents=["first doc", None, "third"],
            metadatas=[{"lang": "en", "tags": ["a", "b"], "score": 0.5}, None, {"n": 3}],
            uris=["s3://b/1", None, None],
        )
        legacy = client.create_collection(
            name + "l", embedding_function=None, metadata={"hnsw:space": "cosine"}
        )
        legacy.add(ids=["l1"], embeddings=[[1.0, 0.0]])
        assert provider.describe_index(name + "l").metric == "cosine"

        assert name in provider.list_indexes()
        spec = provider.describe_index(name)
        assert (spec.dimension, spec.metric, spec.id_type) == (3, "dot", "string")
        assert provider.list_namespaces(name) == [""]
        assert provider.count(name) == 3
        got = _by_id(provider.fetch(name, ["n1", "n2", "n3"]))
        assert got["n1"]["metadata"] == {
            "lang": "en",
            "tags": ["a", "b"],
            "score": 0.5,
            DOCUMENT_KEY: "first doc",
            URI_KEY: "s3://b/1",
        }
        assert got["n2"]["metadata"] is None
        assert got["n3"]["metadata"] == {"n": 3, DOCUMENT_KEY: "third"}
        assert _bits([got[r]["values"] for r in ("n1", "n2", "n3")]) == _bits(embeddings)

        snapshot = str(tmp_path / "snap")
        manifest = vectra_io.export_snapshot(provider, snapshot, indexes=[name])
        assert manifest["errors"] == []
        result = vectra_io.import_snapshot(snapshot, provider, index_map={name: target})
        assert result["failed_count"] == 0 and result["imported_count"] == 3
        copy = _raw_get(raw, target, ids=["n1", "n2", "n3"])
        original = col.get(ids=["n1", "n2", "n3"], include=["documents", "uris", "metadatas"])
        assert dict(zip(copy["ids"], copy["documents"], strict=True)) == dict(
            zip(original["ids"], original["documents"], strict=True)
        )
        assert dict(zip(copy["ids"], copy["uris"], strict=True)) == dict(
            zip(original["ids"], original["uris"], strict=True)
        )
        assert dict(zip(copy["ids"], copy["metadatas"], strict=True)) == dict(
            zip(original["ids"], original["metadatas"], strict=True)
        )
        copied = raw.get(f"/collections/{target}").json()
        assert copied["configuration_json"]["hnsw"]["space"] == "ip"
        memory = MemoryProvider()
        vectra_io.import_snapshot(snapshot, memory)
        assert memory.count(name) == 3
    finally:  # through the provider: it deletes list metadata Chroma would leave behind
        for n in (name, name + "l", target):
            with contextlib.suppress(IndexNotFoundError):
                provider.delete_index(n)


def test_import_into_an_empty_collection_made_elsewhere(
    provider: ChromaProvider, raw: httpx.Client
) -> None:
    """A collection created empty by another tool has no dimension yet: the engine accepts
    it and the first upsert sets it."""
    name = f"vtempty{uuid.uuid4().hex[:8]}"
    raw.post(
        "/collections", json={"name": name, "configuration": {"hnsw": {"space": "l2"}}}
    ).raise_for_status()
    try:
        assert provider.describe_index(name).dimension is None
        assert provider.list_namespaces(name) == []
        source = MemoryProvider()
        spec = IndexSpec("src", 4, "euclidean")
        source.create_index(spec)
        rows: list[dict[str, Any]] = [
            {"id": f"e{i}", "values": EXTREME[:4] * i, "metadata": {"i": i}} for i in range(9)
        ]
        source.upsert("src", _records(spec, rows))
        result = vectra_io.migrate(source, provider, indexes=["src"], index_map={"src": name})
        assert result["failed_count"] == 0 and result["migrated_count"] == 9
        described = provider.describe_index(name)
        assert (described.dimension, described.metric) == (4, "euclidean")
        got = _by_id(provider.fetch(name, [f"e{i}" for i in range(9)]))
        assert all(_bits(got[r["id"]]["values"]) == _bits(r["values"]) for r in rows)
    finally:
        with contextlib.suppress(IndexNotFoundError):
            provider.delete_index(name)


def test_collection_created_here_skips_the_delete_and_repairs_a_merge(
    provider: ChromaProvider, index: Callable, server: ChromaServer, raw: httpx.Client
) -> None:
    """In a collection the provider created, ids are not deleted before the upsert (an id
    exists there only if this provider wrote it); the read-back finds a record written twice
    (Chroma merged the versions) and writes it again, deleted first. Elsewhere: delete first."""
    spec = index(2)
    sent = _record_requests(provider)
    ids = [f"m{i}" for i in range(10)]
    first = [
        {
            "id": rid,
            "values": [1.0, float(i)],
            "metadata": {"k": 1, "old_only": "x", DOCUMENT_KEY: f"doc {i}", URI_KEY: f"u{i}"},
        }
        for i, rid in enumerate(ids)
    ]
    assert provider.upsert(spec.name, _records(spec, first)) == {}
    assert "delete" not in sent and "upsert" in sent

    sent.clear()
    second = [
        {"id": rid, "values": [2.0, float(i)], "metadata": None if i == 0 else {"k": 2}}
        for i, rid in enumerate(ids)
    ]
    assert provider.upsert(spec.name, _records(spec, second)) == {}
    assert sent.count("delete") == 1 and sent.count("upsert") == 2, sent  # the merge repaired
    stored = _raw_get(raw, spec.name, ids=ids)
    by_id = {
        rid: (meta, doc, uri)
        for rid, meta, doc, uri in zip(
            stored["ids"], stored["metadatas"], stored["documents"], stored["uris"], strict=True
        )
    }
    assert by_id == {rid: (None if rid == "m0" else {"k": 2}, None, None) for rid in ids}
    got = _by_id(provider.fetch(spec.name, ids))
    assert {rid: r["metadata"] for rid, r in got.items()} == {
        r["id"]: r["metadata"] for r in second
    }

    other = ChromaProvider(f"{server.host}:{server.port}")  # did not create the collection
    try:
        other_sent = _record_requests(other)
        assert other.upsert(spec.name, _records(spec, first)) == {}
        assert other_sent.index("delete") < other_sent.index("upsert")
    finally:
        other.close()
    stored = _raw_get(raw, spec.name, ids=["m3"])
    assert stored["documents"] == ["doc 3"] and stored["metadatas"][0]["old_only"] == "x"
