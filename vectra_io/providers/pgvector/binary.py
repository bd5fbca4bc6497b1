"""PostgreSQL's and pgvector's binary formats, both ways: a record batch encoded as the
staged columns of a write (id, dense vectors, sparse vector, metadata), each cell a length
and the value in binary (``vector_recv``, ``sparsevec_recv``, jsonb), assembled into a binary
``COPY`` stream or into binary array parameters (``array_recv``) without per-row Python for
fixed-width cells; and rows read back with pgvector's send functions decoded into a batch.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.adapt import Dumper
from psycopg.pq import Format

from ...errors import IncompatibleIndexError
from ...records import ID, METADATA, SPARSE, SPARSE_TYPE, dense_matrix, record_schema
from .layout import Dense, Layout

_I4 = struct.Struct(">i").pack
BUILTIN_OIDS = {"text": 25, "jsonb": 3802}  # pgvector's own types are looked up
_NULL = _I4(-1)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)


@dataclass
class Field:
    """One staged column of a batch (see ``statements._staged_columns``): its n cells, each a
    big-endian int32 length and the value in PostgreSQL's binary format (length -1: NULL),
    as Arrow arrays concatenated row by row (``pieces``), and its type."""

    pieces: list[pa.Array]
    rows: int
    has_null: bool
    pgtype: str

    def cells(self) -> memoryview:
        """The n cells, back to back."""
        return _joined(self.pieces, self.rows)


def fields(lay: Layout, batch: pa.RecordBatch) -> list[Field]:
    """The staged columns of ``batch``: id, dense vectors, sparse vector, metadata.

    Fixed-width cells are views of one numpy matrix: no per-row Python for ids, dense
    vectors or metadata.
    """
    n = batch.num_rows
    ids = batch.column(ID).cast(pa.large_binary())
    id_len = _fixed_width(_be_int32(pc.binary_length(ids).to_numpy()))
    out = [Field([id_len, ids], n, False, "text")]
    for d in lay.dense:
        col = batch.column(d.field)
        rows = np.empty((n, 8 + 4 * d.dimension), np.uint8)  # length, dim, unused, floats
        rows[:, 0:4] = np.frombuffer(_I4(4 + 4 * d.dimension), np.uint8)
        rows[:, 4:8] = np.frombuffer(struct.pack(">hh", d.dimension, 0), np.uint8)
        rows[:, 8:] = dense_matrix(col).astype(">f4").view(np.uint8)
        cells = _null_where_missing(_fixed_width(rows), col)
        out.append(Field([cells], n, col.null_count > 0, "vector"))
    if lay.sparse_column is not None:
        cells = pa.array(_sparse_cells(lay, batch), pa.large_binary())
        out.append(Field([cells], n, batch.column(SPARSE).null_count > 0, "sparsevec"))
    meta = batch.column(METADATA).cast(pa.large_binary())
    meta_head = np.empty((n, 5), np.uint8)  # length, jsonb version 1
    meta_head[:, :4] = _be_int32(pc.binary_length(meta).fill_null(0).to_numpy() + 1)
    meta_head[:, 4] = 1
    pieces = [_null_where_missing(_fixed_width(meta_head), meta), meta.fill_null(b"")]
    out.append(Field(pieces, n, meta.null_count > 0, "jsonb"))
    return out


def copy_payload(fields: list[Field]) -> bytes:
    """The binary COPY stream of the staging table: each row's field count, then its cells."""
    n = fields[0].rows
    count = np.empty((n, 2), np.uint8)
    count[:] = np.frombuffer(struct.pack(">h", len(fields)), np.uint8)
    pieces = [_fixed_width(count)] + [p for f in fields for p in f.pieces]
    return b"".join((_COPY_HEADER, _joined(pieces, n), _COPY_TRAILER))


def array_param(field_: Field, oid: int) -> BinaryValue:
    """``field_`` as a one-dimensional PostgreSQL array in binary format (``array_recv``)."""
    head = struct.pack(">iiIii", 1, int(field_.has_null), oid, field_.rows, 1)
    return BinaryValue(b"".join((head, field_.cells())))


def _joined(pieces: list[pa.Array], n: int) -> memoryview:
    """The bytes of n rows, each the concatenation of that row of every piece."""
    joined = pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, _NO_SEPARATOR)
    offsets = np.frombuffer(joined.buffers()[1], np.int64)
    start, end = int(offsets[joined.offset]), int(offsets[joined.offset + n])
    return memoryview(joined.buffers()[2])[start:end]


class BinaryValue:
    """A query parameter already in PostgreSQL's binary format; its type comes from the
    cast written next to its placeholder."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class BinaryValueDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return obj.data


_NO_SEPARATOR = pa.scalar(b"", pa.large_binary())
_NULL_CELL = pa.scalar(_NULL, pa.large_binary())


def _be_int32(values: np.ndarray) -> np.ndarray:
    """(n,) integers as an (n, 4) matrix of big-endian int32 bytes."""
    return values.astype(">i4").view(np.uint8).reshape(-1, 4)


def _fixed_width(cells: np.ndarray) -> pa.Array:
    """An (n, k) uint8 matrix as n byte strings of k bytes (no copy)."""
    n, k = cells.shape
    offsets = np.arange(0, (n + 1) * k, k, dtype=np.int64)
    data = np.ascontiguousarray(cells)
    return pa.Array.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _null_where_missing(cells: pa.Array, values: pa.Array) -> pa.Array:
    """``cells``, with COPY's NULL marker (length -1) where ``values`` is null."""
    if values.null_count == 0:
        return cells
    return pc.if_else(values.is_valid(), cells, _NULL_CELL)


