"""Qdrant REST test double (spec: qdrant-openapi-v1.19.json).

Semantics follow docs/provider-notes.md section 1: whole-point overwrite on upsert,
uint64/UUID ids (UUIDs normalised to hyphenated lower case), Cosine vectors
normalised on upload, scroll ordered by id (integers before UUIDs) with an
inclusive ``offset``, exact counts, exact top-k query.  Vectors are stored as
float32 numpy arrays, as Qdrant stores them.
"""

from __future__ import annotations

import bisect
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .openapi_server import (
    HTTPError,
    NotModelled,
    OpenAPIDouble,
    Request,
    Response,
    load_spec,
    operation,
)

SPEC_FILE = "qdrant-openapi-v1.19.json"
DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024  # service.max_request_size_mb: 32
UNNAMED = ""  # Qdrant's name for the default (unnamed) vector

HNSW_DEFAULT = {
    "m": 16,
    "ef_construct": 100,
    "full_scan_threshold": 10000,
    "max_indexing_threads": 0,
}
OPTIMIZER_DEFAULT = {
    "deleted_threshold": 0.2,
    "vacuum_min_vector_number": 1000,
    "default_segment_number": 0,
    "max_segment_size": None,
    "memmap_threshold": None,
    "indexing_threshold": 10000,
    "flush_interval_sec": 5,
    "max_optimization_threads": None,
}
WAL_DEFAULT = {"wal_capacity_mb": 32, "wal_segments_ahead": 0}
SIMILARITY = {"Cosine", "Dot"}  # larger score is better; Euclid/Manhattan are distances

PointKey = tuple[int, int]  # (0, integer id) sorts before (1, uuid as int)


