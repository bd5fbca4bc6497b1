"""The ``weaviate`` provider: Weaviate over its REST API (``/v1``), with httpx only.

URLs
----
- ``weaviate://host:8080`` — plain HTTP (the port defaults to 8080);
  ``weaviate+https://host`` (or ``tls=True``) uses HTTPS (the port defaults to 443).
  A path after the host is kept as a prefix (``weaviate+https://host/proxy`` ->
  ``https://host/proxy/v1``). Credentials in the URL are refused.
- The API key comes from ``api_key`` or ``$WEAVIATE_API_KEY`` and is sent as
  ``Authorization: Bearer <key>``; it never appears in ``endpoint``, ``repr``, logs or
  error messages.

Options: ``timeout`` (seconds per request, default 60; connecting: at most 10),
``max_connections`` (pool size, default 32), ``consistency_level`` (``ONE``, ``QUORUM``
or ``ALL`` for writes and fetches; default: the server's), ``multi_tenancy`` (see
below), ``properties`` (typed metadata properties, see below), ``vector_index_config``
(a mapping merged into the ``vectorIndexConfig`` of every vector of classes created
here, e.g. ``{"skipDefaultQuantization": True}``).

Mapping
-------
- **index = class (collection).** A vectra index name that is a valid class name
  (``^[A-Z][_0-9A-Za-z]*$``) is used as is. Any other name is mapped: every character
  outside ``[_0-9A-Za-z]`` becomes ``_`` + two lower-case hex digits per UTF-8 byte,
  then the first letter is capitalised, or ``V`` is prepended when the result does not
  start with a letter (``products`` -> ``Products``, ``my-index`` -> ``My_2dindex``,
  ``9lives`` -> ``V9lives``). Classes created here record the vectra index name in their
  ``description`` (``vectra-io:{json layout}``), and ``list_indexes`` shows that name, so
  names round-trip exactly. Two vectra names that map to one class cannot both exist: the
  second is refused (``IncompatibleIndexError``), never merged. Classes not created by
  vectra-io are listed under their class name.
- **namespace = tenant** of a multi-tenant class. The default namespace ``""`` is the
  tenant ``__default__``. A namespace that is a valid tenant name
  (``[A-Za-z0-9_-]{1,64}``), other than ``__default__`` and not starting with ``__vx_``,
  is the tenant name as is; any other namespace becomes ``__vx_`` + its UTF-8 bytes with
  every byte outside ``[A-Za-z0-9-]`` written as ``_`` + two hex digits (``"a b"`` ->
  ``__vx_a_20b``), at most 64 characters (longer namespaces are refused). Only ACTIVE
  tenants are listed by ``list_namespaces``; the others are skipped with a WARNING and
  reported in ``provider.skipped_tenants[index]`` (name, status, reason). A class without
  multi-tenancy has only the default namespace. Tenants are created (ACTIVE) on the first
  upsert into their namespace; writing into an INACTIVE/OFFLOADED tenant is refused.
- **multi-tenancy of classes created here.** ``create_index`` does not know the
  namespaces to come and Weaviate cannot enable multi-tenancy later, so classes are
  created multi-tenant (``multiTenancyConfig.enabled``, no auto-creation/activation).
  ``multi_tenancy=False`` creates single-tenant classes (default namespace only);
  without the option, an index whose ``raw_config`` is a Weaviate class definition
  keeps that class's setting.
- **ids.** Weaviate ids are UUIDs. A canonical (lower-case, hyphenated) UUID is used as
  is; any other id (strings, uint64 numbers, other UUID spellings) is stored under
  ``uuid5(VECTRA_ID_NAMESPACE, id)`` with the original id in the text property
  ``_vectra_id`` (:mod:`vectra_io.ids`, the same mapping as Qdrant). Scans and fetches
  return the original id. The class layout records the vectra ``id_type``.
- **metadata.** The exact JSON text of a record's metadata is stored in the text property
  ``_vectra_metadata`` (not indexed); null metadata is an absent property. This is the
  only representation that round-trips JSON exactly (nulls, nested objects, mixed lists,
  empty objects, integers beyond int64/2**53, any key name): Weaviate drops null
  properties, needs nested schemas declared up front, refuses most key names and, with
  auto-schema off, every undeclared property. Hence ``nested_metadata`` is declared.
- **typed properties (for filtering inside Weaviate).** ``properties={"Title": "text",
  "year": "int", ...}`` declares typed properties (``text``, ``int``, ``number``,
  ``boolean``, ``date``, ``uuid`` and their ``[]`` arrays) on classes created here; each
  upsert also writes those metadata keys, when the value fits the type, as typed
  properties (a value that does not fit is left out of the typed copy, never out of
  ``_vectra_metadata``). Without the option, an index whose ``raw_config`` is a Weaviate
  class keeps its primitive properties. Property names follow Weaviate's rules
  (``^[_A-Za-z][_0-9A-Za-z]*$``, initial lower-case, reserved ``id``/``_id``/``_additional``
  and suffixes): each character outside ``[_0-9A-Za-z]`` becomes ``_``, a name not
  starting with a letter gets a ``p`` prefix, the first letter is lower-cased, reserved
  names get a trailing ``_``, and clashes (case-insensitive) get ``_2``, ``_3``, ... in
  sorted key order (``Title`` -> ``title``, ``id`` -> ``id_``, ``my-key`` -> ``my_key``).
  The rename map ``{metadata key: property}`` is stored in the class layout, returned by
  ``provider.rename_map(index)`` and used to restore the original keys when an object has
  no ``_vectra_metadata`` (e.g. written by another client). Classes not created here:
  metadata = the object's properties under their own names; writes map keys to an
  existing property of the same name, else through the rule above.
- **vectors.** No default vector and no named vectors: ``vectorizer: none`` with an
  explicit ``vectorIndexConfig.distance`` (metric via :mod:`vectra_io.metrics`:
  cosine/dot/l2-squared/manhattan = cosine/dot/euclidean/manhattan). Named vectors are
  ``vectorConfig`` entries (vector names outside ``^[_A-Za-z][_0-9A-Za-z]*$`` are renamed
  like properties, without lower-casing, and recorded); an index with both a default and
  named vectors keeps the default vector as the named vector ``default``. Weaviate has no
  user sparse vectors (refused at ``create_index``); multi-vectors of foreign classes are
  skipped with a warning. Classes not created here: the dimension is read from a stored
  object (``None`` while the class is empty); ``raw_config`` is the class definition.

Reads: scans page with ``GET /v1/objects?class=C&limit=N+1&after=<uuid>&include=vector``
(UUID order; the cursor ``{"after": uuid}`` is the last object returned; the extra object
only tells whether a page is the last). Counts are exact: GraphQL
``{ Aggregate { C(tenant: "...") { meta { count } } } }``. Fetches are concurrent
``GET /v1/objects/C/{uuid}``. ``query`` is not offered: it needs GraphQL ``nearVector``,
which the test double does not model.

Writes: ``POST /v1/batch/objects`` (overwrite by UUID: idempotent). Objects refused
inside the 200 response are returned from ``upsert`` as ``{original id: reason}``.
Errors: connection failures, timeouts, 429 and 500/502/503/504 raise ``RetryableError``
(``Retry-After`` honoured); 401/403 ``AuthError``; a missing class ``IndexNotFoundError``;
other 4xx ``FatalError`` (``RecordsRejectedError`` for a refused batch). The provider
never retries or sleeps.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, NoReturn

import httpx
import numpy as np
import orjson
import pyarrow as pa

from .. import metrics
from ..errors import (
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    RecordsRejectedError,
    UnsupportedError,
)
from ..ids import ORIGINAL_ID_KEY, canonical_uuid, to_uuid_or_uint
from ..records import (
    ID,
    METADATA,
    NAMED_PREFIX,
    VALUES,
    conform,
    dense_array,
    dense_matrix,
    dumps_metadata,
    named_column,
    record_schema,
)
from ._http import JsonApi, Wording, netloc
from .base import (
    DEFAULT_NAMESPACE,
    ID_TYPES,
    UNKNOWN_METRIC,
    Capabilities,
    Cursor,
    IndexSpec,
    ProviderBase,
    ScanPage,
    VectorSpec,
)

log = logging.getLogger("vectra_io.providers.weaviate")

HTTP_PORT, HTTPS_PORT = 8080, 443
#: property holding the exact JSON text of a record's metadata
METADATA_PROPERTY = "_vectra_metadata"
INTERNAL_PROPERTIES = frozenset({ORIGINAL_ID_KEY, METADATA_PROPERTY})
DESCRIPTION_PREFIX = "vectra-io:"
LAYOUT_VERSION = 1
DEFAULT_TENANT = "__default__"
ENCODED_TENANT_PREFIX = "__vx_"
DEFAULT_VECTOR_NAME = "default"
ACTIVE_STATUSES = frozenset({"ACTIVE", "HOT"})
#: Weaviate's QUERY_MAXIMUM_RESULTS default: limit (+ offset) of one objects listing
MAX_LIST_LIMIT = 10_000
FETCH_CONCURRENCY = 8
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
CONSISTENCY_LEVELS = ("ONE", "QUORUM", "ALL")

CLASS_RE = re.compile(r"^[A-Z][_0-9A-Za-z]*$")
PROPERTY_RE = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,230}$")
TENANT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_INVALID_NAME_CHARS = re.compile(r"[^_0-9A-Za-z]")
RESERVED_PROPERTIES = frozenset({"id", "_id", "_additional"})
RESERVED_SUFFIXES = ("_searchable", "_nullState", "_propLength")
MAX_PROPERTY_LENGTH = 231
_MISSING_CLASS = re.compile(
    r"(class|collection)\W.*\b(not found|does not exist|doesn't exist|not exist)"
    r"|could not find (class|collection)|no such (class|collection)"
    r"|cannot query field",
    re.IGNORECASE,
)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_WORDING = Wording(
    timeout="Weaviate {what} timed out ({kind})",
    transport="Weaviate {what} failed: {kind}: {error}",
)

WEAVIATE_CAPABILITIES = Capabilities(
    max_batch_rows=1000,
    max_batch_bytes=32 * 1024 * 1024,
    id_types=frozenset(ID_TYPES),
    metrics=metrics.supported("weaviate"),
    namespaces=True,
    sparse=False,
    named_vectors=True,
    exact_count=True,
    nested_metadata=True,
    idempotent_upsert=True,
    optional_dense=True,
    exact_floats=True,
    # JSON request bytes per Arrow byte: vectors as shortest float32 decimals (~11 bytes
    # a component for 4), metadata JSON escaped inside a string (measured ~2.7-3.1)
    wire_factor=3.5,
)


# -- names ----------------------------------------------------------------------------


def _escape(text: str, keep: str) -> str:
    """``text`` with every character outside ASCII letters, digits and ``keep`` written as
    ``_`` + two lower-case hex digits per UTF-8 byte."""
    out = []
    for ch in text:
        if ch.isascii() and (ch.isalnum() or ch in keep):
            out.append(ch)
        else:
            out.extend(f"_{b:02x}" for b in ch.encode("utf-8"))
    return "".join(out)


def class_name_for(index: str) -> str:
    """The Weaviate class that holds the vectra index ``index`` (see the module docs)."""
    if not index:
        raise ConfigError("an index name must not be empty")
    if CLASS_RE.match(index):
        return index
    name = _escape(index, "_")
    if name[0].isascii() and name[0].isalpha():
        return name[0].upper() + name[1:]
    return "V" + name


def tenant_for(namespace: str) -> str:
    """The tenant of a namespace in a multi-tenant class (ConfigError when too long)."""
    if namespace == DEFAULT_NAMESPACE:
        return DEFAULT_TENANT
    if (
        TENANT_RE.match(namespace)
        and namespace != DEFAULT_TENANT
        and not namespace.startswith(ENCODED_TENANT_PREFIX)
    ):
        return namespace
    encoded = ENCODED_TENANT_PREFIX + _escape(namespace, "-")
    if len(encoded) > 64:
        raise ConfigError(
            f"namespace {namespace!r} cannot be a Weaviate tenant: its encoded name "
            f"{encoded[:40]}... is longer than 64 characters"
        )
    return encoded


def namespace_for(tenant: str) -> str:
    """The vectra namespace of a tenant (inverse of :func:`tenant_for`)."""
    if tenant == DEFAULT_TENANT:
        return DEFAULT_NAMESPACE
    if tenant.startswith(ENCODED_TENANT_PREFIX):
        decoded = _unescape(tenant[len(ENCODED_TENANT_PREFIX) :])
        if decoded is not None:
            try:
                if tenant_for(decoded) == tenant:
                    return decoded
            except ConfigError:
                pass
    return tenant


def _unescape(text: str) -> str | None:
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "_":
            try:
                out.append(int(text[i + 1 : i + 3], 16))
            except ValueError:
                return None
            i += 3
        else:
            out += ch.encode("ascii", "replace")
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def property_name_for(key: str) -> str:
    """A valid Weaviate property name for a metadata key (before clash resolution)."""
    name = _INVALID_NAME_CHARS.sub("_", key)
    if not name or not (name[0].isascii() and name[0].isalpha()):
        name = "p" + name
    name = name[0].lower() + name[1:]
    name = name[:MAX_PROPERTY_LENGTH]
    if name in RESERVED_PROPERTIES or name.endswith(RESERVED_SUFFIXES):
        name = name[: MAX_PROPERTY_LENGTH - 1] + "_"
    return name


def vector_name_for(name: str) -> str:
    if PROPERTY_RE.match(name):
        return name
    out = _INVALID_NAME_CHARS.sub("_", name)
    if not out or not (out[0].isascii() and (out[0].isalpha() or out[0] == "_")):
        out = "v" + out
    return out[:MAX_PROPERTY_LENGTH]


def _unique(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``, ... : the first not in ``taken`` (case-insensitive)."""
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        suffix = f"_{n}"
        name = base[: MAX_PROPERTY_LENGTH - len(suffix)] + suffix
    taken.add(name.lower())
    return name


