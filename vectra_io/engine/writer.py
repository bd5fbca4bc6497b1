"""The write side shared by import and migrate: split, upsert concurrently, account.

At most ``concurrency`` upserts are in flight; a chunk that still fails after
retries becomes a :class:`~vectra_io.errors.RecordFailure` carrying its ids and
the run goes on. Failures that no other chunk could escape (bad credentials, a
vanished or incompatible index, bad configuration) stop the run at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import (
    AuthError,
    ConfigError,
    IncompatibleIndexError,
    IndexNotFoundError,
    RecordFailure,
    RecordsRejectedError,
    UnsupportedError,
)
from ..providers.base import Capabilities, Provider
from ..records import ID
from .progress import Progress
from .retry import RetryPolicy

log = logging.getLogger("vectra_io.writer")
#: receives records that failed for good, with one reason per record
FailureSink = Callable[["WriteTask", pa.RecordBatch, list[str]], None]
ABORTING = (AuthError, IndexNotFoundError, IncompatibleIndexError, UnsupportedError, ConfigError)


def row_nbytes(batch: pa.RecordBatch) -> np.ndarray:
    """Approximate serialized size of each row (vectors as float32, strings as UTF-8)."""
    sizes = np.zeros(batch.num_rows, dtype=np.int64)
    for col in batch.columns:
        t = col.type
        if pa.types.is_fixed_size_list(t):
            sizes += t.list_size * 4
        elif pa.types.is_string(t) or pa.types.is_binary(t):
            sizes += pc.fill_null(pc.binary_length(col), 0).to_numpy(zero_copy_only=False) + 4
        elif pa.types.is_struct(t):
            lengths = pc.fill_null(pc.list_value_length(pc.struct_field(col, "indices")), 0)
            sizes += lengths.to_numpy(zero_copy_only=False).astype(np.int64) * 8
        else:
            sizes += 8
    return sizes


def split_for(batch: pa.RecordBatch, caps: Capabilities) -> list[pa.RecordBatch]:
    """Slices of ``batch`` within the provider's declared row and byte limits."""
    n = batch.num_rows
    max_rows = caps.max_batch_rows or n or 1
    if caps.max_batch_bytes is None:
        return [batch.slice(i, max_rows) for i in range(0, n, max_rows)] if n else []
    limit = caps.max_batch_bytes / caps.wire_factor
    cum = np.cumsum(row_nbytes(batch))
    out = []
    start = 0
    while start < n:
        base = cum[start - 1] if start else 0
        end = int(np.searchsorted(cum, base + limit, side="right"))
        end = min(max(end, start + 1), start + max_rows, n)
        out.append(batch.slice(start, end - start))
        start = end
    return out


@dataclass
class WriteTask:
    index: str
    namespace: str
    batch: pa.RecordBatch
    part: str | None = None
    #: called in the caller's thread once every record of the task was either
    #: acknowledged by the target or recorded as failed
    on_settled: Callable[[], None] | None = None


