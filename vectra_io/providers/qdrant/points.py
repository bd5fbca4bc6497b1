"""Records <-> Qdrant points: payloads from metadata text (refusing integers Qdrant cannot
store) and back, dense vector columns from returned vectors (refusing multivectors),
sparse vectors per row, and the records an error message names by point id.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...errors import (
    FatalError,
    UnsupportedError,
)
from ...records import (
    dense_array,
    dumps_metadata,
)
from .._http import _orjson, loads


# -- JSON ------------------------------------------------------------------------------
def dumps_meta(meta: dict[str, Any]) -> str:
    if _orjson is not None:
        try:
            return _orjson.dumps(meta).decode("utf-8")
        except TypeError:
            pass
    text = dumps_metadata(meta)
    assert text is not None
    return text


_LONG_DIGITS = re.compile(r"\d{19,}")
INT_MIN, UINT_MAX = -(2**63), 2**64 - 1
_UUID_IN_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_INT_IN_TEXT = re.compile(r"(?<![\w.-])\d{1,20}(?![\w.])")


def load_payload(text: str | None) -> dict[str, Any]:
    """The payload of a record's metadata text; ValueError naming what Qdrant cannot hold.

    orjson reads integers beyond 64 bits as floats, silently: text holding a run of 19+
    digits is read with the standard library instead and its integers checked."""
    if not text:
        return {}
    if _LONG_DIGITS.search(text):
        payload = json.loads(text)
        bad = _out_of_range_int(payload)
        if bad is not None:
            raise ValueError(
                f"metadata holds the integer {bad}, beyond the 64-bit range Qdrant stores"
            )
    else:
        payload = loads(text)
    if not isinstance(payload, dict):
        raise ValueError("metadata is not a JSON object")
    return payload


def _out_of_range_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if not INT_MIN <= value <= UINT_MAX else None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            bad = _out_of_range_int(item)
            if bad is not None:
                return bad
    return None


def dense_value(value: Any, collection: str, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, list) and value and isinstance(value[0], list):
        raise UnsupportedError(
            f"collection {collection!r}: vector {name or '(default)'!r} holds a multivector; "
            "vectra-io cannot carry multivectors"
        )
    return value if isinstance(value, list) else None


def dense_column(rows: list[Any], dimension: int) -> pa.Array:
    present = [r for r in rows if r is not None]
    if len(present) == len(rows):
        if not rows:
            return pa.FixedSizeListArray.from_arrays(pa.array([], pa.float32()), dimension)
        matrix = np.asarray(rows, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != dimension:
            raise FatalError(f"Qdrant returned vectors of another dimension than {dimension}")
        return dense_array(matrix, dimension)
    return dense_array(rows, dimension)


def sparse_vectors_per_row(col: pa.Array) -> list[dict[str, Any] | None]:
    """Per row ``{"indices": uint32 array, "values": float32 array}`` or None."""
    n = len(col)
    out: list[dict[str, Any] | None] = [None] * n
    if n == 0:
        return out
    indices = pc.struct_field(col, "indices")
    values = pc.struct_field(col, "values")
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    i_off = indices.offsets.to_numpy()
    v_off = values.offsets.to_numpy()
    i_flat = indices.values.to_numpy(zero_copy_only=False).astype(np.uint32, copy=False)
    v_flat = values.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    i_ok = indices.is_valid().to_numpy(zero_copy_only=False)
    for r in range(n):
        if not valid[r] or not i_ok[r]:
            continue
        out[r] = {
            "indices": np.ascontiguousarray(i_flat[i_off[r] : i_off[r + 1]]),
            "values": np.ascontiguousarray(v_flat[v_off[r] : v_off[r + 1]]),
        }
    return out


def name_points(message: str, points: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """The records a Qdrant error message names (by point id), mapped to the message."""
    by_point = {str(p["id"]): rid for rid, p in points}
    named: dict[str, str] = {}
    for token in _UUID_IN_TEXT.findall(message) + _INT_IN_TEXT.findall(message):
        rid = by_point.get(token.lower())
        if rid is not None:
            named[rid] = message
    return named