def rename_properties(keys: Iterable[str], taken: Iterable[str] = ()) -> dict[str, str]:
    """The rename map ``{metadata key: property name}`` for ``keys`` (sorted order decides
    clashes)."""
    used = {t.lower() for t in taken} | {p.lower() for p in INTERNAL_PROPERTIES}
    return {key: _unique(property_name_for(key), used) for key in sorted(set(keys))}


# -- typed property values --------------------------------------------------------------

TYPED_PRIMITIVES = ("text", "int", "number", "boolean", "date", "uuid")
TYPED_DATA_TYPES = frozenset(TYPED_PRIMITIVES) | {t + "[]" for t in TYPED_PRIMITIVES}


def _is_date(v: Any) -> bool:
    if not isinstance(v, str) or "T" not in v.upper():
        return False
    try:
        parsed = dt.datetime.fromisoformat(v)
    except ValueError:
        return False
    return parsed.tzinfo is not None


_FITS = {
    "text": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and INT64_MIN <= v <= INT64_MAX,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "date": _is_date,
    "uuid": lambda v: isinstance(v, str) and canonical_uuid(v) is not None,
}


def value_fits(data_type: str, value: Any) -> bool:
    """Whether a metadata value can be written as a property of ``data_type``."""
    if data_type.endswith("[]"):
        check = _FITS[data_type[:-2]]
        return isinstance(value, list) and all(check(v) for v in value)
    return bool(_FITS[data_type](value))


