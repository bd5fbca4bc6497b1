"""The in-process ``memory`` provider: the reference implementation.

Records are kept as Arrow batches (append-only chunks with a liveness mask), so
large indexes stay compact and scans are zero-copy slices. ``memory://NAME``
names a store shared inside one process; an empty location is a private store.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, IncompatibleIndexError, IndexNotFoundError
from ..records import (
    ID,
    METADATA,
    NAMED_PREFIX,
    VALUES,
    conform,
    dense_matrix,
    loads_metadata,
    record_schema,
)
from .base import (
    DEFAULT_NAMESPACE,
    ID_TYPES,
    METRICS,
    Capabilities,
    Cursor,
    IndexSpec,
    ProviderBase,
    ScanPage,
)


@dataclass
class _Namespace:
    chunks: list[pa.RecordBatch] = field(default_factory=list)
    live: list[np.ndarray] = field(default_factory=list)
    where: dict[str, tuple[int, int]] = field(default_factory=dict)

    def upsert(self, batch: pa.RecordBatch) -> None:
        ids = batch.column(ID).to_pylist()
        chunk_no = len(self.chunks)
        alive = np.ones(len(ids), dtype=bool)
        for row, rid in enumerate(ids):
            old = self.where.get(rid)
            if old is not None:
                if old[0] == chunk_no:
                    alive[old[1]] = False  # repeated inside this batch: last one wins
                else:
                    self.live[old[0]][old[1]] = False
            self.where[rid] = (chunk_no, row)
        self.chunks.append(batch)
        self.live.append(alive)

    def rows(self, ids: Sequence[str]) -> list[pa.RecordBatch]:
        out = []
        for rid in ids:
            pos = self.where.get(rid)
            if pos is not None:
                out.append(self.chunks[pos[0]].slice(pos[1], 1))
        return out


@dataclass
class _Index:
    spec: IndexSpec
    namespaces: dict[str, _Namespace] = field(default_factory=dict)


class _Store:
    def __init__(self) -> None:
        self.indexes: dict[str, _Index] = {}
        self.lock = threading.RLock()


_NAMED_STORES: dict[str, _Store] = {}
_NAMED_LOCK = threading.Lock()

MEMORY_CAPABILITIES = Capabilities(
    max_batch_rows=None,
    max_batch_bytes=None,
    id_types=frozenset(ID_TYPES),
    metrics=frozenset(METRICS),
    namespaces=True,
    sparse=True,
    named_vectors=True,
    exact_count=True,
    nested_metadata=True,
    idempotent_upsert=True,
    optional_dense=True,
)


class MemoryProvider(ProviderBase):
    name: ClassVar[str] = "memory"

    def __init__(
        self,
        location: str = "",
        *,
        api_key: str | None = None,
        tls: bool = False,
        capabilities: Capabilities | None = None,
        **options: Any,
    ) -> None:
        if options:
            raise ConfigError(f"memory provider: unknown options {sorted(options)}")
        name = location.strip("/")
        if name:
            with _NAMED_LOCK:
                self._store = _NAMED_STORES.setdefault(name, _Store())
        else:  # a private store, with a name of its own so that import state can tell it apart
            name = f"_private-{uuid.uuid4().hex[:12]}"
            self._store = _Store()
        self.endpoint = f"memory://{name}"
        self.capabilities = capabilities or MEMORY_CAPABILITIES

    # -- helpers -------------------------------------------------------------
    def _index(self, index: str) -> _Index:
        try:
            return self._store.indexes[index]
        except KeyError:
            raise IndexNotFoundError(
                f"index {index!r} does not exist", provider=self.name, endpoint=self.endpoint
            ) from None

    # -- Provider ------------------------------------------------------------
    def list_indexes(self) -> list[str]:
        with self._store.lock:
            return sorted(self._store.indexes)

    def describe_index(self, index: str) -> IndexSpec:
        with self._store.lock:
            return self._index(index).spec

    def list_namespaces(self, index: str) -> list[str]:
        with self._store.lock:
            return sorted(self._index(index).namespaces)

    def count(self, index: str, namespace: str = DEFAULT_NAMESPACE) -> int:
        with self._store.lock:
            ns = self._index(index).namespaces.get(namespace)
            return len(ns.where) if ns else 0

    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        with self._store.lock:
            idx = self._index(index)
            schema = record_schema(idx.spec)
            ns = idx.namespaces.get(namespace)
            if ns is None:
                return
            chunks, live = list(ns.chunks), [m.copy() for m in ns.live]
        chunk_no, row = cursor if cursor else (0, 0)
        pieces: list[pa.RecordBatch] = []
        have = 0
        while chunk_no < len(chunks):
            rows = np.flatnonzero(live[chunk_no][row:]) + row
            take = rows[: batch_size - have]
            if len(take):
                first, n = int(take[0]), len(take)
                contiguous = int(take[-1]) - first + 1 == n  # no replaced rows in between
                chunk = chunks[chunk_no]
                pieces.append(chunk.slice(first, n) if contiguous else chunk.take(pa.array(take)))
                have += n
            if len(take) < len(rows):
                row = int(take[-1]) + 1
            else:
                chunk_no, row = chunk_no + 1, 0
            if have >= batch_size:
                more = any(
                    live[c][row if c == chunk_no else 0 :].any()
                    for c in range(chunk_no, len(chunks))
                )
                yield ScanPage(_concat(pieces, schema), [chunk_no, row] if more else None)
                if not more:
                    return
                pieces, have = [], 0
        if pieces:
            yield ScanPage(_concat(pieces, schema), None)

    def fetch(
        self, index: str, ids: Sequence[str], namespace: str = DEFAULT_NAMESPACE
    ) -> pa.RecordBatch:
        with self._store.lock:
            idx = self._index(index)
            schema = record_schema(idx.spec)
            ns = idx.namespaces.get(namespace)
            pieces = ns.rows(ids) if ns else []
        return _concat(pieces, schema)

    def create_index(self, spec: IndexSpec) -> None:
        with self._store.lock:
            if spec.name in self._store.indexes:
                existing = self._store.indexes[spec.name].spec
                if existing.dimension != spec.dimension:
                    raise IncompatibleIndexError(
                        f"index {spec.name!r} exists with dimension {existing.dimension}, "
                        f"not {spec.dimension}",
                        provider=self.name,
                    )
                return
            if spec.metric not in METRICS:
                raise ConfigError(f"unknown metric {spec.metric!r}: use one of {METRICS}")
            self._store.indexes[spec.name] = _Index(replace(spec, raw_config={}))

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        with self._store.lock:
            idx = self._index(index)
        try:
            batch = conform(batch, idx.spec)
        except ValueError as exc:
            raise IncompatibleIndexError(str(exc), provider=self.name, index=index) from exc
        with self._store.lock:
            idx.namespaces.setdefault(namespace, _Namespace()).upsert(batch)
        return {}

    def delete_index(self, index: str) -> None:
        with self._store.lock:
            self._index(index)
            del self._store.indexes[index]

    # -- search (reference semantics) ---------------------------------------
    def query(
        self,
        index: str,
        vector: Sequence[float],
        top_k: int = 10,
        namespace: str = DEFAULT_NAMESPACE,
        filter: Mapping[str, Any] | None = None,
        vector_name: str | None = None,
    ) -> list[dict[str, Any]]:
        """Exact top-k under the index metric. ``filter`` matches metadata keys by equality."""
        spec = self.describe_index(index)
        column = VALUES if vector_name is None else NAMED_PREFIX + vector_name
        metric = spec.metric if vector_name is None else spec.named_vectors[vector_name].metric
        q = np.asarray(vector, dtype=np.float32)
        hits: list[tuple[float, str, str | None]] = []
        for scanned in self.scan(index, namespace, batch_size=10_000):
            page = scanned.batch
            col = page.column(column)
            m = dense_matrix(col)
            valid = col.is_valid().to_numpy(zero_copy_only=False)
            scores = _scores(metric, m, q)
            ids = page.column(ID).to_pylist()
            metas = page.column(METADATA).to_pylist()
            for i in np.flatnonzero(valid):
                if filter and not _matches(loads_metadata(metas[i]), filter):
                    continue
                hits.append((float(scores[i]), ids[i], metas[i]))
        hits.sort(key=lambda h: -h[0])
        return [
            {"id": rid, "score": score, "metadata": loads_metadata(meta)}
            for score, rid, meta in hits[:top_k]
        ]


def _concat(pieces: list[pa.RecordBatch], schema: pa.Schema) -> pa.RecordBatch:
    if not pieces:
        return pa.RecordBatch.from_pylist([], schema=schema)
    if len(pieces) == 1:
        return pieces[0]
    return pa.Table.from_batches(pieces, schema=schema).combine_chunks().to_batches()[0]


def _scores(metric: str, m: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Higher is closer, for every metric."""
    if metric == "cosine":
        norms = np.linalg.norm(m, axis=1) * (np.linalg.norm(q) or 1.0)
        return (m @ q) / np.where(norms == 0, 1.0, norms)
    if metric == "dot":
        return m @ q
    if metric == "euclidean":
        return -np.linalg.norm(m - q, axis=1)
    if metric == "manhattan":
        return -np.abs(m - q).sum(axis=1)
    raise ConfigError(f"cannot search with metric {metric!r}")


def _matches(meta: dict[str, Any] | None, filt: Mapping[str, Any]) -> bool:
    return meta is not None and all(meta.get(k) == v for k, v in filt.items())
