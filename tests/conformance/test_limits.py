"""The engine's UpsertPool splits chunks at the declared limits, and the provider takes them.

A batch larger than ``max_batch_rows`` (or than ``max_batch_bytes`` over ``wire_factor``)
goes through :class:`~vectra_io.engine.writer.UpsertPool`: every row lands, nothing fails,
and every batch that reached ``upsert`` was within the limits.
"""

from __future__ import annotations

import dataclasses
import math

import pyarrow as pa
import pytest

from vectra_io.engine.progress import Progress
from vectra_io.engine.writer import UpsertPool, WriteTask, describe_failures, row_nbytes
from vectra_io.providers.base import DEFAULT_NAMESPACE, Capabilities, IndexSpec, Provider
from vectra_io.providers.memory import MEMORY_CAPABILITIES, MemoryProvider

from .conftest import IndexFactory
from .harness import Harness
from .support import (
    RecordingTarget,
    assert_no_repeats,
    fast_retry,
    make_batch,
    make_ids,
    scanned_ids,
    spec_for,
)

MAX_TEST_ROWS = 5000


def _pool_write(target: RecordingTarget, index: str, batch: pa.RecordBatch) -> None:
    n = batch.num_rows
    progress = Progress(None, "test", n, 1)
    with UpsertPool(target, concurrency=4, retry=fast_retry(), progress=progress) as pool:
        pool.submit(WriteTask(index, DEFAULT_NAMESPACE, batch))
        pool.drain()
    assert not pool.failures, f"failures: {describe_failures(pool.failures)[:3]}"
    assert pool.written == n, f"{pool.written} of {n} records written"


def _assert_within_limits(target: RecordingTarget, caps: Capabilities) -> None:
    assert target.batches, "no batch reached the provider"
    for rows, request_bytes in target.batches:
        if caps.max_batch_rows is not None:
            assert rows <= caps.max_batch_rows, (
                f"a batch of {rows} rows reached upsert; max_batch_rows={caps.max_batch_rows}"
            )
        if caps.max_batch_bytes is not None and rows > 1:
            assert request_bytes <= caps.max_batch_bytes, (
                f"a batch of ~{request_bytes} request bytes ({rows} rows) reached upsert; "
                f"max_batch_bytes={caps.max_batch_bytes}, wire_factor={caps.wire_factor}"
            )


def _assert_all_landed(provider: Provider, index: str, ids: list[str]) -> None:
    got = scanned_ids(provider, index)
    assert_no_repeats(got, "scan")
    assert set(got) == set(ids), f"{len(set(ids) - set(got))} records missing after the pool"


def test_upsert_pool_respects_max_batch_rows(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    caps = provider.capabilities
    if caps.max_batch_rows is None:
        pytest.skip(f"{harness.name} does not declare max_batch_rows")
    spec = make_index(spec_for(provider, "rowlimit"))
    ids = make_ids(spec.id_type, caps.max_batch_rows + 7)
    target = RecordingTarget(provider)
    _pool_write(target, spec.name, make_batch(spec, ids, metadata={"k": "v"}))
    _assert_within_limits(target, caps)
    assert len(target.batches) >= 2, f"{len(ids)} rows reached upsert as {target.batches}"
    _assert_all_landed(provider, spec.name, ids)


def test_upsert_pool_respects_max_batch_bytes(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    caps = provider.capabilities
    if caps.max_batch_bytes is None:
        pytest.skip(f"{harness.name} does not declare max_batch_bytes")
    limit = caps.max_batch_bytes / caps.wire_factor  # Arrow bytes per request
    spec = make_index(spec_for(provider, "bytelimit"))
    probe = make_batch(spec, make_ids(spec.id_type, 1), metadata={"pad": ""})
    base = int(row_nbytes(probe)[0])
    # rows big enough that the byte limit binds before the row limit, padded in metadata
    rows_cap = caps.max_batch_rows or MAX_TEST_ROWS
    row_bytes = min(16_384, max(base + 16, math.ceil(2 * limit / rows_cap)))
    if row_bytes > limit:
        pytest.skip(f"{harness.name}: max_batch_bytes={caps.max_batch_bytes} holds no test row")
    n = math.ceil(2.5 * limit / row_bytes) + 1
    if n > MAX_TEST_ROWS:
        pytest.skip(
            f"{harness.name}: max_batch_bytes={caps.max_batch_bytes} needs {n} rows of "
            f"{row_bytes} bytes to exceed; too much data for a conformance run"
        )
    pad = "x" * (row_bytes - base)
    ids = make_ids(spec.id_type, n)
    batch = make_batch(spec, ids, metadata=lambda i, rid: {"pad": pad})
    assert row_nbytes(batch).sum() * caps.wire_factor > caps.max_batch_bytes  # test premise

    target = RecordingTarget(provider)
    _pool_write(target, spec.name, batch)
    _assert_within_limits(target, caps)
    assert len(target.batches) >= 2, f"{n} rows reached upsert as {target.batches}"
    _assert_all_landed(provider, spec.name, ids)


@pytest.mark.parametrize("bound", ["rows", "bytes"])
def test_upsert_pool_splits_at_memory_declared_limits(bound: str) -> None:
    """The split path on the reference provider, given limits it does not have by default."""
    caps = dataclasses.replace(
        MEMORY_CAPABILITIES, max_batch_rows=50, max_batch_bytes=20_000, wire_factor=2.0
    )
    provider = MemoryProvider(capabilities=caps)
    spec = IndexSpec("limits", 8)
    provider.create_index(spec)
    n = 237
    pad = "" if bound == "rows" else "x" * 600
    ids = make_ids("string", n)
    batch = make_batch(spec, ids, metadata=lambda i, rid: {"i": i, "pad": pad})

    target = RecordingTarget(provider)
    _pool_write(target, spec.name, batch)
    _assert_within_limits(target, caps)
    rows = sorted(r for r, _ in target.batches)
    if bound == "rows":
        assert rows == [37, 50, 50, 50, 50], f"row-bound split gave {rows}"
    else:
        assert max(rows) < 50 and len(rows) > 5, f"byte-bound split gave {rows}"
    assert sum(rows) == n
    _assert_all_landed(provider, spec.name, ids)
    assert provider.count(spec.name) == n
