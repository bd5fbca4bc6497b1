"""Records <-> Milvus entities: :class:`RowCodec` turns a record batch into the entity rows
of an upsert (refusing, by id, the records a collection cannot hold exactly: bad primary
keys, missing or non-finite vectors, unfit sparse vectors or metadata) and query rows back
into a record batch; with the primary-key value of a vectra id and the vector and
metadata conversions they use.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import ConfigError, FatalError
from ...records import (
    ID,
    METADATA,
    SPARSE,
    VALUES,
    dense_matrix,
    dumps_metadata,
    named_column,
    non_finite_rows,
    sparse_array,
)
from ..base import Cursor
from .schema import DYNAMIC_FIELD, INT64_MAX, INT64_MIN, VARCHAR_MAX, Layout, json_safe

log = logging.getLogger("vectra_io.providers.milvus")


class RowCodec:
    """The row conversions of one provider: ``lite`` (Milvus Lite keeps only positive
    sparse weights) and whether it has warned about non-finite metadata already."""

    def __init__(self, *, lite: bool) -> None:
        self.lite = lite
        self._warned_nonfinite = False

    def to_rows(
        self, layout: Layout, batch: pa.RecordBatch
    ) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
        """Entity dicts for pymilvus, the ids they carry, and the records refused up front."""
        n = batch.num_rows
        ids: list[str] = batch.column(ID).to_pylist()
        bad: list[str | None] = [None] * n

        def refuse(mask: np.ndarray, reason: str) -> None:
            for i in np.flatnonzero(mask):
                if bad[i] is None:
                    bad[i] = reason

        # ids
        keys: list[Any] = [None] * n
        for i, rid in enumerate(ids):
            key = pk_value(layout, rid)
            if key is None:
                bad[i] = _pk_problem(layout, rid)
            keys[i] = key
        if not layout.pk_int and layout.pk_max_length:
            lengths = pc.binary_length(batch.column(ID)).to_numpy(zero_copy_only=False)
            refuse(
                lengths > layout.pk_max_length,
                f"id longer than the primary key's max_length of {layout.pk_max_length} bytes",
            )
        refuse(non_finite_rows(batch), "vector values must be finite (no NaN or infinity)")
        # vectors
        vectors: dict[str, np.ndarray] = {}
        if layout.dense:
            col = batch.column(VALUES)
            refuse(
                ~col.is_valid().to_numpy(zero_copy_only=False),
                "Milvus keeps a dense vector on every entity and this record has none",
            )
            vectors[layout.dense] = dense_matrix(col)
        for vname, (fname, _) in layout.named.items():
            col = batch.column(named_column(vname))
            refuse(
                ~col.is_valid().to_numpy(zero_copy_only=False),
                f"Milvus keeps every vector field on every entity; named vector {vname!r} "
                "is missing",
            )
            vectors[fname] = dense_matrix(col)
        sparse: list[dict[int, float] | None] = [None] * n
        if layout.sparse:
            for i, item in enumerate(batch.column(SPARSE).to_pylist()):
                value, problem = _sparse_value(item, positive=self.lite)
                if problem and bad[i] is None:
                    bad[i] = problem
                sparse[i] = value
        # metadata
        meta_text: list[str | None] = batch.column(METADATA).to_pylist()
        meta_out: list[Any] = [None] * n
        extra: list[dict[str, Any]] = [{} for _ in range(n)]
        if layout.vectra and layout.metadata_format == "text":
            lengths = pc.fill_null(pc.binary_length(batch.column(METADATA)), 0)
            refuse(
                lengths.to_numpy(zero_copy_only=False) > VARCHAR_MAX,
                f"metadata longer than {VARCHAR_MAX} bytes of JSON",
            )
            meta_out = meta_text
        else:
            for i, text in enumerate(meta_text):
                if bad[i] is not None:
                    continue
                try:
                    meta = json.loads(text) if text is not None else None
                except ValueError:
                    bad[i] = "metadata is not valid JSON"
                    continue
                if layout.vectra:
                    problem = _json_field_problem(meta, text)
                    if problem:
                        bad[i] = problem
                    meta_out[i] = meta
                else:
                    fields, problem = self._map_metadata(layout, meta)
                    if problem:
                        bad[i] = problem
                    extra[i] = fields
        # entities (the last occurrence of a repeated id wins)
        last: dict[Any, int] = {}
        for i in range(n):
            if bad[i] is None:
                last[keys[i]] = i
        rows: list[dict[str, Any]] = []
        row_ids: list[str] = []
        for i in sorted(last.values()):
            row: dict[str, Any] = {layout.pk: keys[i]}
            for fname, matrix in vectors.items():
                row[fname] = matrix[i]
            if layout.sparse:
                row[layout.sparse] = sparse[i]
            if layout.vectra:
                assert layout.metadata_field is not None
                row[layout.metadata_field] = meta_out[i]
            else:
                row.update(extra[i])
            rows.append(row)
            row_ids.append(ids[i])
        failures = {ids[i]: reason for i, reason in enumerate(bad) if reason is not None}
        return rows, row_ids, failures

    def _map_metadata(
        self, layout: Layout, meta: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], str | None]:
        """Metadata -> scalar fields (+ dynamic keys) of a collection vectra did not create."""
        meta = dict(meta or {})
        out: dict[str, Any] = {}
        for sc in layout.scalars:
            if sc.name in meta:
                value = meta.pop(sc.name)
                if value is None and not sc.nullable:
                    return {}, f"field {sc.name!r} is not nullable and the metadata value is null"
                out[sc.name] = value
            elif sc.nullable:
                out[sc.name] = None
            elif not sc.has_default:
                return {}, f"metadata has no key {sc.name!r} for the required field"
        reserved = {layout.pk, layout.dense, layout.sparse, DYNAMIC_FIELD}
        reserved |= {f for f, _ in layout.named.values()}
        clash = sorted(k for k in meta if k in reserved)
        if clash:
            return {}, f"metadata keys {clash} are names of fields that are not metadata"
        if meta and not layout.dynamic:
            return {}, (
                f"the collection has no fields {sorted(meta)[:5]} and no dynamic field "
                "to keep other metadata keys"
            )
        out.update(meta)
        return out, None

    def to_batch(
        self, layout: Layout, schema: pa.Schema, rows: list[dict[str, Any]]
    ) -> pa.RecordBatch:
        if not rows:
            return pa.RecordBatch.from_pylist([], schema=schema)
        columns: list[pa.Array] = []
        for f in schema:
            if f.name == ID:
                columns.append(pa.array([str(r[layout.pk]) for r in rows], pa.string()))
            elif f.name == VALUES:
                assert layout.dense is not None
                columns.append(_dense_column(rows, layout.dense, f.type.list_size))
            elif f.name == SPARSE:
                assert layout.sparse is not None
                columns.append(sparse_array([_sparse_record(r.get(layout.sparse)) for r in rows]))
            elif f.name == METADATA:
                columns.append(pa.array(self._metadata_texts(layout, rows), pa.string()))
            else:
                vname = f.name[len(named_column("")) :]
                fname = layout.named[vname][0]
                columns.append(_dense_column(rows, fname, f.type.list_size))
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def _metadata_texts(self, layout: Layout, rows: list[dict[str, Any]]) -> list[str | None]:
        if layout.vectra:
            mf = layout.metadata_field
            assert mf is not None
            if layout.metadata_format == "text":
                return [r.get(mf) for r in rows]
            return [self._dumps(r.get(mf)) for r in rows]
        skip = {layout.pk, layout.dense, layout.sparse, DYNAMIC_FIELD}
        skip |= {f for f, _ in layout.named.values()}
        if not layout.scalars and not layout.dynamic:
            return [None] * len(rows)
        return [self._dumps({k: v for k, v in r.items() if k not in skip}) for r in rows]

    def _dumps(self, meta: Any) -> str | None:
        if meta is None:
            return None
        safe = json_safe(meta)
        try:
            return dumps_metadata(safe)
        except ValueError:
            if not self._warned_nonfinite:
                log.warning("Milvus metadata holds NaN or infinity: exported as strings")
                self._warned_nonfinite = True
            return dumps_metadata(_finite(safe))


def pk_value(layout: Layout, rid: str) -> Any:
    """The primary-key value of a vectra id, or None when it cannot be one."""
    if not layout.pk_int:
        if layout.spec.id_type == "uuid":
            try:
                return rid if str(uuid.UUID(rid)) == rid else None
            except ValueError:
                return None
        return rid
    if not re.fullmatch(r"-?(0|[1-9][0-9]{0,18})", rid):
        return None
    value = int(rid)
    return value if INT64_MIN <= value <= INT64_MAX and rid != "-0" else None


def cursor_value(layout: Layout, cursor: Cursor) -> Any:
    """The primary-key value a scan resumes after (None: from the start)."""
    if cursor is None:
        return None
    value = cursor.get("after") if isinstance(cursor, Mapping) else None
    ok = (
        isinstance(value, int) and not isinstance(value, bool)
        if layout.pk_int
        else (isinstance(value, str))
    )
    if not ok:
        raise ConfigError(f"not a cursor of Milvus collection {layout.name!r}: {cursor!r}")
    return value


def _pk_problem(layout: Layout, rid: str) -> str:
    if layout.spec.id_type == "uuid":
        return f"id {rid!r} is not a canonical UUID (the collection's id type is uuid)"
    if re.fullmatch(r"[0-9]+", rid) and int(rid) > INT64_MAX:
        return f"id {rid} does not fit Milvus's INT64 primary key (at most {INT64_MAX})"
    return f"id {rid!r} is not a decimal integer for the INT64 primary key"


SPARSE_INDEX_LIMIT = 2**32 - 1  # indices must be below it


def _sparse_value(
    item: Mapping[str, Any] | None, *, positive: bool
) -> tuple[dict[int, float] | None, str | None]:
    if item is None or not item.get("indices"):
        return None, "Milvus keeps a non-empty sparse vector on every entity of a sparse collection"
    indices, values = list(item["indices"]), list(item["values"])
    if len(set(indices)) != len(indices):
        return None, "the sparse vector repeats an index"
    if max(indices) >= SPARSE_INDEX_LIMIT:
        return None, f"sparse indices must be below {SPARSE_INDEX_LIMIT}"
    if any(v == 0.0 for v in values):
        return None, "the sparse vector holds a zero weight, which Milvus drops"
    if positive and any(v < 0.0 for v in values):
        return (
            None,
            "Milvus Lite keeps only positive sparse weights; this vector has a negative one",
        )
    return dict(zip(indices, values, strict=True)), None


def _sparse_record(value: Any) -> dict[str, list[Any]] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        items = sorted((int(k), float(v)) for k, v in value.items())
    else:  # scipy-like row
        coo = value.tocoo()
        items = sorted(zip(coo.col.tolist(), coo.data.tolist(), strict=True))
    return {"indices": [k for k, _ in items], "values": [v for _, v in items]}


def _dense_column(rows: list[dict[str, Any]], fld: str, dim: int) -> pa.FixedSizeListArray:
    values = [r.get(fld) for r in rows]
    if all(v is not None for v in values):
        matrix = np.stack([np.asarray(v, dtype=np.float32) for v in values])
        if matrix.shape != (len(rows), dim):
            raise FatalError(f"vector field {fld!r} came back with shape {matrix.shape}")
        flat = pa.array(matrix.reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, dim)
    matrix = np.zeros((len(rows), dim), dtype=np.float32)
    mask = np.zeros(len(rows), dtype=bool)
    for i, v in enumerate(values):
        if v is None:
            mask[i] = True
        else:
            matrix[i] = np.asarray(v, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), dim, mask=pa.array(mask))


def _json_field_problem(meta: Any, text: str | None) -> str | None:
    """Why metadata cannot go into a Milvus JSON field exactly (None when it can)."""
    if text is not None and len(text.encode("utf-8")) > VARCHAR_MAX:
        return f"metadata longer than {VARCHAR_MAX} bytes of JSON"
    stack = [meta]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, int) and not isinstance(v, bool) and not INT64_MIN <= v <= INT64_MAX:
            return f"the integer {v} does not fit a Milvus JSON field (int64)"
    return None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
