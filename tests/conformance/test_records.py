"""Upsert + fetch (and scan) give back exactly what was written: ids, float32 bits, metadata."""

from __future__ import annotations

import uuid
import warnings

from vectra_io.providers.base import Provider
from vectra_io.records import batch_from_records

from .conftest import IndexFactory
from .harness import Harness
from .support import (
    AWKWARD_FLOATS,
    EXTREME_FLOATS,
    FLAT_METADATA,
    NESTED_METADATA,
    assert_record_schema,
    assert_same_records,
    make_ids,
    random_vectors,
    scan_batch,
    spec_for,
    write,
)


def _awkward_ids(id_type: str, n: int) -> list[str]:
    """``n`` ids including the extremes of the id type (JSON-unsafe integers, max UUID)."""
    ids = make_ids(id_type, n)
    if id_type == "uint64":
        ids[-3:] = [str(2**53 + 1), str(2**63 + 7), str(2**64 - 1)]
    elif id_type == "uuid":
        ids[-2:] = [str(uuid.UUID(int=2**128 - 1)), str(uuid.uuid4())]
    return ids


def test_dense_vectors_round_trip(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    """Bit-exact float32 (-0.0, subnormals, +-3.4e38) unless ``exact_floats`` is False."""
    spec = make_index(spec_for(provider, "dense"))
    normalized = provider.describe_index(spec.name).normalized
    exact = provider.capabilities.exact_floats
    if normalized or not exact:
        warnings.warn(
            f"{harness.name}: vectors compared with a tolerance, not bit-exact "
            f"(exact_floats={exact}, normalized={normalized})",
            stacklevel=1,
        )
    ids = _awkward_ids(spec.id_type, 12)
    vectors = random_vectors(len(ids), seed=1)
    vectors[0], vectors[1], vectors[2] = EXTREME_FLOATS, AWKWARD_FLOATS, -EXTREME_FLOATS
    rows = [
        {"id": rid, "values": vec, "metadata": None} for rid, vec in zip(ids, vectors, strict=True)
    ]
    batch = batch_from_records(spec, rows)
    write(provider, spec.name, batch)

    got = provider.fetch(spec.name, ids)
    assert_record_schema(got, spec, "fetch")
    assert_same_records(batch, got, exact=exact, normalized=normalized, what="fetch")
    scanned = scan_batch(provider, spec.name)
    assert_same_records(batch, scanned, exact=exact, normalized=normalized, what="scan")


def test_metadata_round_trip(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    """Nested objects, lists, nulls, bools, ints beyond 2**53, unicode (``nested_metadata``);
    a provider without it gets the flat subset: strings, numbers, bools, lists of strings."""
    spec = make_index(spec_for(provider, "metadata"))
    meta = NESTED_METADATA if provider.capabilities.nested_metadata else FLAT_METADATA
    ids = make_ids(spec.id_type, 4)
    metas = [meta, None, {"only": "one key"}, {"title": "x" * 1000, "n": 0}]
    vectors = random_vectors(len(ids), seed=2)
    rows = [
        {"id": rid, "values": vec, "metadata": m}
        for rid, vec, m in zip(ids, vectors, metas, strict=True)
    ]
    batch = batch_from_records(spec, rows)
    write(provider, spec.name, batch)
    exact = provider.capabilities.exact_floats
    normalized = provider.describe_index(spec.name).normalized

    got = provider.fetch(spec.name, ids)
    assert_same_records(batch, got, exact=exact, normalized=normalized, what="fetch")
    scanned = scan_batch(provider, spec.name)
    assert_same_records(batch, scanned, exact=exact, normalized=normalized, what="scan")
