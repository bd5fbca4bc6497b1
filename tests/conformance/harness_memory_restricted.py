"""A restricted ``memory`` double: the conformance suite's check of its own refusal paths.

The reference provider declares every capability, so on it the tests for undeclared
capabilities (refusals, uint64/uuid ids, no namespaces, batch limits) only skip. This
double declares and enforces a narrow profile, like a strict remote store would:
uint64/uuid ids only, no manhattan, no namespaces, no sparse or named vectors, flat
metadata, a dense vector on every record, and batch limits it refuses to exceed.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pytest

from vectra_io.engine.writer import row_nbytes
from vectra_io.errors import FatalError, IncompatibleIndexError, UnsupportedError
from vectra_io.providers.base import DEFAULT_NAMESPACE, IndexSpec
from vectra_io.providers.memory import MEMORY_CAPABILITIES, MemoryProvider
from vectra_io.records import ID, METADATA, VALUES, loads_metadata

from .harness import Harness

RESTRICTED_CAPABILITIES = dataclasses.replace(
    MEMORY_CAPABILITIES,
    max_batch_rows=100,
    max_batch_bytes=64 * 1024,
    wire_factor=3.5,
    id_types=frozenset({"uint64", "uuid"}),
    metrics=frozenset({"cosine", "dot", "euclidean"}),
    namespaces=False,
    sparse=False,
    named_vectors=False,
    nested_metadata=False,
    optional_dense=False,
)
_UINT64 = re.compile(r"0|[1-9][0-9]{0,19}")


class RestrictedMemoryProvider(MemoryProvider):
    name: ClassVar[str] = "memory_restricted"

    def __init__(self, location: str = "", **options: Any) -> None:
        super().__init__(location, capabilities=RESTRICTED_CAPABILITIES, **options)

    def create_index(self, spec: IndexSpec) -> None:
        caps, where = self.capabilities, self._where(spec.name)
        if spec.sparse:
            raise IncompatibleIndexError("sparse vectors are not supported", **where)
        if spec.named_vectors:
            raise IncompatibleIndexError("named vectors are not supported", **where)
        if spec.dimension is None:
            raise IncompatibleIndexError("a dense dimension is required", **where)
        if spec.metric not in caps.metrics or spec.id_type not in caps.id_types:
            raise IncompatibleIndexError(
                f"metric {spec.metric!r} / id type {spec.id_type!r} not supported", **where
            )
        super().create_index(spec)

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        caps, where = self.capabilities, self._where(index)
        if namespace != DEFAULT_NAMESPACE:
            raise UnsupportedError("namespaces are not supported", **where)
        assert caps.max_batch_rows is not None and caps.max_batch_bytes is not None
        if batch.num_rows > caps.max_batch_rows:
            raise FatalError(f"batch of {batch.num_rows} rows exceeds the limit", **where)
        if row_nbytes(batch).sum() * caps.wire_factor > caps.max_batch_bytes:
            raise FatalError("request too large", **where)
        self.describe_index(index)  # IndexNotFoundError first
        ids = batch.column(ID).to_pylist()
        metas = batch.column(METADATA).to_pylist()
        has_dense = (
            batch.column(VALUES).is_valid().to_numpy(zero_copy_only=False)
            if VALUES in batch.schema.names
            else np.zeros(batch.num_rows, dtype=bool)
        )
        refused: dict[str, str] = {}
        for rid, meta, dense in zip(ids, metas, has_dense, strict=True):
            reason = _id_problem(rid) or _metadata_problem(meta)
            if reason is None and not dense:
                reason = "a dense vector is required"
            if reason is not None:
                refused[rid] = reason
        if refused:
            keep = pa.array([rid not in refused for rid in ids])
            batch = batch.filter(keep)
        if batch.num_rows:
            super().upsert(index, batch, namespace)
        return refused


def _id_problem(rid: str) -> str | None:
    if _UINT64.fullmatch(rid) and int(rid) < 2**64:
        return None
    try:
        if str(uuid.UUID(rid)) == rid:
            return None
    except ValueError:
        pass
    return f"id {rid!r} is neither a uint64 nor a canonical UUID"


def _metadata_problem(text: str | None) -> str | None:
    for key, value in (loads_metadata(text) or {}).items():
        flat = isinstance(value, str | int | float | bool) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        )
        if not flat:
            return f"metadata key {key!r}: only strings, numbers, bools, lists of strings"
    return None


def make_harness(request: pytest.FixtureRequest) -> Harness:
    store = f"conformance-restricted-{uuid.uuid4().hex}"
    return Harness(
        name="memory_restricted",
        factory=lambda: RestrictedMemoryProvider(store),
    )
