"""Weaviate REST test double (spec: weaviate-openapi-v3.json, the OpenAPI 3 conversion).

Semantics: docs/provider-notes.md section 3 — class/property naming rules, tenants
with activity status, UUID-ordered ``after`` cursor, batch writes that report
per-object errors inside a 200, GraphQL ``Aggregate { C { meta { count } } }``.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import re
import time
import uuid
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

SPEC_FILE = "weaviate-openapi-v3.json"
VERSION = "1.40.0"
# Deviation: the spec declares ``Vector`` as ``type: object``, but Weaviate (and its
# clients) send named vectors as arrays (or arrays of arrays for multi-vectors).
SPEC_PATCHES = {
    "/components/schemas/Vector": {
        "anyOf": [
            {"type": "array", "items": {"type": "number", "format": "float"}},
            {
                "type": "array",
                "items": {"type": "array", "items": {"type": "number", "format": "float"}},
            },
            {"type": "object"},
        ]
    }
}
# go-openapi's strfmt UUID: hyphenated or 32 hex digits.
UUID_RE = re.compile(
    r"(?i)^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$"
)
CLASS_RE = re.compile(r"^[A-Z][_0-9A-Za-z]*$")
PROPERTY_RE = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,230}$")
TENANT_RE = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")
RESERVED_PROPERTIES = {"_additional", "_id", "id"}
DISTANCES = {"cosine", "dot", "l2-squared", "hamming", "manhattan"}
PRIMITIVES = {
    "text", "string", "int", "number", "boolean", "date", "uuid", "blob",
    "geoCoordinates", "phoneNumber", "object",
}  # fmt: skip
QUERY_MAXIMUM_RESULTS = 10_000
AGGREGATE_COUNT = re.compile(
    r"^\s*(?:query\s*\w*\s*)?\{\s*Aggregate\s*\{\s*(\w+)\s*"
    r"(?:\(\s*tenant\s*:\s*\"([^\"]*)\"\s*\))?\s*\{\s*meta\s*\{\s*count\s*\}\s*\}\s*\}\s*\}\s*$"
)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class WObject:
    id: str
    properties: dict
    vector: np.ndarray | None
    vectors: dict[str, np.ndarray]
    tenant: str | None
    created: int
    updated: int


@dataclass
class WClass:
    name: str
    definition: dict  # the Class object as GET /schema returns it
    properties: dict[str, dict]
    named_vectors: list[str]  # vectorConfig names ([] = one unnamed vector)
    multi_tenant: bool
    tenants: dict[str, str] = field(default_factory=dict)  # name -> ACTIVE | INACTIVE
    objects: dict[str, dict[str, WObject]] = field(
        default_factory=dict
    )  # tenant ("" if none) -> id -> obj
    dims: dict[str, int] = field(default_factory=dict)  # vector name ("" unnamed) -> dimension


class WeaviateDouble(OpenAPIDouble):
    """In-memory Weaviate (REST ``/v1``).

    ``api_key``: when set, requests need ``Authorization: Bearer <key>`` (401 otherwise).
    ``auto_schema``: infer unknown properties on write (Weaviate's default; off here so
    tests see schema mistakes).  ``fail_objects(ids, ...)`` injects per-object batch errors.
    """

    error_schema_ref = "#/components/schemas/ErrorResponse"
    WRITE_OPERATIONS = frozenset(
        {
            "batch.objects.create",
            "objects.class.put",
            "objects.class.delete",
            "schema.objects.create",
            "tenants.create",
        }
    )
    READ_OPERATIONS = frozenset(
        {"objects.list", "objects.class.get", "graphql.post", "aggregate", "schema.dump"}
    )

    def __init__(
        self, *, api_key: str | None = None, auto_schema: bool = False, seed: int = 0
    ) -> None:
        super().__init__(load_spec(SPEC_FILE, SPEC_PATCHES, {"uuid": _is_uuid}), seed=seed)
        self.api_key = api_key
        self.auto_schema = auto_schema
        self.classes: dict[str, WClass] = {}
        self._object_failures: dict[str, list[Any]] = {}  # id -> [remaining, message]

    # -- vendor hooks -------------------------------------------------------------------

    def error_body(self, status: int, message: str, req: Request) -> Any:
        return {"error": [{"message": message}]}

    def authenticate(self, req: Request) -> None:
        if self.api_key is None:
            return
        auth = req.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or auth[7:].strip() != self.api_key:
            raise HTTPError(
                401, "anonymous access not enabled, please provide an auth scheme such as OIDC"
            )

    # -- seeding and fault helpers ------------------------------------------------------

    def create_class(self, definition: dict) -> dict:
        """Same as ``POST /v1/schema``."""
        return self.call("schema.objects.create", body=definition).body

    def add_tenants(self, class_name: str, names: list[str], status: str = "ACTIVE") -> None:
        body = [{"name": n, "activityStatus": status} for n in names]
        self.call("tenants.create", params={"className": class_name}, body=body)

    def add_objects(self, objects: list[dict]) -> list[dict]:
        """Same as ``POST /v1/batch/objects``; returns the per-object results."""
        return self.call("batch.objects.create", body={"objects": objects}).body

    def stored_objects(self, class_name: str, tenant: str | None = None) -> dict[str, WObject]:
        with self.lock:
            return dict(self.classes[_class_name(class_name)].objects.get(tenant or "", {}))

    def fail_objects(
        self, ids: list[str], message: str = "injected failure", times: int = 1
    ) -> None:
        """The next ``times`` batch writes of each id fail inside the 200 response."""
        with self.lock:
            for i in ids:
                self._object_failures[str(uuid.UUID(i))] = [times, message]

    # -- well-known and meta --------------------------------------------------------------

    @operation("weaviate.wellknown.readiness", "weaviate.wellknown.liveness")
    def well_known(self, req: Request) -> Response:
        return Response(200)

    @operation("meta.get")
    def meta(self, req: Request) -> Response:
        return Response(200, {"hostname": "http://127.0.0.1", "version": VERSION, "modules": {}})

    # -- schema ---------------------------------------------------------------------------

    def _class(self, name: str) -> WClass:
        cls = self.classes.get(_class_name(name))
        if cls is None:
            raise HTTPError(404, f"class {name!r} not found")
        return cls

    @operation("schema.dump")
    def schema_dump(self, req: Request) -> Response:
        return Response(200, {"classes": [c.definition for c in self.classes.values()]})

    @operation("schema.objects.get")
    def schema_get(self, req: Request) -> Response:
        return Response(200, self._class(req.params["className"]).definition)

    @operation("schema.objects.delete")
    def schema_delete(self, req: Request) -> Response:
        self.classes.pop(_class_name(req.params["className"]), None)
        return Response(200)

    @operation("schema.objects.create")
    def schema_create(self, req: Request) -> Response:
        body = dict(req.body)
        name = _class_name(body.get("class", ""))
        if not CLASS_RE.match(name):
            raise HTTPError(422, f"'{body.get('class', '')}' is not a valid class name")
        if name.lower() in {c.lower() for c in self.classes}:
            raise HTTPError(422, f'class name "{name}" already exists')
        props: dict[str, dict] = {}
        for prop in body.get("properties") or []:
            p = _property(prop)
            if p["name"] in props:
                raise HTTPError(422, f"class '{name}' has duplicate property '{p['name']}'")
            props[p["name"]] = p
        named = list(body.get("vectorConfig") or {})
        for vname, vcfg in (body.get("vectorConfig") or {}).items():
            cfg = dict(vcfg.get("vectorIndexConfig") or {})
            cfg.setdefault("distance", "cosine")
            _check_distance(cfg["distance"])
            body["vectorConfig"][vname] = {
                "vectorizer": {"none": {}},
                "vectorIndexType": "hnsw",
                **vcfg,
                "vectorIndexConfig": cfg,
            }
        if not named:
            cfg = dict(body.get("vectorIndexConfig") or {})
            cfg.setdefault("distance", "cosine")
            _check_distance(cfg["distance"])
            body["vectorIndexConfig"] = cfg
            body.setdefault("vectorIndexType", "hnsw")
            body.setdefault("vectorizer", "none")
        mt = {"enabled": False, "autoTenantCreation": False, "autoTenantActivation": False}
        mt.update(body.get("multiTenancyConfig") or {})
        body.update({"class": name, "properties": list(props.values()), "multiTenancyConfig": mt})
        body.setdefault("replicationConfig", {"factor": 1})
        self.classes[name] = WClass(name, body, props, named, bool(mt["enabled"]))
        return Response(200, body)

    # -- tenants --------------------------------------------------------------------------

    def _mt_class(self, req: Request) -> WClass:
        cls = self._class(req.params["className"])
        if not cls.multi_tenant:
            raise HTTPError(422, f"multi-tenancy is not enabled for class {cls.name!r}")
        return cls

    @operation("tenants.get")
    def tenants_get(self, req: Request) -> Response:
        cls = self._mt_class(req)
        return Response(
            200, [{"name": n, "activityStatus": s} for n, s in sorted(cls.tenants.items())]
        )

    @operation("tenants.get.one")
    def tenant_get(self, req: Request) -> Response:
        cls = self._mt_class(req)
        name = req.params["tenantName"]
        if name not in cls.tenants:
            raise HTTPError(404, f"tenant {name!r} not found")
        return Response(200, {"name": name, "activityStatus": cls.tenants[name]})

    @operation("tenants.create", "tenants.update")
    def tenants_put(self, req: Request) -> Response:
        cls = self._mt_class(req)
        out = []
        for t in req.body:
            name = t.get("name", "")
            if not TENANT_RE.match(name):
                raise HTTPError(
                    422, f"tenant name {name!r} is invalid: must match {TENANT_RE.pattern}"
                )
            raw = t.get("activityStatus") or "ACTIVE"
            status = {"HOT": "ACTIVE", "COLD": "INACTIVE"}.get(raw, raw)
            if status not in ("ACTIVE", "INACTIVE"):
                raise HTTPError(422, f"invalid activity status {status!r} for tenant {name!r}")
            if req.operation == "tenants.update" and name not in cls.tenants:
                raise HTTPError(422, f'tenant not found: "{name}"')
            cls.tenants[name] = status
            out.append({"name": name, "activityStatus": status})
        return Response(200, out)

    @operation("tenants.delete")
    def tenants_delete(self, req: Request) -> Response:
        cls = self._mt_class(req)
        for name in req.body:
            cls.tenants.pop(name, None)
            cls.objects.pop(name, None)
        return Response(200)

    def _space(self, cls: WClass, tenant: str | None) -> dict[str, WObject]:
        """The objects of ``cls`` visible under ``tenant``; raises Weaviate's 422s."""
        problem = _tenant_problem(cls, tenant)
        if problem:
            raise HTTPError(422, problem)
        return cls.objects.setdefault(tenant or "", {})

    # -- objects --------------------------------------------------------------------------

    @operation("objects.list")
    def objects_list(self, req: Request) -> Response:
        p = req.params
        after = p.get("after")
        if after is not None and (p.get("offset") or p.get("sort") is not None):
            raise HTTPError(422, "'after' parameter cannot be combined with 'offset' or 'sort'")
        limit = p.get("limit", 10)
        if limit < 0 or limit + (p.get("offset") or 0) > QUERY_MAXIMUM_RESULTS:
            raise HTTPError(
                422,
                f"query maximum results exceeded: limit must be at most {QUERY_MAXIMUM_RESULTS}",
            )
        if p.get("class") is None:
            if after is not None:
                raise HTTPError(422, "'after' parameter requires the 'class' parameter")
            return Response(200, {"objects": [], "totalResults": 0})
        cls = self._class(p["class"])
        if p.get("sort") is not None:
            raise NotModelled("sort on objects.list")
        space = self._space(cls, p.get("tenant"))
        ids = sorted(space)
        if after:
            try:
                cursor = str(uuid.UUID(after))
            except ValueError:
                raise HTTPError(422, f"'after' must be an object UUID, got {after!r}") from None
            ids = ids[bisect.bisect_right(ids, cursor) :]
        else:
            ids = ids[p.get("offset") or 0 :]
        include_vector = "vector" in (p.get("include") or "").split(",")
        objects = [_object_json(cls, space[i], include_vector) for i in ids[:limit]]
        return Response(200, {"objects": objects, "totalResults": len(objects)})

    @operation("objects.class.get")
    def object_get(self, req: Request) -> Response:
        cls = self._class(req.params["className"])
        obj = self._space(cls, req.params.get("tenant")).get(str(uuid.UUID(req.params["id"])))
        if obj is None:
            raise HTTPError(404, "object not found")
        include_vector = "vector" in (req.params.get("include") or "").split(",")
        return Response(200, _object_json(cls, obj, include_vector))

    @operation("objects.class.delete")
    def object_delete(self, req: Request) -> Response:
        cls = self._class(req.params["className"])
        space = self._space(cls, req.params.get("tenant"))
        if space.pop(str(uuid.UUID(req.params["id"])), None) is None:
            raise HTTPError(404, "object not found")
        return Response(204)

    @operation("objects.class.put")
    def object_put(self, req: Request) -> Response:
        cls = self._class(req.params["className"])
        oid = str(uuid.UUID(req.params["id"]))
        body = dict(req.body)
        if body.get("id") is not None and str(uuid.UUID(body["id"])) != oid:
            raise HTTPError(422, "invalid update: field 'id' is immutable")
        if body.get("class") is not None and _class_name(body["class"]) != cls.name:
            raise HTTPError(422, "invalid update: field 'class' is immutable")
        space = self._space(cls, body.get("tenant"))
        if oid not in space:
            raise HTTPError(404, "object not found")
        obj, problem = self._build(cls, {**body, "id": oid}, space.get(oid))
        if problem:
            raise HTTPError(422, problem)
        space[oid] = obj  # type: ignore[assignment]
        return Response(200, _object_json(cls, obj, True))  # type: ignore[arg-type]

    # -- batch ----------------------------------------------------------------------------

    @operation("batch.objects.create")
    def batch_create(self, req: Request) -> Response:
        results = []
        for raw in req.body.get("objects") or []:
            item = dict(raw)
            item["id"] = str(uuid.UUID(item["id"])) if item.get("id") else str(uuid.uuid4())
            problem = self._batch_one(item)
            result: dict[str, Any]
            if problem is None:
                result = {"status": "SUCCESS"}
            else:
                result = {"status": "FAILED", "errors": {"error": [{"message": problem}]}}
            echo = {
                k: item[k]
                for k in ("class", "id", "properties", "tenant")
                if item.get(k) is not None
            }
            results.append({**echo, "result": result})
        return Response(200, results)

    def _batch_one(self, item: dict) -> str | None:
        failure = self._object_failures.get(item["id"])
        if failure is not None:
            failure[0] -= 1
            if failure[0] <= 0:
                del self._object_failures[item["id"]]
            return failure[1]
        cls = self.classes.get(_class_name(item.get("class") or ""))
        if cls is None:
            return f"class {item.get('class')!r} not found in the schema"
        problem = _tenant_problem(cls, item.get("tenant"))
        if problem:
            return problem
        space = cls.objects.setdefault(item.get("tenant") or "", {})
        obj, problem = self._build(cls, item, space.get(item["id"]))
        if problem:
            return problem
        space[item["id"]] = obj  # type: ignore[assignment]
        return None

    def _build(
        self, cls: WClass, item: dict, old: WObject | None
    ) -> tuple[WObject | None, str | None]:
        """Validates one object against its class; returns (object, None) or (None, message)."""
        props = dict(item.get("properties") or {})
        for key, value in list(props.items()):
            if value is None:
                del props[key]
                continue
            prop = cls.properties.get(key)
            if prop is None:
                if not self.auto_schema:
                    return None, (
                        f"no such prop with name '{key}' found in class '{cls.name}' "
                        "in the schema. "
                        "Check your schema files for which properties in this class are available"
                    )
                prop = _property({"name": key, "dataType": [_infer_type(value)]})
                cls.properties[key] = prop
                cls.definition["properties"].append(prop)
            problem = _check_value(prop["dataType"][0], value)
            if problem:
                return (
                    None,
                    f"invalid {prop['dataType'][0]} property '{key}' "
                    f"on class '{cls.name}': {problem}",
                )
            if prop["dataType"][0] in ("number", "number[]"):
                props[key] = [float(v) for v in value] if isinstance(value, list) else float(value)
        vector: np.ndarray | None = None
        vectors: dict[str, np.ndarray] = {}
        if cls.named_vectors:
            if item.get("vector") is not None:
                return (
                    None,
                    f"class {cls.name} has named vectors {cls.named_vectors}; "
                    "send 'vectors' instead of 'vector'",
                )
            for name, vec in (item.get("vectors") or {}).items():
                if name not in cls.named_vectors:
                    return None, f"vector {name!r} is not configured for class {cls.name}"
                arr, problem = _vector(cls, name, vec)
                if arr is None:
                    return None, problem
                vectors[name] = arr
        else:
            if item.get("vectors"):
                return None, f"class {cls.name} has no named vectors; send 'vector'"
            if item.get("vector") is not None:
                vector, problem = _vector(cls, "", item["vector"])
                if problem:
                    return None, problem
        now = _now_ms()
        created = old.created if old is not None else now
        return WObject(item["id"], props, vector, vectors, item.get("tenant"), created, now), None

    # -- counting -------------------------------------------------------------------------

    @operation("graphql.post")
    def graphql(self, req: Request) -> Response:
        m = AGGREGATE_COUNT.match(req.body.get("query") or "")
        if m is None:
            raise NotModelled(
                "GraphQL other than `{ Aggregate { C(tenant: ...) { meta { count } } } }`"
            )
        name, tenant = m.group(1), m.group(2)
        cls = self.classes.get(name)
        if cls is None:
            return Response(
                200,
                {
                    "errors": [
                        {"message": f'Cannot query field "{name}" on type "AggregateObjectsObj".'}
                    ]
                },
            )
        problem = _tenant_problem(cls, tenant)
        if problem:
            return Response(200, {"errors": [{"message": problem, "path": ["Aggregate", name]}]})
        count = len(cls.objects.get(tenant or "", {}))
        return Response(200, {"data": {"Aggregate": {name: [{"meta": {"count": count}}]}}})

    @operation("aggregate")
    def aggregate(self, req: Request) -> Response:
        cls = self._class(req.params["collection"])
        body = req.body or {}
        if body.get("where") is not None or body.get("groupBy") is not None:
            raise NotModelled("aggregate with where/groupBy")
        started = time.perf_counter()
        count = len(self._space(cls, body.get("tenant")))
        return Response(
            200, {"count": count, "tookMs": int((time.perf_counter() - started) * 1000)}
        )


