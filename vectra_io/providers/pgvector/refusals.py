"""Which records of a batch the ``pgvector`` provider refuses, one by one, before writing:
NaN/Inf vectors, ids the id column's type cannot hold, NUL characters, halfvec overflow,
metadata keys without a column, malformed sparse vectors; which of repeated ids is written
(the last); and, after a write, whether the server refused a value of the batch and which
record a ``COPY`` error names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from ...records import ID, METADATA, dense_matrix, non_finite_rows
from .binary import sparse_arrays
from .layout import HALF_MAX, SPARSEVEC_MAX_NNZ, Layout

_UINT64_RE = r"^(0|-?[1-9][0-9]{0,18})$"
_UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_LINE_RE = re.compile(r"\bCOPY [^,\n]+, line (\d+)")


def valid_ids(lay: Layout, ids: Sequence[str]) -> list[bool]:
    """Which ids the id column's type can hold (others are refused / never found)."""
    arr = pa.array(ids, pa.string())
    ok = pc.invert(pc.match_substring(arr, "\x00"))
    typ = lay.spec.id_type
    if typ == "uint64":
        ok = pc.and_(ok, pc.match_substring_regex(arr, _UINT64_RE))
    elif typ == "uuid":
        ok = pc.and_(ok, pc.match_substring_regex(arr, _UUID_RE))
    out = ok.to_pylist()
    if typ == "uint64":
        for i, rid in enumerate(ids):
            if out[i] and len(rid) >= 19 and not -(2**63) <= int(rid) < 2**63:
                out[i] = False
    return [bool(v) for v in out]


def refusals(lay: Layout, batch: pa.RecordBatch, ids: list[str]) -> dict[str, str]:
    """Records the table cannot take, by id, with the reason (checked before writing)."""
    refused: dict[str, str] = {}
    bad = non_finite_rows(batch)
    for i in np.flatnonzero(bad):
        refused[ids[i]] = "NaN or infinite value in a vector (pgvector refuses them)"
    typ = lay.spec.id_type
    # text ids can only fail by holding a NUL: without one, no per-id check is needed
    if typ != "string" or pc.any(pc.match_substring(batch.column(ID), "\x00")).as_py():
        for rid, ok in zip(ids, valid_ids(lay, ids), strict=True):
            if not ok and rid not in refused:
                if "\x00" in rid:
                    refused[rid] = "id contains a NUL character (PostgreSQL text cannot)"
                elif typ == "uint64":
                    refused[rid] = "id is not a canonical integer in the bigint range"
                else:
                    refused[rid] = "id is not a canonical (lower-case, hyphenated) UUID"
    for d in lay.dense:
        if d.kind == "halfvec":
            col = batch.column(d.field)
            big = (np.abs(dense_matrix(col)) > HALF_MAX).any(axis=1)
            for i in np.flatnonzero(big & ~bad):
                refused.setdefault(ids[i], f"value beyond the float16 range in {d.column}")
    meta = batch.column(METADATA)
    suspicious = pc.fill_null(pc.match_substring(meta, "\\u0000"), False)
    if pc.any(suspicious).as_py():
        texts = meta.to_pylist()
        for i in np.flatnonzero(suspicious.to_numpy(zero_copy_only=False)):
            if _holds_nul(json.loads(texts[i])):  # not just a literal backslash-u0000 in text
                refused.setdefault(ids[i], "metadata contains a NUL character (jsonb cannot)")
    if lay.metadata_columns:
        allowed = set(lay.metadata_columns)
        for rid, text in zip(ids, meta.to_pylist(), strict=True):
            if text is None:
                continue
            extra = sorted(set(json.loads(text)) - allowed)
            if extra:
                refused.setdefault(rid, f"metadata keys without a column: {extra[:5]}")
    if lay.sparse_column is not None:
        for rid, reason in _sparse_problems(lay, batch, ids).items():
            refused.setdefault(rid, reason)
    return refused


def _holds_nul(value: Any) -> bool:
    """Whether a decoded JSON value has U+0000 in any string, key or value."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def keep_last(ids: list[str], refused: Mapping[str, str]) -> list[int] | None:
    """Row positions to write: refused rows out, and the last of repeated ids (None: all)."""
    if not refused and len(set(ids)) == len(ids):
        return None
    last: dict[str, int] = {}
    for i, rid in enumerate(ids):
        if rid not in refused:
            last[rid] = i
    return sorted(last.values())


def _sparse_problems(lay: Layout, batch: pa.RecordBatch, ids: list[str]) -> dict[str, str]:
    _valid, rows, idx, vals, uneven = sparse_arrays(batch)
    out: dict[str, str] = {}
    for i in np.flatnonzero(uneven):
        out[ids[i]] = "sparse vector has different numbers of indices and values"
    dup = np.zeros(len(rows), bool)
    if len(rows) > 1:
        dup[1:] = (rows[1:] == rows[:-1]) & (idx[1:] == idx[:-1])
    for i in np.unique(rows[dup]):
        out.setdefault(ids[i], "sparse vector repeats an index")
    for i in np.unique(rows[idx >= lay.sparse_dim]):
        out.setdefault(ids[i], f"sparse index beyond the column's dimension {lay.sparse_dim}")
    nnz = np.bincount(rows[vals != 0], minlength=batch.num_rows)
    for i in np.flatnonzero(nnz > SPARSEVEC_MAX_NNZ):
        out.setdefault(ids[i], f"sparse vector has more than {SPARSEVEC_MAX_NNZ} non-zeros")
    return out


def refused_value(exc: psycopg.Error) -> bool:
    """The server refused a value of the batch (SQLSTATE class 22 data exception or 23
    integrity constraint violation), not the request."""
    return (exc.sqlstate or "")[:2] in ("22", "23")


def blame(exc: psycopg.Error, ids: Sequence[str]) -> dict[str, str]:
    """The record a COPY error names by its line (1-based row of the staged batch)."""
    context = exc.diag.context or ""
    m = _LINE_RE.search(context)
    if m:
        line = int(m.group(1))
        if 1 <= line <= len(ids):
            return {ids[line - 1]: exc.diag.message_primary or str(exc)}
    return {}
