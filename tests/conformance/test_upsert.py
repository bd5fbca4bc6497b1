"""Upsert replaces by id: no duplicates, the second version wins, no stale metadata keys."""

from __future__ import annotations

from vectra_io.providers.base import Provider
from vectra_io.records import loads_metadata

from .conftest import IndexFactory
from .harness import Harness
from .support import assert_same_records, make_batch, make_ids, require, scan_batch, spec_for, write


def test_reupsert_replaces_records(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    require(harness, provider, "idempotent_upsert")
    caps = provider.capabilities
    spec = make_index(spec_for(provider, "reupsert"))
    ids = make_ids(spec.id_type, 20)
    first = make_batch(
        spec, ids, seed=1, metadata={"version": 1, "shared": "a", "old_only": "stale"}
    )
    second = make_batch(
        spec,
        ids,
        seed=2,
        metadata=lambda i, rid: None if i == 0 else {"version": 2, "shared": "b", "new_only": True},
    )
    write(provider, spec.name, first)
    write(provider, spec.name, second)

    if caps.exact_count:
        assert provider.count(spec.name) == len(ids), "re-upserting the same ids changed count"
    fetched = provider.fetch(spec.name, ids)
    for rid, text in zip(
        fetched.column("id").to_pylist(), fetched.column("metadata").to_pylist(), strict=True
    ):
        meta = loads_metadata(text) or {}
        assert "old_only" not in meta, f"{rid!r}: upsert merged the old metadata: {meta!r}"
    normalized = provider.describe_index(spec.name).normalized
    exact = caps.exact_floats
    assert_same_records(second, fetched, exact=exact, normalized=normalized, what="fetch")
    scanned = scan_batch(provider, spec.name)
    assert_same_records(second, scanned, exact=exact, normalized=normalized, what="scan")