# -- helpers -----------------------------------------------------------------------------


def _class_name(name: str) -> str:
    """Weaviate upper-cases the first letter of class names."""
    return name[:1].upper() + name[1:]


def _check_distance(distance: str) -> None:
    if distance not in DISTANCES:
        raise HTTPError(422, f"invalid distance {distance!r}: must be one of {sorted(DISTANCES)}")


def _property(prop: dict) -> dict:
    name = prop.get("name") or ""
    name = name[:1].lower() + name[1:]  # an initial capital is lower-cased
    if not PROPERTY_RE.match(name):
        raise HTTPError(
            422,
            f"'{name}' is not a valid property name. "
            "Property names in Weaviate are restricted to valid "
            f"GraphQL names, which must be “/{PROPERTY_RE.pattern[1:-1]}/”.",
        )
    if name in RESERVED_PROPERTIES:
        raise HTTPError(422, f"'{name}' is a reserved property name")
    dtypes = prop.get("dataType") or []
    if not dtypes:
        raise HTTPError(422, f"property '{name}' must have a dataType")
    base = dtypes[0].removesuffix("[]")
    if base not in PRIMITIVES and not CLASS_RE.match(dtypes[0]):
        raise HTTPError(422, f"property '{name}': invalid dataType {dtypes[0]!r}")
    out = {"name": name, **{k: v for k, v in prop.items() if k != "name"}}
    out.setdefault("indexFilterable", True)
    out.setdefault("indexSearchable", base in ("text", "string"))
    if base in ("text", "string"):
        out.setdefault("tokenization", "word")
    return out


