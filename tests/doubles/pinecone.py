"""Pinecone test double: control plane + one data-plane listener per index.

Specs: pinecone-db-control-2026-04.oas.yaml (``double.url``) and
pinecone-db-data-2026-04.oas.yaml (each index's own port; ``IndexModel.host`` is
``127.0.0.1:<port>`` like Pinecone's bare host, ``double.index_url(name)`` adds
``http://``).  Semantics: docs/provider-notes.md section 2 (limits, metadata rules,
bitwise-sorted list, serverless-only list/namespaces, lagging stats).
"""

from __future__ import annotations

import base64
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from .openapi_server import (
    HTTPError,
    NotModelled,
    OpenAPIDouble,
    Request,
    Response,
    load_spec,
    operation,
)

CONTROL_SPEC = "pinecone-db-control-2026-04.oas.yaml"
DATA_SPEC = "pinecone-db-data-2026-04.oas.yaml"
API_VERSION = "2026-04"
DEFAULT_NAMESPACE = "__default__"  # how 2025-04+ APIs name the "" namespace in listings

MAX_UPSERT_RECORDS = 1000
MAX_UPSERT_BYTES = 2 * 1024 * 1024
MAX_FETCH_IDS = 1000
MAX_ID_CHARS = 512
MAX_METADATA_BYTES = 40 * 1024
MAX_SPARSE_NONZEROS = 1000
MAX_DIMENSION = 20000
INDEX_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?$")

# HTTP status -> (grpc code for data-plane rpcStatus, code string for control-plane ErrorResponse)
CODES = {
    400: (3, "INVALID_ARGUMENT"),
    401: (16, "UNAUTHENTICATED"),
    403: (7, "FORBIDDEN"),
    404: (5, "NOT_FOUND"),
    409: (6, "ALREADY_EXISTS"),
    412: (9, "FAILED_PRECONDITION"),
    422: (3, "UNPROCESSABLE_ENTITY"),
    429: (8, "RESOURCE_EXHAUSTED"),
    500: (13, "INTERNAL"),
    501: (12, "UNIMPLEMENTED"),
    503: (14, "UNAVAILABLE"),
}


@dataclass
class Record:
    id: str
    values: np.ndarray | None
    sparse: tuple[list[int], np.ndarray] | None
    metadata: dict | None

    def to_json(self, values: bool = True, metadata: bool = True) -> dict:
        out: dict[str, Any] = {"id": self.id}
        if values:
            out["values"] = self.values if self.values is not None else []
            if self.sparse is not None:
                out["sparseValues"] = {"indices": self.sparse[0], "values": self.sparse[1]}
        if metadata and self.metadata:
            out["metadata"] = self.metadata
        return out


@dataclass
class Index:
    name: str
    dimension: int | None
    metric: str
    vector_type: str
    spec: dict  # {"serverless": {...}} | {"pod": {...}}
    deletion_protection: str
    tags: dict | None
    listener: Any = None
    namespaces: dict[str, dict[str, Record]] = field(default_factory=dict)
    history: deque = field(
        default_factory=lambda: deque([{}], maxlen=1000)
    )  # counts after each write

    @property
    def pod(self) -> bool:
        return "pod" in self.spec

    def counts(self) -> dict[str, int]:
        return {ns: len(recs) for ns, recs in self.namespaces.items() if recs}


