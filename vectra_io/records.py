"""Arrow record batches: the schema of an index's records, and conversions.

Columns (see docs/FORMAT.md):

- ``id``: string, not null
- ``values``: fixed_size_list<float32>[dimension], null when a record has no dense vector
- ``sparse_values``: struct{indices: list<uint32>, values: list<float32>} (sparse indexes only)
- ``metadata``: string holding a JSON object, null when a record has none
- ``vector.<name>``: fixed_size_list<float32>[dim] per named dense vector
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .providers.base import IndexSpec

ID = "id"
VALUES = "values"
SPARSE = "sparse_values"
METADATA = "metadata"
NAMED_PREFIX = "vector."

SPARSE_TYPE = pa.struct(
    [
        pa.field("indices", pa.list_(pa.uint32())),
        pa.field("values", pa.list_(pa.float32())),
    ]
)


def dense_type(dimension: int) -> pa.DataType:
    return pa.list_(pa.float32(), dimension)


def named_column(name: str) -> str:
    return NAMED_PREFIX + name


def record_schema(spec: IndexSpec) -> pa.Schema:
    """The Arrow schema of the records of an index."""
    fields = [pa.field(ID, pa.string(), nullable=False)]
    if spec.dimension is not None:
        fields.append(pa.field(VALUES, dense_type(spec.dimension)))
    if spec.sparse:
        fields.append(pa.field(SPARSE, SPARSE_TYPE))
    fields.append(pa.field(METADATA, pa.string()))
    for name, vec in sorted(spec.named_vectors.items()):
        fields.append(pa.field(named_column(name), dense_type(vec.dimension)))
    return pa.schema(fields)


def dumps_metadata(meta: Mapping[str, Any] | None) -> str | None:
    """Serialise metadata exactly (big ints, unicode); NaN/Infinity are refused."""
    if meta is None:
        return None
    if not isinstance(meta, Mapping):
        raise ValueError(f"metadata must be a JSON object, got {type(meta).__name__}")
    return json.dumps(meta, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def loads_metadata(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("metadata is not a JSON object")
    return value


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality that tells booleans from numbers (``True != 1``); ``42 == 42.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def dense_array(values: Any, dimension: int) -> pa.FixedSizeListArray:
    """A fixed_size_list<float32> array from an (n, dim) array or a list of vectors/None."""
    if isinstance(values, np.ndarray) and values.ndim == 2:
        if values.shape[1] != dimension:
            raise ValueError(f"vectors have dimension {values.shape[1]}, expected {dimension}")
        flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, dimension)
    rows = list(values)
    mask = np.array([v is None for v in rows], dtype=bool)
    matrix = np.zeros((len(rows), dimension), dtype=np.float32)
    for i, vec in enumerate(rows):
        if vec is None:
            continue
        arr = np.asarray(vec, dtype=np.float32)
        if arr.shape != (dimension,):
            raise ValueError(f"a vector has {arr.size} values, expected {dimension}")
        matrix[i] = arr
    flat = pa.array(matrix.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(
        flat, dimension, mask=pa.array(mask) if mask.any() else None
    )


def sparse_array(items: Sequence[Mapping[str, Sequence[Any]] | None]) -> pa.StructArray:
    """Sparse vectors from dicts ``{"indices": [...], "values": [...]}`` (or None)."""
    indices: list[list[int] | None] = []
    values: list[list[float] | None] = []
    mask: list[bool] = []
    for item in items:
        if item is None:
            indices.append(None)
            values.append(None)
            mask.append(True)
            continue
        idx, val = list(item["indices"]), list(item["values"])
        if len(idx) != len(val):
            raise ValueError("sparse vector has different numbers of indices and values")
        indices.append(idx)
        values.append(val)
        mask.append(False)
    return pa.StructArray.from_arrays(
        [pa.array(indices, pa.list_(pa.uint32())), pa.array(values, pa.list_(pa.float32()))],
        fields=list(SPARSE_TYPE),
        mask=pa.array(mask) if any(mask) else None,
    )


def batch_from_records(spec: IndexSpec, records: Iterable[Mapping[str, Any]]) -> pa.RecordBatch:
    """Build a record batch from dicts with ``id``, ``values``, ``metadata``,
    ``sparse_values`` and ``vectors`` ({name: [...]}) keys."""
    rows = list(records)
    schema = record_schema(spec)
    columns: list[pa.Array] = []
    for f in schema:
        if f.name == ID:
            columns.append(pa.array([str(r["id"]) for r in rows], pa.string()))
        elif f.name == VALUES:
            assert spec.dimension is not None
            columns.append(dense_array([r.get("values") for r in rows], spec.dimension))
        elif f.name == SPARSE:
            columns.append(sparse_array([r.get("sparse_values") for r in rows]))
        elif f.name == METADATA:
            columns.append(pa.array([dumps_metadata(r.get("metadata")) for r in rows], pa.string()))
        else:
            name = f.name[len(NAMED_PREFIX) :]
            vec = spec.named_vectors[name]
            columns.append(
                dense_array([(r.get("vectors") or {}).get(name) for r in rows], vec.dimension)
            )
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def records_from_batch(batch: pa.RecordBatch | pa.Table) -> list[dict[str, Any]]:
    """Records as plain dicts (``values`` as lists of Python floats)."""
    names = batch.schema.names
    cols = {n: batch.column(n).to_pylist() for n in names}
    out: list[dict[str, Any]] = []
    for i in range(batch.num_rows):
        rec: dict[str, Any] = {"id": cols[ID][i]}
        if VALUES in cols:
            rec["values"] = cols[VALUES][i]
        if SPARSE in cols and cols[SPARSE][i] is not None:
            rec["sparse_values"] = cols[SPARSE][i]
        rec["metadata"] = loads_metadata(cols[METADATA][i]) if METADATA in cols else None
        named = {n[len(NAMED_PREFIX) :]: cols[n][i] for n in names if n.startswith(NAMED_PREFIX)}
        if named:
            rec["vectors"] = {k: v for k, v in named.items() if v is not None}
        out.append(rec)
    return out


def dense_matrix(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An (n, dim) float32 view of a fixed_size_list column (rows that are null hold zeros)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    assert isinstance(column, pa.FixedSizeListArray)
    dim = column.type.list_size
    flat = column.flatten() if column.null_count == 0 else column.fill_null([0.0] * dim).flatten()
    # flatten() honours slicing offsets; zero-copy where there are no nulls
    return flat.to_numpy(zero_copy_only=False).reshape(-1, dim)


def _non_finite_vectors(matrix: np.ndarray) -> np.ndarray:
    """Rows of ``matrix`` with a NaN or infinite component.

    A NaN or infinity always makes its row's sum non-finite, so row sums (one
    pass, no temporary matrix, no BLAS threads) find the candidates; a sum can
    also overflow from large finite values, so candidates are checked element-wise.
    """
    if not matrix.size:
        return np.zeros(len(matrix), dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        suspect = ~np.isfinite(np.einsum("ij->i", matrix))
    if suspect.any():
        rows = np.flatnonzero(suspect)
        suspect[rows] = ~np.isfinite(matrix[rows]).all(axis=1)
    return suspect


def non_finite_rows(batch: pa.RecordBatch) -> np.ndarray:
    """A boolean mask of the rows holding a NaN or infinite vector component."""
    bad = np.zeros(batch.num_rows, dtype=bool)
    for name in batch.schema.names:
        if name == VALUES or name.startswith(NAMED_PREFIX):
            col = batch.column(name)
            if len(col) and col.type.list_size:
                valid = (
                    np.ones(len(col), dtype=bool)
                    if col.null_count == 0
                    else col.is_valid().to_numpy(zero_copy_only=False)
                )
                bad |= valid & _non_finite_vectors(dense_matrix(col))
        elif name == SPARSE:
            vals = pc.struct_field(batch.column(name), "values")
            flat = pc.list_flatten(vals)
            if len(flat):
                parents = pc.list_parent_indices(vals).to_numpy()
                not_finite = ~np.isfinite(flat.to_numpy(zero_copy_only=False))
                bad[parents[not_finite]] = True
    return bad


def split_invalid(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[str]]:
    """Remove rows with non-finite vector values; return the clean batch and the bad ids."""
    bad = non_finite_rows(batch)
    if not bad.any():
        return batch, []
    bad_ids = batch.column(ID).filter(pa.array(bad)).to_pylist()
    return batch.filter(pa.array(~bad)), bad_ids


def conform(batch: pa.RecordBatch, spec: IndexSpec) -> pa.RecordBatch:
    """Cast/align a batch to the record schema of ``spec`` (column order, missing nulls).

    Raises ValueError naming the column when a column cannot be cast (e.g. a
    dense vector of another dimension).
    """
    schema = record_schema(spec)
    if batch.schema.equals(schema):
        return batch
    for name in set(batch.schema.names) - set(schema.names):
        col = batch.column(name)
        vector = name in (VALUES, SPARSE) or name.startswith(NAMED_PREFIX)
        if vector and col.null_count < len(col):
            raise ValueError(f"column {name!r} holds vectors the index does not declare")
    columns = []
    for f in schema:
        if f.name in batch.schema.names:
            col = batch.column(f.name)
            if not col.type.equals(f.type):
                try:
                    col = col.cast(f.type)
                except pa.ArrowException as exc:
                    raise ValueError(
                        f"column {f.name!r} has type {col.type}, expected {f.type}"
                    ) from exc
            columns.append(col)
        elif f.nullable:
            columns.append(pa.nulls(batch.num_rows, f.type))
        else:
            raise ValueError(f"column {f.name!r} is missing")
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def batch_nbytes(batch: pa.RecordBatch) -> int:
    return int(batch.nbytes)
