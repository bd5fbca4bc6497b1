"""Migrate: copy directly from a source to a target through the same pipeline, no files."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from ..errors import RecordFailure
from ..providers.base import Provider, ScanPage
from ..records import conform, split_invalid
from .export import prefetch, resumable_scan
from .importer import ensure_target_index, finalize_indexes
from .progress import Progress, ProgressCallback
from .retry import RetryPolicy
from .writer import UpsertPool, WriteTask, chunks, group_by_reason

log = logging.getLogger("vectra_io.migrate")


def migrate(
    source: Provider,
    target: Provider,
    *,
    indexes: Sequence[str] | None = None,
    namespaces: Sequence[str] | None = None,
    index_map: Mapping[str, str] | None = None,
    namespace_map: Mapping[str, str] | None = None,
    batch_size: int = 500,
    chunk_size: int = 500,
    concurrency: int = 8,
    create_index: bool = True,
    metric: str | None = None,
    on_progress: ProgressCallback | None = None,
    retry: RetryPolicy | None = None,
) -> dict[str, Any]:
    """Copy ``indexes`` (default all) and ``namespaces`` (default all) from source to target."""
    index_map = dict(index_map or {})
    namespace_map = dict(namespace_map or {})
    retry = retry or RetryPolicy()
    plan = []
    for index in indexes or source.list_indexes():
        nss = list(namespaces) if namespaces is not None else source.list_namespaces(index)
        plan.append((index, nss))
    total = sum(source.count(i, n) for i, nss in plan for n in nss)
    progress = Progress(on_progress, "migrate", total, chunk_size)
    invalid: list[RecordFailure] = []
    started = time.monotonic()
    per_ns = []
    with UpsertPool(target, concurrency=concurrency, retry=retry, progress=progress) as pool:
        for index, nss in plan:
            tgt_index = index_map.get(index, index)
            spec = source.describe_index(index)
            ensure_target_index(target, spec.renamed(tgt_index), create_index, metric, retry)
            for namespace in nss:
                tgt_ns = namespace_map.get(namespace, namespace)
                progress.at(tgt_index, tgt_ns)
                pages = prefetch(resumable_scan(source, index, namespace, batch_size, None, retry))
                unreadable: dict[str, str] = {}
                for chunk in chunks(_batches(pages, unreadable), chunk_size):
                    clean, bad = split_invalid(conform(chunk, spec))
                    if bad:
                        invalid.append(
                            RecordFailure(
                                tgt_index,
                                tgt_ns,
                                bad,
                                "NaN or infinite value in a vector; record not written",
                                None,
                                "invalid",
                            )
                        )
                        progress.add(0, 0, failed=len(bad))
                        pool.count(tgt_index, tgt_ns)["failed"] += len(bad)
                    if clean.num_rows:
                        pool.submit(WriteTask(tgt_index, tgt_ns, clean))
                for reason, ids in group_by_reason(unreadable).items():
                    invalid.append(RecordFailure(index, namespace, ids, reason, None, "unreadable"))
                    progress.add(0, 0, failed=len(ids))
                    pool.count(tgt_index, tgt_ns)["failed"] += len(ids)
                per_ns.append((index, namespace, tgt_index, tgt_ns))
        pool.drain()
    finalize_indexes(target, {ti for _, _, ti, _ in per_ns})
    failures = invalid + pool.failures
    elapsed = time.monotonic() - started
    return {
        "migrated_count": pool.written,
        "failed_count": sum(len(f.ids) for f in failures),
        "batches": pool.batches,
        "errors": [f.as_dict() for f in failures],
        "namespaces": [
            {
                "index": i,
                "namespace": n,
                "target_index": ti,
                "target_namespace": tn,
                **pool.count(ti, tn),
            }
            for i, n, ti, tn in per_ns
        ],
        "elapsed": round(elapsed, 3),
        "rate": round(pool.written / elapsed, 1) if elapsed > 0 else 0.0,
    }


def _batches(pages: Iterator[ScanPage], unreadable: dict[str, str]) -> Iterator[pa.RecordBatch]:
    """The batches of the pages, collecting the records the source could not read."""
    for page in pages:
        unreadable.update(page.failures)
        yield page.batch
