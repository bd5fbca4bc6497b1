"""The ``chroma`` provider: Chroma's HTTP API v2 spoken with httpx (no chromadb client).

URL
    ``chroma://HOST[:PORT][/TENANT/DATABASE]``, ``chroma+https://...`` for TLS. The port
    defaults to 8000 (443 with TLS); tenant and database default to ``default_tenant`` and
    ``default_database`` and must exist (vectra-io never creates tenants or databases). The
    API key (``api_key=`` or ``$CHROMA_API_KEY``) is sent as ``x-chroma-token``; the option
    ``auth_header="authorization"`` sends ``Authorization: Bearer`` instead and ``"both"``
    sends both. Other options: ``timeout`` (s, 60), ``connect_timeout`` (s, 10),
    ``max_connections`` (16), ``verify`` (TLS verification: bool or CA bundle path),
    ``max_payload_bytes`` (the server's request body limit, 40 MiB by default) and
    ``transport`` (an ``httpx.BaseTransport``, for tests and proxies).

Indexes and namespaces
    An index is a Chroma collection; its default namespace ``""`` is that collection.
    Chroma has no namespaces, so namespace ``ns`` of index ``idx`` is a collection of its
    own, created on the first upsert into it, named::

        idx__ns__<ns>               when ns is a valid name tail ([A-Za-z0-9._-], ending
                                    alphanumeric, no "..")
        idx__nsx__<hex of UTF-8>    otherwise (any string is reversible)
        idx__nsh__<sha256 hex>      when the name above would pass Chroma's 512 characters

    and carries the collection metadata ``vectra:index`` and ``vectra:namespace``, which
    are authoritative: ``list_namespaces`` lists the collections whose metadata names the
    index and whose name is the one above. Index names containing ``__ns`` are refused at
    creation so names never collide. A collection per namespace (instead of one collection
    with a reserved metadata key and ``where`` filters) keeps the records' metadata free of
    vectra keys, makes ``count`` exact and cheap (``GET .../count``; Chroma cannot count
    with a filter) and keeps scans unfiltered; ``list_indexes`` hides namespace
    collections. ``""`` is listed when the index collection holds records, like the memory
    provider lists only namespaces that were written.

    vectra's :class:`IndexSpec` (id type, normalisation flag) is stored as JSON in the
    collection metadata key ``vectra:spec``; the metric and dimension come from the
    collection itself (``configuration_json.hnsw.space``: ``l2`` = euclidean (squared),
    ``cosine``, ``ip`` = dot; the space is always set explicitly at creation since Chroma
    defaults to ``l2``). Collections created by other tools are read the same way (id type
    "string", dimension from the collection, unknown until its first record).

Records
    Chroma's document and URI travel in vectra metadata under ``chroma:document`` and
    ``chroma:uri`` (Chroma's own reserved keys for them): exported into metadata, restored
    as the document/URI on import. Chroma metadata is flat: bool, int64, float64, str and
    non-empty lists of one of them; no nested objects, no nulls (a null deletes a key in
    Chroma). A record whose metadata Chroma cannot hold exactly (nested object, null,
    empty or mixed list, int beyond int64, keys starting with ``#``/``$``/``chroma:``, a
    non-string document) is refused by ``upsert`` with a reason naming the key, never
    flattened. An empty metadata object is stored as no metadata (Chroma has no ``{}``).

    Chroma's ``upsert`` merges: metadata keys missing from the new version survive, as do
    documents and URIs. ``upsert`` therefore deletes the batch's ids and then upserts them
    (measured on chroma 1.5.9, 10,000 x 384: re-importing existing ids this way takes about
    half the time of a plain upsert over them, which rebuilds HNSW links in place; on new
    ids the delete costs ~5%). Between the two requests those ids are absent; a failed
    upsert is retried by the engine or reported with its ids. In a collection the provider
    created itself, an id exists only if it wrote it before, so the delete is skipped
    (into a fresh collection, 100,000 x 768: about 10% faster); the read-back of every batch
    (below) also reads documents and URIs there, and a record it finds merged (an id
    written twice) is written again, deleted first. Ids repeated inside a batch are written
    once (the last one wins).

    Two Chroma 1.5 (single node) defects are guarded against. A ``chroma:document`` that
    is not a string crashes the server's log writer (every later write fails with
    "Error sending message to compactor" until a restart): such records are refused
    before sending. Deleting a collection leaves its list-valued metadata behind (SQLite
    table ``embedding_metadata_array``) and Chroma attaches it to later records that reuse
    the row ids, in any collection: ``delete_index`` deletes the records holding lists
    before their collection, and ``upsert`` reads the batch's metadata back and deletes
    keys that were not written (one ``get`` per batch), refusing a record that still
    differs. Delete collections through vectra-io, or delete their records first.

Scans and floats
    A scan pages with ``POST .../get`` (``include`` embeddings, metadatas, documents, uris:
    embeddings are omitted by default) and ``limit``/``offset``; the cursor is
    ``{"offset": n}``. Offset paging is not a snapshot: writes or deletes during a scan can
    skip or repeat records (freeze writers, dedupe by id, compare counts). The next page is
    requested while the current one is parsed. Embeddings are written base64-encoded
    (little-endian float32) when the server's pre-flight check allows, else as JSON
    numbers; they come back as JSON numbers (shortest float32 text), exact after one
    numpy conversion per page. ``l2`` and ``ip`` collections return the float32 bits
    written; ``cosine`` collections of the single-node server do not (vectors are stored
    normalised and scaled back: about 1-2 ulp of error on most vectors; a squared norm
    that overflows float32 comes back as nulls, one that underflows as zeros). Hence
    ``exact_floats=False``; upsert into a cosine collection refuses the vectors Chroma
    would destroy, and a scan turns null components into NaN so the export rejects those
    records by id.

Limits
    ``max_batch_rows`` is the server's ``max_batch_size`` (``GET /api/v2/pre-flight-checks``,
    read on first use); requests stay below the 40 MiB body limit (``upsert`` also splits
    itself). ``wire_factor`` is about 1.5 with base64 vectors, 5.5 with JSON numbers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import re
import ssl
import threading
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import httpx
import numpy as np
import pyarrow as pa

from ..errors import (
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    ProviderError,
    RecordsRejectedError,
    UnsupportedError,
)
from ..records import ID, METADATA, VALUES, conform, dense_array, dense_matrix, record_schema
from ._http import JsonApi, Wording, netloc
from .base import (
    DEFAULT_NAMESPACE,
    ID_TYPES,
    METRICS,
    UNKNOWN_METRIC,
    Capabilities,
    Cursor,
    IndexSpec,
    ProviderBase,
    ScanPage,
)

log = logging.getLogger("vectra_io.providers.chroma")

DOCUMENT_KEY = "chroma:document"
URI_KEY = "chroma:uri"
SPEC_KEY = "vectra:spec"
INDEX_KEY = "vectra:index"
NAMESPACE_KEY = "vectra:namespace"
NS_RAW, NS_HEX, NS_HASH = "__ns__", "__nsx__", "__nsh__"
RESERVED_INFIX = "__ns"

DEFAULT_TENANT = "default_tenant"
DEFAULT_DATABASE = "default_database"
DEFAULT_PORT, DEFAULT_TLS_PORT = 8000, 443
#: the server's request body limit (chroma 1.5: a body of 40 MiB is refused with 413)
MAX_PAYLOAD_BYTES = 40 * 1024 * 1024
#: what the engine is told (request bytes), below the hard limit
MAX_BATCH_BYTES = 32 * 1024 * 1024
#: rows per write before the pre-flight check answered
DEFAULT_MAX_BATCH_ROWS = 1000
WIRE_FACTOR_BASE64 = 1.5
WIRE_FACTOR_JSON = 5.5
FETCH_CHUNK = 1000
LIST_PAGE = 1000
MAX_PINPOINT_ROUNDS = 32

SPACE_TO_METRIC = {"l2": "euclidean", "cosine": "cosine", "ip": "dot"}
METRIC_TO_SPACE = {metric: space for space, metric in SPACE_TO_METRIC.items()}
INCLUDE = ["embeddings", "metadatas", "documents", "uris"]
HNSW_KEYS = ("ef_construction", "ef_search", "max_neighbors", "resize_factor", "sync_threshold")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
F32_MAX = float(np.finfo(np.float32).max)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_NS_TAIL = re.compile(r"[A-Za-z0-9._-]*[A-Za-z0-9]")
_POSITION = re.compile(r"(?:at index |(?:ids|embeddings|metadatas|documents|uris)\[)(\d+)")

_WORDING = Wording(
    timeout="Chroma did not answer in time ({what}: {kind})",
    transport="cannot reach Chroma ({what}): {detail}",
    other="request to Chroma failed ({what}): {detail}",
)

CHROMA_CAPABILITIES = Capabilities(
    max_batch_rows=DEFAULT_MAX_BATCH_ROWS,
    max_batch_bytes=MAX_BATCH_BYTES,
    id_types=frozenset(ID_TYPES),
    metrics=frozenset(METRIC_TO_SPACE),
    namespaces=True,
    sparse=False,
    named_vectors=False,
    exact_count=True,
    nested_metadata=False,
    idempotent_upsert=True,
    optional_dense=False,
    max_dimension=None,
    exact_floats=False,
    wire_factor=WIRE_FACTOR_JSON,
)


# -- names -----------------------------------------------------------------------------
def valid_collection_name(name: str) -> bool:
    """Chroma's collection name rules (3-512 of [a-zA-Z0-9._-], alphanumeric ends, no
    "..", not an IPv4 address)."""
    return bool(_NAME.fullmatch(name)) and ".." not in name and not _IPV4.fullmatch(name)


def collection_name(index: str, namespace: str) -> str:
    """The collection that holds namespace ``namespace`` of index ``index``."""
    if namespace == DEFAULT_NAMESPACE:
        return index
    if _NS_TAIL.fullmatch(namespace) and ".." not in namespace:
        name = f"{index}{NS_RAW}{namespace}"
    else:
        name = f"{index}{NS_HEX}{namespace.encode('utf-8').hex()}"
    if len(name) > 512:
        name = f"{index}{NS_HASH}{hashlib.sha256(namespace.encode('utf-8')).hexdigest()}"
    return name


# -- collections -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Collection:
    id: str
    name: str
    metadata: Mapping[str, Any]
    configuration: Mapping[str, Any]
    dimension: int | None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> _Collection:
        dim = data.get("dimension")
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            metadata=dict(data.get("metadata") or {}),
            configuration=dict(data.get("configuration_json") or {}),
            dimension=int(dim) if dim is not None else None,
        )

    @property
    def space(self) -> str:
        """The distance space: configuration (hnsw or spann), else legacy metadata, else l2."""
        for algo in ("hnsw", "spann"):
            cfg = self.configuration.get(algo)
            if isinstance(cfg, Mapping) and cfg.get("space"):
                return str(cfg["space"])
        legacy = self.metadata.get("hnsw:space")
        return str(legacy) if legacy else "l2"

    def namespace_of(self) -> tuple[str, str] | None:
        """(index, namespace) when this is a namespace collection of vectra's convention."""
        index, namespace = self.metadata.get(INDEX_KEY), self.metadata.get(NAMESPACE_KEY)
        if not isinstance(index, str) or not isinstance(namespace, str) or not namespace:
            return None
        if self.name != collection_name(index, namespace):
            return None
        return index, namespace

    def stored_spec(self) -> IndexSpec | None:
        text = self.metadata.get(SPEC_KEY)
        if not isinstance(text, str):
            return None
        try:
            data = json.loads(text)
            return IndexSpec.from_dict(data) if isinstance(data, dict) else None
        except (ValueError, KeyError, TypeError):
            log.warning("collection %r: unreadable %s metadata ignored", self.name, SPEC_KEY)
            return None

    def spec(self, index: str) -> IndexSpec:
        metric = SPACE_TO_METRIC.get(self.space, UNKNOWN_METRIC)
        raw = {"chroma": {"configuration": dict(self.configuration)}}
        stored = self.stored_spec()
        if stored is None:
            return IndexSpec(index, self.dimension, metric, "string", raw_config=raw)
        dimension = self.dimension if self.dimension is not None else stored.dimension
        return replace(
            stored,
            name=index,
            dimension=dimension,
            metric=metric,
            named_vectors={},
            sparse=False,
            raw_config=raw,
        )


