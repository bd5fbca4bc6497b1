"""Upsert replaces by id: no duplicates, the second version wins, no stale metadata keys;
concurrent upserts through one provider all land."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from vectra_io.providers.base import Provider
from vectra_io.records import loads_metadata

from .conftest import IndexFactory
from .harness import Harness
from .support import (
    assert_no_repeats,
    assert_same_records,
    make_batch,
    make_ids,
    require,
    scan_batch,
    scanned_ids,
    spec_for,
    write,
)


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


def test_concurrent_upserts_all_land(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    """The engine writes through one provider from several threads: every record lands once."""
    spec = make_index(spec_for(provider, "concurrent"))
    ids = make_ids(spec.id_type, 240)
    batch = make_batch(spec, ids, metadata={"k": "v"})
    pieces = [batch.slice(start, 20) for start in range(0, len(ids), 20)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda piece: write(provider, spec.name, piece), pieces))

    got = scanned_ids(provider, spec.name)
    assert_no_repeats(got, "scan")
    assert set(got) == set(ids), f"{len(set(ids) - set(got))} of {len(ids)} records missing"
    if provider.capabilities.exact_count:
        assert provider.count(spec.name) == len(ids)
