"""The :class:`MilvusProvider` class: one pymilvus client and the Provider operations on
it (collections, partitions as namespaces, counts, primary-key-ordered scans, fetches,
upserts that isolate refused records, flushes), with the per-provider caches of
collection layouts, partitions and loaded collections. The helpers it uses live in the
sibling modules.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, ClassVar

import pyarrow as pa

from ...errors import (
    ConfigError,
    DriverMissingError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    ProviderError,
    RecordsRejectedError,
    RetryableError,
    UnsupportedError,
)
from ...records import conform, record_schema
from ..base import (
    DEFAULT_NAMESPACE,
    Cursor,
    IndexSpec,
    ProviderBase,
    ScanPage,
    parse_bool,
)
from .connection import CONNECTION_OPTIONS, LITE_WRITES, lite_write_lock, parse_location
from .error_translation import translated
from .names import DEFAULT_PARTITION, NAME_RE, literal, namespace_for, partition_for
from .rows import RowCodec, cursor_value, pk_value
from .schema import (
    AUTO_ID_REFUSAL,
    INT64_MAX,
    MILVUS_CAPABILITIES,
    SPEC_PROPERTY,
    Layout,
    build_layout,
    check_new_spec,
    json_safe,
    new_collection_schema,
)

log = logging.getLogger("vectra_io.providers.milvus")

#: rows per query RPC (Milvus caps limit+offset at 16,384) and bytes per page we aim for
MAX_QUERY_ROWS = 16_384
QUERY_BYTES = 16 * 1024 * 1024
FETCH_CHUNK = 512
CONFLICT_CHUNK = 1024
#: upsert calls spent isolating refused records before the rest of a sub-batch is refused
BISECT_BUDGET = 128


class MilvusProvider(ProviderBase):
    """Milvus (server or embedded Lite) through pymilvus."""

    name: ClassVar[str] = "milvus"

    def __init__(
        self,
        location: str,
        *,
        api_key: str | None = None,
        tls: bool = False,
        **options: Any,
    ) -> None:
        opts = dict(options)
        db = opts.pop("db", None)
        timeout = opts.pop("timeout", 60.0)
        self._metadata_format = str(opts.pop("metadata", "text")).lower()
        index_type = opts.pop("index_type", None)
        self._index_type = str(index_type).upper() if index_type else None
        self._flush_on_close = parse_bool(
            "milvus", "flush_on_close", opts.pop("flush_on_close", True)
        )
        if opts:
            raise ConfigError(f"milvus provider: unknown options {sorted(opts)}")
        if self._metadata_format not in ("text", "json"):
            raise ConfigError("milvus option metadata must be 'text' or 'json'")
        try:
            self._timeout = float(timeout) if timeout is not None else None
        except (TypeError, ValueError):
            raise ConfigError(f"milvus option timeout must be seconds, got {timeout!r}") from None
        uri, self.endpoint, self._db, self.embedded = parse_location(location, tls, db)
        self._token = api_key or ""
        self.capabilities = MILVUS_CAPABILITIES
        self._lock = threading.RLock()
        self._layouts: dict[str, Layout] = {}
        self._partitions: dict[str, set[str]] = {}
        self._loaded: set[str] = set()
        self._written: set[str] = set()
        self._lite_flushed: set[str] = set()
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:  # pragma: no cover - the registry checks first
            raise DriverMissingError(
                'the milvus provider needs pymilvus: pip install "vectra-io[milvus]"'
            ) from exc
        kwargs: dict[str, Any] = {"uri": uri, "timeout": self._timeout, **CONNECTION_OPTIONS}
        if self._token and not self.embedded:
            kwargs["token"] = self._token
        if self._db:
            kwargs["db_name"] = self._db
        with self._translate(None):
            self._client = MilvusClient(**kwargs)
        self._closed = False
        self._write_lock: threading.Lock | None = None
        #: Milvus Lite (embedded or ``milvus-lite server``) has rules of its own
        try:
            version = "" if self.embedded else str(self._call("get_server_version") or "")
        except Exception:
            self.close()
            raise
        self.lite = self.embedded or version.lower().startswith(("milvus_lite", "milvus-lite"))
        self._write_lock = lite_write_lock(self.endpoint) if self.lite else None
        self._codec = RowCodec(lite=self.lite)

    # -- plumbing -----------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        if self._token:
            text = text.replace(self._token, "***")
            if ":" in self._token:
                text = text.replace(self._token.split(":", 1)[1], "***")
        return text

    @contextmanager
    def _translate(self, index: str | None, *, records: bool = False) -> Iterator[None]:
        """Translate pymilvus/gRPC failures into the vectra error tree."""
        try:
            yield
        except ProviderError:
            raise
        except Exception as exc:
            raise self._translated(exc, index, records=records) from None

    def _translated(self, exc: BaseException, index: str | None, *, records: bool) -> Exception:
        return translated(
            exc, self._where(index), records=records, scrub=self._scrub, endpoint=self.endpoint
        )

    def _call(
        self, method: str, *args: Any, index: str | None = None, records: bool = False, **kw: Any
    ) -> Any:
        """One client call: no driver-side retries, the per-call timeout, translated errors."""
        if self._closed:
            raise FatalError("the provider is closed", **self._where(index))
        kw.setdefault("timeout", self._timeout)
        kw.setdefault("retry_times", 0)
        kw.setdefault("retry_on_rate_limit", False)
        serial = self._write_lock if method in LITE_WRITES else None
        try:
            with serial or nullcontext(), self._translate(index, records=records):
                return getattr(self._client, method)(*args, **kw)
        except IndexNotFoundError:
            if index is not None:
                with self._lock:
                    self._forget(index)
            raise

    def _query(self, layout: Layout, **kw: Any) -> Any:
        """A query on a loaded collection (loads it once when Milvus says it is not)."""
        self._ensure_loaded(layout.name)
        kw.setdefault("consistency_level", "Strong")
        kw.setdefault("strict_float32", True)
        try:
            return self._call("query", layout.name, index=layout.name, **kw)
        except FatalError as exc:
            if "not loaded" not in str(exc).lower() and "released" not in str(exc).lower():
                raise
            with self._lock:
                self._loaded.discard(layout.name)
            self._ensure_loaded(layout.name)
            return self._call("query", layout.name, index=layout.name, **kw)

    def _ensure_loaded(self, name: str) -> None:
        if name in self._loaded:
            return
        state = self._call("get_load_state", name, index=name)
        text = str(state.get("state") if isinstance(state, Mapping) else state)
        if "Loaded" not in text or "NotLoad" in text:
            log.info("loading Milvus collection %r on %s", name, self.endpoint)
            self._call("load_collection", name, index=name)
        with self._lock:
            self._loaded.add(name)

    # -- layouts ------------------------------------------------------------------
    def _layout(self, index: str, *, refresh: bool = False) -> Layout:
        with self._lock:
            cached = self._layouts.get(index)
        if cached is not None and not refresh:
            return cached
        if not self._call("has_collection", index, index=index):
            with self._lock:
                self._forget(index)
            raise IndexNotFoundError(f"collection {index!r} does not exist", **self._where(index))
        desc = self._call("describe_collection", index, index=index)
        metrics: dict[str, str] = {}
        index_info: dict[str, Any] = {}
        for idx_name in self._call("list_indexes", index, index=index) or []:
            info = self._call("describe_index", index, idx_name, index=index) or {}
            fld = info.get("field_name", idx_name)
            metrics[fld] = str(info.get("metric_type", "")).upper()
            index_info[fld] = json_safe(
                {
                    k: v
                    for k, v in info.items()
                    if k not in ("total_rows", "indexed_rows", "pending_index_rows", "state")
                }
            )
        layout = build_layout(index, desc, metrics, index_info, self._where(index))
        with self._lock:
            self._layouts[index] = layout
        return layout

    def _forget(self, index: str) -> None:
        self._lite_flushed.discard(index)
        self._layouts.pop(index, None)
        self._partitions.pop(index, None)
        self._loaded.discard(index)
        self._written.discard(index)

    def _partitions_of(self, layout: Layout, *, refresh: bool = False) -> set[str]:
        with self._lock:
            cached = self._partitions.get(layout.name)
        if cached is not None and not refresh:
            return cached
        names = set(self._call("list_partitions", layout.name, index=layout.name) or [])
        with self._lock:
            self._partitions[layout.name] = names
        return names

    def _partition(self, layout: Layout, namespace: str) -> str | None:
        """The partition to read ``namespace`` from, or None when it does not exist.
        Partition-key collections are read whole (their one namespace is "")."""
        if layout.partition_key:
            return "" if namespace == DEFAULT_NAMESPACE else None
        part = partition_for(namespace)
        if part in self._partitions_of(layout):
            return part
        if part in self._partitions_of(layout, refresh=True):
            return part
        return None

    def _partition_args(self, part: str) -> dict[str, Any]:
        return {"partition_names": [part]} if part else {}

    # -- Provider -----------------------------------------------------------------
    def list_indexes(self) -> list[str]:
        return sorted(self._call("list_collections") or [])

    def describe_index(self, index: str) -> IndexSpec:
        return self._layout(index, refresh=True).spec

    def list_namespaces(self, index: str) -> list[str]:
        layout = self._layout(index)
        if layout.partition_key:
            return [DEFAULT_NAMESPACE]
        parts = self._partitions_of(layout, refresh=True)
        out = [namespace_for(p) for p in parts if p != DEFAULT_PARTITION]
        # "_default" always exists: list it when it holds records or is the only one
        if DEFAULT_PARTITION in parts and (not out or self.count(index, DEFAULT_NAMESPACE) > 0):
            out.append(DEFAULT_NAMESPACE)
        return sorted(out)

    def count(self, index: str, namespace: str = DEFAULT_NAMESPACE) -> int:
        layout = self._layout(index)
        part = self._partition(layout, namespace)
        if part is None:
            return 0
        expr = ""
        if self.lite and part and len(self._partitions_of(layout)) > 1:
            # Milvus Lite ignores partition_names for an unfiltered count(*): give a filter
            # that every entity matches (real Milvus counts the partition either way)
            expr = f"{layout.pk} <= {INT64_MAX}" if layout.pk_int else f'{layout.pk} >= ""'
        res = self._query(
            layout, filter=expr, output_fields=["count(*)"], **self._partition_args(part)
        )
        rows = list(res)
        if not rows:
            return 0
        return int(rows[0].get("count(*)", 0))

    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        layout = self._layout(index)
        schema = record_schema(layout.spec)
        part = self._partition(layout, namespace)
        if part is None:
            return
        after = cursor_value(layout, cursor)
        batch_size = max(1, int(batch_size))
        self._lite_flush(layout.name)
        rpc_rows = max(1, min(batch_size, MAX_QUERY_ROWS, QUERY_BYTES // layout.row_bytes()))
        pages = self._pk_pages(layout, part, after, rpc_rows)
        buf: list[dict[str, Any]] = []
        exhausted = False
        while True:
            while not exhausted and len(buf) <= batch_size:
                nxt = next(pages, None)
                if nxt is None:
                    exhausted = True
                else:
                    buf.extend(nxt)
            if len(buf) > batch_size:
                page, buf = buf[:batch_size], buf[batch_size:]
                yield ScanPage(
                    self._codec.to_batch(layout, schema, page), {"after": page[-1][layout.pk]}
                )
                continue
            if buf:
                yield ScanPage(self._codec.to_batch(layout, schema, buf), None)
            return

    def _lite_flush(self, name: str) -> None:
        """Milvus Lite answers every query by a pass over its unflushed rows (its MemTable
        holds up to 128 MB), so a scan of freshly written data costs O(rows^2): seal them
        into segments once before scanning. Real Milvus needs no such thing."""
        if not self.lite or name in self._lite_flushed:
            return
        try:
            self._call("flush", name, index=name)
        except (FatalError, RetryableError) as exc:
            log.debug("Milvus Lite flush of %r before a scan failed: %s", name, exc)
        with self._lock:
            self._lite_flushed.add(name)

    def _pk_pages(
        self, layout: Layout, part: str, after: Any, limit: int
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows in primary-key order after ``after``, until an empty answer."""
        last = after
        while True:
            expr = "" if last is None else f"{layout.pk} > {literal(last)}"
            res = self._query(
                layout,
                filter=expr,
                output_fields=layout.output_fields,
                limit=limit,
                iterator="True",
                reduce_stop_for_best="False",
                **self._partition_args(part),
            )
            rows = [dict(r) for r in res]
            if not rows:
                return
            keys = [r[layout.pk] for r in rows]
            if any(a >= b for a, b in itertools.pairwise(keys)):
                rows.sort(key=lambda r: r[layout.pk])
                keys = [r[layout.pk] for r in rows]
            if last is not None and keys[0] <= last:
                raise FatalError(
                    "Milvus returned rows out of primary-key order; cannot page safely",
                    **self._where(layout.name),
                )
            yield rows
            last = keys[-1]

    def fetch(
        self, index: str, ids: Sequence[str], namespace: str = DEFAULT_NAMESPACE
    ) -> pa.RecordBatch:
        layout = self._layout(index)
        schema = record_schema(layout.spec)
        part = self._partition(layout, namespace)
        keys: list[Any] = []
        seen: set[Any] = set()
        for rid in ids:
            key = pk_value(layout, str(rid))
            if key is not None and key not in seen:
                seen.add(key)
                keys.append(key)
        if part is None or not keys:
            return pa.RecordBatch.from_pylist([], schema=schema)
        found: dict[Any, dict[str, Any]] = {}
        for start in range(0, len(keys), FETCH_CHUNK):
            chunk = keys[start : start + FETCH_CHUNK]
            expr = f"{layout.pk} in [{', '.join(literal(k) for k in chunk)}]"
            res = self._query(
                layout,
                filter=expr,
                output_fields=layout.output_fields,
                **self._partition_args(part),
            )
            for r in res:
                row = dict(r)
                found[row[layout.pk]] = row
        rows = [found[k] for k in keys if k in found]
        return self._codec.to_batch(layout, schema, rows)

    def create_index(self, spec: IndexSpec) -> None:
        where = self._where(spec.name)
        if not NAME_RE.fullmatch(spec.name):
            raise ConfigError(
                f"{spec.name!r} is not a valid Milvus collection name: a letter or '_', then "
                "letters, digits and '_' (at most 255); map it to another name"
            )
        if self._call("has_collection", spec.name, index=spec.name):
            layout = self._layout(spec.name, refresh=True)
            if layout.auto_id:
                raise IncompatibleIndexError(AUTO_ID_REFUSAL, **where)
            if layout.spec.dimension != spec.dimension:
                raise IncompatibleIndexError(
                    f"collection {spec.name!r} exists with dimension {layout.spec.dimension}, "
                    f"not {spec.dimension}",
                    **where,
                )
            return
        check_new_spec(spec, self.capabilities.id_types, where)
        # Milvus Lite builds HNSW for AUTOINDEX in the background (slow, and dropping the
        # collection waits for it); its FLAT index is exact and free to build
        index_type = self._index_type or ("FLAT" if self.lite else "AUTOINDEX")
        schema, index_params, stored = new_collection_schema(
            self._client, spec, index_type=index_type, metadata_format=self._metadata_format
        )
        log.info("creating Milvus collection %r on %s", spec.name, self.endpoint)
        self._call(
            "create_collection",
            spec.name,
            schema=schema,
            index_params=index_params,
            consistency_level="Strong",
            properties={SPEC_PROPERTY: json.dumps(stored, separators=(",", ":"))},
            index=spec.name,
        )
        with self._lock:
            self._forget(spec.name)

    def delete_index(self, index: str) -> None:
        if not self._call("has_collection", index, index=index):
            raise IndexNotFoundError(f"collection {index!r} does not exist", **self._where(index))
        self._call("drop_collection", index, index=index)
        with self._lock:
            self._forget(index)

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        layout = self._layout(index)
        where = self._where(index)
        if layout.auto_id:
            raise IncompatibleIndexError(AUTO_ID_REFUSAL, **where)
        if layout.partition_key and namespace != DEFAULT_NAMESPACE:
            raise UnsupportedError(
                "the collection routes rows by its partition key: it has no namespaces", **where
            )
        try:
            batch = conform(batch, layout.spec)
        except ValueError as exc:
            raise IncompatibleIndexError(
                f"the records do not fit collection {index!r}: {exc}", **where
            ) from None
        if batch.num_rows == 0:
            return {}
        rows, row_ids, failures = self._codec.to_rows(layout, batch)
        if rows:
            part = "" if layout.partition_key else self._ensure_partition(layout, namespace)
            if part:
                rows, row_ids = self._drop_ids_of_other_partitions(
                    layout, part, namespace, rows, row_ids, failures
                )
        if rows:
            budget = [BISECT_BUDGET]
            self._write(layout, part, rows, row_ids, failures, budget)
            with self._lock:
                self._written.add(index)
                self._lite_flushed.discard(index)
        return failures

    def _drop_ids_of_other_partitions(
        self,
        layout: Layout,
        part: str,
        namespace: str,
        rows: list[dict[str, Any]],
        row_ids: list[str],
        failures: dict[str, str],
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Refuse the records whose id lives in another partition.

        A primary key is unique across a collection's partitions: Milvus (Lite at least)
        resolves a key to its newest version whichever partition holds it, so writing an
        id into a second namespace would silently take it out of the first.
        """
        others = sorted(self._partitions_of(layout, refresh=True) - {part})
        if not others:
            return rows, row_ids
        keys = [r[layout.pk] for r in rows]
        taken: set[Any] = set()
        for start in range(0, len(keys), CONFLICT_CHUNK):
            chunk = keys[start : start + CONFLICT_CHUNK]
            res = self._query(
                layout,
                filter=f"{layout.pk} in [{', '.join(literal(k) for k in chunk)}]",
                output_fields=[layout.pk],
                partition_names=others,
            )
            taken.update(r[layout.pk] for r in res)
        if not taken:
            return rows, row_ids
        reason = (
            f"the id already lives in another namespace of collection {layout.name!r}: "
            "Milvus primary keys are unique across a collection's partitions, so writing "
            f"it into namespace {namespace!r} would remove it from the other one"
        )
        keep_rows, keep_ids = [], []
        for row, rid in zip(rows, row_ids, strict=True):
            if row[layout.pk] in taken:
                failures[rid] = reason
            else:
                keep_rows.append(row)
                keep_ids.append(rid)
        return keep_rows, keep_ids

    def _ensure_partition(self, layout: Layout, namespace: str) -> str:
        part = partition_for(namespace)
        if part in self._partitions_of(layout):
            return part
        with self._lock:
            if part in self._partitions_of(layout, refresh=True):
                return part
            try:
                self._call("create_partition", layout.name, part, index=layout.name)
            except FatalError as exc:
                if "exist" not in str(exc).lower():
                    raise
            self._partitions_of(layout, refresh=True)
        return part

    def _write(
        self,
        layout: Layout,
        part: str,
        rows: list[dict[str, Any]],
        ids: list[str],
        failures: dict[str, str],
        budget: list[int],
    ) -> None:
        """Upsert ``rows``; when Milvus refuses the batch, split it to find the records."""
        try:
            budget[0] -= 1
            kw = {"partition_name": part} if part else {}
            self._call("upsert", layout.name, rows, index=layout.name, records=True, **kw)
        except RecordsRejectedError as exc:
            if len(rows) == 1 or budget[0] <= 0:
                reason = exc.message
                for rid in ids:
                    failures[rid] = reason
                return
            mid = len(rows) // 2
            self._write(layout, part, rows[:mid], ids[:mid], failures, budget)
            self._write(layout, part, rows[mid:], ids[mid:], failures, budget)

    def close(self) -> None:
        if self._closed:
            return
        try:
            if self._flush_on_close:
                for name in sorted(self._written):
                    try:
                        self._call("flush", name, index=name)
                    except (ProviderError, ConfigError) as exc:  # data written; flush is tuning
                        log.warning("could not flush Milvus collection %r: %s", name, exc)
        finally:
            self._written.clear()
            self._closed = True
            try:
                self._client.close()
            except Exception as exc:  # pragma: no cover - closing never fails the run
                log.debug("closing the Milvus client: %s", self._scrub(str(exc)))