# -- the provider ------------------------------------------------------------------------
class ChromaProvider(ProviderBase):
    name: ClassVar[str] = "chroma"

    def __init__(
        self,
        location: str = "",
        *,
        api_key: str | None = None,
        tls: bool = False,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_connections: int = 16,
        auth_header: str = "x-chroma-token",
        verify: bool | str = True,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        if options:
            raise ConfigError(f"chroma provider: unknown options {sorted(options)}")
        host, port, tenant, database = _parse_location(location, tls)
        if auth_header not in ("x-chroma-token", "authorization", "both"):
            raise ConfigError(
                f"chroma provider: auth_header must be 'x-chroma-token', 'authorization' "
                f"or 'both', not {auth_header!r}"
            )
        if max_payload_bytes < 1024:
            raise ConfigError("chroma provider: max_payload_bytes must be at least 1024")
        self.tenant, self.database = tenant, database
        scheme = "https" if tls else "http"
        address = netloc(host, port)
        default_port = DEFAULT_TLS_PORT if tls else DEFAULT_PORT
        shown = address if port != default_port else (f"[{host}]" if ":" in host else host)
        suffix = (
            ""
            if (tenant, database) == (DEFAULT_TENANT, DEFAULT_DATABASE)
            else f"/{tenant}/{database}"
        )
        self.endpoint = f"chroma{'+https' if tls else ''}://{shown}{suffix}"
        headers = {"accept": "application/json", "user-agent": "vectra-io"}
        if api_key:
            if auth_header in ("x-chroma-token", "both"):
                headers["x-chroma-token"] = api_key
            if auth_header in ("authorization", "both"):
                headers["authorization"] = f"Bearer {api_key}"
        self._api = JsonApi(
            self.name,
            self.endpoint,
            wording=_WORDING,
            secrets=(api_key,),
            base_url=f"{scheme}://{address}",
            headers=headers,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            verify=ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify,
            transport=transport,
        )
        self._db = f"/api/v2/tenants/{_quote(tenant)}/databases/{_quote(database)}"
        self._max_payload = int(max_payload_bytes)
        self._base64 = False
        self._caps = CHROMA_CAPABILITIES
        self._ready = False
        self._lock = threading.Lock()
        self._create_lock = threading.Lock()
        #: ids of the collections this provider created: an id exists there only if it wrote it
        self._created: set[str] = set()

    # -- capabilities (read from the server on first use) ---------------------------------
    @property
    def capabilities(self) -> Capabilities:
        if not self._ready:
            try:
                self._connect()
            except ProviderError as exc:  # unreachable now: the static defaults, not cached
                log.debug("chroma pre-flight failed, using default limits: %s", exc)
        return self._caps

    @capabilities.setter
    def capabilities(self, value: Capabilities) -> None:
        self._caps = value

    def _connect(self) -> None:
        """Pre-flight (batch limit, base64 support) and a check that the database exists."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            checks = self._json("GET", "/api/v2/pre-flight-checks")
            rows = checks.get("max_batch_size") if isinstance(checks, Mapping) else None
            self._base64 = bool(
                isinstance(checks, Mapping) and checks.get("supports_base64_encoding")
            )
            try:
                self._json("GET", self._db)
            except IndexNotFoundError:
                raise ConfigError(
                    f"Chroma database {self.database!r} of tenant {self.tenant!r} does not "
                    f"exist on {self.endpoint}"
                ) from None
            self._caps = replace(
                self._caps,
                max_batch_rows=rows
                if isinstance(rows, int) and rows > 0
                else DEFAULT_MAX_BATCH_ROWS,
                wire_factor=WIRE_FACTOR_BASE64 if self._base64 else WIRE_FACTOR_JSON,
            )
            self._ready = True
            log.debug(
                "connected to %s: max_batch_size=%s base64=%s", self.endpoint, rows, self._base64
            )

    # -- HTTP --------------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        index: str | None = None,
    ) -> httpx.Response:
        if body is not None:
            content = _dumps(body)  # not JsonApi's: NaN must fail here, not become null
        what = f"{method} {_route(path)}"
        response = self._api.request(
            method, path, what=what, index=index, content=content, params=params
        )
        if response.is_success:
            return response
        raise self._http_error(response, what, index)

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = self._send(method, path, **kw)
        try:
            return json.loads(response.content) if response.content else None
        except ValueError as exc:
            raise FatalError(
                f"Chroma sent a body that is not JSON ({method} {_route(path)})",
                **self._where(kw.get("index")),
            ) from exc

    def _http_error(self, response: httpx.Response, what: str, index: str | None) -> ProviderError:
        status = response.status_code
        kind, text = _error_body(response)
        message = self._api.scrub(f"Chroma answered HTTP {status} to {what}: {kind}: {text}")
        auth = self._api.scrub(
            f"Chroma refused the credentials (HTTP {status}); check the API key "
            f"($CHROMA_API_KEY) and auth_header: {text}"
        )
        common = self._api.common_status_error(response, message, auth, index)
        if common is not None:
            return common
        where = self._api.where(index, status)
        if status == 501:
            return UnsupportedError(message, **where)
        if status == 404:
            return IndexNotFoundError(message, **where)
        return FatalError(message, **where)

    # -- collection helpers -------------------------------------------------------------------
    def _collection(self, name: str) -> _Collection | None:
        if not valid_collection_name(name):
            return None
        try:
            data = self._json("GET", f"{self._db}/collections/{_quote(name)}", index=name)
        except IndexNotFoundError:
            return None
        return _Collection.parse(data)

    def _base(self, index: str) -> _Collection:
        """The index's own collection (not a namespace collection); IndexNotFoundError."""
        self._connect()
        col = self._collection(index)
        if col is None or col.namespace_of() is not None:
            raise IndexNotFoundError(f"index {index!r} does not exist", **self._where(index))
        return col

    def _namespace(
        self, index: str, namespace: str, base: _Collection, *, create: bool = False
    ) -> _Collection | None:
        if namespace == DEFAULT_NAMESPACE:
            return base
        name = collection_name(index, namespace)
        col = self._collection(name)
        if col is None and create:
            col = self._create_namespace(index, namespace, name, base)
        if col is not None and col.namespace_of() != (index, namespace):
            if create:
                raise IncompatibleIndexError(
                    f"collection {name!r} exists but is not namespace {namespace!r} of index "
                    f"{index!r} (its metadata says otherwise); rename or delete it",
                    **self._where(index),
                )
            return None
        return col

    def _create_namespace(
        self, index: str, namespace: str, name: str, base: _Collection
    ) -> _Collection:
        if RESERVED_INFIX in index:
            raise ConfigError(
                f"index {index!r} contains {RESERVED_INFIX!r}, reserved for namespace "
                "collections: its namespaces cannot be written"
            )
        if not valid_collection_name(name):
            raise ConfigError(
                f"namespace {namespace!r} of index {index!r} would be collection {name!r}, "
                "which Chroma does not accept (the index name is too long)"
            )
        spec = base.spec(index)
        metadata = {
            INDEX_KEY: index,
            NAMESPACE_KEY: namespace,
            SPEC_KEY: _spec_json(spec),
        }
        body = {
            "name": name,
            "configuration": _configuration_like(base),
            "metadata": metadata,
            "get_or_create": True,
        }
        with self._create_lock:
            existing = self._collection(name)
            if existing is not None:
                return existing
            log.info("creating collection %r for namespace %r of %r", name, namespace, index)
            try:
                made = _Collection.parse(
                    self._json("POST", f"{self._db}/collections", body=body, index=index)
                )
            except FatalError as exc:
                if exc.status != 409:
                    raise
            else:
                self._created.add(made.id)
                return made
            again = self._collection(name)
            if again is None:
                raise FatalError(f"collection {name!r} could not be created", **self._where(index))
            return again

    def _list_collections(self) -> list[_Collection]:
        self._connect()
        out: list[_Collection] = []
        offset = 0
        while True:
            page = self._json(
                "GET",
                f"{self._db}/collections",
                params={"limit": LIST_PAGE, "offset": offset},
            )
            if not page:
                return out
            out.extend(_Collection.parse(c) for c in page)
            offset += len(page)

    def _count(self, col: _Collection, index: str) -> int:
        return int(self._json("GET", f"{self._db}/collections/{col.id}/count", index=index))

    # -- Provider: indexes ---------------------------------------------------------------------
    def list_indexes(self) -> list[str]:
        return sorted(c.name for c in self._list_collections() if c.namespace_of() is None)

    def describe_index(self, index: str) -> IndexSpec:
        return self._base(index).spec(index)

    def list_namespaces(self, index: str) -> list[str]:
        base = self._base(index)
        found = [
            key[1]
            for key in (c.namespace_of() for c in self._list_collections())
            if key is not None and key[0] == index
        ]
        if self._count(base, index) > 0:
            found.append(DEFAULT_NAMESPACE)
        return sorted(set(found))

    def create_index(self, spec: IndexSpec) -> None:
        where = self._where(spec.name)
        if not valid_collection_name(spec.name):
            raise ConfigError(
                f"index name {spec.name!r} is not a valid Chroma collection name (3-512 "
                "characters of [a-zA-Z0-9._-], starting and ending with a letter or digit, "
                "no '..', not an IP address); map it to another name"
            )
        if RESERVED_INFIX in spec.name:
            raise ConfigError(
                f"index name {spec.name!r} contains {RESERVED_INFIX!r}, which vectra-io "
                "reserves for namespace collections in Chroma; map it to another name"
            )
        if spec.sparse:
            raise IncompatibleIndexError("Chroma cannot store sparse vectors", **where)
        if spec.named_vectors:
            raise IncompatibleIndexError(
                "Chroma stores one vector per record, not named vectors", **where
            )
        if spec.dimension is None:
            raise IncompatibleIndexError(
                "Chroma needs a dense vector of known dimension on every record (an empty "
                "source collection does not say its dimension)",
                **where,
            )
        if spec.metric not in METRICS:
            raise ConfigError(f"unknown metric {spec.metric!r}: use one of {METRICS}")
        if spec.metric not in METRIC_TO_SPACE:
            raise IncompatibleIndexError(
                f"Chroma has no {spec.metric} space (it has l2, cosine and ip)", **where
            )
        if spec.id_type not in ID_TYPES:
            raise ConfigError(f"unknown id type {spec.id_type!r}: use one of {ID_TYPES}")
        self._connect()
        existing = self._collection(spec.name)
        if existing is None:
            hnsw: dict[str, Any] = {"space": METRIC_TO_SPACE[spec.metric]}
            source = spec.raw_config.get("chroma") if spec.raw_config else None
            if isinstance(source, Mapping):  # a Chroma source: keep its HNSW parameters
                cfg = (source.get("configuration") or {}).get("hnsw") or {}
                hnsw.update({k: cfg[k] for k in HNSW_KEYS if cfg.get(k) is not None})
            body = {
                "name": spec.name,
                "configuration": {"hnsw": hnsw},
                "metadata": {SPEC_KEY: _spec_json(spec)},
                "get_or_create": False,
            }
            log.info("creating Chroma collection %r (%s)", spec.name, hnsw["space"])
            try:
                made = self._json("POST", f"{self._db}/collections", body=body, index=spec.name)
                self._created.add(str(made["id"]))
                return
            except FatalError as exc:
                if exc.status != 409:
                    raise
            existing = self._collection(spec.name)
            if existing is None:
                raise FatalError(f"collection {spec.name!r} could not be created", **where)
        if existing.namespace_of() is not None:
            raise IncompatibleIndexError(
                f"collection {spec.name!r} exists as a namespace collection", **where
            )
        have = existing.spec(spec.name).dimension
        if have is not None and have != spec.dimension:
            raise IncompatibleIndexError(
                f"index {spec.name!r} exists with dimension {have}, not {spec.dimension}",
                **where,
            )

    def delete_index(self, index: str) -> None:
        base = self._base(index)
        for col in self._list_collections():
            key = col.namespace_of()
            if key is not None and key[0] == index:
                self._delete_collection(col.name, index, missing_ok=True)
        self._delete_collection(base.name, index, missing_ok=False)

    def _delete_collection(self, name: str, index: str, *, missing_ok: bool) -> None:
        col = self._collection(name)
        if col is not None:
            self._purge_lists(col, index)
        try:
            self._send("DELETE", f"{self._db}/collections/{_quote(name)}", index=index)
        except IndexNotFoundError:
            if not missing_ok:
                raise

    # -- Provider: records -------------------------------------------------------------------------
    def count(self, index: str, namespace: str = DEFAULT_NAMESPACE) -> int:
        base = self._base(index)
        col = self._namespace(index, namespace, base)
        return 0 if col is None else self._count(col, index)

    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        if batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        offset = _cursor_offset(cursor)
        base = self._base(index)
        spec = base.spec(index)
        col = self._namespace(index, namespace, base)
        if col is None:
            return
        yield from self._pages(col, spec, offset, batch_size)

    def _get_raw(self, col: _Collection, index: str, **query: Any) -> bytes:
        body = {"include": INCLUDE, **query}
        path = f"{self._db}/collections/{col.id}/get"
        return self._send("POST", path, body=body, index=index).content

    def _pages(
        self, col: _Collection, spec: IndexSpec, offset: int, limit: int
    ) -> Iterator[ScanPage]:
        """Offset pages; the next page is requested before the current one is parsed.

        The end is an empty page (never a short one: a server may cap ``limit``), so the
        last page yielded has the cursor None.
        """
        schema = record_schema(spec)
        pool = ThreadPoolExecutor(2, thread_name_prefix="vectra-chroma-scan")
        ahead: tuple[int, Future[bytes]] | None = None

        def request(at: int) -> Future[bytes]:
            return pool.submit(self._get_raw, col, spec.name, limit=limit, offset=at)

        def take(at: int) -> bytes:
            nonlocal ahead
            fut = ahead[1] if ahead is not None and ahead[0] == at else request(at)
            ahead = None
            return fut.result()

        try:
            page = _loads_page(self._get_raw(col, spec.name, limit=limit, offset=offset))
            while page["ids"]:
                offset += len(page["ids"])
                if ahead is None or ahead[0] != offset:
                    ahead = (offset, request(offset))
                batch = _page_batch(page, spec, schema, col.name)
                raw = take(offset)
                if not _empty_page(raw):  # guess the next page is as long, ask for it now
                    guess = offset + len(page["ids"])
                    ahead = (guess, request(guess))
                page = _loads_page(raw)
                yield ScanPage(batch, {"offset": offset} if page["ids"] else None)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def fetch(
        self, index: str, ids: Sequence[str], namespace: str = DEFAULT_NAMESPACE
    ) -> pa.RecordBatch:
        base = self._base(index)
        spec = base.spec(index)
        schema = record_schema(spec)
        col = self._namespace(index, namespace, base)
        wanted = list(dict.fromkeys(str(i) for i in ids))
        if col is None or not wanted:
            return pa.RecordBatch.from_pylist([], schema=schema)
        pieces = []
        for start in range(0, len(wanted), FETCH_CHUNK):
            chunk = wanted[start : start + FETCH_CHUNK]
            page = _loads_page(self._get_raw(col, index, ids=chunk))
            if page["ids"]:
                pieces.append(_page_batch(page, spec, schema, col.name))
        if not pieces:
            return pa.RecordBatch.from_pylist([], schema=schema)
        table = pa.Table.from_batches(pieces, schema=schema).combine_chunks()
        position = {rid: i for i, rid in enumerate(wanted)}
        order = np.argsort([position[r] for r in table.column(ID).to_pylist()], kind="stable")
        return table.take(pa.array(order)).combine_chunks().to_batches()[0]

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        base = self._base(index)
        spec = base.spec(index)
        where = self._where(index)
        if spec.dimension is None:  # an empty collection made elsewhere: learn it here
            field = batch.schema.field(VALUES) if VALUES in batch.schema.names else None
            if field is None or not pa.types.is_fixed_size_list(field.type):
                raise IncompatibleIndexError(
                    f"the dimension of collection {base.name!r} is unknown and the records "
                    "have no dense vectors",
                    **where,
                )
            spec = replace(spec, dimension=field.type.list_size)
        try:
            batch = conform(batch, spec)
        except (ValueError, pa.ArrowException) as exc:  # conform lets ArrowTypeError through
            raise IncompatibleIndexError(
                f"the records do not fit index {index!r}: {exc}", **where
            ) from exc
        if batch.num_rows == 0:
            return {}
        ids = [str(i) for i in batch.column(ID).to_pylist()]
        metas = batch.column(METADATA).to_pylist()
        column = batch.column(VALUES)
        present = (
            np.ones(len(ids), dtype=bool)
            if column.null_count == 0
            else column.is_valid().to_numpy(zero_copy_only=False)
        )
        matrix = dense_matrix(column)
        finite = np.isfinite(matrix).all(axis=1)
        unsafe = _cosine_unsafe(matrix) if base.space == "cosine" else np.zeros(len(ids), bool)

        refused: dict[str, str] = {}
        last = {rid: row for row, rid in enumerate(ids)}  # repeated ids: the last one wins
        rows: list[int] = []
        out_metas: list[dict[str, Any] | None] = []
        docs: list[str | None] = []
        uris: list[str | None] = []
        for row in sorted(last.values()):
            rid = ids[row]
            reason = None
            if rid == "":
                reason = "Chroma does not accept an empty id"
            elif not present[row]:
                reason = "Chroma needs a dense vector on every record; this one has none"
            elif not finite[row]:
                reason = "NaN or infinite value in the vector"
            elif unsafe[row]:
                reason = (
                    "in a cosine collection Chroma stores this vector normalised and cannot "
                    "give it back (its squared norm over- or underflows float32)"
                )
            if reason is None:
                try:
                    meta, doc, uri = _chroma_metadata(metas[row])
                except _Refused as exc:
                    reason = str(exc)
                else:
                    rows.append(row)
                    out_metas.append(meta)
                    docs.append(doc)
                    uris.append(uri)
            if reason is not None:
                refused[rid] = reason
        if refused:
            log.warning(
                "index %r namespace %r: %d records refused, e.g. %s",
                index,
                namespace,
                len(refused),
                dict(list(refused.items())[:3]),
            )
        if not rows:
            return refused
        col = self._namespace(index, namespace, base, create=True)
        assert col is not None
        vectors = np.ascontiguousarray(matrix[rows], dtype="<f4")
        records = _Rows([ids[r] for r in rows], vectors, out_metas, docs, uris)
        max_rows = self._caps.max_batch_rows or len(records)
        for start in range(0, len(records), max_rows):
            piece = records.slice(start, start + max_rows)
            self._write(col, index, piece, refused, 0, delete=col.id not in self._created)
        return refused

    def _encode(self, rows: _Rows) -> bytes:
        if self._base64:
            embeddings: list[Any] = [
                base64.b64encode(v.tobytes()).decode("ascii") for v in rows.vectors
            ]
        else:
            embeddings = rows.vectors.tolist()
        body: dict[str, Any] = {"ids": rows.ids, "embeddings": embeddings}
        if any(m is not None for m in rows.metas):
            body["metadatas"] = rows.metas
        if any(d is not None for d in rows.docs):
            body["documents"] = rows.docs
        if any(u is not None for u in rows.uris):
            body["uris"] = rows.uris
        return _dumps(body)

    def _write(
        self,
        col: _Collection,
        index: str,
        rows: _Rows,
        refused: dict[str, str],
        rounds: int,
        *,
        delete: bool,
    ) -> None:
        """Delete the ids (when ``delete``), then upsert the records.

        Chroma's upsert merges into an existing record (metadata keys and a document the new
        version lacks survive) and is about 10x slower than an insert, hence the delete. In
        a collection this provider created, an id exists only if it wrote it before: the
        delete is skipped there, and a record the read-back finds merged is written again,
        deleted first.

        A body over the payload limit is split; a record the server refuses by position
        (400/422 naming ``metadatas[i]`` or "at index i") is refused and the rest resent.
        """
        if not len(rows):
            return
        body = self._encode(rows)
        if len(body) >= self._max_payload:
            if len(rows) == 1:
                refused[rows.ids[0]] = (
                    f"the record needs a request of {len(body)} bytes; Chroma accepts less "
                    f"than {self._max_payload}"
                )
                return
            half = len(rows) // 2
            self._write(col, index, rows.slice(0, half), refused, rounds, delete=delete)
            self._write(col, index, rows.slice(half, len(rows)), refused, rounds, delete=delete)
            return
        path = f"{self._db}/collections/{col.id}"
        if delete:
            self._send("POST", f"{path}/delete", body={"ids": rows.ids}, index=index)
        try:
            self._send("POST", f"{path}/upsert", content=body, index=index)
        except FatalError as exc:
            if exc.status == 413 and len(rows) > 1:
                self._max_payload = min(self._max_payload, len(body))
                self._write(col, index, rows, refused, rounds, delete=delete)
                return
            if exc.status not in (400, 413, 422):
                raise
            if "dimension" in exc.message.lower():
                raise IncompatibleIndexError(exc.message, **self._where(index)) from exc
            match = _POSITION.search(exc.message)
            pos = int(match.group(1)) if match else -1
            if 0 <= pos < len(rows) and rounds < MAX_PINPOINT_ROUNDS:
                refused[rows.ids[pos]] = f"Chroma refused the record: {exc.message}"
                self._write(col, index, rows.without(pos), refused, rounds + 1, delete=delete)
                return
            raise RecordsRejectedError(
                exc.message,
                failures={rid: exc.message for rid in rows.ids},
                **self._where(index),
                status=exc.status,
            ) from exc
        merged = self._check_written(col, index, rows, refused, merged_ok=not delete)
        if merged:
            log.info(
                "collection %r: %d records hold metadata, a document or a URI that was not "
                "written (an id written twice, or keys left by a deleted collection); "
                "writing them again, deleted first",
                col.name,
                len(merged),
            )
            self._write(col, index, rows.only(merged), refused, rounds, delete=True)

    def _purge_lists(self, col: _Collection, index: str) -> None:
        """Delete the records holding list metadata before their collection is deleted.

        Chroma 1.5 (single node, SQLite) keeps the list-valued metadata of a deleted
        collection (table ``embedding_metadata_array``) and attaches it to the records of
        a later collection that reuse the row ids; deleting the records first removes it.
        """
        doomed: list[str] = []
        offset = 0
        path = f"{self._db}/collections/{col.id}"
        while True:
            body = {"include": ["metadatas"], "limit": LIST_PAGE * 5, "offset": offset}
            page = _loads_page(self._send("POST", f"{path}/get", body=body, index=index).content)
            if not page["ids"]:
                break
            metas = page.get("metadatas") or [None] * len(page["ids"])
            for rid, meta in zip(page["ids"], metas, strict=True):
                if meta and any(isinstance(v, list) for v in meta.values()):
                    doomed.append(rid)
            offset += len(page["ids"])
        step = self._caps.max_batch_rows or LIST_PAGE
        for start in range(0, len(doomed), step):
            chunk = doomed[start : start + step]
            self._send("POST", f"{path}/delete", body={"ids": chunk}, index=index)

    def _check_written(
        self, col: _Collection, index: str, rows: _Rows, refused: dict[str, str], *, merged_ok: bool
    ) -> set[str]:
        """Read the batch's metadata back; remove keys Chroma attached that were not written.

        Chroma 1.5 (single node) can attach list metadata left behind by a deleted
        collection to new records (see ``_purge_lists``); such keys are deleted with an
        ``update`` setting them to null. A record still not holding exactly the metadata
        written is refused with the difference.

        With ``merged_ok`` (the ids were not deleted first), documents and URIs are read
        too, and the ids of records holding a key, document or URI that was not written
        are returned, to be written again after a delete.
        """
        path = f"{self._db}/collections/{col.id}"
        include = ["metadatas", "documents", "uris"] if merged_ok else ["metadatas"]
        for attempt in range(2):
            body = {"ids": rows.ids, "include": include}
            page = _loads_page(self._send("POST", f"{path}/get", body=body, index=index).content)
            n = len(page["ids"])
            stored = dict(zip(page["ids"], page.get("metadatas") or [None] * n, strict=True))
            docs = dict(zip(page["ids"], page.get("documents") or [None] * n, strict=True))
            uris = dict(zip(page["ids"], page.get("uris") or [None] * n, strict=True))
            stale: dict[str, list[str]] = {}
            merged: set[str] = set()
            for rid, want, doc, uri in zip(rows.ids, rows.metas, rows.docs, rows.uris, strict=True):
                if rid not in stored:
                    refused[rid] = "Chroma acknowledged the write but does not return the record"
                    continue
                have = stored[rid] or {}
                extra = sorted(k for k in have if k not in (want or {}))
                if merged_ok and (extra or docs[rid] != doc or uris[rid] != uri):
                    merged.add(rid)
                elif extra and attempt == 0:
                    stale[rid] = extra
                elif extra or not _same_json(have, want or {}):
                    refused[rid] = (
                        f"Chroma stores other metadata than written: {_diff(want or {}, have)}"
                    )
            if merged or not stale:
                return merged
            log.warning(
                "collection %r: Chroma attached %d records metadata keys that were not "
                "written (left behind by a deleted collection), e.g. %s; deleting them",
                col.name,
                len(stale),
                dict(list(stale.items())[:3]),
            )
            update = {
                "ids": list(stale),
                "metadatas": [dict.fromkeys(keys) for keys in stale.values()],
            }
            self._send("POST", f"{path}/update", body=update, index=index)
            rows = rows.only(set(stale))
        return set()

    def close(self) -> None:
        self._api.close()


# -- records ----------------------------------------------------------------------------------
@dataclass
class _Rows:
    ids: list[str]
    vectors: np.ndarray
    metas: list[dict[str, Any] | None]
    docs: list[str | None]
    uris: list[str | None]

    def __len__(self) -> int:
        return len(self.ids)

    def slice(self, start: int, stop: int) -> _Rows:
        return _Rows(
            self.ids[start:stop],
            self.vectors[start:stop],
            self.metas[start:stop],
            self.docs[start:stop],
            self.uris[start:stop],
        )

    def only(self, ids: set[str]) -> _Rows:
        keep = [i for i, rid in enumerate(self.ids) if rid in ids]
        return self.take(keep)

    def take(self, keep: list[int]) -> _Rows:
        return _Rows(
            [self.ids[i] for i in keep],
            self.vectors[keep],
            [self.metas[i] for i in keep],
            [self.docs[i] for i in keep],
            [self.uris[i] for i in keep],
        )

    def without(self, pos: int) -> _Rows:
        return self.take([i for i in range(len(self.ids)) if i != pos])


class _Refused(ValueError):
    """A record Chroma cannot hold exactly (the message is the reason)."""


def _chroma_metadata(text: str | None) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """vectra metadata -> (Chroma metadata, document, uri); raises _Refused."""
    if text is None:
        return None, None, None
    meta = json.loads(text)
    if not isinstance(meta, dict):
        raise _Refused("metadata is not a JSON object")
    carried: dict[str, str] = {}
    for key in (DOCUMENT_KEY, URI_KEY):
        if key in meta:
            value = meta.pop(key)
            if not isinstance(value, str):
                what = "document" if key == DOCUMENT_KEY else "URI"
                raise _Refused(
                    f"metadata key {key!r} holds the record's Chroma {what} and must be a "
                    f"string, not {_kind(value)}"
                )
            carried[key] = value
    for key, value in meta.items():
        problem = _value_problem(key, value)
        if problem:
            raise _Refused(f"metadata key {key!r}: {problem}")
    return (meta or None), carried.get(DOCUMENT_KEY), carried.get(URI_KEY)


def _value_problem(key: str, value: Any) -> str | None:
    if key == "":
        return "Chroma does not accept an empty key"
    if key[0] in "#$":
        return "Chroma reserves keys starting with '#' and '$'"
    if key.startswith("chroma:"):
        return "Chroma reserves keys starting with 'chroma:' (it drops them)"
    if value is None:
        return "null cannot be stored in Chroma metadata (a null deletes the key)"
    if isinstance(value, bool | str):
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= INT64_MAX else "integer beyond Chroma's int64"
    if isinstance(value, float):
        return None if math.isfinite(value) else "not a finite number"
    if isinstance(value, dict):
        return (
            "nested object; Chroma metadata is flat (strings, numbers, booleans and lists "
            "of one of them)"
        )
    if isinstance(value, list):
        return _list_problem(value)
    return f"unsupported value of type {type(value).__name__}"


def _list_problem(items: list[Any]) -> str | None:
    if not items:
        return "empty list (Chroma drops the key)"
    if all(isinstance(v, str) for v in items) or all(isinstance(v, bool) for v in items):
        return None
    numbers = not any(isinstance(v, bool) for v in items) and all(
        isinstance(v, int | float) for v in items
    )
    if not numbers:
        return "list mixing types or holding nulls, lists or objects; Chroma lists hold one type"
    if all(isinstance(v, int) for v in items):
        if all(INT64_MIN <= v <= INT64_MAX for v in items):
            return None
        return "list holding an integer beyond Chroma's int64"
    # ints next to floats become floats in Chroma: exact only up to 2**53
    if any(isinstance(v, int) and abs(v) > 2**53 for v in items):
        return "list mixing floats with integers beyond 2**53 (Chroma stores them as floats)"
    if not all(math.isfinite(v) for v in items):
        return "list holding a non-finite number"
    return None


def _same_json(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value (1 == 1.0), booleans apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _diff(want: Mapping[str, Any], have: Mapping[str, Any]) -> str:
    keys = sorted(k for k in set(want) | set(have) if not _same_json(want.get(k), have.get(k)))
    shown = ", ".join(f"{k!r}: wrote {want.get(k)!r}, reads {have.get(k)!r}" for k in keys[:3])
    return shown + (f" and {len(keys) - 3} more keys" if len(keys) > 3 else "")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _cosine_unsafe(matrix: np.ndarray) -> np.ndarray:
    """Rows whose float32 squared norm overflows or underflows to 0 (but are not zero):
    a cosine collection gives them back as nulls or zeros."""
    if not len(matrix):
        return np.zeros(0, dtype=bool)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        sq32 = np.einsum("ij,ij->i", matrix, matrix, dtype=np.float32)
        sq64 = np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64)
    nonzero = (matrix != 0).any(axis=1)
    overflow = ~np.isfinite(sq32) | (sq64 > F32_MAX * (1 - 2**-20))
    underflow = (sq32 == 0) & nonzero
    finite = np.isfinite(matrix).all(axis=1)
    result: np.ndarray = finite & (overflow | underflow)
    return result


def _loads_page(raw: bytes) -> dict[str, Any]:
    try:
        page = json.loads(raw)
    except ValueError as exc:
        raise FatalError("Chroma sent a get response that is not JSON") from exc
    if not isinstance(page, dict) or not isinstance(page.get("ids"), list):
        raise FatalError("Chroma sent a get response without ids")
    return page


def _empty_page(raw: bytes) -> bool:
    return len(raw) < 512 and not _loads_page(raw)["ids"]


def _page_batch(
    page: Mapping[str, Any], spec: IndexSpec, schema: pa.Schema, collection: str
) -> pa.RecordBatch:
    ids = [str(i) for i in page["ids"]]
    n = len(ids)
    metas = page.get("metadatas") or [None] * n
    docs = page.get("documents") or [None] * n
    uris = page.get("uris") or [None] * n
    columns: list[pa.Array] = []
    for f in schema:
        if f.name == ID:
            columns.append(pa.array(ids, pa.string()))
        elif f.name == VALUES:
            assert spec.dimension is not None
            matrix = _matrix(page.get("embeddings"), ids, spec.dimension, collection)
            columns.append(dense_array(matrix, spec.dimension))
        elif f.name == METADATA:
            columns.append(pa.array(_vectra_metadata(metas, docs, uris), pa.string()))
        else:  # pragma: no cover - Chroma indexes have no sparse or named vectors
            columns.append(pa.nulls(n, f.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _matrix(embeddings: Any, ids: list[str], dim: int, collection: str) -> np.ndarray:
    """The page's vectors as float32 in one conversion; null components become NaN."""
    if embeddings is None:
        raise FatalError(f"Chroma returned no embeddings for collection {collection!r}")
    try:
        matrix = np.array(embeddings, dtype=np.float32)
        if matrix.shape == (len(ids), dim):
            return matrix
    except (TypeError, ValueError):
        pass
    matrix = np.full((len(ids), dim), np.nan, dtype=np.float32)
    nulls = []
    for i, row in enumerate(embeddings):
        if row is not None and len(row) != dim:
            raise IncompatibleIndexError(
                f"record {ids[i]!r} of collection {collection!r} has {len(row)} dimensions, "
                f"the index {dim}"
            )
        if row is None or any(x is None for x in row):
            nulls.append(ids[i])
        if row is not None:
            matrix[i] = [math.nan if x is None else x for x in row]
    if nulls:
        log.warning(
            "collection %r: Chroma returned null vector components for %d records (e.g. %s); "
            "they are read as NaN and rejected",
            collection,
            len(nulls),
            nulls[:5],
        )
    return matrix


def _vectra_metadata(
    metas: Sequence[Any], docs: Sequence[Any], uris: Sequence[Any]
) -> list[str | None]:
    out: list[str | None] = []
    for meta, doc, uri in zip(metas, docs, uris, strict=True):
        if doc is not None or uri is not None:
            meta = dict(meta or {})
            if doc is not None:
                meta[DOCUMENT_KEY] = doc
            if uri is not None:
                meta[URI_KEY] = uri
        out.append(_dumps(meta).decode("utf-8") if meta else None)
    return out


# -- helpers ------------------------------------------------------------------------------------
def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(
        "utf-8"
    )


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _route(path: str) -> str:
    """A path for messages: the database prefix dropped, collection UUIDs kept."""
    return re.sub(r"^/api/v2/tenants/[^/]+/databases/[^/]+", "", path) or path


def _spec_json(spec: IndexSpec) -> str:
    data = spec.to_dict()
    data.pop("raw_config", None)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _configuration_like(base: _Collection) -> dict[str, Any]:
    """A configuration for a namespace collection: the index collection's space and HNSW."""
    hnsw = base.configuration.get("hnsw")
    if isinstance(hnsw, Mapping):
        cfg = {k: hnsw[k] for k in HNSW_KEYS if hnsw.get(k) is not None}
        return {"hnsw": {"space": base.space, **cfg}}
    if isinstance(base.configuration.get("spann"), Mapping):
        return {"spann": {"space": base.space}}
    return {"hnsw": {"space": base.space}}


def _cursor_offset(cursor: Cursor) -> int:
    if cursor is None:
        return 0
    value = cursor.get("offset") if isinstance(cursor, Mapping) else cursor
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigError(f"not a chroma scan cursor: {cursor!r}")


def _error_body(response: httpx.Response) -> tuple[str, str]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        return str(data.get("error") or "error"), str(data.get("message") or data)[:1000]
    text = response.text.strip()[:1000] or response.reason_phrase
    return "error", text


def _parse_location(location: str, tls: bool) -> tuple[str, int, str, str]:
    """``host[:port][/tenant/database]`` -> (host, port, tenant, database)."""
    text = location.strip()
    if not text:
        raise ConfigError("chroma provider needs a location: chroma://HOST:PORT[/TENANT/DATABASE]")
    parts = urllib.parse.urlsplit(f"//{text}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "chroma URL must not hold credentials: pass api_key or set $CHROMA_API_KEY"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"chroma location {text!r}: no query or fragment expected")
    host = parts.hostname
    if not host:
        raise ConfigError(f"chroma location {text!r} has no host")
    try:
        port = parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT)
    except ValueError as exc:
        raise ConfigError(f"chroma location {text!r}: bad port") from exc
    segments = [urllib.parse.unquote(s) for s in parts.path.split("/") if s]
    if not segments:
        return host, port, DEFAULT_TENANT, DEFAULT_DATABASE
    if len(segments) == 2:
        return host, port, segments[0], segments[1]
    raise ConfigError(f"chroma location {text!r}: expected HOST:PORT or HOST:PORT/TENANT/DATABASE")


__all__ = [
    "CHROMA_CAPABILITIES",
    "DOCUMENT_KEY",
    "URI_KEY",
    "ChromaProvider",
    "collection_name",
    "valid_collection_name",
]
