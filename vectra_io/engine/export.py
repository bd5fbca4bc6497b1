"""Export: stream every record of a source into a snapshot.

Pages are fetched and checked (NaN/infinity) by a background thread up to a row
group ahead of the writer, so the source and the disk work at the same time;
memory stays at about two row groups. After each committed part the manifest is
rewritten with the scan cursor that follows it (checkpoint), so an interrupted
export resumes without skipping or repeating records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pyarrow as pa

from ..errors import ConfigError, RecordFailure, RetryableError, SnapshotError
from ..providers.base import Cursor, IndexSpec, Provider, ScanPage
from ..records import conform, record_schema, split_invalid
from ..snapshot import layout
from ..snapshot import manifest as mf
from ..snapshot.parts import (
    COMPRESSIONS,
    DEFAULT_COMPRESSION,
    DEFAULT_PART_BYTES,
    DEFAULT_PART_ROWS,
    ROW_GROUP_BYTES,
    PartInfo,
    PartWriter,
)
from ..snapshot.storage import SnapshotStore
from .progress import Progress, ProgressCallback
from .retry import RetryPolicy
from .writer import group_by_reason

log = logging.getLogger("vectra_io.export")
MAX_REJECTED_IDS = 1000
NON_FINITE = "NaN or infinite value in a vector; record not written"
T = TypeVar("T")


def resumable_scan(
    source: Provider,
    index: str,
    namespace: str,
    batch_size: int,
    cursor: Cursor,
    retry: RetryPolicy,
) -> Iterator[ScanPage]:
    """Scan pages; on a retryable failure, start a new scan from the last cursor.

    (A generator that raised is finished, so retrying ``next()`` on it would
    look like the end of the data: the scan itself must be restarted.)
    """
    attempt, started = 0, time.monotonic()
    while True:
        retry.gate.wait(retry.sleep)
        try:
            for page in source.scan(index, namespace, batch_size=batch_size, cursor=cursor):
                attempt, started = 0, time.monotonic()
                cursor = page.cursor
                yield page
                if cursor is None:
                    return
            return
        except RetryableError as exc:
            attempt += 1
            retry.backoff(exc, attempt, started, f"scan of {index!r} namespace {namespace!r}")


def prefetch(
    it: Iterator[T],
    depth: int = 1,
    *,
    max_bytes: int | None = None,
    size: Callable[[T], int] | None = None,
) -> Iterator[T]:
    """Run ``it`` in a background thread ahead of the consumer.

    It runs ``depth`` items ahead; with ``max_bytes`` (and ``size`` giving an
    item's bytes) it runs as many items ahead as fit in ``max_bytes`` instead,
    always at least one.
    """
    ready: deque[tuple[str, Any, int]] = deque()
    cond = threading.Condition()
    held = [0, 0]  # items, bytes waiting for the consumer
    stop = threading.Event()

    def room(nbytes: int) -> bool:
        if held[0] == 0:
            return True
        if max_bytes is not None:
            return held[1] + nbytes <= max_bytes
        return held[0] < depth

    def put(kind: str, value: Any, nbytes: int = 0) -> bool:
        with cond:
            while not stop.is_set() and not room(nbytes):
                cond.wait(0.1)
            if stop.is_set():
                return False
            ready.append((kind, value, nbytes))
            held[0] += 1
            held[1] += nbytes
            cond.notify_all()
            return True

    def run() -> None:
        try:
            for item in it:
                if not put("item", item, size(item) if size and max_bytes else 0):
                    return
            put("end", None)
        except BaseException as exc:
            put("error", exc)

    thread = threading.Thread(target=run, name="vectra-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            with cond:
                while not ready:
                    cond.wait()
                kind, value, nbytes = ready.popleft()
                held[0] -= 1
                held[1] -= nbytes
                cond.notify_all()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        with cond:
            stop.set()
            cond.notify_all()
        thread.join()


def export_snapshot(
    source: Any,
    snapshot: str,
    indexes: Sequence[str] | None = None,
    namespaces: Sequence[str | None] | None = None,
    batch_size: int = 1000,
    on_progress: ProgressCallback | None = None,
    *,
    part_rows: int = DEFAULT_PART_ROWS,
    part_bytes: int = DEFAULT_PART_BYTES,
    compression: str = DEFAULT_COMPRESSION,
    resume: bool = True,
    force: bool = False,
    retry: RetryPolicy | None = None,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export ``indexes`` (default: all) of ``source`` to the snapshot at ``snapshot``.

    Returns the final manifest, with an extra ``errors`` list of records that
    were rejected (never written), each naming its ids.
    """
    from ..api import as_provider

    src = as_provider(source)
    if compression not in COMPRESSIONS:
        raise ConfigError(f"unknown compression {compression!r}: use one of {COMPRESSIONS}")
    if batch_size < 1 or part_rows < 1:
        raise ConfigError("batch_size and part_rows must be at least 1")
    retry = retry or RetryPolicy()
    store = SnapshotStore(snapshot, **(storage_options or {}))
    manifest = _start_manifest(store, src, compression, part_rows, resume, force)

    selected = list(indexes) if indexes else src.list_indexes()
    manifest["source"]["indexes"] = sorted(
        set(manifest["source"].get("indexes", [])) | set(selected)
    )
    compression = manifest["compression"]  # a resumed snapshot keeps its own
    plan: list[tuple[IndexSpec, list[str]]] = []
    for index in selected:
        spec = src.describe_index(index)
        if index not in manifest["indexes"]:
            manifest["indexes"][index] = mf.index_entry(spec)
        nss = (
            [layout.normalize_namespace(n) for n in namespaces]
            if namespaces is not None
            else src.list_namespaces(index)
        )
        plan.append((spec, nss))

    counts = {(s.name, n): src.count(s.name, n) for s, nss in plan for n in nss}
    progress = Progress(on_progress, "export", sum(counts.values()), batch_size)
    errors: list[RecordFailure] = []
    with ThreadPoolExecutor(1, thread_name_prefix="vectra-digest") as hasher:
        for spec, nss in plan:
            entry = manifest["indexes"][spec.name]
            for namespace in nss:
                key = layout.namespace_key(namespace)
                ns_entry = entry["namespaces"].get(key)
                if ns_entry is None:
                    ns_entry = entry["namespaces"][key] = mf.namespace_entry(
                        spec.name, namespace, counts[(spec.name, namespace)]
                    )
                progress.at(spec.name, namespace)
                if ns_entry["status"] == "done":
                    progress.skip(ns_entry["rows"], len(ns_entry["parts"]))
                    continue
                job = _NamespaceJob(src, store, manifest, ns_entry, spec, namespace, hasher)
                job.run(batch_size, part_rows, part_bytes, compression, retry, progress, errors)
    manifest["complete"] = True
    manifest["completed_at"] = mf.utc_now()
    mf.save(store, manifest)
    log.info("export to %s complete: %d records", store.url, progress.done)
    return {**manifest, "errors": [e.as_dict() for e in errors]}


def _start_manifest(
    store: SnapshotStore, src: Provider, compression: str, part_rows: int, resume: bool, force: bool
) -> dict[str, Any]:
    source_info = {"provider": src.name, "endpoint": src.endpoint, "indexes": []}
    if store.exists(layout.MANIFEST):
        old = mf.load(store, require_complete=False)
        if old.get("complete") and not force:
            raise SnapshotError(
                f"{store.url} already holds a complete snapshot; "
                "choose another location or pass force=True (--force) to overwrite it"
            )
        same_source = (
            old["source"].get("provider") == src.name
            and old["source"].get("endpoint") == src.endpoint
        )
        if resume and not old.get("complete") and same_source:
            if old.get("compression") != compression:
                log.info("resuming with the snapshot's compression %s", old.get("compression"))
            log.info("resuming the incomplete snapshot at %s", store.url)
            return old
        if not old.get("complete") and resume and not same_source:
            raise SnapshotError(
                f"{store.url} holds an incomplete snapshot of another source "
                f"({old['source'].get('endpoint')}); restart it or choose another location"
            )
        for index_entry in old["indexes"].values():
            store.remove_tree(index_entry["path"])
    manifest = mf.new_manifest(source_info, compression, {"part_rows": part_rows})
    mf.save(store, manifest)
    return manifest


class _Checkpoints:
    """Parts durable on storage whose digests are still being computed, oldest first.

    A part enters the manifest (with the cursor that follows it) only once its
    hash is known, in order, so a checkpoint never runs ahead of the data.
    """

    def __init__(self, store: SnapshotStore, manifest: dict[str, Any], ns_entry: dict[str, Any]):
        self.store, self.manifest, self.ns_entry = store, manifest, ns_entry
        self.pending: deque[tuple[Future[PartInfo], Cursor, list[str]]] = deque()

    def next_number(self) -> int:
        return len(self.ns_entry["parts"]) + len(self.pending)

    def add(self, part: Future[PartInfo], cursor: Cursor, rejected: list[str]) -> None:
        self.pending.append((part, cursor, rejected))
        self.settle(wait=False)

    def settle(self, wait: bool) -> None:
        changed = False
        while self.pending and (wait or self.pending[0][0].done()):
            part, cursor, rejected = self.pending.popleft()
            info = part.result()
            _record_rejected(self.ns_entry, rejected)
            self.ns_entry["parts"].append(info.as_dict())
            self.ns_entry["rows"] += info.rows
            self.ns_entry["cursor"] = cursor
            self.ns_entry["status"] = "in_progress" if cursor is not None else "done"
            changed = True
        if changed:
            mf.save(self.store, self.manifest)


@dataclass
class _NamespaceJob:
    """Export of one namespace of one index into its part files."""

    src: Provider
    store: SnapshotStore
    manifest: dict[str, Any]
    ns_entry: dict[str, Any]
    spec: IndexSpec
    namespace: str
    hasher: Executor

    def run(
        self,
        batch_size: int,
        part_rows: int,
        part_bytes: int,
        compression: str,
        retry: RetryPolicy,
        progress: Progress,
        errors: list[RecordFailure],
    ) -> None:
        src, store, manifest, ns_entry = self.src, self.store, self.manifest, self.ns_entry
        spec, index, namespace, hasher = self.spec, self.spec.name, self.namespace, self.hasher
        schema = record_schema(spec)
        if ns_entry["parts"]:
            progress.skip(ns_entry["rows"], len(ns_entry["parts"]))
        # parts written after the last checkpoint are orphans: they are rewritten
        checkpoints = _Checkpoints(store, manifest, ns_entry)
        writer: PartWriter | None = None
        rejected: list[str] = []  # ids rejected since the last part
        try:
            # the scan (and the check of its pages) runs up to a row group ahead, so it
            # keeps up while one is written, and the writer's thread only writes
            pages = prefetch(
                _checked(
                    resumable_scan(src, index, namespace, batch_size, ns_entry["cursor"], retry),
                    spec,
                ),
                max_bytes=ROW_GROUP_BYTES,
                size=lambda checked: int(checked[1].nbytes),
            )
            for (_, page_cursor, unreadable), clean, bad_ids in pages:
                if bad_ids:
                    errors.append(_rejection(index, namespace, bad_ids, NON_FINITE))
                    rejected.extend(bad_ids)
                for reason, ids in group_by_reason(unreadable).items():
                    errors.append(_rejection(index, namespace, ids, reason, "unreadable"))
                    rejected.extend(ids)
                if clean.num_rows:
                    if writer is None:
                        relpath = layout.part_path(index, namespace, checkpoints.next_number())
                        writer = PartWriter(store, relpath, schema, compression, hasher)
                    writer.write(clean)
                progress.add(clean.num_rows, 1, failed=len(bad_ids))
                if writer is not None and (writer.rows >= part_rows or writer.nbytes >= part_bytes):
                    checkpoints.add(writer.commit(), page_cursor, rejected)
                    writer, rejected = None, []
                else:
                    checkpoints.settle(wait=False)
            if writer is not None:
                checkpoints.add(writer.commit(), page_cursor, rejected)
                writer, rejected = None, []
        except BaseException:
            if writer is not None:
                writer.abort()
            checkpoints.settle(wait=True)  # what is durable stays checkpointed
            raise
        checkpoints.settle(wait=True)
        _record_rejected(ns_entry, rejected)
        ns_entry["status"] = "done"
        ns_entry["cursor"] = None
        mf.save(store, manifest)
        read = ns_entry["rows"] + ns_entry["rejected"]
        if ns_entry["source_count"] is not None and ns_entry["source_count"] != read:
            log.warning(
                "index %r namespace %r: source reported %d records, %d were read; "
                "the source changed during the export or its count is approximate",
                index,
                namespace,
                ns_entry["source_count"],
                read,
            )


def _checked(
    pages: Iterator[ScanPage], spec: IndexSpec
) -> Iterator[tuple[ScanPage, pa.RecordBatch, list[str]]]:
    """Each page with its records in the snapshot schema, valid ones apart from the ids
    of those with a NaN or infinite vector component."""
    for page in pages:
        clean, bad_ids = split_invalid(conform(page.batch, spec))
        yield page, clean, bad_ids


def _rejection(
    index: str, namespace: str, ids: list[str], reason: str, kind: str = "invalid"
) -> RecordFailure:
    log.warning(
        "index %r namespace %r: %d records not exported: %s (ids %s)",
        index,
        namespace,
        len(ids),
        reason,
        ids[:10],
    )
    return RecordFailure(index, namespace, ids, reason, None, kind)


def _record_rejected(ns_entry: dict[str, Any], ids: list[str]) -> None:
    ns_entry["rejected"] += len(ids)
    room = MAX_REJECTED_IDS - len(ns_entry["rejected_ids"])
    ns_entry["rejected_ids"].extend(ids[: max(room, 0)])
