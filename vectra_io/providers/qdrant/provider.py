"""The :class:`QdrantProvider` class: scans (scroll pages, one request ahead), fetches by
id, upserts (points built from record batches, bodies split when too large, refused
records named) and searches. Options, HTTP and the collection cache come from
:class:`QdrantClient`, indexes, namespaces and counts from :class:`QdrantIndexes`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from ...errors import (
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    RecordsRejectedError,
    UnsupportedError,
)
from ...ids import ORIGINAL_ID_KEY
from ...records import (
    ID,
    METADATA,
    NAMED_PREFIX,
    SPARSE,
    VALUES,
    conform,
    dense_matrix,
    record_schema,
    sparse_array,
)
from .._http import dumps
from ..base import (
    DEFAULT_NAMESPACE,
    Cursor,
    IndexSpec,
    ScanPage,
)
from .collection_info import Info
from .indexes import QdrantIndexes
from .names import (
    NS_SEPARATOR,
    canonical_point,
    check_name,
    namespace_collection,
    namespace_uuid,
    point_id,
    quote,
    uuid5,
)
from .points import (
    dense_column,
    dense_value,
    dumps_meta,
    load_payload,
    name_points,
    sparse_vectors_per_row,
)
from .settings import FETCH_CHUNK, META_KEY, UNNAMED

log = logging.getLogger("vectra_io.providers.qdrant")


class QdrantProvider(QdrantIndexes):
    name: ClassVar[str] = "qdrant"

    # -- reading -----------------------------------------------------------------------------
    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        base = self._info(index, fresh=True)
        spec = self._spec(base, index)
        info, flt = self._ns_info(index, namespace)
        if info is None:
            return
        info.refuse_unsupported(self)
        path = f"/collections/{quote(info.name)}/points/scroll"
        body: dict[str, Any] = {
            "limit": max(1, int(batch_size)),
            "with_payload": True,
            "with_vector": info.with_vector(),
        }
        if flt is not None:
            body["filter"] = flt

        def page(offset: Any) -> dict[str, Any]:
            request = body if offset is None else {**body, "offset": offset}
            return self._call("POST", path, body=request, index=index) or {}

        # the next page is requested while this one is converted (one request ahead)
        ahead = ThreadPoolExecutor(1, thread_name_prefix="vectra-qdrant-scroll")
        try:
            pending = ahead.submit(page, cursor)
            while True:
                result = pending.result()
                offset = result.get("next_page_offset")
                if offset is not None:
                    pending = ahead.submit(page, offset)
                batch = self._to_batch(spec, info, result.get("points") or [], namespace)
                if batch.num_rows or offset is None:
                    yield ScanPage(batch, offset)
                if offset is None:
                    return
        finally:
            ahead.shutdown(wait=False, cancel_futures=True)

    def fetch(
        self, index: str, ids: Sequence[str], namespace: str = DEFAULT_NAMESPACE
    ) -> pa.RecordBatch:
        base = self._info(index)
        spec = self._spec(base, index)
        schema = record_schema(spec)
        info, _ = self._ns_info(index, namespace)
        wanted = list(dict.fromkeys(str(i) for i in ids))
        if info is None or not wanted:
            return pa.RecordBatch.from_pylist([], schema=schema)
        info.refuse_unsupported(self)
        qualified = self._qualified(namespace)
        pids = [self._point_id(rid, qualified)[0] for rid in wanted]
        path = f"/collections/{quote(info.name)}/points"
        points: list[dict[str, Any]] = []
        for start in range(0, len(pids), FETCH_CHUNK):
            body = {
                "ids": pids[start : start + FETCH_CHUNK],
                "with_payload": True,
                "with_vector": info.with_vector(),
            }
            points.extend(self._call("POST", path, body=body, index=index) or [])
        batch = self._to_batch(spec, info, points, namespace)
        keep = set(wanted)
        got = batch.column(ID).to_pylist()
        seen: set[str] = set()
        mask = []
        for rid in got:
            mask.append(rid in keep and rid not in seen)
            seen.add(rid)
        return batch if all(mask) else batch.filter(pa.array(mask))

    def _to_batch(
        self, spec: IndexSpec, info: Info, points: list[dict[str, Any]], namespace: str
    ) -> pa.RecordBatch:
        """Qdrant points -> a record batch of ``spec``; points of other namespaces dropped."""
        ns_key = self.namespace_key if self.namespace_mode == "payload" else None
        sparse_name = info.sparse_name
        ids: list[str] = []
        metas: list[str | None] = []
        dense: list[Any] = []
        named: dict[str, list[Any]] = {n: [] for n in spec.named_vectors}
        sparse: list[Any] = []
        for p in points:
            payload = p.get("payload") or {}
            if ns_key is not None:
                ns = payload.pop(ns_key, None)
                if (ns if isinstance(ns, str) and ns else DEFAULT_NAMESPACE) != namespace:
                    continue
            original = payload.pop(ORIGINAL_ID_KEY, None)
            pid = p.get("id")
            ids.append(original if isinstance(original, str) else str(canonical_point(pid)))
            metas.append(dumps_meta(payload) if payload else None)
            vec = p.get("vector")
            if isinstance(vec, list):  # the unnamed vector alone
                vec = {UNNAMED: vec}
            elif not isinstance(vec, Mapping):
                vec = {}
            if spec.dimension is not None:
                dense.append(dense_value(vec.get(UNNAMED), info.name, UNNAMED))
            for name, column in named.items():
                column.append(dense_value(vec.get(name), info.name, name))
            if spec.sparse:
                sv = vec.get(sparse_name) if sparse_name is not None else None
                sparse.append(sv if isinstance(sv, Mapping) else None)
        schema = record_schema(spec)
        columns: list[pa.Array] = []
        for f in schema:
            if f.name == ID:
                columns.append(pa.array(ids, pa.string()))
            elif f.name == VALUES:
                assert spec.dimension is not None
                columns.append(dense_column(dense, spec.dimension))
            elif f.name == SPARSE:
                columns.append(sparse_array(sparse))
            elif f.name == METADATA:
                columns.append(pa.array(metas, pa.string()))
            else:
                name = f.name[len(NAMED_PREFIX) :]
                columns.append(dense_column(named[name], spec.named_vectors[name].dimension))
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    # -- writing -----------------------------------------------------------------------------
    def _qualified(self, namespace: str) -> uuid.UUID | None:
        if self.namespace_mode == "payload" and namespace != DEFAULT_NAMESPACE:
            return namespace_uuid(namespace)
        return None

    @staticmethod
    def _point_id(record_id: str, qualified: uuid.UUID | None) -> tuple[int | str, bool]:
        if qualified is None:
            return point_id(record_id)
        return uuid5(qualified.bytes, record_id), True

    def _write_target(self, index: str, namespace: str) -> Info:
        base = self._info(index)
        if self.namespace_mode != "collection" or namespace == DEFAULT_NAMESPACE:
            return base
        name = namespace_collection(index, namespace)
        with self._lock:
            known = name in self._known_ns_collections
        if known:
            return self._info(name)
        with self._create_lock:
            info = self._maybe_fresh(name)
            if info is None:
                info = self._create_namespace_collection(index, namespace, name, base)
            if info.meta.get("index") != index or info.meta.get("namespace") != namespace:
                raise IncompatibleIndexError(
                    f"collection {name!r} exists but is not namespace {namespace!r} of index "
                    f"{index!r} (its metadata says otherwise); rename or delete it",
                    **self._where(index),
                )
            with self._lock:
                self._known_ns_collections.add(name)
            return info

    def _create_namespace_collection(
        self, index: str, namespace: str, name: str, base: Info
    ) -> Info:
        if NS_SEPARATOR in index:
            raise ConfigError(
                f"index {index!r} contains {NS_SEPARATOR!r}: its namespaces cannot be "
                "collections of their own"
            )
        check_name(name)
        body = base.create_body()
        metadata = dict(body.get("metadata") or {})
        metadata[META_KEY] = {**base.meta, "index": index, "namespace": namespace}
        body["metadata"] = metadata
        log.info("creating collection %r for namespace %r of %r", name, namespace, index)
        try:
            self._call("PUT", f"/collections/{quote(name)}", body=body, index=index, not_found=None)
        except FatalError as exc:
            if exc.status != 409:
                raise
            return self._info(name, fresh=True)
        schema = {
            k: v.get("params") or v.get("data_type")
            for k, v in base.payload_schema.items()
            if isinstance(v, Mapping) and (v.get("params") or v.get("data_type"))
        }
        self._create_payload_indexes(name, schema)
        return self._info(name, fresh=True)

    def check_records(self, batch: pa.RecordBatch) -> dict[str, str]:
        """Plan pre-flight (:mod:`vectra_io.engine.plan`): ``{id: reason}`` for the records
        of ``batch`` an upsert would refuse (metadata with vectra's reserved keys or integers
        beyond 64 bits, repeated sparse indices) or whose id it would map to a UUID (the
        original kept under ``_vectra_id``, restored on export). Nothing is sent. The
        namespace is not known here: in ``payload`` mode the ids of a non-default namespace
        are all mapped, but only the ids mapped in every namespace are reported."""
        names = batch.schema.names
        n = batch.num_rows
        ids = batch.column(ID).to_pylist()
        metas = batch.column(METADATA).to_pylist() if METADATA in names else [None] * n
        sparse = sparse_vectors_per_row(batch.column(SPARSE)) if SPARSE in names else [None] * n
        reserved = (ORIGINAL_ID_KEY, self.namespace_key)
        out: dict[str, str] = {}
        for i, rid in enumerate(ids):
            out.pop(rid, None)  # a repeated id: the last row wins
            try:
                payload = load_payload(metas[i])
            except ValueError as exc:
                out[rid] = f"refused: {exc}"
                continue
            clash = [k for k in reserved if k in payload]
            sv = sparse[i]
            if clash:
                out[rid] = f"refused: metadata uses the reserved key(s) {clash}"
            elif sv is not None and len(np.unique(sv["indices"])) != len(sv["indices"]):
                out[rid] = "refused: sparse_values repeats an index"
            elif point_id(rid)[1]:
                out[rid] = f"id mapped to a UUID (original kept in the payload {ORIGINAL_ID_KEY!r})"
        return out

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        base = self._info(index)
        spec = self._spec(base, index)
        names = record_schema(spec).names
        extra = [
            n
            for n in batch.schema.names
            if n not in names
            and (n in (SPARSE, VALUES) or n.startswith(NAMED_PREFIX))
            and batch.column(n).null_count < batch.num_rows
        ]
        if extra:
            raise IncompatibleIndexError(
                f"index {index!r} has no place for the column(s) {extra} of the records",
                **self._where(index),
            )
        try:
            batch = conform(batch, spec)
        except ValueError as exc:
            raise IncompatibleIndexError(
                f"the records do not fit index {index!r}: {exc}", **self._where(index)
            ) from None
        info = self._write_target(index, namespace)
        info.refuse_unsupported(self)
        points, refused = self._points(spec, info, batch, namespace)
        if points:
            self._put_points(info.name, index, points, refused)
        return refused

    def _points(
        self, spec: IndexSpec, info: Info, batch: pa.RecordBatch, namespace: str
    ) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
        """(original id, point) for every record Qdrant can hold, and the refused ones."""
        n = batch.num_rows
        ids = batch.column(ID).to_pylist()
        refused: dict[str, str] = {}
        bad = np.zeros(n, dtype=bool)
        dense_cols: list[tuple[str, np.ndarray, np.ndarray]] = []
        for name in batch.schema.names:
            if name != VALUES and not name.startswith(NAMED_PREFIX):
                continue
            col = batch.column(name)
            matrix = np.ascontiguousarray(dense_matrix(col), dtype=np.float32)
            valid = (
                np.ones(n, dtype=bool)
                if col.null_count == 0
                else np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            )
            finite = np.isfinite(matrix).all(axis=1) if matrix.size else np.ones(n, dtype=bool)
            for j in np.flatnonzero(valid & ~finite).tolist():
                refused.setdefault(ids[j], f"{name} holds NaN or infinite values")
                bad[j] = True
            qname = UNNAMED if name == VALUES else name[len(NAMED_PREFIX) :]
            dense_cols.append((qname, matrix, valid))
        sparse_rows: list[dict[str, Any] | None] = [None] * n
        if SPARSE in batch.schema.names and info.sparse_name is not None:
            sparse_rows = sparse_vectors_per_row(batch.column(SPARSE))
            for r, sv in enumerate(sparse_rows):
                if sv is None:
                    continue
                vals, idx = sv["values"], sv["indices"]
                if not np.isfinite(vals).all():
                    refused.setdefault(ids[r], "sparse_values holds NaN or infinite values")
                    bad[r] = True
                elif len(np.unique(idx)) != len(idx):
                    refused.setdefault(ids[r], "sparse_values repeats an index")
                    bad[r] = True
        metas = batch.column(METADATA).to_pylist()
        qualified = self._qualified(namespace)
        ns_value = namespace if qualified is not None else None
        reserved = (ORIGINAL_ID_KEY, self.namespace_key)
        sparse_name = info.sparse_name
        simple = not info.named and sparse_name is None
        points: list[tuple[str, dict[str, Any]]] = []
        for i in range(n):
            if bad[i]:
                continue
            rid = ids[i]
            text = metas[i]
            try:
                payload = load_payload(text)
            except ValueError as exc:
                refused[rid] = str(exc)
                continue
            if (text and "_vectra" in text) or self.namespace_key in payload:
                clash = [k for k in reserved if k in payload]
                if clash:
                    refused[rid] = f"metadata uses the reserved key(s) {clash}"
                    continue
            pid, mapped = self._point_id(rid, qualified)
            if mapped:
                payload[ORIGINAL_ID_KEY] = rid
            if ns_value is not None:
                payload[self.namespace_key] = ns_value
            vectors: dict[str, Any] = {}
            for qname, matrix, valid in dense_cols:
                if valid[i]:
                    vectors[qname] = matrix[i]
            sv = sparse_rows[i]
            if sv is not None and sparse_name is not None:
                vectors[sparse_name] = sv
            vector: Any = vectors[UNNAMED] if simple and UNNAMED in vectors else vectors
            points.append((rid, {"id": pid, "vector": vector, "payload": payload}))
        return points, refused

    def _put_points(
        self,
        collection: str,
        index: str,
        points: list[tuple[str, dict[str, Any]]],
        refused: dict[str, str],
    ) -> None:
        try:
            content = dumps({"points": [p for _, p in points]})
        except TypeError:  # an integer beyond 64 bits somewhere in the payloads
            keep = []
            for rid, p in points:
                try:
                    dumps(p["payload"])
                except TypeError as exc:
                    refused[rid] = f"metadata cannot be stored by Qdrant: {exc}"
                else:
                    keep.append((rid, p))
            if not keep:
                return
            points = keep
            content = dumps({"points": [p for _, p in points]})
        if len(content) > self.max_request_bytes and len(points) > 1:
            half = len(points) // 2
            self._put_points(collection, index, points[:half], refused)
            self._put_points(collection, index, points[half:], refused)
            return
        try:
            self._call(
                "PUT",
                f"/collections/{quote(collection)}/points?wait=true",
                content=content,
                index=index,
                rejected=True,
            )
        except RecordsRejectedError as exc:
            exc.failures = name_points(str(exc.message), points)
            raise

    # -- search ------------------------------------------------------------------------------
    def query(
        self,
        index: str,
        vector: Sequence[float],
        top_k: int = 10,
        namespace: str = DEFAULT_NAMESPACE,
        filter: Mapping[str, Any] | None = None,
        vector_name: str | None = None,
    ) -> list[dict[str, Any]]:
        """Nearest records as ``{id, score, metadata}``; ``score`` is higher for closer
        records (Euclid/Manhattan distances are negated). ``filter`` matches metadata keys
        by equality (``{"genre": "jazz"}``), or is a Qdrant filter when its keys are
        ``must``/``should``/``must_not``/``min_should``."""
        info, ns_filter = self._ns_info(index, namespace)
        if info is None:
            return []
        info.refuse_unsupported(self)
        using = UNNAMED if vector_name is None else vector_name
        params = info.dense.get(using)
        if params is None:
            raise ConfigError(f"index {index!r} has no dense vector {vector_name or '(default)'!r}")
        q = np.asarray(vector, dtype=np.float32)
        if not np.isfinite(q).all():
            raise ConfigError("the query vector holds NaN or infinite values")
        body: dict[str, Any] = {
            "query": np.ascontiguousarray(q),
            "limit": max(1, int(top_k)),
            "with_payload": True,
        }
        if info.named:
            body["using"] = using
        must = list((ns_filter or {}).get("must") or [])
        user = _user_filter(filter)
        if user is not None:
            must.append(user)
        if must:
            body["filter"] = {"must": must}
        result = (
            self._call(
                "POST", f"/collections/{quote(info.name)}/points/query", body=body, index=index
            )
            or {}
        )
        sign = 1.0 if params.get("distance") in ("Cosine", "Dot") else -1.0
        out = []
        for p in result.get("points") or []:
            payload = dict(p.get("payload") or {})
            if self.namespace_mode == "payload":
                payload.pop(self.namespace_key, None)
            original = payload.pop(ORIGINAL_ID_KEY, None)
            rid = original if isinstance(original, str) else str(canonical_point(p.get("id")))
            out.append({"id": rid, "score": sign * float(p["score"]), "metadata": payload or None})
        return out


def _user_filter(filter: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A Qdrant filter from a metadata equality filter (or a native Qdrant filter)."""
    if not filter:
        return None
    if set(filter) <= {"must", "should", "must_not", "min_should"}:
        return dict(filter)
    must: list[dict[str, Any]] = []
    for key, value in filter.items():
        if key in (ORIGINAL_ID_KEY,):
            raise ConfigError(f"cannot filter on the reserved key {key!r}")
        if value is None:
            must.append({"is_null": {"key": key}})
        elif isinstance(value, bool | str) or (
            isinstance(value, int) and -(2**63) <= value < 2**63
        ):
            must.append({"key": key, "match": {"value": value}})
        elif isinstance(value, int | float):
            must.append({"key": key, "range": {"gte": value, "lte": value}})
        else:
            raise UnsupportedError(
                f"filter on {key!r}: only strings, numbers, booleans and null compare by "
                "equality; pass a Qdrant filter ({'must': [...]}) for more"
            )
    return {"must": must}