class UpsertPool:
    """Bounded concurrent upserts into one target with retries and failure accounting."""

    def __init__(
        self,
        target: Provider,
        *,
        concurrency: int,
        retry: RetryPolicy,
        progress: Progress,
        on_failed: FailureSink | None = None,
    ) -> None:
        self.target = target
        self.on_failed = on_failed
        self.concurrency = max(1, concurrency)
        self.retry = retry
        self.progress = progress
        self.failures: list[RecordFailure] = []
        self.written = 0
        self.batches = 0
        self.per_namespace: dict[tuple[str, str], dict[str, int]] = {}
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="vectra-upsert")
        self._inflight: dict[Future[Mapping[str, str]], WriteTask] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> UpsertPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, task: WriteTask) -> None:
        """Queue a chunk, split to the target's limits; blocks while the pool is full."""
        slices = split_for(task.batch, self.target.capabilities)
        settle = _countdown(len(slices), task.on_settled)
        for piece in slices:
            sub = WriteTask(task.index, task.namespace, piece, task.part, settle)
            while len(self._inflight) >= self.concurrency:
                self._collect(wait(self._inflight, return_when=FIRST_COMPLETED).done)
            fut = self._pool.submit(self._write, sub)
            self._inflight[fut] = sub

    def drain(self) -> None:
        while self._inflight:
            self._collect(wait(self._inflight, return_when=FIRST_COMPLETED).done)

    def _write(self, task: WriteTask) -> Mapping[str, str]:
        return self.retry.call(
            lambda: self.target.upsert(task.index, task.batch, task.namespace),
            what=f"upsert of {task.batch.num_rows} records into {task.index!r}",
        )

    def count(self, index: str, namespace: str) -> dict[str, int]:
        """The written/failed counters of one target namespace."""
        return self.per_namespace.setdefault(
            (index, namespace), {"written": 0, "failed": 0, "skipped": 0}
        )

    def _collect(self, done: set[Future[Mapping[str, str]]]) -> None:
        for fut in done:
            task = self._inflight.pop(fut)
            n = task.batch.num_rows
            counts = self.count(task.index, task.namespace)
            try:
                refused = fut.result()
            except ABORTING:
                self.drain_quietly()
                raise
            except Exception as exc:  # the chunk failed: account for every id and go on
                ids = task.batch.column(ID).to_pylist()
                details = exc.failures if isinstance(exc, RecordsRejectedError) else {}
                error = str(exc) or type(exc).__name__
                self._fail(task, ids, error, details)
                if self.on_failed is not None:
                    reasons = [details.get(i, error) for i in ids]
                    self.on_failed(task, task.batch, reasons)
                counts["failed"] += n
                self.progress.add(0, 1, failed=n)
                self.batches += 1
            else:
                ok = n - len(refused)
                if refused:
                    for reason, ids in group_by_reason(refused).items():
                        self._fail(task, ids, reason, {})
                    if self.on_failed is not None:
                        mask = pc.is_in(task.batch.column(ID), pa.array(list(refused), pa.string()))
                        bad = task.batch.filter(mask)
                        self.on_failed(task, bad, [refused[i] for i in bad.column(ID).to_pylist()])
                self.written += ok
                self.batches += 1
                counts["written"] += ok
                counts["failed"] += len(refused)
                self.progress.add(ok, 1, failed=len(refused))
            if task.on_settled is not None:
                task.on_settled()

    def drain_quietly(self) -> None:
        for fut in list(self._inflight):
            fut.cancel()
        self._inflight.clear()

    def _fail(
        self, task: WriteTask, ids: list[str], error: str, details: Mapping[str, str]
    ) -> None:
        log.warning(
            "%d records failed in index %r namespace %r: %s",
            len(ids),
            task.index,
            task.namespace,
            error,
        )
        self.failures.append(
            RecordFailure(task.index, task.namespace, ids, error, task.part, "write", dict(details))
        )


def _countdown(n: int, then: Callable[[], None] | None) -> Callable[[], None] | None:
    """A callback that calls ``then`` on its ``n``-th call (slices of one chunk settle apart)."""
    if then is None:
        return None
    left = [n]

    def settle() -> None:
        left[0] -= 1
        if left[0] == 0:
            then()

    return settle


def group_by_reason(refused: Mapping[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rid, reason in refused.items():
        out.setdefault(reason, []).append(rid)
    return out


def chunks(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Re-slice a stream of batches into batches of ``size`` rows (the last may be smaller)."""
    pending: list[pa.RecordBatch] = []
    have = 0
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            take = min(size - have, batch.num_rows - offset)
            pending.append(batch.slice(offset, take))
            have += take
            offset += take
            if have == size:
                yield _combine(pending)
                pending, have = [], 0
    if pending:
        yield _combine(pending)


def _combine(pieces: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(pieces) == 1:
        return pieces[0]
    return pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]


def describe_failures(failures: list[RecordFailure]) -> list[dict[str, Any]]:
    return [f.as_dict() for f in failures]
