"""Helpers shared by the tests: data that exercises exactness, and exact comparison."""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

import numpy as np
import pyarrow as pa

from vectra_io.providers.base import IndexSpec, Provider
from vectra_io.records import ID, METADATA, SPARSE, batch_from_records, dense_matrix

SPECIAL_FLOATS = np.array(
    [-0.0, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38, 1.0, 0.1],
    dtype=np.float32,
)


def reseal_part(part: dict[str, Any], data: bytes) -> None:
    """Make a manifest part entry agree with new file bytes (size and both digests)."""
    part.update(
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        crc32=f"{zlib.crc32(data):08x}",
    )


def metadata_for(i: int) -> dict[str, Any] | None:
    """Varied metadata: nested objects, lists, nulls, booleans, big ints, unicode."""
    if i % 11 == 0:
        return None
    return {
        "i": i,
        "big": 2**63 - 1 - i,
        "beyond_2_53": 2**53 + 1 + i,
        "neg": -(2**60) - i,
        "f": i / 7,
        "ok": i % 2 == 0,
        "none": None,
        "text": f"näme-{i}-ß-漢字-😀",
        "tags": ["a", "b", str(i)],
        "nested": {"level": {"deep": [1, {"x": None}, [True, False]]}, "empty": {}},
        "list_mixed": [1, "two", 3.5, None],
    }


def make_records(
    n: int, dim: int, *, seed: int = 0, prefix: str = "id", sparse: bool = False
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    # plant the special values in the first rows, cycling through the components
    for row in range(min(n, len(SPECIAL_FLOATS))):
        vectors[row] = np.roll(np.resize(SPECIAL_FLOATS, dim), row)
    out = []
    for i in range(n):
        rec: dict[str, Any] = {
            "id": f"{prefix}{i}",
            "values": vectors[i],
            "metadata": metadata_for(i),
        }
        if sparse:
            k = 1 + i % 5
            rec["sparse_values"] = {
                "indices": sorted(rng.choice(10_000, size=k, replace=False).tolist()),
                "values": rng.standard_normal(k).astype(np.float32).tolist(),
            }
        out.append(rec)
    return out


def seed(
    provider: Provider, spec: IndexSpec, namespace: str, records: list[dict[str, Any]]
) -> None:
    for start in range(0, len(records), 1000):
        provider.upsert(
            spec.name, batch_from_records(spec, records[start : start + 1000]), namespace
        )


def read_all(provider: Provider, index: str, namespace: str) -> pa.Table:
    """Every record of a namespace, sorted by id."""
    spec = provider.describe_index(index)
    from vectra_io.records import record_schema

    pages = [p.batch for p in provider.scan(index, namespace, batch_size=1000)]
    table = pa.Table.from_batches(pages, schema=record_schema(spec))
    return table.sort_by(ID)


def assert_tables_equal(a: pa.Table, b: pa.Table) -> None:
    """Exact equality: ids, float32 bit patterns of every vector column, JSON metadata."""
    assert a.num_rows == b.num_rows, f"{a.num_rows} rows != {b.num_rows} rows"
    assert a.column(ID).to_pylist() == b.column(ID).to_pylist()
    assert a.schema.names == b.schema.names
    for name in a.schema.names:
        col_a, col_b = a.column(name), b.column(name)
        if pa.types.is_fixed_size_list(col_a.type):
            assert col_a.is_null().to_pylist() == col_b.is_null().to_pylist(), name
            bits_a = dense_matrix(col_a).view(np.uint32)
            bits_b = dense_matrix(col_b).view(np.uint32)
            assert np.array_equal(bits_a, bits_b), f"column {name}: float bits differ"
        elif name == METADATA:
            ma = [None if v is None else json.loads(v) for v in col_a.to_pylist()]
            mb = [None if v is None else json.loads(v) for v in col_b.to_pylist()]
            assert ma == mb
        elif name == SPARSE:
            assert col_a.to_pylist() == col_b.to_pylist()


def assert_same_namespace(p1: Provider, i1: str, n1: str, p2: Provider, i2: str, n2: str) -> None:
    assert_tables_equal(read_all(p1, i1, n1), read_all(p2, i2, n2))