def _tenant_problem(cls: WClass, tenant: str | None) -> str | None:
    if not cls.multi_tenant:
        if tenant:
            return f"class {cls.name} has multi-tenancy disabled, but request was with tenant"
        return None
    if not tenant:
        return f"class {cls.name} has multi-tenancy enabled, but request was without tenant"
    if tenant not in cls.tenants:
        return f'tenant not found: "{tenant}"'
    if cls.tenants[tenant] != "ACTIVE":
        return f'tenant not active: "{tenant}"'
    return None


def _vector(cls: WClass, name: str, vec: Any) -> tuple[np.ndarray | None, str | None]:
    if not isinstance(vec, list):
        return None, f"vector {name or 'default'} must be an array of numbers"
    arr = np.asarray(vec, dtype=np.float32)
    if arr.ndim not in (1, 2) or arr.size == 0:
        return None, f"vector {name or 'default'} has an invalid shape"
    dim = arr.shape[-1]
    known = cls.dims.setdefault(name, dim)  # the first vector fixes the index dimension
    if dim != known:
        return None, (
            f"insert to vector index: new node has a vector with length {dim}. "
            f"Existing nodes have vectors with length {known}"
        )
    return arr, None


def _infer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        inner = _infer_type(value[0]) if value else "text"
        return inner + "[]" if not inner.endswith("[]") else inner
    return "text"