def sparse_arrays(
    batch: pa.RecordBatch,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(valid rows, row of each entry, index, value, rows whose lists differ in length)."""
    col = batch.column(SPARSE)
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    ind = pc.struct_field(col, "indices")
    val = pc.struct_field(col, "values")
    n_ind = pc.fill_null(pc.list_value_length(ind), 0).to_numpy(zero_copy_only=False)
    n_val = pc.fill_null(pc.list_value_length(val), 0).to_numpy(zero_copy_only=False)
    uneven = valid & (n_ind != n_val)
    drop = ~valid | uneven  # entries of these rows are left out (so the two lists align)
    # list_flatten skips null lists, as list_value_length counts them 0
    everyone = np.arange(len(valid))
    rows = np.repeat(everyone, n_ind)
    vrows = np.repeat(everyone, n_val)
    keep_i, keep_v = ~drop[rows], ~drop[vrows]
    rows = rows[keep_i]
    idx = pc.list_flatten(ind).to_numpy(zero_copy_only=False).astype(np.int64)[keep_i]
    vals = pc.list_flatten(val).to_numpy(zero_copy_only=False).astype(np.float32)[keep_v]
    order = np.lexsort((idx, rows))
    return valid, rows[order], idx[order], vals[order], uneven


def _sparse_cells(lay: Layout, batch: pa.RecordBatch) -> list[bytes]:
    """The sparsevec COPY field of every row (the NULL marker where a row has none)."""
    n = batch.num_rows
    valid, rows_, idx, vals, _ = sparse_arrays(batch)
    nz = vals != 0
    rows_, idx, vals = rows_[nz], idx[nz], vals[nz]
    counts = np.bincount(rows_, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)])
    idx_be = idx.astype(">i4").tobytes()
    val_be = vals.astype(">f4").tobytes()
    head = struct.Struct(">iiii").pack
    out = []
    for i in range(n):
        if not valid[i]:
            out.append(_NULL)
            continue
        a, b = int(starts[i]) * 4, int(starts[i + 1]) * 4
        k = int(counts[i])
        out.append(head(12 + 8 * k, lay.sparse_dim, k, 0) + idx_be[a:b] + val_be[a:b])
    return out


def _decode_sparse(values: Sequence[Any]) -> pa.StructArray:
    n = len(values)
    idx_parts: list[bytes] = []
    val_parts: list[bytes] = []
    offsets = np.zeros(n + 1, np.int32)
    valid = np.ones(n, bool)
    for i, raw in enumerate(values):
        if raw is None:
            valid[i] = False
            offsets[i + 1] = offsets[i]
            continue
        nnz = int.from_bytes(raw[4:8], "big")
        idx_parts.append(raw[12 : 12 + 4 * nnz])
        val_parts.append(raw[12 + 4 * nnz : 12 + 8 * nnz])
        offsets[i + 1] = offsets[i] + nnz
    indices = np.frombuffer(b"".join(idx_parts), ">i4").astype(np.uint32)
    vals = np.frombuffer(b"".join(val_parts), ">f4").astype(np.float32)
    off = pa.array(offsets)
    mask = None if valid.all() else pa.array(~valid)
    return pa.StructArray.from_arrays(
        [
            pa.ListArray.from_arrays(off, pa.array(indices, pa.uint32())),
            pa.ListArray.from_arrays(off, pa.array(vals, pa.float32())),
        ],
        fields=list(SPARSE_TYPE),
        mask=mask,
    )


def decode_rows(lay: Layout, rows: list[tuple[Any, ...]], where: dict[str, Any]) -> pa.RecordBatch:
    """Rows read with the select list of ``lay`` (``statements.select_list``), in binary, as
    a record batch; ``where`` locates errors."""
    schema = record_schema(lay.spec)
    n = len(rows)
    cols: list[Any] = (
        list(zip(*rows, strict=True))
        if rows
        else [()] * (2 + len(lay.dense) + (lay.sparse_column is not None))
    )
    ids = pa.array(cols[0], pa.string())
    arrays: dict[str, pa.Array] = {ID: ids}
    for k, d in enumerate(lay.dense, start=1):
        arrays[d.field] = _decode_dense(d, cols[k], cols[0], n, where)
    pos = 1 + len(lay.dense)
    if lay.sparse_column is not None:
        arrays[SPARSE] = _decode_sparse(cols[pos])
        pos += 1
    arrays[METADATA] = pa.array(cols[pos], pa.string())
    return pa.RecordBatch.from_arrays([arrays[f.name] for f in schema], schema=schema)


def _decode_dense(
    d: Dense, values: Sequence[Any], ids: Sequence[str], n: int, where: dict[str, Any]
) -> pa.Array:
    width = 4 if d.kind == "vector" else 2
    item = 4 + width * d.dimension
    nulls = None in values
    present = [v for v in values if v is not None] if nulls else list(values)
    blob = b"".join(present)
    if len(blob) != item * len(present):
        wrong = [ids[i] for i, v in enumerate(values) if v is not None and len(v) != item]
        raise IncompatibleIndexError(
            f"column {d.column!r} holds vectors of another dimension than {d.dimension} "
            f"(ids {wrong[:10]}); export them with vector_column set to a column of one "
            "dimension",
            **where,
        )
    header = 4 // width
    flat = np.frombuffer(blob, ">f4" if width == 4 else ">f2")
    matrix = flat.reshape(len(present), d.dimension + header)[:, header:].astype(np.float32)
    mask = None
    if nulls:
        valid = np.fromiter((v is not None for v in values), dtype=bool, count=n)
        full = np.zeros((n, d.dimension), np.float32)
        full[valid] = matrix
        matrix, mask = full, pa.array(~valid)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), d.dimension, mask=mask)
