"""Through the engine: migrate from memory into the provider; export the provider's index to
a snapshot and import it into memory, exactly."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

import vectra_io
from vectra_io.providers.base import DEFAULT_NAMESPACE, Provider
from vectra_io.providers.memory import MemoryProvider

from .conftest import IndexFactory
from .harness import Harness
from .support import (
    FLAT_METADATA,
    NESTED_METADATA,
    assert_same_records,
    fast_retry,
    ids_of,
    make_batch,
    make_ids,
    require,
    spec_for,
    write,
)


def _migrate_and_check(provider: Provider, make_index: IndexFactory, sizes: dict[str, int]) -> None:
    source = MemoryProvider()
    spec = spec_for(provider, "source")  # ids and metric the target declares
    source.create_index(spec)
    batches: dict[str, pa.RecordBatch] = {}
    for k, (ns, n) in enumerate(sizes.items()):
        ids = make_ids(spec.id_type, n, start=1000 * k)
        meta = {**FLAT_METADATA, "ns": ns or "default"}
        batches[ns] = make_batch(spec, ids, seed=k, metadata=lambda i, rid, m=meta: {**m, "i": i})
        source.upsert(spec.name, batches[ns], ns)
    target = make_index.reserve("migrated")

    result = vectra_io.migrate(
        source,
        provider,
        indexes=[spec.name],
        index_map={spec.name: target},
        batch_size=40,
        chunk_size=25,
        concurrency=2,
        retry=fast_retry(),
    )
    assert result["failed_count"] == 0, result["errors"][:3]
    assert result["migrated_count"] == sum(sizes.values())

    described = provider.describe_index(target)
    assert (described.dimension, described.metric, described.id_type) == (
        spec.dimension,
        spec.metric,
        spec.id_type,
    )
    caps = provider.capabilities
    migration = vectra_io.Migration(source, provider)
    for ns, batch in batches.items():
        if caps.exact_count:
            check = migration.verify(spec.name, target, ns, ns)
            assert check["match"], f"namespace {ns!r}: {check}"
        got = provider.fetch(target, ids_of(batch), ns)
        assert_same_records(
            batch,
            got,
            exact=caps.exact_floats,
            normalized=described.normalized,
            what=f"migrated namespace {ns!r}",
        )


def test_migrate_into_provider(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    _migrate_and_check(provider, make_index, {DEFAULT_NAMESPACE: 110})


def test_migrate_namespaces_into_provider(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    require(harness, provider, "namespaces")
    _migrate_and_check(provider, make_index, {"alpha": 70, "beta": 45})


def test_export_then_import_into_memory_is_exact(
    harness: Harness, provider: Provider, make_index: IndexFactory, tmp_path: Path
) -> None:
    """Records written to the provider, exported to a snapshot and imported into memory are
    the records written (with a second namespace when the provider declares namespaces)."""
    caps = provider.capabilities
    spec = make_index(spec_for(provider, "exported"))
    sizes = {DEFAULT_NAMESPACE: 90, "alpha": 35} if caps.namespaces else {DEFAULT_NAMESPACE: 90}
    meta = NESTED_METADATA if caps.nested_metadata else FLAT_METADATA
    written: dict[str, pa.RecordBatch] = {}
    for k, (ns, n) in enumerate(sizes.items()):
        ids = make_ids(spec.id_type, n, start=1000 * k)
        written[ns] = make_batch(
            spec, ids, seed=10 + k, metadata=lambda i, rid: None if i % 7 == 0 else {**meta, "i": i}
        )
        write(provider, spec.name, written[ns], ns)

    snapshot = str(tmp_path / "snapshot")
    manifest = vectra_io.export_snapshot(
        provider, snapshot, indexes=[spec.name], batch_size=40, part_rows=60, retry=fast_retry()
    )
    assert manifest["errors"] == []
    memory = MemoryProvider()
    result = vectra_io.import_snapshot(snapshot, memory, chunk_size=30, retry=fast_retry())
    assert result["failed_count"] == 0, result["errors"][:3]
    assert result["imported_count"] == sum(sizes.values())

    source_spec, copy_spec = provider.describe_index(spec.name), memory.describe_index(spec.name)
    assert (copy_spec.dimension, copy_spec.metric, copy_spec.id_type) == (
        source_spec.dimension,
        source_spec.metric,
        source_spec.id_type,
    )
    assert sorted(memory.list_namespaces(spec.name)) == sorted(sizes)
    for ns, batch in written.items():
        assert memory.count(spec.name, ns) == batch.num_rows
        got = memory.fetch(spec.name, ids_of(batch), ns)
        assert_same_records(
            batch,
            got,
            exact=caps.exact_floats,
            normalized=source_spec.normalized,
            what=f"imported namespace {ns!r}",
        )