def _is_date(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        dt.datetime.fromisoformat(v)
    except ValueError:
        return False
    return True


def _is_uuid(v: Any) -> bool:
    return isinstance(v, str) and bool(UUID_RE.match(v))


def _is_blob(v: Any) -> bool:
    try:
        base64.b64decode(v, validate=True)
    except (ValueError, TypeError):
        return False
    return isinstance(v, str)


_SCALAR_CHECKS = {
    "text": lambda v: isinstance(v, str),
    "string": lambda v: isinstance(v, str),
    "int": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "date": _is_date,
    "uuid": _is_uuid,
    "blob": _is_blob,
    "object": lambda v: isinstance(v, dict),
    "geoCoordinates": lambda v: isinstance(v, dict) and "latitude" in v and "longitude" in v,
    "phoneNumber": lambda v: isinstance(v, dict) and "input" in v,
}


def _check_value(dtype: str, value: Any) -> str | None:
    base, is_array = dtype.removesuffix("[]"), dtype.endswith("[]")
    check = _SCALAR_CHECKS.get(base)
    if check is None:  # cross-reference: a list of beacons
        return None if isinstance(value, list) else "cross-references must be a list of beacons"
    if is_array:
        if not isinstance(value, list):
            return f"not an array, but {type(value).__name__}"
        bad = next((v for v in value if not check(v)), None)
        return None if bad is None else f"array element {bad!r} is not a valid {base}"
    return None if check(value) else f"{value!r} is not a valid {base}"


def _object_json(cls: WClass, o: WObject, include_vector: bool) -> dict:
    out: dict[str, Any] = {
        "class": cls.name,
        "id": o.id,
        "properties": o.properties,
        "creationTimeUnix": o.created,
        "lastUpdateTimeUnix": o.updated,
    }
    if o.tenant:
        out["tenant"] = o.tenant
    if include_vector:
        if cls.named_vectors:
            out["vectors"] = o.vectors
        elif o.vector is not None:
            out["vector"] = o.vector
    return out
