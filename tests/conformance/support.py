"""Helpers shared by the conformance tests: data builders and strict comparisons.

Nothing here knows about a particular provider; everything reads ``capabilities``.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from vectra_io.engine.retry import RetryPolicy
from vectra_io.engine.writer import row_nbytes, split_for
from vectra_io.providers.base import (
    DEFAULT_NAMESPACE,
    Capabilities,
    Cursor,
    IndexSpec,
    Provider,
    ScanPage,
)
from vectra_io.records import (
    ID,
    METADATA,
    NAMED_PREFIX,
    SPARSE,
    VALUES,
    batch_from_records,
    dense_matrix,
    loads_metadata,
    record_schema,
)

from .harness import Harness

DIM = 8
#: metrics in order of preference for record tests: dot/euclidean never normalise vectors
METRIC_PREFERENCE = ("dot", "euclidean", "cosine", "manhattan")

#: metadata every provider must round-trip: strings, numbers, bools, lists of strings
FLAT_METADATA: dict[str, Any] = {
    "title": "Ünïcödé ☃ — 日本語 🚀",
    "count": 42,
    "negative": -7,
    "ratio": 0.25,
    "flag": True,
    "off": False,
    "tags": ["a", "b", "ü"],
}

#: metadata a provider declaring ``nested_metadata`` must round-trip exactly
NESTED_METADATA: dict[str, Any] = {
    **FLAT_METADATA,
    "big": 2**53 + 1,
    "bigger": 2**63 - 1,
    "most_negative": -(2**63),
    "tenth": 0.1,
    "nothing": None,
    "mixed": [1, "two", None, True, 2.5, {"three": [3.5, None]}],
    "nested": {"level1": {"level2": {"level3": "deep", "n": -1}}, "empty": {}, "list": []},
    "ключ": "значение",
}

#: float32 values whose bit patterns must survive: signed zero, subnormals, extremes
EXTREME_FLOATS = np.array(
    [-0.0, 1e-45, -1e-45, 1.1754942e-38, 3.4e38, -3.4e38, 1.0, 0.0], dtype=np.float32
)
AWKWARD_FLOATS = np.array(
    [math.pi, math.e, 1 / 3, -2 / 3, 1e-7, 123456.789, -0.1, 65504.0], dtype=np.float32
)


# -- capabilities -------------------------------------------------------------------
def require(harness: Harness, provider: Provider, capability: str) -> None:
    """Skip the test unless the provider declares the boolean ``capability``."""
    if not getattr(provider.capabilities, capability):
        pytest.skip(f"{harness.name} does not declare {capability}")


def id_type_for(caps: Capabilities) -> str:
    """The id type the tests use: "string" when accepted, else uint64, else uuid."""
    for kind in ("string", "uint64", "uuid"):
        if kind in caps.id_types:
            return kind
    raise AssertionError(f"capabilities declare no known id type: {sorted(caps.id_types)}")


def metric_for(caps: Capabilities) -> str:
    for metric in METRIC_PREFERENCE:
        if metric in caps.metrics:
            return metric
    raise AssertionError(f"capabilities declare no known metric: {sorted(caps.metrics)}")


def spec_for(provider: Provider, base: str, dimension: int | None = DIM, **kw: Any) -> IndexSpec:
    """An index spec with an id type and metric the provider declares."""
    caps = provider.capabilities
    kw.setdefault("metric", metric_for(caps))
    kw.setdefault("id_type", id_type_for(caps))
    return IndexSpec(base, dimension, **kw)


def make_ids(id_type: str, n: int, start: int = 0) -> list[str]:
    """``n`` distinct ids of ``id_type`` (always Python strings)."""
    if id_type == "string":
        return [f"rec-{i:06d}" for i in range(start, start + n)]
    if id_type == "uint64":
        return [str(i + 1) for i in range(start, start + n)]
    if id_type == "uuid":
        return [str(uuid.UUID(int=i + 1)) for i in range(start, start + n)]
    raise AssertionError(f"unknown id type {id_type!r}")


def missing_id(id_type: str) -> str:
    """A valid id of ``id_type`` that the tests never write."""
    return make_ids(id_type, 1, start=987_654)[0]


# -- data ---------------------------------------------------------------------------
def random_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def make_batch(
    spec: IndexSpec,
    ids: Sequence[str],
    *,
    seed: int = 0,
    metadata: Any = None,
) -> pa.RecordBatch:
    """Records with random dense vectors; ``metadata`` is a dict, a callable(i, id) or None."""
    assert spec.dimension is not None
    vectors = random_vectors(len(ids), spec.dimension, seed)
    rows = []
    for i, rid in enumerate(ids):
        meta = metadata(i, rid) if callable(metadata) else metadata
        rows.append({"id": rid, "values": vectors[i], "metadata": meta})
    return batch_from_records(spec, rows)


def write(
    provider: Provider, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
) -> None:
    """Upsert ``batch`` split to the declared limits; every record must be accepted."""
    for piece in split_for(batch, provider.capabilities):
        refused = provider.upsert(index, piece, namespace)
        assert not refused, f"upsert refused {len(refused)} records, e.g. {_head(refused)}"


def scan_pages(
    provider: Provider,
    index: str,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    batch_size: int = 1000,
    cursor: Cursor = None,
) -> list[ScanPage]:
    return list(provider.scan(index, namespace, batch_size=batch_size, cursor=cursor))


def scan_batch(
    provider: Provider, index: str, namespace: str = DEFAULT_NAMESPACE, batch_size: int = 1000
) -> pa.RecordBatch:
    """Every record of a namespace as one batch (pages concatenated)."""
    pages = scan_pages(provider, index, namespace, batch_size=batch_size)
    spec = provider.describe_index(index)
    for page in pages:
        assert_record_schema(page.batch, spec, "scan page")
    table = pa.Table.from_batches([p.batch for p in pages], schema=record_schema(spec))
    return (
        table.combine_chunks().to_batches()[0]
        if table.num_rows
        else pa.RecordBatch.from_pylist([], schema=record_schema(spec))
    )


def page_ids(pages: Iterable[ScanPage]) -> list[str]:
    return [rid for page in pages for rid in ids_of(page.batch)]


def ids_of(batch: pa.RecordBatch | pa.Table) -> list[str]:
    return list(batch.column(ID).to_pylist())


def scanned_ids(provider: Provider, index: str, namespace: str = DEFAULT_NAMESPACE) -> list[str]:
    return page_ids(scan_pages(provider, index, namespace, batch_size=1000))


def assert_no_repeats(ids: Sequence[str], what: str) -> None:
    repeated = sorted(rid for rid, n in Counter(ids).items() if n > 1)
    assert not repeated, f"{what}: {len(repeated)} ids repeated, e.g. {repeated[:5]}"


def assert_record_schema(batch: pa.RecordBatch, spec: IndexSpec, what: str) -> None:
    want = record_schema(spec)
    assert batch.schema.equals(want, check_metadata=False), (
        f"{what}: the batch does not have the record schema of the index\n"
        f"got:\n{batch.schema}\nexpected:\n{want}"
    )


# -- strict comparisons -----------------------------------------------------------
def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by exact value (42 == 42.0, 2**53+1 != 2**53), bools are not
    numbers, null only equals null, objects by keys, lists by order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is None and b is None
    return type(a) is type(b) and a == b


def assert_same_records(
    want: pa.RecordBatch,
    got: pa.RecordBatch,
    *,
    exact: bool = True,
    normalized: bool = False,
    what: str = "records",
) -> None:
    """``got`` holds exactly the records of ``want`` (any order): ids, every vector column
    (float32 bits when ``exact``, else a tolerance; directions when ``normalized``), sparse
    vectors and metadata (JSON equality)."""
    want_ids, got_ids = ids_of(want), ids_of(got)
    assert_no_repeats(got_ids, what)
    missing = sorted(set(want_ids) - set(got_ids))
    extra = sorted(set(got_ids) - set(want_ids))
    assert not missing and not extra, f"{what}: missing ids {missing[:5]}, unexpected {extra[:5]}"
    order = {rid: i for i, rid in enumerate(got_ids)}
    got = got.take(pa.array([order[rid] for rid in want_ids], pa.int64()))
    mode = "bit-exact" if exact and not normalized else "tolerance"
    for name in want.schema.names:
        if name == VALUES or name.startswith(NAMED_PREFIX):
            assert name in got.schema.names, f"{what}: column {name!r} is missing"
            _assert_dense(want_ids, want.column(name), got.column(name), exact, normalized, what)
        elif name == SPARSE:
            assert name in got.schema.names, f"{what}: column {name!r} is missing"
            _assert_sparse(
                want_ids, want.column(name), got.column(name), exact and not normalized, what
            )
    wm = want.column(METADATA).to_pylist()
    gm = got.column(METADATA).to_pylist() if METADATA in got.schema.names else [None] * len(wm)
    for rid, a, b in zip(want_ids, wm, gm, strict=True):
        ma, mb = loads_metadata(a), loads_metadata(b)
        assert json_equal(ma, mb), (
            f"{what}: metadata of {rid!r} differs ({mode} vectors)\nwrote {ma!r}\nread  {mb!r}"
        )


def _assert_dense(
    ids: list[str], want: pa.Array, got: pa.Array, exact: bool, normalized: bool, what: str
) -> None:
    wv = want.is_valid().to_numpy(zero_copy_only=False)
    gv = got.is_valid().to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(wv != gv)
    assert not len(bad), f"{what}: vector presence differs for {[ids[i] for i in bad[:5]]}"
    a, b = dense_matrix(want), dense_matrix(got)
    if normalized:
        finite = np.isfinite(np.linalg.norm(a.astype(np.float64), axis=1))
        same = np.isclose(_unit(a), _unit(b), rtol=1e-3, atol=1e-5).all(axis=1) | ~finite
        how = "as directions (the index normalises vectors)"
    elif exact:
        same = (a.view(np.uint32) == b.view(np.uint32)).all(axis=1)
        how = "bit-exact (float32 bit patterns)"
    else:
        same = np.isclose(a, b, rtol=1e-3, atol=1e-6).all(axis=1)
        how = "with tolerance rtol=1e-3 (exact_floats=False)"
    bad = np.flatnonzero(~same & wv)
    if len(bad):
        i = bad[0]
        raise AssertionError(
            f"{what}: {len(bad)} vectors differ compared {how}, e.g. {ids[i]!r}\n"
            f"wrote {a[i].tolist()} bits {a[i].view(np.uint32).tolist()}\n"
            f"read  {b[i].tolist()} bits {b[i].view(np.uint32).tolist()}"
        )


def _assert_sparse(ids: list[str], want: pa.Array, got: pa.Array, exact: bool, what: str) -> None:
    for rid, a, b in zip(ids, want.to_pylist(), got.to_pylist(), strict=True):
        if a is None or b is None:
            assert a is None and b is None, f"{what}: sparse vector of {rid!r}: wrote {a}, read {b}"
            continue
        wa = dict(zip(a["indices"], np.asarray(a["values"], np.float32), strict=True))
        ga = dict(zip(b["indices"], np.asarray(b["values"], np.float32), strict=True))
        assert len(b["indices"]) == len(ga), f"{what}: sparse vector of {rid!r} repeats indices"
        assert wa.keys() == ga.keys(), f"{what}: sparse indices of {rid!r}: wrote {a}, read {b}"
        for k, v in wa.items():
            same = (
                v.view(np.uint32) == ga[k].view(np.uint32)
                if exact
                else np.isclose(v, ga[k], rtol=1e-3)
            )
            assert same, f"{what}: sparse value {k} of {rid!r}: wrote {v!r}, read {ga[k]!r}"


def _unit(m: np.ndarray) -> np.ndarray:
    m = m.astype(np.float64)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)


def _head(mapping: Mapping[str, str], n: int = 3) -> dict[str, str]:
    return dict(list(mapping.items())[:n])


# -- engine helpers -----------------------------------------------------------------
def fast_retry() -> RetryPolicy:
    """Retries for tests: a few quick attempts, never minutes of waiting."""
    return RetryPolicy(max_attempts=4, max_elapsed=30.0, base_delay=0.05, max_delay=1.0)


class RecordingTarget:
    """A provider proxy that records the size of every batch that reaches ``upsert``."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name
        self.endpoint = inner.endpoint
        self.capabilities = inner.capabilities
        self.batches: list[tuple[int, int]] = []  # (rows, estimated request bytes)
        self._lock = threading.Lock()

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        request_bytes = int(row_nbytes(batch).sum() * self.capabilities.wire_factor)
        with self._lock:
            self.batches.append((batch.num_rows, request_bytes))
        return self.inner.upsert(index, batch, namespace)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)