def normalize_id(raw: Any) -> int | str:
    """uint64 stays an int; any UUID form becomes hyphenated lower case."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise HTTPError(400, f"Format error in JSON body: invalid point id {raw!r}")
    if isinstance(raw, int):
        if not 0 <= raw < 2**64:
            raise HTTPError(400, f"Format error in JSON body: point id {raw} is not a uint64")
        return raw
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise HTTPError(400, f"Format error in JSON body: Unable to parse UUID: {raw}") from None


def id_key(pid: int | str) -> PointKey:
    return (0, pid) if isinstance(pid, int) else (1, uuid.UUID(pid).int)


@dataclass
class Sparse:
    indices: np.ndarray
    values: np.ndarray

    def to_json(self) -> dict:
        return {"indices": self.indices, "values": self.values}


@dataclass
class Point:
    id: int | str
    vectors: dict[str, np.ndarray | Sparse]
    payload: dict
    version: int


@dataclass
class Collection:
    name: str
    params: dict  # CollectionParams as GET returns them
    dense: dict[str, dict]  # vector name -> VectorParams ("" when unnamed)
    sparse: dict[str, dict]
    named: bool
    extra: dict  # hnsw_config, optimizer_config, wal_config, quantization_config, ...
    payload_schema: dict[str, dict] = field(default_factory=dict)
    points: dict[PointKey, Point] = field(default_factory=dict)
    _order: list[PointKey] | None = None

    def ordered_keys(self) -> list[PointKey]:
        if self._order is None:
            self._order = sorted(self.points)
        return self._order

    def put(self, point: Point) -> None:
        key = id_key(point.id)
        if key not in self.points:
            self._order = None
        self.points[key] = point

    def remove(self, key: PointKey) -> None:
        if self.points.pop(key, None) is not None:
            self._order = None


class QdrantDouble(OpenAPIDouble):
    """In-memory Qdrant speaking the v1.19 REST API.

    ``api_key``: when set, requests need ``api-key: <key>`` or ``Authorization: Bearer <key>``
    (403 otherwise, as Qdrant answers).  ``max_request_bytes``: body cap (default 32 MB).
    """

    error_schema_ref = "#/components/schemas/ErrorResponse"
    WRITE_OPERATIONS = frozenset(
        {
            "upsert_points",
            "delete_points",
            "create_collection",
            "delete_collection",
            "create_field_index",
        }
    )
    READ_OPERATIONS = frozenset(
        {
            "scroll_points",
            "count_points",
            "get_points",
            "get_point",
            "query_points",
            "get_collection",
        }
    )

    def __init__(
        self,
        *,
        api_key: str | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        seed: int = 0,
    ) -> None:
        super().__init__(load_spec(SPEC_FILE), max_body_bytes=max_request_bytes, seed=seed)
        self.api_key = api_key
        self.collections: dict[str, Collection] = {}
        self._op_seq = 0

    # -- vendor hooks -------------------------------------------------------------------

    def error_body(self, status: int, message: str, req: Request) -> Any:
        return {"status": {"error": message}, "time": 0.0, "result": None}

    def authenticate(self, req: Request) -> None:
        if self.api_key is None:
            return
        key = req.headers.get("api-key")
        bearer = req.headers.get("authorization", "")
        if key is None and bearer.lower().startswith("bearer "):
            key = bearer[7:].strip()
        if key is None:
            raise HTTPError(403, "Must provide an API key or an Authorization bearer token")
        if key != self.api_key:
            raise HTTPError(403, "Invalid API key or JWT")

    def too_large(self, req: Request) -> HTTPError:
        return HTTPError(
            400,
            f"JSON payload ({req.content_length} bytes) is larger than allowed "
            f"(limit: {self.max_body_bytes} bytes).",
        )

    def bad_json(self, req: Request, error: str) -> str:
        return f"Format error in JSON body: {error}"

    def describe_problem(self, req: Request, problem: str) -> str:
        return (
            problem if problem.startswith("Format error") else f"Format error in request: {problem}"
        )

    # -- seeding helpers ----------------------------------------------------------------

    def create_collection(self, name: str, **config: Any) -> None:
        """Same as ``PUT /collections/{name}`` with ``config`` as the body."""
        self.call("create_collection", params={"collection_name": name}, body=config)

    def add_points(self, name: str, points: list[dict], *, batch: dict | None = None) -> None:
        """Same as ``PUT /collections/{name}/points`` (REST-shaped points)."""
        body = {"batch": batch} if batch is not None else {"points": points}
        self.call("upsert_points", params={"collection_name": name, "wait": True}, body=body)

    def stored_points(self, name: str) -> dict[int | str, Point]:
        """Stored points by normalised id (vectors as float32 arrays)."""
        with self.lock:
            coll = self.collections[name]
            return {coll.points[k].id: coll.points[k] for k in coll.ordered_keys()}

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def ok(result: Any, started: float | None = None) -> Response:
        took = time.perf_counter() - started if started else 0.0001
        return Response(200, {"result": result, "status": "ok", "time": took})

    def _collection(self, req: Request) -> Collection:
        name = req.params["collection_name"]
        coll = self.collections.get(name)
        if coll is None:
            raise HTTPError(404, f"Not found: Collection `{name}` doesn't exist!")
        return coll

    def _update_result(self, req: Request) -> Response:
        self._op_seq += 1
        status = "completed" if req.params.get("wait") else "acknowledged"
        return self.ok({"operation_id": self._op_seq, "status": status})

    # -- collections ----------------------------------------------------------------------

    @operation("root")
    def root(self, req: Request) -> Response:
        return Response(200, {"title": "qdrant - vector search engine", "version": "1.19.0"})

    @operation("get_collections")
    def get_collections(self, req: Request) -> Response:
        return self.ok({"collections": [{"name": n} for n in sorted(self.collections)]})

    @operation("collection_exists")
    def collection_exists(self, req: Request) -> Response:
        return self.ok({"exists": req.params["collection_name"] in self.collections})

    @operation("create_collection")
    def create_collection_op(self, req: Request) -> Response:
        name = req.params["collection_name"]
        body = req.body or {}
        if not name or "/" in name or len(name) > 255:
            raise HTTPError(
                422,
                f"Validation error in path parameters: [name: invalid collection name {name!r}]",
            )
        if name in self.collections:
            raise HTTPError(409, f"Wrong input: Collection `{name}` already exists!")
        vectors = body.get("vectors", {})
        named = not ("size" in vectors and "distance" in vectors)
        dense = dict(vectors) if named else {UNNAMED: dict(vectors)}
        sparse = dict(body.get("sparse_vectors") or {})
        params: dict[str, Any] = {
            "vectors": vectors,
            "shard_number": body.get("shard_number") or 1,
            "replication_factor": body.get("replication_factor") or 1,
            "write_consistency_factor": body.get("write_consistency_factor") or 1,
            "on_disk_payload": True
            if body.get("on_disk_payload") is None
            else body["on_disk_payload"],
        }
        for key in ("sharding_method", "payload"):
            if body.get(key) is not None:
                params[key] = body[key]
        if sparse:
            params["sparse_vectors"] = sparse
        extra: dict[str, Any] = {
            "hnsw_config": {**HNSW_DEFAULT, **(body.get("hnsw_config") or {})},
            "optimizer_config": {**OPTIMIZER_DEFAULT, **(body.get("optimizers_config") or {})},
            "wal_config": {**WAL_DEFAULT, **(body.get("wal_config") or {})},
        }
        for key in ("quantization_config", "strict_mode_config", "metadata"):
            if body.get(key) is not None:
                extra[key] = body[key]
        self.collections[name] = Collection(name, params, dense, sparse, named, extra)
        return self.ok(True)

    @operation("get_collection")
    def get_collection(self, req: Request) -> Response:
        coll = self._collection(req)
        schema = {}
        for fname, info in coll.payload_schema.items():
            count = sum(1 for p in coll.points.values() if _field_values(p.payload, fname))
            schema[fname] = {**info, "points": count}
        n = len(coll.points)
        return self.ok(
            {
                "status": "green",
                "optimizer_status": "ok",
                "indexed_vectors_count": 0,
                "points_count": n,
                "segments_count": 1,
                "config": {"params": coll.params, **coll.extra},
                "payload_schema": schema,
            }
        )

    @operation("delete_collection")
    def delete_collection(self, req: Request) -> Response:
        return self.ok(self.collections.pop(req.params["collection_name"], None) is not None)

    @operation("create_field_index")
    def create_field_index(self, req: Request) -> Response:
        coll = self._collection(req)
        schema = req.body.get("field_schema")
        if schema is None:
            raise NotModelled("payload index without field_schema (type inference)")
        info: dict[str, Any] = {"data_type": schema if isinstance(schema, str) else schema["type"]}
        if isinstance(schema, dict):
            info["params"] = schema
        coll.payload_schema[req.body["field_name"]] = info
        return self._update_result(req)

    @operation("delete_field_index")
    def delete_field_index(self, req: Request) -> Response:
        self._collection(req).payload_schema.pop(req.params["field_name"], None)
        return self._update_result(req)

    # -- points: writes -------------------------------------------------------------------

    @operation("upsert_points")
    def upsert_points(self, req: Request) -> Response:
        coll = self._collection(req)
        body = req.body
        self._op_seq += 1
        version = self._op_seq
        if "batch" in body:
            points = self._batch_points(coll, body["batch"], version)
        else:
            points = [
                Point(
                    normalize_id(p["id"]),
                    self._point_vectors(coll, p["vector"]),
                    dict(p.get("payload") or {}),
                    version,
                )
                for p in body["points"]
            ]
        mode = body.get("update_mode") or "upsert"
        for point in points:
            exists = id_key(point.id) in coll.points
            if (mode == "insert_only" and exists) or (mode == "update_only" and not exists):
                continue
            coll.put(point)
        status = "completed" if req.params.get("wait") else "acknowledged"
        return self.ok({"operation_id": version, "status": status})

    def _batch_points(self, coll: Collection, batch: dict, version: int) -> list[Point]:
        ids = [normalize_id(i) for i in batch["ids"]]
        vectors, payloads = batch["vectors"], batch.get("payloads") or [None] * len(ids)
        if len(payloads) != len(ids):
            raise HTTPError(400, "Wrong input: number of payloads does not match number of ids")
        if isinstance(vectors, dict):
            per_point: list[dict[str, Any]] = [{} for _ in ids]
            for name, column in vectors.items():
                if len(column) != len(ids):
                    raise HTTPError(
                        400, f"Wrong input: number of vectors `{name}` does not match number of ids"
                    )
                for slot, vec in zip(per_point, column, strict=True):
                    slot[name] = vec
            structs: list[Any] = per_point
        else:
            if len(vectors) != len(ids):
                raise HTTPError(400, "Wrong input: number of vectors does not match number of ids")
            structs = vectors
        return [
            Point(pid, self._point_vectors(coll, vec), dict(payload or {}), version)
            for pid, vec, payload in zip(ids, structs, payloads, strict=True)
        ]

    def _point_vectors(self, coll: Collection, struct: Any) -> dict[str, np.ndarray | Sparse]:
        items: Iterable[tuple[str, Any]]
        if isinstance(struct, dict):
            items = struct.items()
        elif isinstance(struct, list):
            items = [(UNNAMED, struct)]
        else:
            raise HTTPError(
                400,
                "Wrong input: inference objects (Document/Image) are not supported by the double",
            )
        out: dict[str, np.ndarray | Sparse] = {}
        for name, vec in items:
            if name in coll.sparse:
                out[name] = _sparse(vec)
            elif name in coll.dense:
                out[name] = _dense(vec, coll.dense[name])
            else:
                raise HTTPError(400, f"Wrong input: Not existing vector name error: {name}")
        return out

    @operation("delete_points")
    def delete_points(self, req: Request) -> Response:
        coll = self._collection(req)
        if "points" in req.body:
            for raw in req.body["points"]:
                coll.remove(id_key(normalize_id(raw)))
        else:
            flt = req.body["filter"]
            for key in [k for k, p in coll.points.items() if _matches(flt, p)]:
                coll.remove(key)
        return self._update_result(req)

    # -- points: reads --------------------------------------------------------------------

    @operation("get_point")
    def get_point(self, req: Request) -> Response:
        coll = self._collection(req)
        pid = normalize_id(req.params["id"])
        point = coll.points.get(id_key(pid))
        if point is None:
            raise HTTPError(404, f"Not found: No point with id {pid} found")
        return self.ok(_record(coll, point, True, True))

    @operation("get_points")
    def get_points(self, req: Request) -> Response:
        coll = self._collection(req)
        body = req.body
        with_payload = body.get("with_payload", True)
        with_vector = body.get("with_vector", False)
        out = []
        for raw in body["ids"]:
            point = coll.points.get(id_key(normalize_id(raw)))
            if point is not None:
                out.append(_record(coll, point, with_payload, with_vector))
        return self.ok(out)

    @operation("scroll_points")
    def scroll_points(self, req: Request) -> Response:
        started = time.perf_counter()
        coll = self._collection(req)
        body = req.body or {}
        if body.get("order_by") is not None:
            raise NotModelled("order_by")
        limit = body.get("limit") or 10
        with_payload = body.get("with_payload", True)
        with_vector = body.get("with_vector", False)
        flt = body.get("filter")
        keys = coll.ordered_keys()
        start = 0
        if body.get("offset") is not None:
            start = bisect.bisect_left(keys, id_key(normalize_id(body["offset"])))
        page: list[dict] = []
        next_offset = None
        for i in range(start, len(keys)):
            point = coll.points[keys[i]]
            if flt is not None and not _matches(flt, point):
                continue
            if len(page) == limit:
                next_offset = point.id
                break
            page.append(_record(coll, point, with_payload, with_vector))
        return self.ok({"points": page, "next_page_offset": next_offset}, started)

    @operation("count_points")
    def count_points(self, req: Request) -> Response:
        coll = self._collection(req)
        flt = (req.body or {}).get("filter")
        if flt is None:
            return self.ok({"count": len(coll.points)})
        return self.ok({"count": sum(1 for p in coll.points.values() if _matches(flt, p))})

    @operation("query_points")
    def query_points(self, req: Request) -> Response:
        coll = self._collection(req)
        body = req.body or {}
        if body.get("prefetch"):
            raise NotModelled("prefetch")
        limit, offset = body.get("limit") or 10, body.get("offset") or 0
        with_payload = body.get("with_payload", False)
        with_vector = body.get("with_vector", False)
        flt = body.get("filter")
        points_in_order = (coll.points[k] for k in coll.ordered_keys())
        candidates = [p for p in points_in_order if flt is None or _matches(flt, p)]
        query = body.get("query")
        if isinstance(query, dict) and "nearest" in query:
            query = query["nearest"]
        if query is None:
            scored = [(0.0, p) for p in candidates]
        else:
            using = body.get("using") or UNNAMED
            scored = self._score(coll, using, query, candidates)
            threshold = body.get("score_threshold")
            if threshold is not None:
                better = coll.sparse.get(using) is not None or _distance(coll, using) in SIMILARITY
                scored = [
                    (s, p) for s, p in scored if (s >= threshold if better else s <= threshold)
                ]
        points = [
            {"version": p.version, "score": float(s), **_record(coll, p, with_payload, with_vector)}
            for s, p in scored[offset : offset + limit]
        ]
        return self.ok({"points": points})

    def _score(
        self, coll: Collection, using: str, query: Any, candidates: list[Point]
    ) -> list[tuple[float, Point]]:
        if using not in coll.dense and using not in coll.sparse:
            raise HTTPError(400, f"Wrong input: Not existing vector name error: {using}")
        if isinstance(query, (int, str)):  # query by the vector of a stored point
            ref = coll.points.get(id_key(normalize_id(query)))
            if ref is None or using not in ref.vectors:
                raise HTTPError(404, f"Not found: No point with id {query} found")
            query = ref.vectors[using]
            candidates = [p for p in candidates if p.id != ref.id]
        elif isinstance(query, dict) and "indices" in query:
            query = _sparse(query)
        elif isinstance(query, list):
            if using in coll.sparse:
                raise HTTPError(
                    400, f"Wrong input: Vector `{using}` is sparse, a dense query was given"
                )
            query = _dense(query, coll.dense[using])
        else:
            raise NotModelled("this query type")
        having = [p for p in candidates if using in p.vectors]
        if not having:
            return []
        if isinstance(query, Sparse):
            scores = np.array([_sparse_dot(query, p.vectors[using]) for p in having])  # type: ignore[arg-type,unused-ignore]
            order = np.argsort(-scores, kind="stable")
        else:
            matrix = np.stack([p.vectors[using] for p in having]).astype(np.float64)  # type: ignore[misc]
            q = np.asarray(query, dtype=np.float64)
            distance = _distance(coll, using)
            if distance in SIMILARITY:
                scores = matrix @ q
                order = np.argsort(-scores, kind="stable")
            else:
                diff = matrix - q
                scores = (
                    np.sqrt((diff**2).sum(axis=1))
                    if distance == "Euclid"
                    else np.abs(diff).sum(axis=1)
                )
                order = np.argsort(scores, kind="stable")
        return [(float(scores[i]), having[i]) for i in order]


# -- vectors ------------------------------------------------------------------------------


def _distance(coll: Collection, name: str) -> str:
    return coll.dense[name]["distance"]


def _dense(vec: Any, params: dict) -> np.ndarray:
    if isinstance(vec, dict):
        raise HTTPError(400, "Wrong input: expected a dense vector, got a sparse one")
    arr = np.asarray(vec, dtype=np.float32)
    multi = params.get("multivector_config") is not None
    if arr.ndim != (2 if multi else 1):
        raise HTTPError(
            400,
            "Wrong input: multivector given for a single-vector config"
            if arr.ndim == 2
            else "Wrong input: bad vector shape",
        )
    dim = arr.shape[-1] if arr.size else 0
    if dim != params["size"]:
        raise HTTPError(
            400, f"Wrong input: Vector dimension error: expected dim: {params['size']}, got {dim}"
        )
    if params["distance"] == "Cosine":  # Qdrant normalises on upload
        norms = np.linalg.norm(arr, axis=-1, keepdims=True)
        arr = np.divide(arr, norms, out=arr.copy(), where=norms > 0)
    return arr


def _sparse(vec: Any) -> Sparse:
    if not isinstance(vec, dict):
        raise HTTPError(400, "Wrong input: expected a sparse vector {indices, values}")
    indices, values = vec["indices"], vec["values"]
    if len(indices) != len(values):
        raise HTTPError(
            400, "Wrong input: Sparse vector indices and values must have the same length"
        )
    if len(set(indices)) != len(indices):
        raise HTTPError(400, "Wrong input: Sparse vector indices must be unique")
    return Sparse(np.asarray(indices, dtype=np.uint32), np.asarray(values, dtype=np.float32))


def _sparse_dot(a: Sparse, b: Sparse) -> float:
    lookup = dict(zip(a.indices.tolist(), a.values.tolist(), strict=True))
    return sum(
        lookup.get(i, 0.0) * v for i, v in zip(b.indices.tolist(), b.values.tolist(), strict=True)
    )


def _vector_json(v: np.ndarray | Sparse) -> Any:
    return v.to_json() if isinstance(v, Sparse) else v


def _record(coll: Collection, p: Point, with_payload: Any, with_vector: Any) -> dict:
    return {
        "id": p.id,
        "payload": _select_payload(p.payload, with_payload),
        "vector": _select_vector(coll, p, with_vector),
    }


def _select_payload(payload: dict, selector: Any) -> dict | None:
    if selector is None or selector is True:
        return payload
    if selector is False:
        return None
    if isinstance(selector, list):
        return {k: v for k, v in payload.items() if k in selector}
    if "include" in selector:
        return {k: v for k, v in payload.items() if k in selector["include"]}
    return {k: v for k, v in payload.items() if k not in selector["exclude"]}


def _select_vector(coll: Collection, p: Point, selector: Any) -> Any:
    if not selector:
        return None
    names = list(p.vectors) if selector is True else [n for n in selector if n in p.vectors]
    if not coll.named and selector is True:
        return _vector_json(p.vectors[UNNAMED]) if UNNAMED in p.vectors else None
    return {n: _vector_json(p.vectors[n]) for n in names}


# -- filters -----------------------------------------------------------------------------


def _as_list(x: Any) -> list:
    return [] if x is None else x if isinstance(x, list) else [x]


def _matches(flt: dict, p: Point) -> bool:
    if any(not _condition(c, p) for c in _as_list(flt.get("must"))):
        return False
    if any(_condition(c, p) for c in _as_list(flt.get("must_not"))):
        return False
    should = _as_list(flt.get("should"))
    if should and not any(_condition(c, p) for c in should):
        return False
    min_should = flt.get("min_should")
    if min_should:
        hits = sum(1 for c in min_should["conditions"] if _condition(c, p))
        if hits < min_should["min_count"]:
            return False
    return True


def _field_values(payload: Any, key: str) -> list:
    """All values at a dotted payload path; arrays are flattened (``a[].b`` or ``a.b``)."""
    nodes = [payload]
    for part in key.split("."):
        part = part.removesuffix("[]")
        nxt = []
        for node in nodes:
            if isinstance(node, dict) and part in node:
                value = node[part]
                nxt.extend(value if isinstance(value, list) else [value])
            elif isinstance(node, list):
                nxt.extend(n[part] for n in node if isinstance(n, dict) and part in n)
        nodes = nxt
    return [v for node in nodes for v in (node if isinstance(node, list) else [node])]


def _same(a: Any, b: Any) -> bool:
    return a == b and type(a) is type(b)


def _condition(c: dict, p: Point) -> bool:
    if "has_id" in c:
        return id_key(p.id) in {id_key(normalize_id(i)) for i in c["has_id"]}
    if "has_vector" in c:
        return c["has_vector"] in p.vectors
    if "is_empty" in c:
        return not [v for v in _field_values(p.payload, c["is_empty"]["key"]) if v is not None]
    if "is_null" in c:
        return any(v is None for v in _field_values(p.payload, c["is_null"]["key"]))
    if "nested" in c:
        inner = c["nested"]
        items = _field_values(p.payload, inner["key"])
        return any(
            _matches(inner["filter"], Point(p.id, {}, i, 0)) for i in items if isinstance(i, dict)
        )
    if {"must", "should", "must_not", "min_should"} & c.keys():
        return _matches(c, p)
    if "key" not in c:
        raise NotModelled(f"filter condition {sorted(c)}")
    values = _field_values(p.payload, c["key"])
    if c.get("is_empty") is not None or c.get("is_null") is not None:
        raise NotModelled("is_empty/is_null inside a field condition")
    if c.get("match") is not None:
        m = c["match"]
        if "value" in m:
            return any(_same(v, m["value"]) for v in values)
        if "any" in m:
            return any(_same(v, w) for v in values for w in m["any"])
        if "except" in m:
            return not values or any(not any(_same(v, w) for w in m["except"]) for v in values)
        if "text" in m:
            return any(isinstance(v, str) and m["text"] in v for v in values)
        if "phrase" in m:
            return any(isinstance(v, str) and m["phrase"] in v for v in values)
        if "prefix" in m:
            return any(isinstance(v, str) and v.startswith(m["prefix"]) for v in values)
        raise NotModelled(f"match {sorted(m)}")
    if c.get("range") is not None:
        r = c["range"]
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return any(
            (r.get("gt") is None or v > r["gt"])
            and (r.get("gte") is None or v >= r["gte"])
            and (r.get("lt") is None or v < r["lt"])
            and (r.get("lte") is None or v <= r["lte"])
            for v in nums
        )
    if c.get("values_count") is not None:
        r, n = c["values_count"], len(values)
        return (
            (r.get("gt") is None or n > r["gt"])
            and (r.get("gte") is None or n >= r["gte"])
            and (r.get("lt") is None or n < r["lt"])
            and (r.get("lte") is None or n <= r["lte"])
        )
    raise NotModelled(f"field condition {sorted(c)}")
