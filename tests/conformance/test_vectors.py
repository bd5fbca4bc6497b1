"""Sparse vectors, named vectors and records without a dense vector, when declared."""

from __future__ import annotations

import pyarrow as pa

from vectra_io.providers.base import Provider, VectorSpec
from vectra_io.records import batch_from_records

from .conftest import IndexFactory
from .harness import Harness
from .support import (
    EXTREME_FLOATS,
    assert_record_schema,
    assert_same_records,
    make_ids,
    metric_for,
    random_vectors,
    require,
    scan_batch,
    spec_for,
    write,
)


def _check_round_trip(
    provider: Provider, spec_name: str, batch: pa.RecordBatch, ids: list[str]
) -> None:
    spec = provider.describe_index(spec_name)
    exact, normalized = provider.capabilities.exact_floats, spec.normalized
    got = provider.fetch(spec_name, ids)
    assert_record_schema(got, spec, "fetch")
    assert_same_records(batch, got, exact=exact, normalized=normalized, what="fetch")
    scanned = scan_batch(provider, spec_name)
    assert_same_records(batch, scanned, exact=exact, normalized=normalized, what="scan")


def test_sparse_vectors_round_trip(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    require(harness, provider, "sparse")
    spec = make_index(spec_for(provider, "sparse", sparse=True))
    assert provider.describe_index(spec.name).sparse, "describe lost sparse=True"
    ids = make_ids(spec.id_type, 3)
    dense = random_vectors(3, seed=3)
    many = list(range(0, 600, 3))
    sparse = [
        {"indices": [0, 7, 1000, 4_000_000_000], "values": [0.5, -1.25, 1e-45, 3.4e38]},
        {"indices": [3], "values": [2.5]},
        {"indices": many, "values": random_vectors(1, len(many), seed=4)[0]},
    ]
    rows = [
        {"id": rid, "values": vec, "sparse_values": sv, "metadata": {"i": i}}
        for i, (rid, vec, sv) in enumerate(zip(ids, dense, sparse, strict=True))
    ]
    batch = batch_from_records(spec, rows)
    write(provider, spec.name, batch)
    _check_round_trip(provider, spec.name, batch, ids)


def test_named_vectors_round_trip(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    require(harness, provider, "named_vectors")
    caps = provider.capabilities
    first = metric_for(caps)
    second = next((m for m in sorted(caps.metrics) if m != first), first)
    named = {"text": VectorSpec(8, first), "image": VectorSpec(4, second)}
    spec = make_index(spec_for(provider, "named", dimension=None, named_vectors=named))
    described = provider.describe_index(spec.name)
    assert described.dimension is None, f"no default vector was declared: {described}"
    assert dict(described.named_vectors) == named, f"described {described.named_vectors}"

    ids = make_ids(spec.id_type, 3)
    text, image = random_vectors(3, 8, seed=5), random_vectors(3, 4, seed=6)
    text[0] = EXTREME_FLOATS
    rows = [
        {"id": rid, "vectors": {"text": t, "image": im}, "metadata": {"i": i}}
        for i, (rid, t, im) in enumerate(zip(ids, text, image, strict=True))
    ]
    batch = batch_from_records(spec, rows)
    write(provider, spec.name, batch)
    _check_round_trip(provider, spec.name, batch, ids)


def test_records_without_dense_vector(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    require(harness, provider, "optional_dense")
    spec = make_index(spec_for(provider, "nodense"))
    ids = make_ids(spec.id_type, 2)
    rows = [
        {"id": ids[0], "values": None, "metadata": {"note": "no dense vector"}},
        {"id": ids[1], "values": random_vectors(1, seed=7)[0], "metadata": {"note": "dense"}},
    ]
    batch = batch_from_records(spec, rows)
    write(provider, spec.name, batch)
    _check_round_trip(provider, spec.name, batch, ids)