# -- layout -----------------------------------------------------------------------------


@dataclass
class _Layout:
    """How a class stores the records of one vectra index."""

    class_name: str
    spec: IndexSpec
    vectra: bool  # created by vectra-io (layout in the description)
    multi_tenant: bool
    blob: bool  # the class has the _vectra_metadata property
    #: Weaviate named vector holding the default dense vector; None = the unnamed vector
    default_vector: str | None
    #: vectra named vector -> Weaviate named vector
    vectors: dict[str, str]
    #: metadata key -> (property, dataType) of the typed copies (vectra classes)
    typed: dict[str, tuple[str, str]]
    #: every property of the class
    properties: dict[str, dict[str, Any]]
    #: multi-vector named vectors that are skipped
    skipped_vectors: list[str] = field(default_factory=list)

    def rename_map(self) -> dict[str, str]:
        if self.vectra:
            return {key: prop for key, (prop, _) in self.typed.items()}
        return {p: p for p in self.properties if p not in INTERNAL_PROPERTIES}

    def key_of_property(self) -> dict[str, str]:
        return {prop: key for key, prop in self.rename_map().items()}


def _parse_description(definition: Mapping[str, Any]) -> dict[str, Any] | None:
    desc = definition.get("description")
    if not isinstance(desc, str) or not desc.startswith(DESCRIPTION_PREFIX):
        return None
    try:
        data = json.loads(desc[len(DESCRIPTION_PREFIX) :])
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("v") == LAYOUT_VERSION else None


def _distance(config: Mapping[str, Any] | None) -> str:
    cfg = (config or {}).get("vectorIndexConfig") or {}
    return metrics.from_provider("weaviate", cfg.get("distance") or "cosine")


def _is_multivector(config: Mapping[str, Any]) -> bool:
    cfg = config.get("vectorIndexConfig") or {}
    return bool((cfg.get("multivector") or {}).get("enabled"))


def _weaviate_class(raw: Mapping[str, Any]) -> bool:
    """Whether a raw_config is a Weaviate class definition."""
    return isinstance(raw.get("class"), str) and isinstance(raw.get("properties"), list | None)


# -- the provider -----------------------------------------------------------------------


class _ClassTaken(IndexNotFoundError):
    """The class of an index name holds another vectra index."""