class PineconeDouble(OpenAPIDouble):
    """Pinecone control plane at ``url``; each index serves its data plane on its own port.

    ``api_key``: the expected ``Api-Key`` (None accepts any non-empty key).
    ``stats_lag_writes``: describe_index_stats reports counts from that many writes ago.
    ``host_with_scheme``: ``IndexModel.host`` as ``http://127.0.0.1:<port>`` instead of the
    bare ``127.0.0.1:<port>`` (Pinecone's hosts are bare and imply https).
    """

    error_schema_ref = "#/components/schemas/ErrorResponse"  # control plane
    WRITE_OPERATIONS = frozenset(
        {"upsertVectors", "deleteVectors", "updateVector", "deleteNamespace"}
    )
    READ_OPERATIONS = frozenset(
        {
            "fetchVectors",
            "listVectors",
            "queryVectors",
            "describeIndexStats",
            "listNamespacesOperation",
        }
    )

    def __init__(
        self,
        *,
        api_key: str | None = "test-api-key",
        stats_lag_writes: int = 0,
        host_with_scheme: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(load_spec(CONTROL_SPEC), seed=seed)
        self.data_spec = load_spec(DATA_SPEC)
        self.api_key = api_key
        self.stats_lag_writes = stats_lag_writes
        self.host_with_scheme = host_with_scheme
        self.indexes: dict[str, Index] = {}

    # -- addresses and seeding ----------------------------------------------------------

    def index_host(self, name: str) -> str:
        return f"127.0.0.1:{self.indexes[name].listener.port}"

    def index_url(self, name: str) -> str:
        return self.indexes[name].listener.url

    def create_index(
        self, name: str, dimension: int | None = None, metric: str = "cosine", **body: Any
    ) -> dict:
        """Same as ``POST /indexes``; serverless (aws/us-east-1) unless ``spec`` is given."""
        body = {"name": name, "metric": metric, **body}
        if dimension is not None:
            body["dimension"] = dimension
        body.setdefault("spec", {"serverless": {"cloud": "aws", "region": "us-east-1"}})
        return self.call("create_index", body=body).body

    def upsert(self, index: str, vectors: list[dict], namespace: str = "") -> None:
        """Same as ``POST /vectors/upsert`` on ``index`` (REST-shaped vectors)."""
        body = {"vectors": vectors, "namespace": namespace}
        self.call("upsertVectors", body=body, context=index, spec=self.data_spec)

    def records(self, index: str, namespace: str = "") -> dict[str, Record]:
        with self.lock:
            return dict(self.indexes[index].namespaces.get(_ns(namespace), {}))

    # -- vendor hooks -------------------------------------------------------------------

    def error_body(self, status: int, message: str, req: Request) -> Any:
        grpc, name = CODES.get(status, (2, "UNKNOWN"))
        if req.context is None:  # control plane ErrorResponse
            return {"error": {"code": name, "message": message}, "status": status}
        return {"code": grpc, "message": message, "details": []}

    def authenticate(self, req: Request) -> None:
        key = req.headers.get("api-key")
        if not key or (self.api_key is not None and key != self.api_key):
            raise HTTPError(401, "Invalid API Key")

    def check_request(self, req: Request) -> str | None:
        version = req.headers.get("x-pinecone-api-version")
        if version != API_VERSION:
            return f"X-Pinecone-Api-Version must be {API_VERSION!r}, got {version!r}"
        return None

    # -- control plane --------------------------------------------------------------------

    def _model(self, ix: Index) -> dict:
        model: dict[str, Any] = {
            "name": ix.name,
            "metric": ix.metric,
            "host": ix.listener.url if self.host_with_scheme else self.index_host(ix.name),
            "spec": ix.spec,
            "status": {"ready": True, "state": "Ready"},
            "vector_type": ix.vector_type,
            "deletion_protection": ix.deletion_protection,
        }
        if ix.dimension is not None:
            model["dimension"] = ix.dimension
        if ix.tags:
            model["tags"] = ix.tags
        return model

    def _index(self, name: str) -> Index:
        ix = self.indexes.get(name)
        if ix is None:
            raise HTTPError(404, f"Index {name} not found")
        return ix

    @operation("list_indexes")
    def list_indexes(self, req: Request) -> Response:
        return Response(200, {"indexes": [self._model(ix) for ix in self.indexes.values()]})

    @operation("describe_index")
    def describe_index(self, req: Request) -> Response:
        return Response(200, self._model(self._index(req.params["index_name"])))

    @operation("create_index")
    def create_index_op(self, req: Request) -> Response:
        body = req.body
        name = body["name"]
        if not INDEX_NAME.match(name):
            raise HTTPError(
                400,
                "Name must consist of lower case alphanumeric characters or '-', "
                "and must start and end "
                "with an alphanumeric character",
            )
        vector_type = body.get("vector_type", "dense")
        if vector_type not in ("dense", "sparse"):
            raise HTTPError(400, f"vector_type must be 'dense' or 'sparse', got {vector_type!r}")
        dimension = body.get("dimension")
        metric = body.get("metric", "dotproduct" if vector_type == "sparse" else "cosine")
        if metric not in ("cosine", "euclidean", "dotproduct"):
            raise HTTPError(
                400, f"Invalid metric {metric!r}: must be one of cosine, euclidean, dotproduct"
            )
        if vector_type == "dense" and dimension is None:
            raise HTTPError(400, "Dimension must be specified for dense indexes")
        if vector_type == "sparse" and (dimension is not None or metric != "dotproduct"):
            raise HTTPError(
                400, "Sparse indexes must use the dotproduct metric and must not set a dimension"
            )
        if name in self.indexes:
            raise HTTPError(409, f"Resource {name} already exists")
        spec = body["spec"]
        if "serverless" in spec:
            s = spec["serverless"]
            out_spec = {
                "serverless": {
                    **s,
                    "read_capacity": {"mode": "OnDemand", "status": {"state": "Ready"}},
                }
            }
        elif "pod" in spec:
            p = spec["pod"]
            pod = {"replicas": 1, "shards": 1, "pods": 1, **p}
            out_spec = {"pod": pod}
        else:
            raise NotModelled("BYOC indexes")
        ix = Index(
            name,
            dimension,
            metric,
            vector_type,
            out_spec,
            body.get("deletion_protection", "disabled"),
            body.get("tags"),
        )
        ix.listener = self.add_listener(self.data_spec, context=name)
        self.indexes[name] = ix
        return Response(201, self._model(ix))

    @operation("configure_index")
    def configure_index(self, req: Request) -> Response:
        ix = self._index(req.params["index_name"])
        body = req.body
        if "deletion_protection" in body:
            ix.deletion_protection = body["deletion_protection"]
        if "tags" in body:
            tags = {**(ix.tags or {}), **body["tags"]}
            ix.tags = {k: v for k, v in tags.items() if v != ""}
        pod_changes = (body.get("spec") or {}).get("pod")
        if pod_changes:
            if not ix.pod:
                raise HTTPError(400, "Pod configuration can only be changed on pod-based indexes")
            ix.spec["pod"].update(pod_changes)
        return Response(202, self._model(ix))

    @operation("delete_index")
    def delete_index(self, req: Request) -> Response:
        ix = self._index(req.params["index_name"])
        if ix.deletion_protection == "enabled":
            raise HTTPError(
                403,
                "Deletion protection is enabled for this index. "
                "Disable deletion protection before retrying.",
            )
        del self.indexes[ix.name]
        self.remove_listener(ix.listener)
        return Response(202)

    # -- data plane -----------------------------------------------------------------------

    def _data_index(self, req: Request) -> Index:
        ix = self.indexes.get(req.context)
        if ix is None:
            raise HTTPError(404, f"Index {req.context} not found")
        return ix

    def _wrote(self, ix: Index) -> None:
        ix.history.append(ix.counts())

    @operation("upsertVectors")
    def upsert_vectors(self, req: Request) -> Response:
        ix = self._data_index(req)
        vectors = req.body["vectors"]
        if len(vectors) > MAX_UPSERT_RECORDS:
            raise HTTPError(
                400,
                f"Upsert request contains {len(vectors)} records, "
                f"exceeding the limit of {MAX_UPSERT_RECORDS}",
            )
        if req.content_length > MAX_UPSERT_BYTES:
            raise HTTPError(
                400,
                f"Request size {req.content_length} bytes exceeds the maximum "
                f"of {MAX_UPSERT_BYTES} bytes",
            )
        records = [self._record(ix, v) for v in vectors]
        space = ix.namespaces.setdefault(_ns(req.body.get("namespace")), {})
        for rec in records:
            space[rec.id] = rec
        self._wrote(ix)
        return Response(200, {"upsertedCount": len(records)})

    def _record(self, ix: Index, v: dict) -> Record:
        rid = v["id"]
        if not 1 <= len(rid) <= MAX_ID_CHARS:
            raise HTTPError(
                400, f"Vector ID must be between 1 and {MAX_ID_CHARS} characters, got {len(rid)}"
            )
        values = None
        raw_values = v.get("values") or []
        if ix.vector_type == "dense":
            arr = np.asarray(raw_values, dtype=np.float32)
            if arr.shape != (ix.dimension,):
                raise HTTPError(
                    400,
                    f"Vector dimension {arr.size} does not match "
                    f"the dimension of the index {ix.dimension}",
                )
            if not arr.any():
                raise HTTPError(400, "Dense vectors must contain at least one non-zero value")
            values = arr
        elif raw_values:
            raise HTTPError(400, "Sparse indexes do not accept dense values")
        sparse = None
        sv = v.get("sparseValues")
        if sv is not None:
            if ix.metric != "dotproduct":
                raise HTTPError(
                    400, "Sparse values are supported only for indexes using the dotproduct metric"
                )
            indices, svals = sv["indices"], sv["values"]
            if len(indices) != len(svals):
                raise HTTPError(400, "Sparse vector indices and values must have the same length")
            if len(indices) > MAX_SPARSE_NONZEROS:
                raise HTTPError(
                    400,
                    f"Sparse vector has {len(indices)} non-zero values, "
                    f"exceeding {MAX_SPARSE_NONZEROS}",
                )
            if len(set(indices)) != len(indices) or any(i < 0 or i >= 2**32 for i in indices):
                raise HTTPError(
                    400, "Sparse vector indices must be unique unsigned 32-bit integers"
                )
            sparse = (list(indices), np.asarray(svals, dtype=np.float32))
        elif ix.vector_type == "sparse":
            raise HTTPError(400, "Sparse indexes require sparseValues on every record")
        return Record(rid, values, sparse, _metadata(v.get("metadata")))

    @operation("fetchVectors")
    def fetch_vectors(self, req: Request) -> Response:
        ix = self._data_index(req)
        ids = req.params["ids"]
        if len(ids) > MAX_FETCH_IDS:
            raise HTTPError(
                400, f"Cannot fetch more than {MAX_FETCH_IDS} ids at a time, got {len(ids)}"
            )
        if any(" " in i for i in ids):
            raise HTTPError(400, "IDs containing spaces are not accepted by fetch")
        namespace = req.params.get("namespace", "")
        space = ix.namespaces.get(_ns(namespace), {})
        found = {i: space[i].to_json() for i in ids if i in space}
        return Response(200, {"vectors": found, "namespace": namespace, "usage": {"readUnits": 1}})

    @operation("listVectors")
    def list_vectors(self, req: Request) -> Response:
        ix = self._data_index(req)
        if ix.pod:
            raise HTTPError(501, "The list operation is not supported for pod-based indexes")
        limit = req.params.get("limit", 100)
        if limit < 1:
            raise HTTPError(400, "limit must be a positive integer")
        prefix = req.params.get("prefix", "")
        namespace = req.params.get("namespace", "")
        ids = sorted(i for i in ix.namespaces.get(_ns(namespace), {}) if i.startswith(prefix))
        after = _decode_token(req.params.get("paginationToken"))
        if after is not None:
            ids = [i for i in ids if i > after]
        page = ids[:limit]
        body: dict[str, Any] = {
            "vectors": [{"id": i} for i in page],
            "namespace": namespace,
            "usage": {"readUnits": 1},
        }
        if len(ids) > limit:
            body["pagination"] = {"next": _encode_token(page[-1])}
        return Response(200, body)

    @operation("describeIndexStats")
    def describe_index_stats(self, req: Request) -> Response:
        ix = self._data_index(req)
        flt = (req.body or {}).get("filter")
        if flt is not None and not ix.pod:
            raise HTTPError(
                400,
                "Serverless and Starter indexes do not support "
                "describing index stats with metadata filtering",
            )
        if flt is not None:
            counts = {
                ns: sum(1 for r in recs.values() if _filter(flt, r.metadata or {}))
                for ns, recs in ix.namespaces.items()
            }
            counts = {ns: n for ns, n in counts.items() if n}
        else:
            lag = min(self.stats_lag_writes, len(ix.history) - 1)
            counts = ix.history[-1 - lag]
        body = {
            "namespaces": {_display(ns): {"vectorCount": n} for ns, n in sorted(counts.items())},
            "indexFullness": 0.0,
            "totalVectorCount": sum(counts.values()),
            "metric": ix.metric,
            "vectorType": ix.vector_type,
        }
        if ix.dimension is not None:
            body["dimension"] = ix.dimension
        return Response(200, body)

    @operation("queryVectors")
    def query_vectors(self, req: Request) -> Response:
        ix = self._data_index(req)
        body = req.body
        namespace = body.get("namespace", "")
        space = ix.namespaces.get(_ns(namespace), {})
        if body.get("queries"):
            raise NotModelled("deprecated multi-vector 'queries'")
        dense = body.get("vector")
        sparse = body.get("sparseVector")
        if body.get("id") is not None:
            ref = space.get(body["id"])
            if ref is None:
                return Response(
                    200, {"matches": [], "namespace": namespace, "usage": {"readUnits": 1}}
                )
            dense = ref.values
            sparse = {"indices": ref.sparse[0], "values": ref.sparse[1]} if ref.sparse else None
        if dense is None and sparse is None:
            raise HTTPError(400, "No query provided: set one of vector, sparseVector or id")
        if dense is not None and ix.vector_type == "dense" and len(dense) != ix.dimension:
            raise HTTPError(
                400,
                f"Query vector dimension {len(dense)} does not match "
                f"the dimension of the index {ix.dimension}",
            )
        flt = body.get("filter")
        candidates = [r for r in space.values() if flt is None or _filter(flt, r.metadata or {})]
        scored = [(_score(ix.metric, dense, sparse, r), r) for r in candidates]
        scored.sort(key=lambda sr: (sr[0] if ix.metric == "euclidean" else -sr[0], sr[1].id))
        include_values = body.get("includeValues", False)
        include_metadata = body.get("includeMetadata", False)
        matches = [
            {**r.to_json(include_values, include_metadata), "score": float(s)}
            for s, r in scored[: body["topK"]]
        ]
        return Response(
            200, {"matches": matches, "namespace": namespace, "usage": {"readUnits": 5}}
        )

    @operation("deleteVectors")
    def delete_vectors(self, req: Request) -> Response:
        ix = self._data_index(req)
        body = req.body
        space = ix.namespaces.get(_ns(body.get("namespace")), {})
        if body.get("deleteAll"):
            space.clear()
        elif body.get("ids") is not None:
            for i in body["ids"]:
                space.pop(i, None)
        elif body.get("filter") is not None:
            for i in [i for i, r in space.items() if _filter(body["filter"], r.metadata or {})]:
                del space[i]
        else:
            raise HTTPError(400, "One of ids, deleteAll or filter must be provided")
        self._wrote(ix)
        return Response(200, {})

    @operation("updateVector")
    def update_vector(self, req: Request) -> Response:
        ix = self._data_index(req)
        body = req.body
        if body.get("id") is None:
            raise NotModelled("update by metadata filter")
        space = ix.namespaces.get(_ns(body.get("namespace")), {})
        current = space.get(body["id"])
        if current is None:
            return Response(200, {"matchedRecords": 0})
        merged: dict[str, Any] = {"id": current.id}
        if body.get("values") is not None:
            merged["values"] = body["values"]
        elif current.values is not None:
            merged["values"] = current.values.tolist()
        if body.get("sparseValues") is not None:
            merged["sparseValues"] = body["sparseValues"]
        elif current.sparse is not None:
            merged["sparseValues"] = {
                "indices": current.sparse[0],
                "values": current.sparse[1].tolist(),
            }
        merged["metadata"] = {**(current.metadata or {}), **(body.get("setMetadata") or {})}
        if not body.get("dryRun"):
            space[current.id] = self._record(ix, merged)
            self._wrote(ix)
        return Response(200, {"matchedRecords": 1})

    # -- namespaces (serverless only) -----------------------------------------------------

    def _serverless(self, req: Request) -> Index:
        ix = self._data_index(req)
        if ix.pod:
            raise HTTPError(501, "Namespace operations are not supported for pod-based indexes")
        return ix

    def _describe_ns(self, ix: Index, ns: str) -> dict:
        return {"name": _display(ns), "record_count": len(ix.namespaces.get(ns, {}))}

    @operation("listNamespacesOperation")
    def list_namespaces(self, req: Request) -> Response:
        ix = self._serverless(req)
        prefix = req.params.get("prefix", "")
        names = sorted(n for n in map(_display, ix.namespaces) if n.startswith(prefix))
        after = _decode_token(req.params.get("paginationToken"))
        if after is not None:
            names = [n for n in names if n > after]
        limit = req.params.get("limit", 100)
        if limit < 1:
            raise HTTPError(400, "limit must be a positive integer")
        page = names[:limit]
        body: dict[str, Any] = {
            "namespaces": [self._describe_ns(ix, _ns(n)) for n in page],
            "total_count": len(names),
        }
        if len(names) > limit:
            body["pagination"] = {"next": _encode_token(page[-1])}
        return Response(200, body)

    @operation("describeNamespace")
    def describe_namespace(self, req: Request) -> Response:
        ix = self._serverless(req)
        ns = _ns(req.params["namespace"])
        if ns not in ix.namespaces:
            raise HTTPError(404, f"Namespace {req.params['namespace']} not found")
        return Response(200, self._describe_ns(ix, ns))

    @operation("createNamespace")
    def create_namespace(self, req: Request) -> Response:
        ix = self._serverless(req)
        ns = _ns(req.body["name"])
        if ns in ix.namespaces:
            raise HTTPError(409, f"Namespace {req.body['name']} already exists")
        ix.namespaces[ns] = {}
        return Response(200, self._describe_ns(ix, ns))

    @operation("deleteNamespace")
    def delete_namespace(self, req: Request) -> Response:
        ix = self._serverless(req)
        ns = _ns(req.params["namespace"])
        if ix.namespaces.pop(ns, None) is None:
            raise HTTPError(404, f"Namespace {req.params['namespace']} not found")
        self._wrote(ix)
        return Response(200, {})


# -- helpers -----------------------------------------------------------------------------


def _ns(name: str | None) -> str:
    """Storage key of a namespace: "" and "__default__" are the same (default) namespace."""
    return "" if name is None or name in ("", DEFAULT_NAMESPACE) else name


def _display(ns: str) -> str:
    return ns or DEFAULT_NAMESPACE


def _encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": last})).decode()


def _decode_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return orjson.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (ValueError, KeyError, TypeError):
        raise HTTPError(400, "Invalid pagination token") from None


def _metadata(md: Any) -> dict | None:
    """Flat metadata only: string, number (kept as float64), bool, list of strings; no nulls."""
    if md is None:
        return None
    out: dict[str, Any] = {}
    for key, value in md.items():
        if isinstance(value, (bool, str)):
            out[key] = value
        elif isinstance(value, (int, float)):
            out[key] = float(value)
        elif isinstance(value, list) and all(isinstance(x, str) for x in value):
            out[key] = list(value)
        else:
            kind = "null" if value is None else type(value).__name__
            raise HTTPError(
                400,
                "Metadata value must be a string, number, boolean or list of strings, "
                f"got '{kind}' "
                f"for field '{key}'",
            )
    size = len(orjson.dumps(out))
    if size > MAX_METADATA_BYTES:
        raise HTTPError(
            400,
            f"Metadata size is {size} bytes, which exceeds the limit "
            f"of {MAX_METADATA_BYTES} bytes per vector",
        )
    return out


def _score(metric: str, dense: Any, sparse: dict | None, r: Record) -> float:
    score = 0.0
    if dense is not None and r.values is not None:
        q = np.asarray(dense, dtype=np.float64)
        v = r.values.astype(np.float64)
        if metric == "cosine":
            denom = np.linalg.norm(q) * np.linalg.norm(v)
            score = float(q @ v / denom) if denom else 0.0
        elif metric == "euclidean":
            score = float(((q - v) ** 2).sum())  # squared distance: lower is better
        else:
            score = float(q @ v)
    if sparse is not None and r.sparse is not None:
        lookup = dict(zip(r.sparse[0], r.sparse[1].tolist(), strict=True))
        score += sum(
            lookup.get(i, 0.0) * float(w)
            for i, w in zip(sparse["indices"], sparse["values"], strict=False)
        )
    return score


def _filter(flt: dict, md: dict) -> bool:
    """Pinecone metadata filter: $eq $ne $gt $gte $lt $lte $in $nin $exists $and $or."""
    for key, cond in flt.items():
        if key == "$and":
            if not all(_filter(f, md) for f in cond):
                return False
        elif key == "$or":
            if not any(_filter(f, md) for f in cond):
                return False
        elif not isinstance(cond, dict):
            if not _op("$eq", md.get(key), cond, key in md):
                return False
        elif not all(_op(op, md.get(key), arg, key in md) for op, arg in cond.items()):
            return False
    return True


def _op(op: str, value: Any, arg: Any, present: bool) -> bool:
    values = value if isinstance(value, list) else [value]
    if op == "$exists":
        return present == bool(arg)
    if not present:
        return op in ("$ne", "$nin")
    if op == "$eq":
        return arg in values
    if op == "$ne":
        return arg not in values
    if op == "$in":
        return any(v in arg for v in values)
    if op == "$nin":
        return not any(v in arg for v in values)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        nums = [v for v in values if isinstance(v, float)]
        cmp = {
            "$gt": float.__gt__,
            "$gte": float.__ge__,
            "$lt": float.__lt__,
            "$lte": float.__le__,
        }[op]
        return any(cmp(v, float(arg)) for v in nums)
    raise HTTPError(400, f"Unknown filter operator {op}")
