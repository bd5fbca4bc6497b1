"""Import: replay a snapshot into a target.

Each part is an independent job: it is checked (size, checksum, schema) before
any record of it is written, read in chunks of ``chunk_size`` rows, split to
the target's limits and upserted with at most ``concurrency`` writes in flight.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import (
    ConfigError,
    IncompatibleIndexError,
    IndexNotFoundError,
    RecordFailure,
    SnapshotError,
)
from ..providers.base import METRICS, UNKNOWN_METRIC, IndexSpec, Provider
from ..records import conform, split_invalid
from ..snapshot import layout
from ..snapshot import manifest as mf
from ..snapshot.checksum import DEFAULT_IMPORT_CHECK, known_checksum
from ..snapshot.layout import normalize_namespace, normalize_namespace_map
from ..snapshot.parts import PendingPart, check_part_schema, verify_part
from ..snapshot.storage import SnapshotStore
from .progress import Progress, ProgressCallback
from .retry import RetryPolicy
from .state import ImportState, claimed, read_failed
from .writer import UpsertPool, WriteTask

log = logging.getLogger("vectra_io.import")


def ensure_target_index(
    target: Provider,
    spec: IndexSpec,
    create_index: bool,
    metric: str | None = None,
    retry: RetryPolicy | None = None,
) -> IndexSpec:
    """Check the target index against ``spec`` (creating it when asked); return the spec used.

    Calls to the target go through the retry policy like every other request.
    """
    retry = retry or RetryPolicy()
    if metric:
        if metric not in METRICS:
            raise ConfigError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
        spec = replace(spec, metric=metric)
    caps = target.capabilities
    where: dict[str, Any] = {
        "provider": target.name,
        "endpoint": target.endpoint,
        "index": spec.name,
    }
    if spec.sparse and not caps.sparse:
        raise IncompatibleIndexError(
            "the records have sparse vectors, the target cannot store them", **where
        )
    if spec.named_vectors and not caps.named_vectors:
        raise IncompatibleIndexError(
            "the records have named vectors, the target cannot store them", **where
        )
    try:
        existing = retry.call(lambda: target.describe_index(spec.name), f"describe {spec.name!r}")
    except IndexNotFoundError:
        if not create_index:
            raise ConfigError(
                f"target index {spec.name!r} does not exist on {target.endpoint}; "
                "create it or allow creation (--create-index)"
            ) from None
        if spec.metric == UNKNOWN_METRIC:
            raise ConfigError(
                f"the snapshot does not know the metric of index {spec.name!r}; "
                "give it with --metric (cosine, dot, euclidean or manhattan)"
            ) from None
        if spec.metric not in caps.metrics:
            raise IncompatibleIndexError(
                f"metric {spec.metric!r} cannot be expressed by {target.name}", **where
            ) from None
        log.info("creating index %r on %s", spec.name, target.endpoint)
        retry.call(lambda: target.create_index(spec), f"create {spec.name!r}")
        return retry.call(lambda: target.describe_index(spec.name), f"describe {spec.name!r}")
    # a store may not know the dimension of an index it holds nothing of yet (Weaviate)
    learns = existing.dimension is None and not existing.named_vectors
    if existing.dimension != spec.dimension and not learns:
        raise IncompatibleIndexError(
            f"target index exists with dimension {existing.dimension}, "
            f"the records have dimension {spec.dimension}",
            **where,
        )
    if spec.sparse and not existing.sparse:
        raise IncompatibleIndexError(
            "the records have sparse vectors, the existing target index has none", **where
        )
    known = UNKNOWN_METRIC not in (existing.metric, spec.metric)
    if known and existing.metric != spec.metric:
        raise IncompatibleIndexError(
            f"target index exists with metric {existing.metric}, the records were indexed "
            f"with {spec.metric}; pass another target index or --metric {existing.metric} "
            "to accept it",
            **where,
        )
    for name, vec in spec.named_vectors.items():
        have = existing.named_vectors.get(name)
        if have is None or have.dimension != vec.dimension:
            raise IncompatibleIndexError(
                f"target index has no named vector {name!r} of dimension {vec.dimension}", **where
            )
    return existing


def finalize_indexes(target: Provider, indexes: set[str]) -> None:
    """Let the target finish indexes after a load (e.g. build ANN indexes), if it wants to."""
    finalize = getattr(target, "finalize_index", None)
    if finalize is None:
        return
    for index in sorted(indexes):
        finalize(index)


def _select(
    manifest: dict[str, Any],
    indexes: Sequence[str] | None,
    namespaces: Sequence[str | None] | None,
    index_map: Mapping[str, str],
    namespace_map: Mapping[str, str],
) -> list[tuple[str, str, dict[str, Any]]]:
    known = manifest["indexes"]
    for name in list(indexes or []) + list(index_map):
        if name not in known:
            have = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"index {name!r} is not in the snapshot (it has: {have})")
    wanted_ns = None if namespaces is None else {"" if n is None else n for n in namespaces}
    chosen = []
    for index, namespace, entry in mf.iter_namespaces(manifest):
        if indexes and index not in indexes:
            continue
        if wanted_ns is not None and namespace not in wanted_ns:
            continue
        chosen.append((index, namespace, entry))
    present = {ns for _, ns, _ in chosen}
    for ns in namespace_map:
        if normalize_namespace(ns) not in present:
            raise ConfigError(
                f"namespace {ns!r} is not among the selected namespaces of the snapshot"
            )
    return chosen


@dataclass
class PartJob:
    """Import of one part: needs nothing but the part, the target and its own state."""

    part: dict[str, Any]
    spec: IndexSpec
    expected: pa.Schema
    target_index: str
    target_namespace: str

    @property
    def path(self) -> str:
        return str(self.part["path"])

    def run(
        self,
        part: PendingPart,
        pool: UpsertPool,
        chunk_size: int,
        progress: Progress,
        state: ImportState | None,
    ) -> list[RecordFailure]:
        """Queue the part's chunks on the pool (skipping those the state says are done).

        The part is decoded while its checksum is still being verified (when it is
        on local disk), but no chunk is queued before the check has passed.
        Returns the records rejected as invalid (never written).
        """
        path = self.path
        invalid: list[RecordFailure] = []
        done = state.chunks_done(path, chunk_size) if state else set()
        tracker = _PartTracker(state, path, chunk_size)
        try:
            pf = part.open()
            try:
                check_part_schema(pf, self.expected, path)
                groups = pf.num_row_groups
            finally:
                pf.close()
            # closed here, explicitly: its decoders stop before the caller releases the part
            with contextlib.closing(read_chunks(part.open, groups, chunk_size)) as chunks:
                for number, raw in enumerate(chunks):
                    if number == 0:
                        part.verified()
                    self._queue(number, raw, done, tracker, pool, progress, invalid)
            part.verified()  # also a part without rows is checked before it counts as done
        except Exception:
            part.verified()  # a part that fails its checksum: that is the error to report
            raise
        tracker.all_submitted()
        return invalid

    def _queue(
        self,
        number: int,
        raw: pa.RecordBatch,
        done: set[int],
        tracker: _PartTracker,
        pool: UpsertPool,
        progress: Progress,
        invalid: list[RecordFailure],
    ) -> None:
        path = self.path
        if number in done:
            progress.skip(raw.num_rows, 1)
            pool.count(self.target_index, self.target_namespace)["skipped"] += raw.num_rows
            return
        try:
            batch = conform(raw, self.spec)
        except ValueError as exc:
            raise SnapshotError(f"part {path}: {exc}") from exc
        clean, bad_ids = split_invalid(batch)
        if bad_ids:
            invalid.append(
                RecordFailure(
                    self.target_index,
                    self.target_namespace,
                    bad_ids,
                    "NaN or infinite value in a vector; record not written",
                    path,
                    "invalid",
                )
            )
            progress.add(0, 0, failed=len(bad_ids))
            pool.count(self.target_index, self.target_namespace)["failed"] += len(bad_ids)
        settle = tracker.chunk(number)
        if clean.num_rows:
            pool.submit(WriteTask(self.target_index, self.target_namespace, clean, path, settle))
        else:
            settle()


def read_chunks(
    open_part: Callable[[], pq.ParquetFile],
    groups: int,
    chunk_size: int,
    workers: int | None = None,
) -> Generator[pa.RecordBatch, None, None]:
    """The records of a part of ``groups`` row groups in chunks of ``chunk_size`` rows
    (fewer at a row group's end).

    Row groups are decoded by a small pool of threads (each with its own file
    handle), up to ``workers`` ahead of the consumer and yielded in file order,
    so decompression overlaps with the writes. Each row group is decoded chunk
    by chunk, into chunk-sized buffers that stay in the CPU cache (decoding a
    whole 32 MiB row group at once measured 60% more CPU). The chunking depends
    only on the file and ``chunk_size``, so chunk numbers are stable across runs
    (import state).
    """
    workers = workers or min(4, os.cpu_count() or 1)
    local = threading.local()
    handles: list[pq.ParquetFile] = []
    lock = threading.Lock()

    def decode(group: int) -> list[pa.RecordBatch]:
        pf = getattr(local, "pf", None)
        if pf is None:
            pf = local.pf = open_part()
            with lock:
                handles.append(pf)
        chunks = list(pf.iter_batches(batch_size=chunk_size, row_groups=[group], use_threads=False))
        if any(c.num_rows != chunk_size for c in chunks[:-1]):  # keep the numbering exact
            chunks = pa.Table.from_batches(chunks).combine_chunks().to_batches(chunk_size)
        return chunks

    pool = ThreadPoolExecutor(workers, thread_name_prefix="vectra-decode")
    ahead: collections.deque[Future[list[pa.RecordBatch]]] = collections.deque()
    try:
        for group in range(groups):
            while len(ahead) <= workers and group + len(ahead) < groups:
                ahead.append(pool.submit(decode, group + len(ahead)))
            yield from ahead.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for pf in handles:
            pf.close()


class _PartTracker:
    """Marks chunks in the state as they settle, and the part once all of them have."""

    def __init__(self, state: ImportState | None, path: str, chunk_size: int) -> None:
        self.state, self.path, self.chunk_size = state, path, chunk_size
        self.pending: set[int] = set()
        self.submitted_all = False

    def chunk(self, number: int) -> Callable[[], None]:
        self.pending.add(number)

        def settle() -> None:
            self.pending.discard(number)
            if self.state is not None:
                self.state.mark_chunk(self.path, self.chunk_size, number)
            self._maybe_complete()

        return settle

    def all_submitted(self) -> None:
        self.submitted_all = True
        self._maybe_complete()

    def _maybe_complete(self) -> None:
        if self.submitted_all and not self.pending and self.state is not None:
            self.state.mark_part(self.path, self.chunk_size)


def parts_ahead(
    store: SnapshotStore, jobs: list[PartJob], checksum: str = DEFAULT_IMPORT_CHECK
) -> Iterator[tuple[PartJob, PendingPart]]:
    """Each job with its part under verification (by ``checksum``); the next part is checked
    while this one imports. The consumer releases each part it receives."""
    if not jobs:
        return

    def pending(job: PartJob) -> PendingPart:
        relpath = layout.checked_relpath(job.path)
        local = store.local_path(relpath) if store.local else None
        return PendingPart(verifier.submit(verify_part, store, job.part, checksum), relpath, local)

    with ThreadPoolExecutor(1, thread_name_prefix="vectra-verify") as verifier:
        ahead = pending(jobs[0])
        for i, job in enumerate(jobs):
            current = ahead
            try:
                if i + 1 < len(jobs):
                    ahead = pending(jobs[i + 1])
                yield job, current
            except BaseException:
                if ahead is not current:  # the current part is the consumer's to release
                    ahead.release()
                raise
        if ahead is not current:
            ahead.release()


def import_snapshot(
    snapshot: str,
    target: Any,
    index_map: Mapping[str, str] | None = None,
    namespace_map: Mapping[str | None, str | None] | None = None,
    chunk_size: int = 500,
    concurrency: int = 8,
    create_index: bool = True,
    on_progress: ProgressCallback | None = None,
    *,
    indexes: Sequence[str] | None = None,
    namespaces: Sequence[str | None] | None = None,
    metric: str | None = None,
    retry: RetryPolicy | None = None,
    storage_options: dict[str, Any] | None = None,
    state: str | os.PathLike[str] | Literal[False] | None = None,
    restart: bool = False,
    retry_failed: bool = False,
    checksum: str = DEFAULT_IMPORT_CHECK,
) -> dict[str, Any]:
    """Import a snapshot into ``target`` (a Client, a Provider or a provider URL).

    Each part's size and ``checksum`` (``crc32``, the default, or ``sha256``; a
    snapshot that lists no CRC-32 is checked by SHA-256) must match the manifest
    before any of its records is written.

    ``state`` is where progress is kept (default: a per-user directory, see
    :mod:`vectra_io.engine.state`; ``False``: keep none). Re-running the same
    import resumes it; ``restart=True`` starts over. ``retry_failed=True``
    replays only the records that failed in earlier runs.
    """
    from ..api import as_provider

    dst = as_provider(target)
    if chunk_size < 1 or concurrency < 1:
        raise ConfigError("chunk_size and concurrency must be at least 1")
    known_checksum(checksum)
    store = SnapshotStore(snapshot, **(storage_options or {}))
    manifest = mf.load(store)
    index_map = dict(index_map or {})
    ns_map = normalize_namespace_map(namespace_map)
    chosen = _select(manifest, indexes, namespaces, index_map, ns_map)
    run_state = None
    if state is not False:
        mapping = {"indexes": index_map, "namespaces": ns_map}
        try:
            run_state = ImportState.open(
                state,
                manifest=manifest,
                snapshot_url=store.url,
                target_endpoint=dst.endpoint,
                mapping=mapping,
                restart=restart,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    if retry_failed and run_state is None:
        raise ConfigError("retry_failed needs the import state (state must not be False)")

    retry = retry or RetryPolicy()
    started = time.monotonic()
    on_failed = None
    if run_state is not None:
        keeper = run_state

        def on_failed(task: WriteTask, batch: pa.RecordBatch, reasons: list[str]) -> None:
            keeper.write_failed(task.index, task.namespace, batch, reasons)

    specs: dict[str, IndexSpec] = {}
    for index in [i for i in manifest["indexes"] if not indexes or i in indexes]:
        spec = mf.spec_from_entry(index, manifest["indexes"][index])
        spec = spec.renamed(index_map.get(index, index))
        specs[index] = ensure_target_index(dst, spec, create_index, metric, retry)

    jobs: list[PartJob] = []
    namespaces_out = []
    for index, namespace, ns_entry in chosen:
        tgt_index, tgt_ns = index_map.get(index, index), ns_map.get(namespace, namespace)
        expected = mf.expected_schema(manifest["indexes"][index], index)
        jobs += [PartJob(p, specs[index], expected, tgt_index, tgt_ns) for p in ns_entry["parts"]]
        namespaces_out.append((index, namespace, tgt_index, tgt_ns, ns_entry["rows"]))

    invalid: list[RecordFailure] = []
    try:
        if retry_failed:
            assert run_state is not None
            files = run_state.failed_files()
            total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            progress = Progress(on_progress, "retry-failed", total, chunk_size)
            with (
                UpsertPool(
                    dst,
                    concurrency=concurrency,
                    retry=retry,
                    progress=progress,
                    on_failed=on_failed,
                ) as pool,
                claimed(files) as taken,
            ):
                for path in taken:
                    tgt_index, tgt_ns, table = read_failed(path)
                    progress.at(tgt_index, tgt_ns)
                    for batch in table.to_batches(max_chunksize=chunk_size):
                        pool.submit(WriteTask(tgt_index, tgt_ns, batch, path.name))
                pool.drain()
        else:
            total = sum(e["rows"] for _, _, e in chosen)
            batches = sum(math.ceil(e["rows"] / chunk_size) for _, _, e in chosen)
            progress = Progress(on_progress, "import", total, chunk_size, batches)
            with UpsertPool(
                dst, concurrency=concurrency, retry=retry, progress=progress, on_failed=on_failed
            ) as pool:
                todo = []
                for job in jobs:
                    if run_state is not None and run_state.part_complete(job.path):
                        progress.skip(job.part["rows"])
                        pool.count(job.target_index, job.target_namespace)["skipped"] += job.part[
                            "rows"
                        ]
                    else:
                        todo.append(job)
                for job, part in parts_ahead(store, todo, checksum):
                    progress.at(job.target_index, job.target_namespace)
                    try:
                        invalid += job.run(part, pool, chunk_size, progress, run_state)
                    finally:
                        part.release()
                pool.drain()
    finally:  # what settled is a fact, also when the run is interrupted
        if run_state is not None:
            run_state.save(force=True)
    finalize_indexes(dst, {job.target_index for job in jobs})
    return _result(pool, invalid, namespaces_out, run_state, time.monotonic() - started)


def _result(
    pool: UpsertPool,
    invalid: list[RecordFailure],
    namespaces_out: list[tuple[str, str, str, str, int]],
    run_state: ImportState | None,
    elapsed: float,
) -> dict[str, Any]:
    failures = invalid + pool.failures
    per_ns = []
    for index, namespace, tgt_index, tgt_ns, rows in namespaces_out:
        counts = pool.count(tgt_index, tgt_ns)
        per_ns.append(
            {
                "index": index,
                "namespace": namespace,
                "target_index": tgt_index,
                "target_namespace": tgt_ns,
                "snapshot_rows": rows,
                "imported": counts["written"],
                "skipped": counts["skipped"],
                "failed": counts["failed"],
            }
        )
    return {
        "imported_count": pool.written,
        "skipped_count": sum(c["skipped"] for c in pool.per_namespace.values()),
        "failed_count": sum(len(f.ids) for f in failures),
        "batches": pool.batches,
        "errors": [f.as_dict() for f in failures],
        "namespaces": per_ns,
        "state_file": str(run_state.path) if run_state else None,
        "failed_records": (
            str(run_state.failed_dir) if run_state and run_state.failed_files() else None
        ),
        "pending_failed_count": run_state.failed_count() if run_state else 0,
        "elapsed": round(elapsed, 3),
        "rate": round(pool.written / elapsed, 1) if elapsed > 0 else 0.0,
    }