class WeaviateProvider(ProviderBase):
    name: ClassVar[str] = "weaviate"

    def __init__(
        self,
        location: str,
        *,
        api_key: str | None = None,
        tls: bool = False,
        **options: Any,
    ) -> None:
        timeout = float(options.pop("timeout", 60.0))
        max_connections = int(options.pop("max_connections", 32))
        consistency = options.pop("consistency_level", None)
        multi_tenancy = options.pop("multi_tenancy", None)
        typed = options.pop("properties", None)
        vector_index_config = options.pop("vector_index_config", None)
        if options:
            raise ConfigError(f"weaviate provider: unknown options {sorted(options)}")
        if timeout <= 0 or max_connections < 1:
            raise ConfigError("weaviate provider: timeout and max_connections must be positive")
        if consistency is not None and consistency not in CONSISTENCY_LEVELS:
            raise ConfigError(f"consistency_level must be one of {CONSISTENCY_LEVELS}")
        if multi_tenancy is not None and not isinstance(multi_tenancy, bool):
            raise ConfigError("multi_tenancy must be true, false or unset")
        self._consistency: str | None = consistency
        self._multi_tenancy: bool | None = multi_tenancy
        self._typed_option = self._check_typed(typed)
        if vector_index_config is not None and not isinstance(vector_index_config, Mapping):
            raise ConfigError("vector_index_config must be a mapping")
        self._vector_index_config = dict(vector_index_config or {})

        base_url, self.endpoint = _parse_location(location, tls)
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._api = JsonApi(
            self.name,
            self.endpoint,
            wording=_WORDING,
            secrets=[api_key],
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            connect_timeout=min(10.0, timeout),
            max_connections=max_connections,
            retryable_status=RETRYABLE_STATUSES,
        )
        self.capabilities = WEAVIATE_CAPABILITIES
        #: index -> tenants that list_namespaces skipped: {tenant, namespace, status, reason}
        self.skipped_tenants: dict[str, list[dict[str, str]]] = {}
        self._layouts: dict[str, _Layout] = {}
        self._tenants: dict[str, dict[str, str]] = {}  # class -> tenant -> status
        self._lock = threading.RLock()
        self._tenant_lock = threading.Lock()
        self._fetcher: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"WeaviateProvider({self.endpoint!r})"

    def __enter__(self) -> WeaviateProvider:
        return self

    @staticmethod
    def _check_typed(typed: Any) -> dict[str, str] | None:
        if typed is None:
            return None
        if not isinstance(typed, Mapping):
            raise ConfigError("properties must map metadata keys to Weaviate data types")
        out = {}
        for key, dtype in typed.items():
            if not isinstance(key, str) or dtype not in TYPED_DATA_TYPES:
                raise ConfigError(
                    f"properties: {key!r}: data type {dtype!r} is not one of "
                    f"{sorted(TYPED_DATA_TYPES)}"
                )
            out[key] = dtype
        return out

    # -- HTTP ---------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return self._api.scrub(text)

    def _request(
        self,
        method: str,
        path: str,
        *,
        index: str | None = None,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        expect: Sequence[int] = (200,),
        batch: bool = False,
    ) -> httpx.Response:
        what = f"{method} {path}"
        resp = self._api.request(
            method, path, what=what, index=index, json_body=body, params=params
        )
        if resp.status_code in expect:
            return resp
        self._raise_status(resp, what, index, batch)

    def _raise_status(
        self, resp: httpx.Response, what: str, index: str | None, batch: bool
    ) -> NoReturn:
        status = resp.status_code
        message = self._scrub(_server_message(resp))
        where = {**self._where(index), "status": status}
        text = f"Weaviate {what} answered HTTP {status}: {message}"
        auth = (
            f"Weaviate refused the credentials (HTTP {status}): {message}; "
            "check the API key (api_key or $WEAVIATE_API_KEY)"
        )
        common = self._api.common_status_error(resp, text, auth, index)
        if common is not None:
            raise common
        if index is not None and (status == 404 or (status == 422 and _missing_class(message))):
            raise IndexNotFoundError(f"index {index!r} does not exist ({text})", **where)
        if batch and 400 <= status < 500:
            raise RecordsRejectedError(text, **where)
        raise FatalError(text, **where)

    def _json(self, resp: httpx.Response, what: str, index: str | None) -> Any:
        try:
            return orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise FatalError(
                f"Weaviate {what}: the answer is not JSON ({exc})", **self._where(index)
            ) from exc

    # -- layouts ------------------------------------------------------------------------

    def _layout(self, index: str, *, refresh: bool = False) -> _Layout:
        cls = class_name_for(index)
        if not refresh:
            with self._lock:
                cached = self._layouts.get(index)
            if cached is not None:
                return cached
        resp = self._request("GET", f"/schema/{cls}", index=index, expect=(200, 404))
        if resp.status_code == 404:
            self._forget(index)
            raise IndexNotFoundError(
                f"index {index!r} does not exist (no class {cls})", **self._where(index)
            )
        definition = self._json(resp, f"GET /schema/{cls}", index)
        layout = self._parse(index, cls, definition)
        with self._lock:
            self._layouts[index] = layout
        return layout

    def _forget(self, index: str) -> None:
        with self._lock:
            self._layouts.pop(index, None)
            self._tenants.pop(class_name_for(index), None)

    def _parse(self, index: str, cls: str, definition: dict[str, Any]) -> _Layout:
        meta = _parse_description(definition)
        if meta is not None and meta.get("index") != index:
            raise _ClassTaken(
                f"index {index!r} does not exist: its class {cls} holds the vectra index "
                f"{meta.get('index')!r}",
                **self._where(index),
            )
        mt = bool((definition.get("multiTenancyConfig") or {}).get("enabled"))
        props = {
            p["name"]: p
            for p in definition.get("properties") or []
            if isinstance(p, dict) and isinstance(p.get("name"), str)
        }
        vector_config: dict[str, Any] = definition.get("vectorConfig") or {}
        skipped: list[str] = []
        if meta is not None:
            default_vector = meta.get("default_vector")
            vectors = dict(meta.get("vectors") or {})
            dims: dict[str, int] = {k: int(v) for k, v in (meta.get("dims") or {}).items()}
            dimension = meta.get("dimension")
            id_type = meta.get("id_type", "string")
            typed = {k: (v[0], v[1]) for k, v in (meta.get("properties") or {}).items()}
            if dimension is None:
                metric = meta.get("metric", UNKNOWN_METRIC)
            elif default_vector:
                metric = _distance(vector_config.get(default_vector))
            else:
                metric = _distance(definition)
        else:
            typed = {}
            id_type = "string" if ORIGINAL_ID_KEY in props else "uuid"
            default_vector = None
            vectors = {}
            for vname, vcfg in vector_config.items():
                if _is_multivector(vcfg or {}):
                    skipped.append(vname)
                else:
                    vectors[vname] = vname
            dims = self._sample_dims(cls, mt, vector_config, index)
            if vector_config:
                dimension = None
                first = next(iter(vectors), None)
                metric = _distance(vector_config[first]) if first else UNKNOWN_METRIC
            else:
                dimension = dims.get("")
                metric = _distance(definition)
        named = {}
        for vname, wname in vectors.items():
            if wname in dims:
                named[vname] = VectorSpec(dims[wname], _distance(vector_config.get(wname)))
            else:
                log.warning(
                    "class %s: the dimension of named vector %r is unknown (no stored object "
                    "has it); it is left out of the index description",
                    cls,
                    wname,
                )
        if skipped:
            log.warning(
                "class %s: multi-vector named vectors %s are not supported and are skipped",
                cls,
                skipped,
            )
        spec = IndexSpec(
            name=index,
            dimension=dimension,
            metric=metric,
            id_type=id_type,
            named_vectors=named,
            sparse=False,
            normalized=False,
            raw_config=definition,
        )
        return _Layout(
            class_name=cls,
            spec=spec,
            vectra=meta is not None,
            multi_tenant=mt,
            blob=METADATA_PROPERTY in props,
            default_vector=default_vector,
            vectors={k: v for k, v in vectors.items() if k in named},
            typed=typed,
            properties=props,
            skipped_vectors=skipped,
        )

    def _sample_dims(
        self, cls: str, mt: bool, vector_config: Mapping[str, Any], index: str
    ) -> dict[str, int]:
        """Vector dimensions of a class not created here, read from stored objects."""
        wanted = set(vector_config) if vector_config else {""}
        found: dict[str, int] = {}
        tenants: list[Any] = [None]
        if mt:
            statuses = self._tenant_statuses(cls, index)
            active = [t for t, s in sorted(statuses.items()) if s in ACTIVE_STATUSES]
            tenants = list(active[:20])
        for tenant in tenants:
            params: dict[str, Any] = {"class": cls, "limit": 20, "include": "vector"}
            if tenant is not None:
                params["tenant"] = tenant
            resp = self._request("GET", "/objects", index=index, params=params)
            for obj in self._json(resp, "GET /objects", index).get("objects") or []:
                if "" in wanted and "" not in found and _flat_vector(obj.get("vector")):
                    found[""] = len(obj["vector"])
                for name, vec in (obj.get("vectors") or {}).items():
                    if name in wanted and name not in found and _flat_vector(vec):
                        found[name] = len(vec)
            if wanted <= set(found):
                break
        return found

    # -- tenants ------------------------------------------------------------------------

    def _tenant_statuses(self, cls: str, index: str) -> dict[str, str]:
        resp = self._request("GET", f"/schema/{cls}/tenants", index=index)
        statuses = {
            t["name"]: str(t.get("activityStatus") or "ACTIVE")
            for t in self._json(resp, f"GET /schema/{cls}/tenants", index) or []
            if isinstance(t, dict) and isinstance(t.get("name"), str)
        }
        with self._lock:
            self._tenants[cls] = dict(statuses)
        return statuses

    def _read_tenant(self, layout: _Layout, namespace: str) -> tuple[bool, str | None]:
        """(whether the namespace exists, its tenant); raises for an inactive tenant."""
        index = layout.spec.name
        if not layout.multi_tenant:
            return namespace == DEFAULT_NAMESPACE, None
        try:
            tenant = tenant_for(namespace)
        except ConfigError:
            return False, None
        with self._lock:
            status = self._tenants.get(layout.class_name, {}).get(tenant)
        if status not in ACTIVE_STATUSES:
            status = self._tenant_statuses(layout.class_name, index).get(tenant)
        if status is None:
            return False, None
        if status not in ACTIVE_STATUSES:
            raise FatalError(
                f"namespace {namespace!r} is the tenant {tenant!r} with activity status "
                f"{status}: only ACTIVE tenants can be read; activate it first",
                **self._where(index),
            )
        return True, tenant

    def _write_tenant(self, layout: _Layout, namespace: str) -> str | None:
        """The tenant to write ``namespace`` into, created on first use."""
        index, cls = layout.spec.name, layout.class_name
        if not layout.multi_tenant:
            if namespace != DEFAULT_NAMESPACE:
                raise UnsupportedError(
                    f"class {cls} is not multi-tenant: it holds only the default namespace, "
                    f"not {namespace!r}",
                    **self._where(index),
                )
            return None
        tenant = tenant_for(namespace)
        with self._lock:
            status = self._tenants.get(cls, {}).get(tenant)
        if status in ACTIVE_STATUSES:
            return tenant
        with self._tenant_lock:
            status = self._tenant_statuses(cls, index).get(tenant)
            if status is None:
                resp = self._request(
                    "POST",
                    f"/schema/{cls}/tenants",
                    index=index,
                    body=[{"name": tenant, "activityStatus": "ACTIVE"}],
                    expect=(200, 422),
                )
                if resp.status_code == 422:  # created meanwhile by someone else?
                    status = self._tenant_statuses(cls, index).get(tenant)
                    if status is None:
                        self._raise_status(resp, f"POST /schema/{cls}/tenants", index, False)
                else:
                    log.info(
                        "created tenant %r in class %s for namespace %r", tenant, cls, namespace
                    )
                    status = "ACTIVE"
                    with self._lock:
                        self._tenants.setdefault(cls, {})[tenant] = status
        if status not in ACTIVE_STATUSES:
            raise FatalError(
                f"namespace {namespace!r} is the tenant {tenant!r} with activity status "
                f"{status}: it cannot be written; activate it first",
                **self._where(index),
            )
        return tenant

    # -- Provider -----------------------------------------------------------------------

    def list_indexes(self) -> list[str]:
        resp = self._request("GET", "/schema")
        names = []
        for definition in self._json(resp, "GET /schema", None).get("classes") or []:
            meta = _parse_description(definition)
            names.append(meta["index"] if meta else definition.get("class"))
        return sorted(n for n in names if isinstance(n, str))

    def describe_index(self, index: str) -> IndexSpec:
        return self._layout(index, refresh=True).spec

    def rename_map(self, index: str) -> dict[str, str]:
        """``{metadata key: Weaviate property}`` of the typed properties of the index."""
        return self._layout(index).rename_map()

    def list_namespaces(self, index: str) -> list[str]:
        layout = self._layout(index, refresh=True)
        if not layout.multi_tenant:
            self.skipped_tenants[index] = []
            return [DEFAULT_NAMESPACE]
        statuses = self._tenant_statuses(layout.class_name, index)
        names, skipped = [], []
        for tenant, status in sorted(statuses.items()):
            if status in ACTIVE_STATUSES:
                names.append(namespace_for(tenant))
                continue
            reason = (
                f"activity status {status}: only ACTIVE tenants can be read "
                f"(activate it with PUT /v1/schema/{layout.class_name}/tenants)"
            )
            skipped.append(
                {
                    "tenant": tenant,
                    "namespace": namespace_for(tenant),
                    "status": status,
                    "reason": reason,
                }
            )
            log.warning(
                "index %r (class %s): skipping tenant %r: %s",
                index,
                layout.class_name,
                tenant,
                reason,
            )
        self.skipped_tenants[index] = skipped
        return sorted(names)

    def count(self, index: str, namespace: str = DEFAULT_NAMESPACE) -> int:
        layout = self._layout(index)
        exists, tenant = self._read_tenant(layout, namespace)
        if not exists:
            return 0
        cls = layout.class_name
        args = f'(tenant: "{tenant}")' if tenant is not None else ""
        query = f"{{ Aggregate {{ {cls}{args} {{ meta {{ count }} }} }} }}"
        resp = self._request("POST", "/graphql", index=index, body={"query": query})
        body = self._json(resp, "POST /graphql", index)
        errors = body.get("errors") or []
        if errors:
            message = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            if _missing_class(message):
                self._forget(index)
                raise IndexNotFoundError(
                    f"index {index!r} does not exist ({message})", **self._where(index)
                )
            raise FatalError(f"Weaviate count failed: {message}", **self._where(index))
        try:
            return int(body["data"]["Aggregate"][cls][0]["meta"]["count"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise FatalError(
                f"Weaviate count: unexpected answer {str(body)[:200]}", **self._where(index)
            ) from exc

    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        layout = self._layout(index)
        exists, tenant = self._read_tenant(layout, namespace)
        if not exists:
            return
        schema = record_schema(layout.spec)
        limit = max(1, min(int(batch_size), MAX_LIST_LIMIT - 1))
        after = ""
        if cursor is not None:
            if not isinstance(cursor, Mapping) or canonical_uuid(str(cursor.get("after"))) is None:
                raise ConfigError(f"not a weaviate scan cursor: {cursor!r}")
            after = str(cursor["after"])
        params: dict[str, Any] = {
            "class": layout.class_name,
            "limit": limit + 1,  # one more than a page: says whether this page is the last
            "include": "vector",
        }
        if tenant is not None:
            params["tenant"] = tenant
        while True:
            resp = self._request("GET", "/objects", index=index, params={**params, "after": after})
            objects = self._json(resp, "GET /objects", index).get("objects") or []
            page, more = objects[:limit], len(objects) > limit
            if not page:
                return
            after = page[-1]["id"]
            yield ScanPage(self._records(layout, page, schema), {"after": after} if more else None)
            if not more:
                return

    def fetch(
        self, index: str, ids: Sequence[str], namespace: str = DEFAULT_NAMESPACE
    ) -> pa.RecordBatch:
        layout = self._layout(index)
        schema = record_schema(layout.spec)
        exists, tenant = self._read_tenant(layout, namespace)
        wanted = list(dict.fromkeys(ids))
        if not exists or not wanted:
            return pa.RecordBatch.from_pylist([], schema=schema)
        params: dict[str, Any] = {"include": "vector"}
        if tenant is not None:
            params["tenant"] = tenant
        if self._consistency:
            params["consistency_level"] = self._consistency

        def get(rid: str) -> dict[str, Any] | None:
            oid = str(to_uuid_or_uint(rid, allow_uint64=False)[0])
            path = f"/objects/{layout.class_name}/{oid}"
            resp = self._request("GET", path, index=index, params=params, expect=(200, 404))
            if resp.status_code == 404:
                return None
            obj: dict[str, Any] = self._json(resp, f"GET {path}", index)
            return obj if _original_id(obj) == rid else None

        if len(wanted) == 1:
            found = [get(wanted[0])]
        else:
            with self._lock:
                if self._fetcher is None:
                    self._fetcher = ThreadPoolExecutor(
                        FETCH_CONCURRENCY, thread_name_prefix="vectra-weaviate-fetch"
                    )
                fetcher = self._fetcher
            found = list(fetcher.map(get, wanted))
        return self._records(layout, [o for o in found if o is not None], schema)

    def create_index(self, spec: IndexSpec) -> None:
        where = self._where(spec.name)
        if spec.sparse:
            raise IncompatibleIndexError(
                "Weaviate cannot store user-supplied sparse vectors", **where
            )
        if spec.id_type not in ID_TYPES:
            raise ConfigError(f"unknown id type {spec.id_type!r}: use one of {ID_TYPES}")
        try:
            existing = self._layout(spec.name, refresh=True)
        except _ClassTaken as exc:
            raise IncompatibleIndexError(exc.message, **where) from None
        except IndexNotFoundError:
            pass
        else:
            self._check_existing(existing.spec, spec)
            return
        definition = self._class_definition(spec)
        cls = definition["class"]
        resp = self._request("POST", "/schema", index=spec.name, body=definition, expect=(200, 422))
        if resp.status_code == 422:
            message = _server_message(resp)
            try:  # created meanwhile by another writer?
                existing = self._layout(spec.name, refresh=True)
            except IndexNotFoundError:
                raise IncompatibleIndexError(
                    f"Weaviate refused to create class {cls}: {self._scrub(message)}", **where
                ) from None
            self._check_existing(existing.spec, spec)
            return
        log.info("created class %s for index %r on %s", cls, spec.name, self.endpoint)
        self._layout(spec.name, refresh=True)

    def _check_existing(self, existing: IndexSpec, spec: IndexSpec) -> None:
        if existing.dimension != spec.dimension:
            raise IncompatibleIndexError(
                f"index {spec.name!r} exists with dimension {existing.dimension}, "
                f"not {spec.dimension}",
                **self._where(spec.name),
            )

    def _class_definition(self, spec: IndexSpec) -> dict[str, Any]:
        cls = class_name_for(spec.name)
        raw = spec.raw_config if _weaviate_class(spec.raw_config) else {}
        multi_tenant = self._multi_tenancy
        if multi_tenant is None:
            source_mt = (raw.get("multiTenancyConfig") or {}).get("enabled") if raw else None
            multi_tenant = True if source_mt is None else bool(source_mt)
        typed_types = self._typed_option
        if typed_types is None:
            typed_types = _typed_from_raw(raw) if raw else {}
        renames = rename_properties(typed_types)
        typed = {key: (renames[key], dtype) for key, dtype in typed_types.items()}

        def index_config(metric: str) -> dict[str, Any]:
            return {
                **self._vector_index_config,
                "distance": metrics.to_provider("weaviate", metric),
            }

        vectors: dict[str, str] = {}
        taken: set[str] = set()
        for vname in sorted(spec.named_vectors):
            vectors[vname] = _unique(vector_name_for(vname), taken)
        default_vector = None
        body: dict[str, Any] = {"class": cls}
        if vectors:
            vector_config = {}
            if spec.dimension is not None:
                default_vector = _unique(DEFAULT_VECTOR_NAME, taken)
                vector_config[default_vector] = {
                    "vectorizer": {"none": {}},
                    "vectorIndexType": "hnsw",
                    "vectorIndexConfig": index_config(spec.metric),
                }
            for vname, wname in vectors.items():
                vector_config[wname] = {
                    "vectorizer": {"none": {}},
                    "vectorIndexType": "hnsw",
                    "vectorIndexConfig": index_config(spec.named_vectors[vname].metric),
                }
            body["vectorConfig"] = vector_config
        else:
            body["vectorizer"] = "none"
            body["vectorIndexType"] = "hnsw"
            body["vectorIndexConfig"] = index_config(spec.metric)
        dims = {wname: spec.named_vectors[vname].dimension for vname, wname in vectors.items()}
        if default_vector is not None and spec.dimension is not None:
            dims[default_vector] = spec.dimension
        layout = {
            "v": LAYOUT_VERSION,
            "index": spec.name,
            "id_type": spec.id_type,
            "dimension": spec.dimension,
            "metric": spec.metric,
            "default_vector": default_vector,
            "vectors": vectors,
            "dims": dims,
            "properties": {key: list(v) for key, v in typed.items()},
        }
        body["description"] = DESCRIPTION_PREFIX + json.dumps(
            layout, ensure_ascii=False, separators=(",", ":")
        )
        body["properties"] = [
            {
                "name": ORIGINAL_ID_KEY,
                "dataType": ["text"],
                "description": "vectra-io: the original record id (when it is not a UUID)",
                "tokenization": "field",
                "indexFilterable": True,
                "indexSearchable": False,
            },
            {
                "name": METADATA_PROPERTY,
                "dataType": ["text"],
                "description": "vectra-io: the record's metadata as exact JSON text",
                "indexFilterable": False,
                "indexSearchable": False,
            },
            *(
                {"name": prop, "dataType": [dtype], "description": f"metadata key {key!r}"}
                for key, (prop, dtype) in sorted(typed.items())
            ),
        ]
        body["multiTenancyConfig"] = {
            "enabled": multi_tenant,
            "autoTenantCreation": False,
            "autoTenantActivation": False,
        }
        return body

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        layout = self._layout(index)
        tenant = self._write_tenant(layout, namespace)
        if not layout.vectra:
            layout = self._foreign_write_layout(layout, batch)
        try:
            batch = conform(batch, layout.spec)
        except ValueError as exc:
            raise IncompatibleIndexError(
                f"the records do not fit index {index!r}: {exc}", **self._where(index)
            ) from exc
        if batch.num_rows == 0:
            return {}
        objects, refused, sent_ids = self._objects(layout, batch, tenant)
        if not objects:
            return refused
        params = {"consistency_level": self._consistency} if self._consistency else None
        resp = self._request(
            "POST",
            "/batch/objects",
            index=index,
            params=params,
            body={"objects": objects},
            batch=True,
        )
        results = self._json(resp, "POST /batch/objects", index)
        if not isinstance(results, list):
            raise FatalError(
                f"Weaviate batch: unexpected answer {str(results)[:200]}", **self._where(index)
            )
        failed = _batch_failures(results, objects, sent_ids)
        if failed and len(failed) == len(objects) and all(map(_missing_class, failed.values())):
            self._forget(index)
            self._layout(index)  # raises IndexNotFoundError when the class is gone
        if failed:
            with self._lock:  # a tenant may have been removed or deactivated meanwhile
                self._tenants.pop(layout.class_name, None)
        refused.update(failed)
        return refused

    def _foreign_write_layout(self, layout: _Layout, batch: pa.RecordBatch) -> _Layout:
        """A class not created here whose vector dimensions are unknown while it is empty:
        the batch gives them (Weaviate fixes a dimension on the first insert), so that
        ``conform`` does not drop vectors it was not told about."""
        spec, names = layout.spec, batch.schema.names
        configured = set(spec.raw_config.get("vectorConfig") or {}) - set(layout.skipped_vectors)
        dimension, named, vectors = spec.dimension, dict(spec.named_vectors), dict(layout.vectors)
        if dimension is None and not configured and VALUES in names:
            dimension = batch.schema.field(VALUES).type.list_size
        for name in names:
            vname = name[len(NAMED_PREFIX) :]
            if name.startswith(NAMED_PREFIX) and vname in configured and vname not in named:
                metric = _distance(spec.raw_config["vectorConfig"][vname])
                named[vname] = VectorSpec(batch.schema.field(name).type.list_size, metric)
                vectors[vname] = vname
        if (dimension, named) == (spec.dimension, dict(spec.named_vectors)):
            return layout
        self._forget(spec.name)  # describe again once objects are stored
        return replace(
            layout,
            spec=replace(spec, dimension=dimension, named_vectors=named),
            vectors=vectors,
        )

    def _objects(
        self, layout: _Layout, batch: pa.RecordBatch, tenant: str | None
    ) -> tuple[list[dict[str, Any]], dict[str, str], list[str]]:
        """The batch as Weaviate objects (the last of repeated ids wins), records refused
        before sending, and the original id of each object."""
        ids = batch.column(ID).to_pylist()
        metas = batch.column(METADATA).to_pylist()
        last = {rid: row for row, rid in enumerate(ids)}
        columns: list[tuple[str | None, np.ndarray, np.ndarray]] = []
        names = batch.schema.names
        if VALUES in names:
            columns.append((layout.default_vector, *_matrix(batch.column(VALUES))))
        for vname, wname in layout.vectors.items():
            col = named_column(vname)
            if col in names:
                columns.append((wname, *_matrix(batch.column(col))))
        objects: list[dict[str, Any]] = []
        sent: list[str] = []
        refused: dict[str, str] = {}
        for row, rid in enumerate(ids):
            if last[rid] != row:
                continue
            oid, mapped = to_uuid_or_uint(rid, allow_uint64=False)
            props: dict[str, Any] = {}
            if mapped:
                props[ORIGINAL_ID_KEY] = rid
            text = metas[row]
            if text is not None:
                problem = _metadata_properties(layout, text, props)
                if problem:
                    refused[rid] = problem
                    continue
            obj: dict[str, Any] = {"class": layout.class_name, "id": oid, "properties": props}
            if tenant is not None:
                obj["tenant"] = tenant
            for target, matrix, valid in columns:
                if not valid[row]:
                    continue
                if target is None:
                    obj["vector"] = matrix[row]
                else:
                    obj.setdefault("vectors", {})[target] = matrix[row]
            objects.append(obj)
            sent.append(rid)
        return objects, refused, sent

    def delete_index(self, index: str) -> None:
        layout = self._layout(index, refresh=True)
        self._request("DELETE", f"/schema/{layout.class_name}", index=index)
        self._forget(index)
        self.skipped_tenants.pop(index, None)
        log.info("deleted class %s (index %r) on %s", layout.class_name, index, self.endpoint)

    def close(self) -> None:
        with self._lock:
            fetcher, self._fetcher = self._fetcher, None
        if fetcher is not None:
            fetcher.shutdown(wait=True)
        self._api.close()

    # -- records ------------------------------------------------------------------------

    def _records(
        self, layout: _Layout, objects: list[dict[str, Any]], schema: pa.Schema
    ) -> pa.RecordBatch:
        if not objects:
            return pa.RecordBatch.from_pylist([], schema=schema)
        key_of = layout.key_of_property()
        ids: list[str] = []
        metas: list[str | None] = []
        for obj in objects:
            ids.append(_original_id(obj))
            metas.append(_metadata_text(layout, obj.get("properties") or {}, key_of))
        columns: list[pa.Array] = []
        for f in schema:
            if f.name == ID:
                columns.append(pa.array(ids, pa.string()))
            elif f.name == METADATA:
                columns.append(pa.array(metas, pa.string()))
            elif f.name == VALUES:
                if layout.default_vector is None:
                    rows = [o.get("vector") for o in objects]
                else:
                    rows = [(o.get("vectors") or {}).get(layout.default_vector) for o in objects]
                columns.append(self._vector_column(layout, rows, f.type.list_size, ids))
            else:
                vname = f.name[len(NAMED_PREFIX) :]
                wname = layout.vectors[vname]
                rows = [(o.get("vectors") or {}).get(wname) for o in objects]
                columns.append(self._vector_column(layout, rows, f.type.list_size, ids))
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def _vector_column(
        self, layout: _Layout, rows: list[Any], dim: int, ids: list[str]
    ) -> pa.FixedSizeListArray:
        cleaned = [r if isinstance(r, list) and r else None for r in rows]
        try:
            if all(r is not None and len(r) == dim for r in cleaned):
                flat = np.fromiter(
                    itertools.chain.from_iterable(cleaned),  # type: ignore[arg-type]
                    dtype=np.float32,
                    count=len(cleaned) * dim,
                )
                return pa.FixedSizeListArray.from_arrays(pa.array(flat), dim)
            return dense_array(cleaned, dim)
        except (ValueError, TypeError) as exc:
            bad = next(
                (
                    rid
                    for rid, r in zip(ids, cleaned, strict=True)
                    if r is not None and len(r) != dim
                ),
                None,
            )
            raise FatalError(
                f"class {layout.class_name}: a stored vector does not have dimension {dim}"
                f"{f' (record {bad!r})' if bad else ''}: {exc}",
                **self._where(layout.spec.name),
            ) from exc


# -- helpers ----------------------------------------------------------------------------


def _parse_location(location: str, tls: bool) -> tuple[str, str]:
    """The REST base URL (``.../v1``) and the printable endpoint of a location."""
    loc = location.strip()
    if not loc or loc.startswith("/"):
        raise ConfigError(
            f"weaviate location {location!r}: expected host[:port][/path], "
            "e.g. weaviate://localhost:8080"
        )
    parts = urllib.parse.urlsplit("//" + loc)
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "weaviate URL: credentials in the URL are not accepted; "
            "pass api_key or set $WEAVIATE_API_KEY"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"weaviate URL: unexpected query or fragment in {location!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"weaviate URL: bad port in {location!r}") from exc
    host = parts.hostname
    if not host:
        raise ConfigError(f"weaviate URL: no host in {location!r}")
    port = port or (HTTPS_PORT if tls else HTTP_PORT)
    hostport = netloc(host, port)
    path = parts.path.rstrip("/")
    scheme = "https" if tls else "http"
    endpoint = f"weaviate{'+https' if tls else ''}://{hostport}{path}"
    return f"{scheme}://{hostport}{path}/v1", endpoint


def _server_message(resp: httpx.Response) -> str:
    try:
        body = orjson.loads(resp.content) if resp.content else None
    except orjson.JSONDecodeError:
        text = resp.text.strip()
        return text[:500] or resp.reason_phrase
    messages: list[str] = []
    if isinstance(body, dict):
        for key in ("error", "errors"):
            value = body.get(key)
            if isinstance(value, list):
                messages += [str(e.get("message", e)) for e in value if isinstance(e, dict)]
            elif isinstance(value, str):
                messages.append(value)
        if isinstance(body.get("message"), str):
            messages.append(body["message"])
    text = "; ".join(messages) or (str(body)[:500] if body is not None else resp.reason_phrase)
    return text[:500]


def _missing_class(message: str) -> bool:
    return bool(_MISSING_CLASS.search(message))


def _flat_vector(vec: Any) -> bool:
    return isinstance(vec, list) and bool(vec) and not isinstance(vec[0], list)


def _original_id(obj: Mapping[str, Any]) -> str:
    original = (obj.get("properties") or {}).get(ORIGINAL_ID_KEY)
    return original if isinstance(original, str) else str(obj.get("id"))


def _metadata_text(
    layout: _Layout, props: Mapping[str, Any], key_of: Mapping[str, str]
) -> str | None:
    blob = props.get(METADATA_PROPERTY)
    if isinstance(blob, str):
        return blob
    meta = {
        key_of.get(name, name): value
        for name, value in props.items()
        if name not in INTERNAL_PROPERTIES
    }
    return dumps_metadata(meta) if meta else None


def _metadata_properties(layout: _Layout, text: str, props: dict[str, Any]) -> str | None:
    """Add the properties of a record's metadata to ``props``; a reason to refuse it."""
    if layout.blob:
        props[METADATA_PROPERTY] = text
        if not layout.typed:
            return None
    try:
        meta = json.loads(text)
    except ValueError as exc:
        return f"metadata is not valid JSON: {exc}"
    if not isinstance(meta, dict):
        return "metadata is not a JSON object"
    if layout.blob:
        for key, (prop, dtype) in layout.typed.items():
            value = meta.get(key)
            if value is not None and value_fits(dtype, value):
                props[prop] = value
        return None
    # a class not created here: every key becomes a property
    for key, value in meta.items():
        if value is None:
            continue
        prop = key if key in layout.properties else property_name_for(key)
        if prop in props or prop in INTERNAL_PROPERTIES:
            return (
                f"metadata key {key!r} maps to the property {prop!r}, which another key "
                f"already uses (class {layout.class_name} has no {METADATA_PROPERTY})"
            )
        props[prop] = value
    return None


def _matrix(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    valid = (
        np.ones(len(column), dtype=bool)
        if column.null_count == 0
        else column.is_valid().to_numpy(zero_copy_only=False)
    )
    return np.ascontiguousarray(dense_matrix(column)), valid


def _batch_failures(
    results: list[Any], objects: list[dict[str, Any]], sent_ids: list[str]
) -> dict[str, str]:
    """``{original id: reason}`` of the objects that the 200 answer reports as failed (or
    does not report at all)."""
    by_uuid = {obj["id"]: rid for obj, rid in zip(objects, sent_ids, strict=True)}
    failed: dict[str, str] = {}
    reported: set[str] = set()
    for pos, res in enumerate(results):
        if not isinstance(res, dict):
            continue
        answered = res.get("id")
        rid = by_uuid.get(answered) if isinstance(answered, str) else None
        if rid is None and isinstance(answered, str):
            rid = by_uuid.get(canonical_uuid(answered) or "")
        if rid is None and pos < len(sent_ids):
            rid = sent_ids[pos]
        if rid is None:
            continue
        reported.add(rid)
        result = res.get("result") or {}
        errors = (result.get("errors") or {}).get("error") or []
        if result.get("status") == "FAILED" or errors:
            reasons = [str(e.get("message")) for e in errors if isinstance(e, dict)]
            failed[rid] = "; ".join(reasons) or "Weaviate reported the object as FAILED"
    for rid in sent_ids:
        if rid not in reported:
            failed[rid] = "Weaviate's batch answer did not report this object"
    return failed


def _typed_from_raw(raw: Mapping[str, Any]) -> dict[str, str]:
    """The typed properties to keep from a source Weaviate class definition."""
    meta = _parse_description(raw)
    if meta is not None:
        return {k: v[1] for k, v in (meta.get("properties") or {}).items()}
    out = {}
    for prop in raw.get("properties") or []:
        if not isinstance(prop, dict):
            continue
        name, dtypes = prop.get("name"), prop.get("dataType") or []
        if (
            isinstance(name, str)
            and name not in INTERNAL_PROPERTIES
            and len(dtypes) == 1
            and dtypes[0] in TYPED_DATA_TYPES
        ):
            out[name] = dtypes[0]
    return out
