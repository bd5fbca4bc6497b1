"""Reading records from Pinecone: :class:`RecordReader` fetches records by id (``fetch``
GETs in groups, run concurrently; ``POST /query`` by id for the ids fetch refuses) into
record batches, and scans a namespace by its ``list`` pages (pipelined with the fetches)
or by the ids of an ``ids_from`` file, keeping the problems it meets in ``scan_report``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ...errors import ConfigError, FatalError, UnsupportedError
from ...records import ID, METADATA, SPARSE, VALUES, dumps_metadata, record_schema, sparse_array
from ..base import Cursor, IndexSpec, ScanPage
from .index_info import IndexInfo
from .limits import (
    DEFAULT_NAMESPACE_NAME,
    FETCH_QUERY_CHARS,
    MAX_ID_CHARS,
    QUERY_FALLBACK_TOP_K,
    REPORT_SAMPLE,
    SPARSE_TAG,
)
from .record_checks import id_problem

log = logging.getLogger("vectra_io.providers.pinecone")

POD_SCAN_MESSAGE = (
    "index {index!r} is pod-based: Pinecone cannot list the records of pod-based indexes, "
    "and exporting by random queries could silently miss records. Give the ids to export "
    "in a file, one per line: --ids-from FILE (provider option ids_from=PATH, e.g. "
    "pinecone://?ids_from=/path/ids.txt); ids not found are reported as missing"
)


def fetch_groups(ids: Sequence[str], per_request: int) -> list[list[str]]:
    """Ids in groups of at most ``per_request`` and about FETCH_QUERY_CHARS encoded chars."""
    groups: list[list[str]] = []
    current: list[str] = []
    chars = 0
    for rid in ids:
        cost = len(urllib.parse.quote(rid, safe="")) + 5  # "&ids="
        if current and (len(current) >= per_request or chars + cost > FETCH_QUERY_CHARS):
            groups.append(current)
            current, chars = [], 0
        current.append(rid)
        chars += cost
    if current:
        groups.append(current)
    return groups


class RecordReader:
    """The reading side of one provider: ``request`` and ``where`` are the provider's
    (an HTTP call with its error translation; the keywords of an error), ``lock`` guards
    the executors, the ids of the ``ids_from`` file and ``scan_report``."""

    def __init__(
        self,
        request: Callable[..., Any],
        where: Callable[..., dict[str, Any]],
        lock: threading.RLock,
        *,
        list_limit: int,
        fetch_ids: int,
        fetch_workers: int,
        ids_path: Path | None,
    ) -> None:
        self._request = request
        self._where = where
        self._lock = lock
        self._list_limit = list_limit
        self._fetch_ids = fetch_ids
        self._fetch_workers = fetch_workers
        self._ids_path = ids_path
        self._ids: tuple[list[str], str] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._page_executor: ThreadPoolExecutor | None = None
        #: scan problems: {"missing" | "unexportable" | "vanished": {index: {ns: {...}}}}
        self.scan_report: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
            "missing": {},
            "unexportable": {},
            "vanished": {},
        }

    def close(self) -> None:
        with self._lock:
            executors = [self._page_executor, self._executor]
            self._page_executor = self._executor = None
        for executor in executors:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)

    def _pages(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._page_executor is None:
                self._page_executor = ThreadPoolExecutor(
                    2, thread_name_prefix="vectra-pinecone-page"
                )
            return self._page_executor

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self._fetch_workers, thread_name_prefix="vectra-pinecone-fetch"
                )
            return self._executor

    def _fetch_group(
        self, info: IndexInfo, index: str, ids: list[str], namespace: str
    ) -> dict[str, Any]:
        params: list[tuple[str, str]] = [("ids", rid) for rid in ids]
        if namespace:
            params.append(("namespace", namespace))
        body = self._request(
            "GET",
            f"{info.url}/vectors/fetch",
            f"fetch of {len(ids)} records",
            index=index,
            params=params,
            data_plane=True,
        )
        vectors = (body or {}).get("vectors") or {}
        return dict(vectors)

    def _query_by_id(
        self, info: IndexInfo, index: str, rid: str, namespace: str
    ) -> dict[str, Any] | None:
        """The record ``rid`` read through ``POST /query`` by id (fetch refuses its id)."""
        body: dict[str, Any] = {
            "id": rid,
            "topK": QUERY_FALLBACK_TOP_K,
            "includeValues": True,
            "includeMetadata": True,
        }
        if namespace:
            body["namespace"] = namespace
        answer = self._request(
            "POST",
            f"{info.url}/query",
            "query by id",
            index=index,
            body=body,
            data_plane=True,
        )
        for match in (answer or {}).get("matches") or []:
            if match.get("id") == rid:
                return dict(match)
        return None

    def _fetch_records(
        self, info: IndexInfo, index: str, ids: Sequence[str], namespace: str
    ) -> tuple[dict[str, Any], list[str]]:
        """Records by id (fetch GETs, concurrently) and the ids fetch could not ask for."""
        wanted = list(dict.fromkeys(rid for rid in ids if id_problem(rid) is None))
        plain = [rid for rid in wanted if " " not in rid]
        spaced = [rid for rid in wanted if " " in rid]
        found: dict[str, Any] = {}
        groups = fetch_groups(plain, self._fetch_ids)
        if len(groups) == 1:
            found.update(self._fetch_group(info, index, groups[0], namespace))
        elif groups:
            pool = self._pool()
            futures = [pool.submit(self._fetch_group, info, index, g, namespace) for g in groups]
            try:
                for fut in futures:
                    found.update(fut.result())
            finally:
                for fut in futures:
                    fut.cancel()
        unfetched = []
        for rid in spaced:
            rec = self._query_by_id(info, index, rid, namespace)
            if rec is None:
                unfetched.append(rid)
            else:
                found[rid] = rec
        return found, unfetched

    def _to_batch(
        self, spec: IndexSpec, ids: Sequence[str], found: Mapping[str, Any]
    ) -> pa.RecordBatch:
        schema = record_schema(spec)
        rows = [found[rid] for rid in dict.fromkeys(ids) if rid in found]
        if not rows:
            return pa.RecordBatch.from_pylist([], schema=schema)
        if not spec.sparse:
            carrying = [r["id"] for r in rows if (r.get("sparseValues") or {}).get("indices")]
            if carrying:
                raise FatalError(
                    f"records of index {spec.name!r} carry sparse values although the index is "
                    f"described as dense-only (tag {SPARSE_TAG}=0), e.g. {carrying[:3]}; "
                    f"remove the tag so that they are exported",
                    **self._where(spec.name),
                )
        columns: list[pa.Array] = []
        for f in schema:
            if f.name == ID:
                columns.append(pa.array([str(r["id"]) for r in rows], pa.string()))
            elif f.name == VALUES:
                columns.append(self._dense_column(spec, rows))
            elif f.name == SPARSE:
                columns.append(sparse_array([_sparse_of(r) for r in rows]))
            elif f.name == METADATA:
                columns.append(
                    pa.array([dumps_metadata(r.get("metadata")) for r in rows], pa.string())
                )
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def _dense_column(self, spec: IndexSpec, rows: list[dict[str, Any]]) -> pa.Array:
        dim = spec.dimension
        assert dim is not None
        matrix = np.zeros((len(rows), dim), dtype=np.float32)
        mask = np.zeros(len(rows), dtype=bool)
        for i, r in enumerate(rows):
            values = r.get("values")
            if not values:
                mask[i] = True
                continue
            if len(values) != dim:
                raise FatalError(
                    f"record {r['id']!r} has {len(values)} values, the index dimension is {dim}",
                    **self._where(spec.name),
                )
            matrix[i] = values  # float64 text of a float32 -> the same float32 bits
        flat = pa.array(matrix.reshape(-1))
        return pa.FixedSizeListArray.from_arrays(
            flat, dim, mask=pa.array(mask) if mask.any() else None
        )

    def fetch(
        self, info: IndexInfo, index: str, ids: Sequence[str], namespace: str
    ) -> pa.RecordBatch:
        found, _ = self._fetch_records(info, index, ids, namespace)
        return self._to_batch(info.spec, ids, found)

    def _report(self, kind: str, index: str, namespace: str, ids: list[str]) -> None:
        with self._lock:
            entry = (
                self.scan_report[kind]
                .setdefault(index, {})
                .setdefault(namespace, {"count": 0, "ids": []})
            )
            entry["count"] += len(ids)
            room = REPORT_SAMPLE - len(entry["ids"])
            entry["ids"].extend(ids[: max(room, 0)])

    def _page(
        self, info: IndexInfo, index: str, namespace: str, ids: list[str], *, listed: bool
    ) -> tuple[pa.RecordBatch, list[str]]:
        """The records of ``ids``, and the ids that were not found."""
        found, unfetched = self._fetch_records(info, index, ids, namespace)
        label = namespace or DEFAULT_NAMESPACE_NAME
        if unfetched:
            self._report("unexportable", index, namespace, unfetched)
            log.error(
                "index %r namespace %r: %d records could not be exported: Pinecone's fetch does "
                "not accept ids containing spaces and a query by id did not return them "
                "(ids %s); see scan_report['unexportable']",
                index,
                label,
                len(unfetched),
                unfetched[:10],
            )
        gone = [rid for rid in ids if rid not in found and rid not in unfetched]
        if gone:
            self._report("vanished" if listed else "missing", index, namespace, gone)
            if listed:
                log.info(
                    "index %r namespace %r: %d listed records were gone when fetched "
                    "(deleted meanwhile), e.g. %s",
                    index,
                    label,
                    len(gone),
                    gone[:5],
                )
        return self._to_batch(info.spec, ids, found), gone

    def scan(
        self, info: IndexInfo, index: str, namespace: str, batch_size: int, cursor: Cursor
    ) -> Iterator[ScanPage]:
        batch_size = max(1, int(batch_size))
        if self._ids_path is not None:
            yield from self._scan_ids(info, index, namespace, batch_size, cursor)
            return
        if info.pod:
            raise UnsupportedError(POD_SCAN_MESSAGE.format(index=index), **self._where(index))
        token: str | None = None
        if cursor is not None:
            if not isinstance(cursor, dict) or not isinstance(cursor.get("token"), str):
                raise ConfigError(f"not a cursor of a Pinecone list scan: {cursor!r}")
            token = cursor["token"]
        # pipelined: the records of a page are fetched while the next page's ids are listed
        ids: list[str] = []
        pending: tuple[Future[tuple[pa.RecordBatch, list[str]]], Cursor] | None = None
        try:
            while True:
                token = self._list_into(info, index, namespace, ids, batch_size, token)
                if token is not None and len(ids) < batch_size:
                    continue
                fut = self._pages().submit(self._page, info, index, namespace, ids, listed=True)
                if pending is not None:
                    yield ScanPage(pending[0].result()[0], pending[1])
                pending = (fut, {"token": token} if token else None)
                if token is None:
                    break
                ids = []
            yield ScanPage(pending[0].result()[0], None)
        finally:
            if pending is not None:
                pending[0].cancel()

    def _list_into(
        self,
        info: IndexInfo,
        index: str,
        namespace: str,
        ids: list[str],
        batch_size: int,
        token: str | None,
    ) -> str | None:
        """One ``list`` call appending to ``ids``; returns the next token (None at the end)."""
        params: dict[str, Any] = {"limit": min(self._list_limit, batch_size - len(ids))}
        if namespace:
            params["namespace"] = namespace
        if token:
            params["paginationToken"] = token
        page = (
            self._request(
                "GET",
                f"{info.url}/vectors/list",
                "list",
                index=index,
                params=params,
                data_plane=True,
            )
            or {}
        )
        ids.extend(str(v["id"]) for v in page.get("vectors") or [])
        return (page.get("pagination") or {}).get("next") or None

    def _id_list(self) -> tuple[list[str], str]:
        assert self._ids_path is not None
        with self._lock:
            if self._ids is None:
                try:
                    data = self._ids_path.read_bytes()
                except OSError as exc:
                    raise ConfigError(f"cannot read the ids_from file: {exc}") from None
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise ConfigError("the ids_from file is not UTF-8 text") from None
                lines = (line.removesuffix("\r") for line in text.split("\n"))
                ids = list(dict.fromkeys(line for line in lines if line))
                self._ids = (ids, hashlib.sha256(data).hexdigest()[:16])
            return self._ids

    def _scan_ids(
        self, info: IndexInfo, index: str, namespace: str, batch_size: int, cursor: Cursor
    ) -> Iterator[ScanPage]:
        ids, digest = self._id_list()
        offset = 0
        if cursor is not None:
            if (
                not isinstance(cursor, dict)
                or not isinstance(cursor.get("offset"), int)
                or cursor.get("ids") != digest
            ):
                raise ConfigError(
                    "the scan cursor does not belong to this ids_from file (it changed?): "
                    "restart the export"
                )
            offset = cursor["offset"]
        invalid = [rid for rid in ids[offset:] if id_problem(rid) is not None]
        if invalid and offset == 0:
            log.warning(
                "ids_from: %d lines are not valid Pinecone ids (1-%d characters), e.g. %s",
                len(invalid),
                MAX_ID_CHARS,
                [rid[:40] for rid in invalid[:3]],
            )
        if not ids:
            yield ScanPage(pa.RecordBatch.from_pylist([], schema=record_schema(info.spec)), None)
            return
        missing: list[str] = []
        n_missing = 0
        while offset < len(ids):
            chunk = ids[offset : offset + batch_size]
            offset += len(chunk)
            batch, gone = self._page(info, index, namespace, chunk, listed=False)
            n_missing += len(gone)
            missing.extend(gone[: max(0, 10 - len(missing))])
            if offset >= len(ids) and n_missing:
                log.warning(
                    "index %r namespace %r: %d ids of the ids_from file were not found "
                    "(in this scan), e.g. %s; see scan_report['missing']",
                    index,
                    namespace or DEFAULT_NAMESPACE_NAME,
                    n_missing,
                    missing,
                )
            yield ScanPage(batch, {"offset": offset, "ids": digest} if offset < len(ids) else None)


def _sparse_of(record: Mapping[str, Any]) -> dict[str, Any] | None:
    sv = record.get("sparseValues")
    if not sv or not sv.get("indices"):
        return None
    return {"indices": sv["indices"], "values": sv["values"]}
