"""The embedded ``lancedb`` provider: ``lancedb:///abs/path/db`` or ``lancedb://relative/db``.

The location is the LanceDB database URI as given after ``lancedb://`` (a local
directory, or an object-store URI such as ``s3://bucket/db`` that LanceDB
understands, with ``storage_options=`` passed through).

Layout of a table created by vectra-io (one LanceDB table per index)
-------------------------------------------------------------------
============================  ==================================================
LanceDB column                record column / meaning
============================  ==================================================
``id`` string, not null       ``id``
``namespace`` string, no null the namespace; ``""`` is the default namespace
``vector`` fixed_size_list    ``values`` (LanceDB's conventional vector column,
  <float32>[dim]              so ``tbl.search(q)`` works on it); null when a
                              record has no dense vector; absent when the index
                              has no default dense vector
``sparse_values`` struct      ``sparse_values`` (sparse indexes only), stored as is
``metadata`` string           ``metadata``: the JSON object text, unchanged
``vector_<name>``             ``vector.<name>``, a named dense vector. LanceDB
  fixed_size_list<float32>    refuses ``.`` in top-level column names, so the
                              name is escaped: ``%`` -> ``%25``, ``.`` -> ``%2E``
                              (injective); the mapping is also stored with the spec
============================  ==================================================

All namespaces of an index live in the one table; ``list_namespaces`` returns
the distinct values of ``namespace``, and count/scan/fetch/upsert filter by it.
The records are keyed by ``(id, namespace)``: upserts are
``merge_insert(["id", "namespace"])``, so re-importing is idempotent. A record
with a NaN or infinite vector value is refused individually (``{id: reason}``);
of an id repeated in one batch the last record wins.

The :class:`~vectra_io.providers.base.IndexSpec` (metric, id type, sparse, named
vectors) is stored as JSON in the Arrow schema metadata of the table, key
``vectra.index_spec``, with the named-vector column map under
``vectra.named_vector_columns``. Tables are created empty; vectra-io builds no
ANN index (LanceDB needs data to train one and the records stay exact anyway).

Tables not created by vectra-io (a user's own LanceDB table)
------------------------------------------------------------
They are read (scan, fetch, count, describe) but never written:

- the id is the column ``id`` (option ``id_column=NAME``); integer ids become
  strings (``id_type`` ``uint64`` for unsigned integer columns); a table without
  it cannot be described (:class:`~vectra_io.errors.IncompatibleIndexError`);
- the dense vector is the fixed-size-list float column named ``vector``, or the
  only one, or the one given with ``vector_column=NAME``; other fixed-size-list
  float columns become named vectors (name = column name); values are cast to
  float32;
- every other column becomes a key of the metadata JSON object (strings,
  numbers, booleans are encoded column-wise by Arrow kernels; nested and temporal
  values through Python's ``json``; non-finite floats become null, bytes base64,
  dates ISO 8601);
- there is one namespace, the default ``""``;
- the metric comes from the vector index on the dense column when there is one
  (``l2`` -> ``euclidean``, ``cosine``, ``dot``), else ``"unknown"``.

Scan cursor
-----------
``{"version": V, "offset": N}``: the scan reads table version ``V`` (the latest
version when the scan started, pinned with ``checkout``) and ``N`` is the
number of rows of the namespace already returned. LanceDB returns the rows of
a version in physical order (fragment, then row); the provider checks that the
``_rowaddr`` of the rows it reads strictly increase, so ``N`` always means the
same rows. A version is immutable: writes, deletes and compaction after the
scan started create new versions and change neither the order nor the rows of
``V``, so a resumed scan returns exactly the rest of the snapshot the scan
started on — no record twice, none skipped, even across ``optimize()``. Writes
made after the scan started are not part of it (snapshot isolation, like an
export of the table as it was). If version ``V`` was deleted meanwhile
(``cleanup_old_versions``/``optimize(cleanup_older_than=...)``), resuming fails
with a :class:`~vectra_io.errors.FatalError` telling to restart the export.

Concurrency
-----------
The writes to one table go through one queue per process and table (shared by
every provider object on the same database): a writer that gets one of the
table's ``COMMIT_SLOTS`` (2) commits every write queued so far in one
``merge_insert`` (group commit), and each ``upsert`` call returns only once its
own rows are committed. Two groups run at once only when no key is in both:
concurrent merges that insert the same new key would both insert it
(lance-format/lance#4585). Measured on 100,000 x 768 rows in groups of 5,000:
42k rows/s with one merge at a time, 61k with two. Reads are not locked. Other
processes are handled by Lance's optimistic commits; a commit conflict that
LanceDB does not resolve itself surfaces as a
:class:`~vectra_io.errors.RetryableError`.

Options
-------
``id_column=`` and ``vector_column=`` (tables not created by vectra-io, above);
``storage_options={...}`` passed to ``lancedb.connect`` (object stores);
``read_consistency_interval=`` seconds (default 0: every read sees the latest
commit of any process; ``None``: only this process's own writes).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import json
import logging
import math
import os
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import lancedb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import (
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    ProviderError,
    RetryableError,
    VectraError,
)
from ..records import (
    ID,
    METADATA,
    NAMED_PREFIX,
    SPARSE,
    SPARSE_TYPE,
    VALUES,
    conform,
    dense_type,
    record_schema,
    split_invalid,
)
from .base import (
    DEFAULT_NAMESPACE,
    ID_TYPES,
    METRICS,
    UNKNOWN_METRIC,
    Capabilities,
    Cursor,
    IndexSpec,
    ProviderBase,
    ScanPage,
    VectorSpec,
)

log = logging.getLogger("vectra_io.providers.lancedb")

ID_COLUMN = "id"
NAMESPACE_COLUMN = "namespace"
VECTOR_COLUMN = "vector"
SPARSE_COLUMN = "sparse_values"
METADATA_COLUMN = "metadata"
NAMED_COLUMN_PREFIX = "vector_"
SPEC_KEY = b"vectra.index_spec"
NAMED_KEY = b"vectra.named_vector_columns"
ROWADDR = "_rowaddr"

#: LanceDB distance types -> vectra metrics (hamming and others -> "unknown")
_FROM_LANCE_METRIC = {"l2": "euclidean", "euclidean": "euclidean", "cosine": "cosine", "dot": "dot"}
#: ids per ``IN (...)`` list in one fetch query
FETCH_CHUNK = 1000
#: rows per batch read from LanceDB (pages are assembled from these); larger reads are slower
READ_BATCH_ROWS = 1024

LANCEDB_CAPABILITIES = Capabilities(
    max_batch_rows=None,  # embedded: no request size limit; the engine's chunks go as they are
    max_batch_bytes=None,
    id_types=frozenset(ID_TYPES),  # ids are stored as strings whatever their type
    metrics=frozenset({"cosine", "dot", "euclidean"}),  # LanceDB's cosine, dot, l2
    namespaces=True,
    sparse=True,
    named_vectors=True,
    exact_count=True,
    nested_metadata=True,  # metadata is the JSON text itself
    idempotent_upsert=True,
    optional_dense=True,
    max_dimension=None,
    exact_floats=True,
    wire_factor=1.0,
)

#: a group commit takes pending writes up to this many rows / Arrow bytes
GROUP_MAX_ROWS = 20_000
GROUP_MAX_BYTES = 128 * 1024 * 1024


#: group commits that may run at once on one table (with disjoint keys)
COMMIT_SLOTS = 2


@dataclass
class _PendingWrite:
    data: pa.Table
    keys: frozenset[tuple[str, str]]
    done: bool = False
    error: BaseException | None = None


class _TableWriter:
    """Commits the writes to one table in groups, at most ``COMMIT_SLOTS`` groups at once.

    Each ``upsert`` queues its rows. A thread that finds a free slot takes every write
    queued so far (in order, up to ``GROUP_MAX_ROWS``) and commits them in one
    ``merge_insert``; the others find theirs done. A call returns only after its own
    rows are committed. Fewer, larger merges cost less than many small ones, and two
    merges overlap on two cores (measured 42k rows/s serial, 61k with two slots).

    Two merges never hold the same key: concurrent ``merge_insert`` calls that insert
    the same new key both insert it (lance-format/lance#4585). A group stops before
    the first write sharing a key with a running group, and waits for it, so writes
    of one key also commit in their order.
    """

    def __init__(self, slots: int = COMMIT_SLOTS) -> None:
        self.slots = slots
        self.cond = threading.Condition()
        self.queue: list[_PendingWrite] = []
        self.running: list[frozenset[tuple[str, str]]] = []  # keys of the groups committing

    def write(self, data: pa.Table, commit: Any) -> None:
        namespace = data.column(NAMESPACE_COLUMN)
        keys = frozenset(
            zip(namespace.to_pylist(), data.column(ID_COLUMN).to_pylist(), strict=True)
        )
        item = _PendingWrite(data, keys)
        with self.cond:
            self.queue.append(item)
        while True:
            with self.cond:
                while not item.done and (len(self.running) >= self.slots or not self._ready()):
                    self.cond.wait()
                if item.done:
                    break
                group = _take_group(self.queue, self.running)
                held = frozenset().union(*(g.keys for g in group))
                self.running.append(held)
            try:
                _commit_group(group, commit)
            finally:
                with self.cond:
                    self.running.remove(held)
                    self.cond.notify_all()
        if item.error is not None:
            raise item.error

    def _ready(self) -> bool:
        """Whether the first queued write can be committed now."""
        return bool(self.queue) and not any(self.queue[0].keys & k for k in self.running)


def _take_group(
    queue: list[_PendingWrite], running: list[frozenset[tuple[str, str]]]
) -> list[_PendingWrite]:
    rows = nbytes = 0
    count = 0
    for item in queue:
        if count and (
            rows + item.data.num_rows > GROUP_MAX_ROWS
            or nbytes + item.data.nbytes > GROUP_MAX_BYTES
        ):
            break
        if any(item.keys & k for k in running):
            break  # shares a key with a running merge: it waits, and so does all behind it
        rows += item.data.num_rows
        nbytes += item.data.nbytes
        count += 1
    group = queue[:count]
    del queue[:count]
    return group


def _commit_group(group: list[_PendingWrite], commit: Any) -> None:
    """Commit the group at once; if that fails, each write alone (errors stay with their call)."""
    try:
        if len(group) > 1:
            data = _last_per_key(pa.concat_tables([g.data for g in group]))
            commit(data)
            for g in group:
                g.done = True
            return
    except Exception:
        log.debug("group commit of %d writes failed; committing them one by one", len(group))
    for g in group:
        try:
            commit(g.data)
        except BaseException as exc:
            g.error = exc
        g.done = True


_WRITERS: dict[tuple[str, str], _TableWriter] = {}
_WRITERS_GUARD = threading.Lock()


def named_vector_column(name: str) -> str:
    """The LanceDB column of the named vector ``name`` (``.`` is not allowed in LanceDB)."""
    return NAMED_COLUMN_PREFIX + name.replace("%", "%25").replace(".", "%2E")


def sql_string(value: str) -> str:
    """A SQL string literal (DataFusion: quotes doubled, backslashes literal)."""
    return "'" + value.replace("'", "''") + "'"


def sql_column(name: str) -> str:
    """A column reference that survives any column name (Lance takes backticks)."""
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class _Layout:
    """How the columns of one LanceDB table map to records."""

    spec: IndexSpec
    vectra: bool
    id_column: str
    dense_column: str | None
    sparse_column: str | None
    metadata_column: str | None
    named_columns: Mapping[str, str] = field(default_factory=dict)  # vector name -> column
    extra_columns: tuple[str, ...] = ()  # foreign tables: columns folded into metadata
    namespace_column: str | None = None

    def source_columns(self) -> list[str]:
        cols = [self.id_column]
        for c in (self.dense_column, self.sparse_column, self.metadata_column):
            if c is not None:
                cols.append(c)
        cols.extend(self.named_columns[n] for n in sorted(self.named_columns))
        cols.extend(self.extra_columns)
        return list(dict.fromkeys(cols))

    def namespace_filter(self, namespace: str) -> str | None:
        """The SQL filter of a namespace; ``None`` = no filter (whole table)."""
        if self.namespace_column is None:
            return None
        return f"{sql_column(self.namespace_column)} = {sql_string(namespace)}"

    def holds(self, namespace: str) -> bool:
        return self.namespace_column is not None or namespace == DEFAULT_NAMESPACE


class LanceDBProvider(ProviderBase):
    """Indexes are LanceDB tables; see the module docstring for the layout."""

    name: ClassVar[str] = "lancedb"

    def __init__(
        self,
        location: str,
        *,
        api_key: str | None = None,
        tls: bool = False,
        **options: Any,
    ) -> None:
        self.id_column: str = str(options.pop("id_column", ID_COLUMN))
        vector_column = options.pop("vector_column", None)
        self.vector_column: str | None = None if vector_column is None else str(vector_column)
        storage_options = options.pop("storage_options", None)
        consistency = options.pop("read_consistency_interval", 0.0)
        if options:
            raise ConfigError(f"lancedb provider: unknown options {sorted(options)}")
        if not location:
            raise ConfigError(
                "lancedb provider needs a database path: lancedb:///abs/path/db or "
                "lancedb://relative/path"
            )
        if api_key:
            log.debug("lancedb is embedded: the API key is not used")
        self.location = location
        self.endpoint = f"lancedb://{location}"
        self.capabilities = LANCEDB_CAPABILITIES
        interval = None if consistency is None else dt.timedelta(seconds=float(consistency))
        kwargs: dict[str, Any] = {"read_consistency_interval": interval}
        if storage_options:
            kwargs["storage_options"] = dict(storage_options)
        try:
            self._db = lancedb.connect(location, **kwargs)
        except Exception as exc:
            raise ConfigError(f"cannot open LanceDB database {location!r}: {exc}") from exc
        is_local = "://" not in location
        self._lock_root = os.path.abspath(location) if is_local else location

    # -- boundary --------------------------------------------------------------
    @contextlib.contextmanager
    def _translate(self, index: str | None = None) -> Iterator[None]:
        """Translate LanceDB/Lance/OS failures into the vectra error tree."""
        try:
            yield
        except VectraError:
            raise
        except Exception as exc:
            raise self._error(exc, index) from exc

    def _error(self, exc: Exception, index: str | None) -> ProviderError:
        where: dict[str, Any] = {"provider": self.name, "endpoint": self.endpoint, "index": index}
        text = str(exc).strip() or type(exc).__name__
        low = text.lower()
        if isinstance(exc, ValueError) and (
            ("table" in low and "not found" in low) or "invalid table name" in low
        ):
            return IndexNotFoundError(f"index {index!r} does not exist", **where)
        if "no longer exists" in low and "version" in low:
            return FatalError(
                "the table version this scan started on was removed (cleanup of old "
                "versions); restart the export without resuming",
                **where,
            )
        if "conflict" in low or "too many concurrent writers" in low:
            return RetryableError(f"LanceDB commit conflict: {_first_line(text)}", **where)
        if isinstance(exc, TimeoutError) or "timed out" in low or "timeout" in low:
            return RetryableError(f"LanceDB timed out: {_first_line(text)}", **where)
        if isinstance(exc, FileNotFoundError) or "not found" in low:
            return FatalError(
                f"LanceDB data is missing (removed by a cleanup?): {_first_line(text)}", **where
            )
        return FatalError(f"LanceDB error: {_first_line(text)}", **where)

    def _open(self, index: str) -> Any:
        with self._translate(index):
            return self._db.open_table(index)

    def _writer(self, index: str) -> _TableWriter:
        key = (self._lock_root, index)
        with _WRITERS_GUARD:
            writer = _WRITERS.get(key)
            if writer is None:
                writer = _WRITERS[key] = _TableWriter()
            return writer

    # -- layout ----------------------------------------------------------------
    def _layout(self, table: Any, index: str) -> _Layout:
        with self._translate(index):
            schema: pa.Schema = table.schema
        meta = schema.metadata or {}
        if SPEC_KEY in meta:
            return self._vectra_layout(schema, meta, index)
        return self._foreign_layout(table, schema, index)

    def _vectra_layout(self, schema: pa.Schema, meta: Mapping[bytes, bytes], index: str) -> _Layout:
        try:
            spec = IndexSpec.from_dict({**json.loads(meta[SPEC_KEY]), "name": index})
            named_cols = json.loads(meta.get(NAMED_KEY, b"{}"))
        except (ValueError, KeyError, TypeError) as exc:
            raise FatalError(
                f"the vectra spec stored in table {index!r} is corrupt: {exc}",
                provider=self.name,
                endpoint=self.endpoint,
                index=index,
            ) from exc
        named = {n: named_cols.get(n, named_vector_column(n)) for n in spec.named_vectors}
        return _Layout(
            spec=spec,
            vectra=True,
            id_column=ID_COLUMN,
            dense_column=VECTOR_COLUMN if spec.dimension is not None else None,
            sparse_column=SPARSE_COLUMN if spec.sparse else None,
            metadata_column=METADATA_COLUMN,
            named_columns=named,
            namespace_column=NAMESPACE_COLUMN,
        )

    def _foreign_layout(self, table: Any, schema: pa.Schema, index: str) -> _Layout:
        where: dict[str, Any] = {"provider": self.name, "endpoint": self.endpoint, "index": index}
        if self.id_column not in schema.names:
            raise IncompatibleIndexError(
                f"table {index!r} was not created by vectra-io and has no {self.id_column!r} "
                "column; name its id column with the option id_column=NAME",
                **where,
            )
        id_type = schema.field(self.id_column).type
        if pa.types.is_unsigned_integer(id_type):
            id_kind = "uint64"
        elif pa.types.is_integer(id_type) or _is_stringish(id_type):
            id_kind = "string"
        else:
            raise IncompatibleIndexError(
                f"the id column {self.id_column!r} of table {index!r} has type {id_type}; "
                "vectra-io reads string or integer ids",
                **where,
            )
        vectors = [f.name for f in schema if _is_float_vector(f.type) and f.name != self.id_column]
        if self.vector_column is not None:
            if self.vector_column not in vectors:
                raise IncompatibleIndexError(
                    f"table {index!r} has no fixed-size-list float column {self.vector_column!r}",
                    **where,
                )
            dense: str | None = self.vector_column
        elif VECTOR_COLUMN in vectors:
            dense = VECTOR_COLUMN
        elif len(vectors) == 1:
            dense = vectors[0]
        else:
            dense = None
        named = {name: name for name in vectors if name != dense}
        extra = tuple(f.name for f in schema if f.name != self.id_column and f.name not in vectors)
        metrics = self._index_metrics(table, index)
        dimension = schema.field(dense).type.list_size if dense else None
        spec = IndexSpec(
            name=index,
            dimension=dimension,
            metric=metrics.get(dense, UNKNOWN_METRIC) if dense else UNKNOWN_METRIC,
            id_type=id_kind,
            named_vectors={
                name: _vector_spec(schema.field(col).type.list_size, metrics.get(col))
                for name, col in named.items()
            },
            sparse=False,
            raw_config={
                "lancedb_table": "foreign",
                "id_column": self.id_column,
                "vector_column": dense,
                "metadata_columns": list(extra),
            },
        )
        return _Layout(
            spec=spec,
            vectra=False,
            id_column=self.id_column,
            dense_column=dense,
            sparse_column=None,
            metadata_column=None,
            named_columns=named,
            extra_columns=extra,
            namespace_column=None,
        )

    def _index_metrics(self, table: Any, index: str) -> dict[str, str]:
        """Vector column -> vectra metric, from the table's vector indexes."""
        out: dict[str, str] = {}
        with self._translate(index):
            configs = table.list_indices()
        for cfg in configs:
            columns = list(getattr(cfg, "columns", []) or [])
            if len(columns) != 1:
                continue
            details = getattr(cfg, "index_details", None) or {}
            kind = details.get("metric_type") if isinstance(details, Mapping) else None
            if kind is None and "vector" in str(getattr(cfg, "type_url", "")).lower():
                try:
                    kind = table.index_stats(cfg.name).distance_type
                except Exception:  # statistics are best effort
                    kind = None
            if kind:
                out[columns[0]] = _FROM_LANCE_METRIC.get(str(kind).lower(), UNKNOWN_METRIC)
        return out

    # -- conversion ------------------------------------------------------------
    def _records(self, raw: pa.RecordBatch, layout: _Layout, schema: pa.Schema) -> pa.RecordBatch:
        """A batch read from LanceDB -> the record schema (column renames and casts only)."""
        n = raw.num_rows
        columns: list[pa.Array] = []
        for f in schema:
            if f.name == ID:
                col = raw.column(layout.id_column)
            elif f.name == VALUES:
                assert layout.dense_column is not None
                col = raw.column(layout.dense_column)
            elif f.name == SPARSE:
                col = (
                    raw.column(layout.sparse_column)
                    if layout.sparse_column
                    else pa.nulls(n, SPARSE_TYPE)
                )
            elif f.name == METADATA:
                if layout.metadata_column is not None:
                    col = raw.column(layout.metadata_column)
                else:
                    col = _metadata_json(raw, layout.extra_columns)
            else:
                col = raw.column(layout.named_columns[f.name[len(NAMED_PREFIX) :]])
            if isinstance(col, pa.ChunkedArray):
                col = col.combine_chunks()
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            if not col.type.equals(f.type):
                col = col.cast(f.type)
            columns.append(col)
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def _lance_batch(
        self, batch: pa.RecordBatch, layout: _Layout, namespace: str, target: pa.Schema
    ) -> pa.Table:
        """A conformed record batch -> the table's columns."""
        n = batch.num_rows
        by_column = {column: name for name, column in layout.named_columns.items()}
        arrays: list[pa.Array] = []
        names: list[str] = []
        for f in target:
            if f.name == ID_COLUMN:
                col = batch.column(ID)
            elif f.name == NAMESPACE_COLUMN:
                col = pa.repeat(pa.scalar(namespace, pa.string()), n)
            elif f.name == VECTOR_COLUMN:
                col = batch.column(VALUES)
            elif f.name == SPARSE_COLUMN:
                col = batch.column(SPARSE)
            elif f.name == METADATA_COLUMN:
                col = batch.column(METADATA)
            elif f.name in by_column:
                col = batch.column(NAMED_PREFIX + by_column[f.name])
            else:  # a column added to the table outside vectra-io
                col = pa.nulls(n, f.type)
            arrays.append(col)
            names.append(f.name)
        return pa.Table.from_arrays(arrays, schema=target.remove_metadata())

    # -- Provider --------------------------------------------------------------
    def list_indexes(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        with self._translate():
            while True:
                resp = self._db.list_tables(page_token=token)
                names.extend(resp.tables)
                token = getattr(resp, "page_token", None)
                if not token or not resp.tables:
                    break
        return sorted(set(names))

    def describe_index(self, index: str) -> IndexSpec:
        table = self._open(index)
        layout = self._layout(table, index)
        spec = layout.spec
        if layout.vectra and spec.dimension is not None and spec.metric == UNKNOWN_METRIC:
            metric = self._index_metrics(table, index).get(VECTOR_COLUMN)
            if metric:
                spec = replace(spec, metric=metric)
        return spec

    def list_namespaces(self, index: str) -> list[str]:
        table = self._open(index)
        layout = self._layout(table, index)
        if layout.namespace_column is None:
            with self._translate(index):
                return [DEFAULT_NAMESPACE] if table.count_rows() else []
        seen: set[str] = set()
        with self._translate(index):
            query = table.search().select([layout.namespace_column]).limit(None)
            for batch in query.to_batches(batch_size=65_536):
                seen.update(pc.unique(batch.column(0)).to_pylist())
        return sorted(s for s in seen if s is not None)

    def count(self, index: str, namespace: str = DEFAULT_NAMESPACE) -> int:
        table = self._open(index)
        layout = self._layout(table, index)
        if not layout.holds(namespace):
            return 0
        with self._translate(index):
            return int(table.count_rows(layout.namespace_filter(namespace)))

    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        if batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        version, offset = self._parse_cursor(cursor)
        table = self._open(index)
        with self._translate(index):
            if version is None:
                version = int(table.version)
            table.checkout(version)  # pin: every page, and every resume, reads this version
        layout = self._layout(table, index)
        schema = record_schema(layout.spec)
        if not layout.holds(namespace):
            return
        with self._translate(index):
            query = table.search().select([*layout.source_columns(), ROWADDR]).limit(None)
            where = layout.namespace_filter(namespace)
            if where is not None:
                query = query.where(where)
            if offset:
                query = query.offset(offset)
            reader = query.to_batches(batch_size=min(batch_size, READ_BATCH_ROWS))
            yield from self._pages(reader, layout, schema, version, offset, batch_size, index)

    def _pages(
        self,
        reader: Any,
        layout: _Layout,
        schema: pa.Schema,
        version: int,
        offset: int,
        batch_size: int,
        index: str,
    ) -> Iterator[ScanPage]:
        pending: list[pa.RecordBatch] = []
        have = 0
        last_addr = -1
        ready: tuple[pa.RecordBatch, int] | None = None  # held back one page to know the last
        for raw in reader:
            if raw.num_rows == 0:
                continue
            addr = raw.column(ROWADDR).to_numpy()
            if addr[0] <= last_addr or (len(addr) > 1 and not bool(np.all(addr[1:] > addr[:-1]))):
                raise FatalError(
                    "LanceDB returned rows out of physical order; a resumable scan "
                    "cannot be built on this table",
                    provider=self.name,
                    endpoint=self.endpoint,
                    index=index,
                )
            last_addr = int(addr[-1])
            pending.append(self._records(raw, layout, schema))
            have += raw.num_rows
            while have >= batch_size:
                whole = _concat(pending, schema)
                page, rest = whole.slice(0, batch_size), whole.slice(batch_size)
                pending, have = ([rest] if rest.num_rows else []), rest.num_rows
                offset += page.num_rows
                if ready is not None:
                    yield ScanPage(ready[0], {"version": version, "offset": ready[1]})
                ready = (page, offset)
        if pending:
            if ready is not None:
                yield ScanPage(ready[0], {"version": version, "offset": ready[1]})
            yield ScanPage(_concat(pending, schema), None)
        elif ready is not None:
            yield ScanPage(ready[0], None)

    @staticmethod
    def _parse_cursor(cursor: Cursor) -> tuple[int | None, int]:
        if cursor is None:
            return None, 0
        if (
            isinstance(cursor, Mapping)
            and isinstance(cursor.get("version"), int)
            and isinstance(cursor.get("offset"), int)
            and cursor["offset"] >= 0
        ):
            return int(cursor["version"]), int(cursor["offset"])
        raise ConfigError(f"not a lancedb scan cursor: {cursor!r}")

    def fetch(
        self, index: str, ids: Sequence[str], namespace: str = DEFAULT_NAMESPACE
    ) -> pa.RecordBatch:
        table = self._open(index)
        layout = self._layout(table, index)
        schema = record_schema(layout.spec)
        wanted = [str(i) for i in ids]
        if not wanted or not layout.holds(namespace):
            return _empty(schema)
        id_field = table.schema.field(layout.id_column)
        numeric = pa.types.is_integer(id_field.type)
        pieces: list[pa.RecordBatch] = []
        unique = list(dict.fromkeys(wanted))
        ns_filter = layout.namespace_filter(namespace)
        with self._translate(index):
            for start in range(0, len(unique), FETCH_CHUNK):
                chunk = unique[start : start + FETCH_CHUNK]
                if numeric:
                    literals = [s for s in chunk if _fits_int(s, id_field.type)]
                else:
                    literals = [sql_string(s) for s in chunk]
                if not literals:
                    continue
                where = f"{sql_column(layout.id_column)} IN ({', '.join(literals)})"
                if ns_filter is not None:
                    where = f"{ns_filter} AND {where}"
                query = table.search().where(where).select(layout.source_columns()).limit(None)
                for raw in query.to_arrow().to_batches():
                    pieces.append(self._records(raw, layout, schema))
        found = _concat(pieces, schema)
        # in the order asked (repeats included), like the reference provider
        positions = pc.index_in(pa.array(wanted, pa.string()), value_set=found.column(ID))
        return found.take(pc.drop_null(positions))

    def create_index(self, spec: IndexSpec) -> None:
        where: dict[str, Any] = {
            "provider": self.name,
            "endpoint": self.endpoint,
            "index": spec.name,
        }
        if spec.metric not in METRICS:
            raise ConfigError(f"unknown metric {spec.metric!r}: use one of {METRICS}")
        if spec.metric not in self.capabilities.metrics:
            raise IncompatibleIndexError(
                f"LanceDB has no {spec.metric} distance (it has cosine, dot and l2)", **where
            )
        if spec.id_type not in ID_TYPES:
            raise ConfigError(f"unknown id type {spec.id_type!r}: use one of {ID_TYPES}")
        dims = [spec.dimension] + [v.dimension for v in spec.named_vectors.values()]
        if any(d is not None and d < 1 for d in dims):
            raise ConfigError(f"index {spec.name!r}: vector dimensions must be at least 1")
        if spec.dimension is None and not spec.named_vectors and not spec.sparse:
            raise ConfigError(f"index {spec.name!r} has no vector at all")
        schema = table_schema(spec)
        try:
            with self._translate(spec.name):
                self._db.create_table(spec.name, schema=schema)
            log.info("created LanceDB table %r at %s", spec.name, self.location)
            return
        except IndexNotFoundError as exc:  # "invalid table name" is translated as not found
            raise ConfigError(
                f"{spec.name!r} is not a valid LanceDB table name (letters, digits, _ - . "
                "only); rename the index (index map)"
            ) from exc
        except ProviderError as exc:
            if "already exists" not in str(exc):
                raise
        existing = self.describe_index(spec.name)
        if existing.dimension != spec.dimension:
            raise IncompatibleIndexError(
                f"index {spec.name!r} exists with dimension {existing.dimension}, "
                f"not {spec.dimension}",
                **where,
            )

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        where: dict[str, Any] = {"provider": self.name, "endpoint": self.endpoint, "index": index}
        table = self._open(index)
        layout = self._layout(table, index)
        if not layout.vectra:
            raise IncompatibleIndexError(
                f"table {index!r} was not created by vectra-io; vectra-io reads it but does "
                "not write into it: import into a new index",
                **where,
            )
        if batch.num_rows == 0:
            return {}
        try:
            batch = conform(batch, layout.spec)
        except (ValueError, pa.ArrowException) as exc:  # conform lets ArrowTypeError through
            raise IncompatibleIndexError(
                f"the records do not fit the index: {exc}", **where
            ) from exc
        batch, bad = split_invalid(batch)
        refused = {rid: "NaN or infinite value in a vector" for rid in bad}
        if batch.num_rows == 0:
            return refused
        if batch.column(ID).null_count:
            raise IncompatibleIndexError("a record has a null id", **where)
        batch = _last_per_id(batch)

        def commit(data: pa.Table) -> None:
            (
                table.merge_insert([ID_COLUMN, NAMESPACE_COLUMN])
                .when_matched_update_all()
                .when_not_matched_insert_all()
                # NaN/inf were refused above, so only null (absent) vectors are "bad" here
                .execute(data, on_bad_vectors="null")
            )

        with self._translate(index):
            data = self._lance_batch(batch, layout, namespace, table.schema)
            self._writer(index).write(data, commit)
        return refused

    def delete_index(self, index: str) -> None:
        with self._translate(index):
            self._db.drop_table(index)  # a missing table raises "not found"

    def close(self) -> None:
        return None


# -- helpers -----------------------------------------------------------------
def table_schema(spec: IndexSpec) -> pa.Schema:
    """The LanceDB schema of a vectra index, with the spec in its metadata."""
    fields = [
        pa.field(ID_COLUMN, pa.string(), nullable=False),
        pa.field(NAMESPACE_COLUMN, pa.string(), nullable=False),
    ]
    if spec.dimension is not None:
        fields.append(pa.field(VECTOR_COLUMN, dense_type(spec.dimension)))
    if spec.sparse:
        fields.append(pa.field(SPARSE_COLUMN, SPARSE_TYPE))
    fields.append(pa.field(METADATA_COLUMN, pa.string()))
    named = {name: named_vector_column(name) for name in sorted(spec.named_vectors)}
    for name, column in named.items():
        fields.append(pa.field(column, dense_type(spec.named_vectors[name].dimension)))
    stored = replace(spec, raw_config={}).to_dict()
    stored.pop("name", None)
    meta = {
        SPEC_KEY: json.dumps(stored, sort_keys=True).encode(),
        NAMED_KEY: json.dumps(named, sort_keys=True).encode(),
    }
    return pa.schema(fields, metadata=meta)


def _vector_spec(dimension: int, metric: str | None) -> VectorSpec:
    return VectorSpec(int(dimension), metric or UNKNOWN_METRIC)


def _first_line(text: str) -> str:
    line = text.splitlines()[0] if text else text
    return line[:500]


def _is_stringish(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _is_float_vector(t: pa.DataType) -> bool:
    return bool(pa.types.is_fixed_size_list(t) and pa.types.is_floating(t.value_type))


def _fits_int(s: str, t: pa.DataType) -> bool:
    """``s`` is the canonical text of an integer of Arrow integer type ``t``."""
    body = s[1:] if s.startswith("-") else s
    if not (body.isascii() and body.isdigit()) or str(int(s)) != s:
        return False
    bits = t.bit_width
    if pa.types.is_unsigned_integer(t):
        return 0 <= int(s) < 2**bits
    return -(2 ** (bits - 1)) <= int(s) < 2 ** (bits - 1)


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)


def _concat(pieces: list[pa.RecordBatch], schema: pa.Schema) -> pa.RecordBatch:
    if not pieces:
        return _empty(schema)
    if len(pieces) == 1:
        return pieces[0]
    return pa.concat_batches(pieces)


def _last_per_id(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Drop all but the last of repeated ids (a repeated id in one batch: last one wins)."""
    ids = batch.column(ID)
    if pc.count_distinct(ids).as_py() == batch.num_rows:
        return batch
    return batch.take(_last_rows({"id": ids}, batch.num_rows))


def _last_per_key(data: pa.Table) -> pa.Table:
    """Drop all but the last row of each (id, namespace) of a group of writes."""
    keys = {"id": data.column(ID_COLUMN), "ns": data.column(NAMESPACE_COLUMN)}
    distinct = pa.table(keys).group_by(["id", "ns"]).aggregate([]).num_rows
    if distinct == data.num_rows:
        return data
    return data.take(_last_rows(keys, data.num_rows))


def _last_rows(keys: Mapping[str, Any], n: int) -> pa.Array:
    """The positions of the last row of each key, in row order."""
    rows = pa.table({**keys, "_row": pa.array(np.arange(n))})
    last = rows.group_by(list(keys)).aggregate([("_row", "max")]).column("_row_max")
    last = last.combine_chunks()
    return pc.take(last, pc.sort_indices(last))


# -- metadata of foreign tables ---------------------------------------------
_CONTROL = {chr(c): f"\\u{c:04x}" for c in range(0x20)} | {
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _metadata_json(raw: pa.RecordBatch, columns: Sequence[str]) -> pa.Array:
    """One JSON object per row from ``columns`` (column name -> key), column by column."""
    n = raw.num_rows
    if not columns:
        return pa.nulls(n, pa.string())
    parts: list[Any] = []
    for i, name in enumerate(columns):
        key = json.dumps(name, ensure_ascii=False)
        prefix = ("{" if i == 0 else ",") + key + ":"
        parts.append(pa.scalar(prefix, pa.string()))
        parts.append(_json_values(raw.column(name)))
    parts.append(pa.scalar("}", pa.string()))
    return pc.binary_join_element_wise(*parts, "")


def _json_values(col: pa.Array) -> pa.Array:
    """The JSON text of every value of a column; nulls -> ``null``."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.dictionary_decode()
        t = col.type
    null = pa.scalar("null", pa.string())
    if pa.types.is_null(t):
        return pa.repeat(null, len(col))
    if _is_stringish(t):
        text = col.cast(pa.string())
        text = pc.replace_substring(text, "\\", "\\\\")
        text = pc.replace_substring(text, '"', '\\"')
        if pc.any(pc.match_substring_regex(text, "[\\x00-\\x1f]")).as_py():
            for ch, esc in _CONTROL.items():
                text = pc.replace_substring(text, ch, esc)
        quoted = pc.binary_join_element_wise('"', text, '"', "")
        return pc.fill_null(quoted, null)
    if pa.types.is_boolean(t):
        return pc.fill_null(pc.if_else(col, "true", "false"), null)
    if pa.types.is_integer(t):
        return pc.fill_null(col.cast(pa.string()), null)
    if pa.types.is_floating(t):
        finite = pc.is_finite(col)
        shown = pc.if_else(finite, col.cast(pa.float64()).cast(pa.string()), None)
        return pc.fill_null(shown, null)
    return pa.array(
        [
            json.dumps(_jsonable(v), ensure_ascii=False, separators=(",", ":"))
            for v in col.to_pylist()
        ],
        pa.string(),
    )


def _jsonable(value: Any) -> Any:
    """Python values of nested/temporal Arrow types -> JSON-encodable values."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(isinstance(p, tuple) and len(p) == 2 for p in value):
            return {str(k): _jsonable(v) for k, v in value}  # a map column
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return str(value)
