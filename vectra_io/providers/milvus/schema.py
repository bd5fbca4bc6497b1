"""The collection model: how the fields of a Milvus collection map to records (the
:class:`Layout` read from a collection's fields, its stored ``vectra.spec`` property and
the metric types of its indexes), the pymilvus data types and limits it depends on (with
the provider's capabilities, which follow from them), and the schema, indexes and stored
layout of a collection created for an IndexSpec.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ...errors import IncompatibleIndexError, UnsupportedError
from ..base import UNKNOWN_METRIC, Capabilities, IndexSpec, VectorSpec
from .names import named_field

log = logging.getLogger("vectra_io.providers.milvus")

SPEC_PROPERTY = "vectra.spec"
LAYOUT_VERSION = 1
VARCHAR_MAX = 65_535
MAX_DIMENSION = 32_768
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

TO_MILVUS_METRIC = {"cosine": "COSINE", "dot": "IP", "euclidean": "L2"}
FROM_MILVUS_METRIC = {v: k for k, v in TO_MILVUS_METRIC.items()}

# pymilvus DataType values (kept numeric so this module imports without pymilvus)
BOOL, INT8, INT16, INT32, INT64 = 1, 2, 3, 4, 5
FLOAT, DOUBLE, VARCHAR, ARRAY, JSON_T = 10, 11, 21, 22, 23
BINARY_VECTOR, FLOAT_VECTOR, FLOAT16_VECTOR, BFLOAT16_VECTOR = 100, 101, 102, 103
SPARSE_FLOAT_VECTOR, INT8_VECTOR = 104, 105
DYNAMIC_FIELD = "$meta"

MILVUS_CAPABILITIES = Capabilities(
    max_batch_rows=None,
    # 64 MB per insert/upsert RPC; protobuf adds tags/lengths to the Arrow sizes
    max_batch_bytes=60 * 1024 * 1024,
    wire_factor=1.2,
    id_types=frozenset({"string", "uint64", "uuid"}),
    metrics=frozenset(TO_MILVUS_METRIC),
    namespaces=True,
    sparse=True,
    named_vectors=True,
    exact_count=True,
    nested_metadata=True,
    idempotent_upsert=True,
    optional_dense=False,
    max_dimension=MAX_DIMENSION,
    exact_floats=True,
)

AUTO_ID_REFUSAL = (
    "the collection generates its primary keys (auto_id): an upsert would give every "
    "record a new key instead of replacing it, so re-imports would duplicate records; "
    "import into a new collection (vectra-io creates it with auto_id off) or one whose "
    "primary key is not auto_id"
)


@dataclass
class _Scalar:
    name: str
    dtype: int
    nullable: bool
    has_default: bool


@dataclass
class Layout:
    """How the fields of one collection map to records."""

    name: str
    pk: str
    pk_int: bool
    pk_max_length: int | None
    auto_id: bool
    dense: str | None
    dense_dim: int | None
    sparse: str | None
    named: dict[str, tuple[str, int]]  # vectra name -> (field, dimension)
    metadata_field: str | None  # vectra collections only
    metadata_format: str | None  # "text" | "json" (vectra) | None (mapped from fields)
    scalars: list[_Scalar]
    dynamic: bool
    partition_key: bool
    spec: IndexSpec
    output_fields: list[str] = field(default_factory=list)

    @property
    def vectra(self) -> bool:
        return self.metadata_format is not None

    def row_bytes(self) -> int:
        dims = (self.dense_dim or 0) + sum(d for _, d in self.named.values())
        return 4 * dims + 2048


def _dtype(value: Any) -> int:
    return int(getattr(value, "value", value))


def json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def build_layout(
    name: str,
    desc: Mapping[str, Any],
    metrics: Mapping[str, str],
    index_info: Mapping[str, Any],
    where: dict[str, Any],
) -> Layout:
    """The layout of collection ``name`` from its description and the metric type and
    parameters of the index on each field (``where``: the context of errors)."""
    fields = list(desc.get("fields") or [])
    function_outputs = {
        out for fn in desc.get("functions") or [] for out in (fn.get("output_field_names") or [])
    }
    pk_field = next((f for f in fields if f.get("is_primary")), None)
    if pk_field is None:
        raise IncompatibleIndexError("the collection has no primary key field", **where)
    pk_type = _dtype(pk_field["type"])
    if pk_type not in (INT64, VARCHAR):
        raise UnsupportedError(f"primary key type {pk_field['type']} is not supported", **where)
    pk_params = pk_field.get("params") or {}
    stored = _stored_layout(desc.get("properties") or {})
    by_name = {f["name"]: f for f in fields}
    float_vectors = [
        f for f in fields if _dtype(f["type"]) == FLOAT_VECTOR and f["name"] not in function_outputs
    ]
    sparse_fields = [
        f
        for f in fields
        if _dtype(f["type"]) == SPARSE_FLOAT_VECTOR and f["name"] not in function_outputs
    ]
    other_vectors = [
        f["name"]
        for f in fields
        if _dtype(f["type"]) in (BINARY_VECTOR, FLOAT16_VECTOR, BFLOAT16_VECTOR, INT8_VECTOR)
    ]
    if other_vectors:
        raise UnsupportedError(
            f"vector fields {other_vectors} are not float32 dense or sparse vectors; "
            "vectra-io cannot move them without loss",
            **where,
        )
    if len(sparse_fields) > 1:
        raise UnsupportedError(
            f"more than one sparse vector field: {[f['name'] for f in sparse_fields]}",
            **where,
        )

    def dim_of(f: Mapping[str, Any]) -> int:
        return int((f.get("params") or {})["dim"])

    spec_data: dict[str, Any] = {}
    named: dict[str, tuple[str, int]] = {}
    metadata_field = metadata_format = None
    vectra = False
    if stored is not None:
        lay = stored.get("layout") or {}
        want = [lay.get("pk"), lay.get("dense"), lay.get("sparse"), lay.get("metadata")]
        want += [fld for fld in (lay.get("named") or {}).values()]
        if lay.get("pk") == pk_field["name"] and all(w is None or w in by_name for w in want):
            vectra = True
            spec_data = stored.get("spec") or {}
            dense_name = lay.get("dense")
            sparse_name = lay.get("sparse")
            metadata_field = lay.get("metadata")
            metadata_format = lay.get("metadata_format", "text")
            named = {n: (f, dim_of(by_name[f])) for n, f in (lay.get("named") or {}).items()}
    if not vectra:
        dense_field = (
            by_name.get("vector")
            if any(f["name"] == "vector" for f in float_vectors)
            else (float_vectors[0] if float_vectors else None)
        )
        dense_name = dense_field["name"] if dense_field else None
        sparse_name = sparse_fields[0]["name"] if sparse_fields else None
        named = {
            f["name"]: (f["name"], dim_of(f)) for f in float_vectors if f["name"] != dense_name
        }
    dense_dim = dim_of(by_name[dense_name]) if dense_name else None
    vector_fields = {dense_name, sparse_name, *(f for f, _ in named.values())}
    scalars = [
        _Scalar(
            f["name"],
            _dtype(f["type"]),
            bool(f.get("nullable")),
            f.get("default_value") is not None,
        )
        for f in fields
        if f["name"] not in vector_fields
        and f is not pk_field
        and f["name"] not in function_outputs
        and _dtype(f["type"]) < BINARY_VECTOR
    ]
    dynamic = bool(desc.get("enable_dynamic_field"))
    partition_key = any(f.get("is_partition_key") for f in fields)

    def metric(fld: str | None) -> str:
        return FROM_MILVUS_METRIC.get(metrics.get(fld or "", ""), UNKNOWN_METRIC)

    if pk_type == INT64:
        id_type = "uint64"
    else:
        id_type = "uuid" if spec_data.get("id_type") == "uuid" else "string"
    if dense_name:
        spec_metric = metric(dense_name)
    elif named:
        spec_metric = metric(next(iter(named.values()))[0])
    else:
        spec_metric = spec_data.get("metric", UNKNOWN_METRIC) if vectra else UNKNOWN_METRIC
    spec = IndexSpec(
        name=name,
        dimension=dense_dim,
        metric=spec_metric,
        id_type=id_type,
        named_vectors={n: VectorSpec(d, metric(f)) for n, (f, d) in named.items()},
        sparse=sparse_name is not None,
        normalized=False,
        raw_config={
            "milvus": {
                "vectra_layout": vectra,
                "auto_id": bool(desc.get("auto_id")),
                "enable_dynamic_field": dynamic,
                "consistency_level": json_safe(desc.get("consistency_level_name")),
                "partition_key": partition_key,
                "fields": [
                    json_safe(
                        {
                            "name": f["name"],
                            "type": getattr(f["type"], "name", f["type"]),
                            "params": f.get("params") or {},
                            **({"nullable": True} if f.get("nullable") else {}),
                            **({"is_primary": True} if f.get("is_primary") else {}),
                        }
                    )
                    for f in fields
                ],
                "indexes": dict(index_info),
            }
        },
    )
    layout = Layout(
        name=name,
        pk=pk_field["name"],
        pk_int=pk_type == INT64,
        pk_max_length=int(pk_params["max_length"]) if "max_length" in pk_params else None,
        auto_id=bool(desc.get("auto_id") or pk_field.get("auto_id")),
        dense=dense_name,
        dense_dim=dense_dim,
        sparse=sparse_name,
        named=named,
        metadata_field=metadata_field,
        metadata_format=metadata_format if vectra else None,
        scalars=scalars,
        dynamic=dynamic,
        partition_key=partition_key,
        spec=spec,
    )
    if vectra:
        outs = [layout.pk, dense_name, sparse_name, *(f for f, _ in named.values())]
        outs.append(metadata_field)
        layout.output_fields = [o for o in outs if o]
    else:
        layout.output_fields = ["*"]
    return layout


def _stored_layout(properties: Mapping[str, Any]) -> dict[str, Any] | None:
    text = properties.get(SPEC_PROPERTY)
    if not text:
        return None
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        log.warning("ignoring an unreadable %s collection property", SPEC_PROPERTY)
        return None
    return data if isinstance(data, dict) and data.get("version") == LAYOUT_VERSION else None


def check_new_spec(spec: IndexSpec, id_types: frozenset[str], where: dict[str, Any]) -> None:
    """Refuse a spec that a new Milvus collection cannot hold (``id_types``: the id types
    the provider supports; ``where``: the context of errors)."""
    metrics = [spec.metric, *(v.metric for v in spec.named_vectors.values())]
    for m in metrics:
        if m not in TO_MILVUS_METRIC:
            raise IncompatibleIndexError(
                f"metric {m!r} cannot be expressed by Milvus (cosine, dot, euclidean)",
                **where,
            )
    dims = [spec.dimension, *(v.dimension for v in spec.named_vectors.values())]
    if any(d is not None and not 0 < d <= MAX_DIMENSION for d in dims):
        raise IncompatibleIndexError(
            f"Milvus dense vectors have 1 to {MAX_DIMENSION} dimensions, got {dims}", **where
        )
    if spec.dimension is None and not spec.named_vectors and not spec.sparse:
        raise UnsupportedError("a Milvus collection needs at least one vector field", **where)
    if spec.id_type not in id_types:
        raise IncompatibleIndexError(f"id type {spec.id_type!r} is not supported", **where)


def new_collection_schema(
    client: Any, spec: IndexSpec, *, index_type: str, metadata_format: str
) -> tuple[Any, Any, dict[str, Any]]:
    """The schema, the index parameters (``index_type`` for the dense vectors) and the
    stored layout (for the :data:`SPEC_PROPERTY` property) of a collection created for
    ``spec`` through ``client``."""
    from pymilvus import DataType, MilvusClient

    pk, dense, sparse, meta = "id", "vector", "sparse_values", "metadata"
    reserved = {pk, dense, sparse, meta}
    named: dict[str, str] = {}
    for vname in sorted(spec.named_vectors):
        fname = named_field(vname, reserved)
        reserved.add(fname)
        named[vname] = fname
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    if spec.id_type == "uint64":
        schema.add_field(pk, DataType.INT64, is_primary=True, auto_id=False)
    else:
        schema.add_field(
            pk, DataType.VARCHAR, is_primary=True, auto_id=False, max_length=VARCHAR_MAX
        )
    index_params = client.prepare_index_params()
    if spec.dimension is not None:
        schema.add_field(dense, DataType.FLOAT_VECTOR, dim=spec.dimension)
        index_params.add_index(
            dense, index_type=index_type, metric_type=TO_MILVUS_METRIC[spec.metric]
        )
    if spec.sparse:
        schema.add_field(sparse, DataType.SPARSE_FLOAT_VECTOR)
        index_params.add_index(sparse, index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    for vname, fname in named.items():
        vec = spec.named_vectors[vname]
        schema.add_field(fname, DataType.FLOAT_VECTOR, dim=vec.dimension)
        index_params.add_index(
            fname, index_type=index_type, metric_type=TO_MILVUS_METRIC[vec.metric]
        )
    if metadata_format == "json":
        schema.add_field(meta, DataType.JSON, nullable=True)
    else:
        schema.add_field(meta, DataType.VARCHAR, max_length=VARCHAR_MAX, nullable=True)
    stored = {
        "version": LAYOUT_VERSION,
        "spec": replace(spec, raw_config={}).to_dict(),
        "layout": {
            "pk": pk,
            "dense": dense if spec.dimension is not None else None,
            "sparse": sparse if spec.sparse else None,
            "named": named,
            "metadata": meta,
            "metadata_format": metadata_format,
        },
    }
    return schema, index_params, stored
