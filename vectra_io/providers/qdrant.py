"""The ``qdrant`` provider: Qdrant's REST API (v1.19 OpenAPI) spoken with httpx.

URL
    ``qdrant://HOST[:PORT][/PREFIX][?option=value&...]``; ``qdrant+https://...`` for TLS.
    The port defaults to 6333; ``/PREFIX`` is a path prefix for a server behind a proxy.
    The API key (``api_key=`` or ``$QDRANT_API_KEY``) is sent as the ``api-key`` header; it
    never appears in the endpoint, logs, errors or ``repr``, and is refused in the URL.
    Options, as URL query parameters or keyword arguments (keywords win):

    ``namespaces``       ``payload`` (default) or ``collection``: how namespaces are kept
    ``namespace_key``    payload key of the namespace in ``payload`` mode
                         (``_vectra_namespace``)
    ``namespace_index``  ``true`` (default): ``create_index`` also creates a keyword payload
                         index (``is_tenant``) on ``namespace_key`` in ``payload`` mode, so
                         namespace filters are indexed (required by strict-mode servers)
                         and ``list_namespaces`` can use ``/facet``
    ``sparse_name``      the Qdrant sparse vector created for the ``sparse_values`` column
                         (``sparse``); an existing collection's single sparse vector is used
                         whatever its name
    ``timeout``          read/write timeout in seconds (60); ``connect_timeout`` (10)
    ``max_connections``  pooled connections (32: the importer runs up to 16+ writes at once)
    ``max_batch_rows``   rows per upsert the engine is told (1000)
    ``max_request_bytes`` the server's body limit (``service.max_request_size_mb``: 32 MiB);
                         the engine is told 75% of it over ``wire_factor``, and an encoded
                         upsert body above it is split in halves before sending
    ``verify``           TLS certificate verification (``true``/``false`` or a CA bundle path)
    ``transport``        (keyword only) an ``httpx.BaseTransport``, for tests and proxies

Ids
    Qdrant point ids are unsigned 64-bit integers or UUIDs. Record ids are strings:
    ``"42"`` (a canonical uint64: no sign, no leading zero) is written as the integer 42
    and a canonical (lower-case, hyphenated) UUID as itself; any other string is written
    as ``uuid5(VECTRA_ID_NAMESPACE, id)`` (:mod:`vectra_io.ids`) with the original kept in
    the payload under ``_vectra_id``. Reading restores ``_vectra_id`` when present (and
    removes it from the metadata), else the point id as a string (integers in decimal,
    UUIDs hyphenated lower case). In ``payload`` namespace mode the ids of a non-default
    namespace are always mapped, to ``uuid5(uuid5(VECTRA_ID_NAMESPACE, "namespace:" + ns),
    id)``, because Qdrant point ids are unique per collection and the same id may live in
    several namespaces. ``IndexSpec.id_type`` is the one the index was created with (kept
    in the collection metadata); for other collections it is guessed from a sample of
    points ("string" when any carries ``_vectra_id`` or the collection is empty, else
    "uint64" or "uuid"). Every id type is accepted for writing, whatever the index says.

Namespaces
    ``payload`` mode (default): one collection per index; a record of namespace ``ns`` has
    ``namespace_key: ns`` in its payload, records of the default namespace ``""`` have no
    such key. Reads filter on it (``is_empty`` for ``""``), exports remove it from the
    metadata, imports set it. ``list_namespaces`` uses ``POST /facet`` (exact counts,
    paged with a ``must_not`` filter) when the key has a keyword payload index, otherwise
    it scrolls only that payload key (no vectors), and adds ``""`` when points without the
    key exist. ``collection`` mode: namespace ``ns`` of index ``idx`` is the collection
    ``idx__ns`` (``idx__~<hex of UTF-8>`` when ``ns`` has characters outside
    ``[A-Za-z0-9._-]``), created on first write with the index's configuration and marked
    in its collection metadata, which ``list_namespaces`` checks; ``list_indexes`` hides
    namespace collections; index names containing ``__`` are refused in this mode.

Vectors
    The default dense vector (``values``) is Qdrant's unnamed vector (named ``""`` when a
    collection also has named or sparse vectors); ``vector.<name>`` columns are Qdrant
    named vectors; the ``sparse_values`` column is the collection's sparse vector. A
    collection with a multivector (``multivector_config``) or with several sparse vectors
    is refused with :class:`UnsupportedError` at describe/scan (the snapshot format has no
    column for them): never dropped silently. Vectors travel as JSON numbers in the
    shortest form that round-trips float32 (orjson), bit-exact. Qdrant normalises vectors
    of ``Cosine`` collections on upload: describe sets ``normalized=True`` when any dense
    vector uses ``Cosine`` (the conformance suite and verify then compare directions).
    ``float16``/``uint8`` vector datatypes store reduced precision (a warning is logged).

Reads
    ``scan`` pages with ``POST /points/scroll`` (``with_payload: true``, ``with_vector:
    true`` - or the vector names, so an unnamed collection also returns its sparse vector),
    ordered by id; the cursor is ``next_page_offset`` (an int or a UUID string, JSON-safe)
    and the next page is requested while the current one is converted. Scroll is not a
    snapshot: writes during an export can be missed (freeze writers, compare counts).
    ``count`` is ``POST /points/count`` with ``exact: true``. A payload without user keys
    is exported as null metadata (Qdrant keeps no difference between ``{}`` and none).

Collection config
    ``IndexSpec.raw_config["qdrant"]`` carries the collection's ``params`` (vectors with
    their HNSW/quantization/datatype/on-disk settings, sparse vectors with their index and
    modifier, shards, replication), ``hnsw_config``, ``optimizer_config``, ``wal_config``,
    ``quantization_config``, ``strict_mode_config``, ``metadata`` and ``payload_schema``.
    ``create_index`` uses it when present (the source was Qdrant), with the spec's
    dimension and metric, and recreates the payload indexes (custom sharding is not
    carried: shard keys would be needed). vectra's own facts (id type; the metric of an
    index without a default vector; the index/namespace of a namespace collection) live in
    the collection metadata under ``vectra_io``. Strict-mode servers refuse filters on
    unindexed keys: collections vectra did not create need a keyword index on
    ``namespace_key`` for namespace filters (``PUT /collections/{c}/index``).

Writes and errors
    ``PUT /collections/{c}/points?wait=true`` (whole point replaced: idempotent). Records
    with non-finite vectors, repeated sparse indices, metadata holding integers beyond
    64 bits or vectra's reserved payload keys are refused by id; the rest is written.
    Connection errors, timeouts, 429 and 5xx raise :class:`RetryableError` (``retry_after``
    from ``Retry-After``); 401/403 :class:`AuthError`; a missing collection
    :class:`IndexNotFoundError`; a refused upsert :class:`RecordsRejectedError` (naming
    the records whose point ids the message mentions). The provider never retries or
    sleeps: the engine's RetryPolicy does.

Search
    ``query(index, vector, top_k, namespace, filter)`` uses ``POST /points/query`` and
    returns ``{id, score, metadata}`` with higher scores closer (Euclid/Manhattan
    distances negated); ``filter`` is metadata equality or a native Qdrant filter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import (
    AuthError,
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    ProviderError,
    RecordsRejectedError,
    UnsupportedError,
)
from ..ids import ORIGINAL_ID_KEY, VECTRA_ID_NAMESPACE, canonical_uuid, is_uint64
from ..metrics import from_provider, supported, to_provider
from ..records import (
    ID,
    METADATA,
    NAMED_PREFIX,
    SPARSE,
    VALUES,
    conform,
    dense_array,
    dense_matrix,
    dumps_metadata,
    record_schema,
    sparse_array,
)
from ._http import JsonApi, Wording, dumps, loads, netloc
from ._http import _orjson as _orjson
from ._http import parse_retry_after as parse_retry_after  # re-exported (public)
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
    parse_bool,
    spec_mismatch,
)

log = logging.getLogger("vectra_io.providers.qdrant")

DEFAULT_PORT = 6333
DEFAULT_NAMESPACE_KEY = "_vectra_namespace"
DEFAULT_SPARSE_NAME = "sparse"
UNNAMED = ""  # Qdrant's name of the default (unnamed) vector
META_KEY = "vectra_io"  # collection metadata entry vectra-io writes
NS_SEPARATOR = "__"
NS_HEX_MARK = "~"
#: ``service.max_request_size_mb: 32`` (config/config.yaml)
MAX_REQUEST_BYTES = 32 * 1024 * 1024
#: the engine is told this share of the hard limit (estimates are estimates)
REQUEST_HEADROOM = 0.75
DEFAULT_MAX_BATCH_ROWS = 1000
#: request bytes per Arrow byte of an upsert (orjson, shortest float32 text), measured on
#: 768-d vectors with string ids and small metadata: N(0,1) 2.73, unit-norm embeddings 3.09,
#: uniform [0,1) 2.66. Components of magnitude 1e-6..1e-5 print positionally (up to 17
#: bytes: 4.25 per float); the 25% headroom below the body limit absorbs that
#: (24 MiB / 3.5 * 4.25 = 29 MiB), and a body still too large is split before sending.
WIRE_FACTOR = 3.5
MAX_DIMENSION = 65536
FETCH_CHUNK = 1000
FACET_PAGE = 10_000
KEYS_PAGE = 10_000
ID_SAMPLE = 64

_LONG_DIGITS = re.compile(r"\d{19,}")
INT_MIN, UINT_MAX = -(2**63), 2**64 - 1
_SAFE_NS = re.compile(r"[A-Za-z0-9._-]+")
_INVALID_NAME_CHARS = set('<>:"/\\|?*\0\x1f')
_UUID_IN_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_INT_IN_TEXT = re.compile(r"(?<![\w.-])\d{1,20}(?![\w.])")

#: keys of the create-collection body that GET /collections/{c} returns in ``config.params``
_PARAM_KEYS = (
    "shard_number",
    "sharding_method",
    "replication_factor",
    "write_consistency_factor",
    "on_disk_payload",
    "payload",
)
#: config section in GET -> key in the create body
_CONFIG_KEYS = {
    "hnsw_config": "hnsw_config",
    "optimizer_config": "optimizers_config",
    "wal_config": "wal_config",
    "quantization_config": "quantization_config",
    "strict_mode_config": "strict_mode_config",
}

QDRANT_CAPABILITIES = Capabilities(
    max_batch_rows=DEFAULT_MAX_BATCH_ROWS,
    max_batch_bytes=int(MAX_REQUEST_BYTES * REQUEST_HEADROOM),
    id_types=frozenset(ID_TYPES),  # uint64 and UUIDs natively, other strings mapped
    metrics=supported("qdrant"),
    namespaces=True,
    sparse=True,
    named_vectors=True,
    exact_count=True,
    nested_metadata=True,
    idempotent_upsert=True,
    optional_dense=True,
    max_dimension=MAX_DIMENSION,
    exact_floats=True,
    wire_factor=WIRE_FACTOR,
)

_WORDING = Wording(
    timeout="Qdrant did not answer in time ({what}: {kind})",
    transport="cannot reach Qdrant ({what}): {detail}",
    other="request to Qdrant failed ({what}): {detail}",
)


# -- JSON ------------------------------------------------------------------------------
def _dumps_meta(meta: dict[str, Any]) -> str:
    if _orjson is not None:
        try:
            return _orjson.dumps(meta).decode("utf-8")
        except TypeError:
            pass
    text = dumps_metadata(meta)
    assert text is not None
    return text


# -- ids -------------------------------------------------------------------------------
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_VECTRA_NS_BYTES = VECTRA_ID_NAMESPACE.bytes


def _uuid5(namespace: bytes, name: str) -> str:
    """``str(uuid.uuid5(UUID(bytes=namespace), name))`` without building UUID objects
    (several times faster; tests check it against :func:`vectra_io.ids.mapped_uuid`)."""
    digest = bytearray(hashlib.sha1(namespace + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def point_id(record_id: str) -> tuple[int | str, bool]:
    """The point id of a record id of the default namespace, and whether it was mapped
    (:func:`vectra_io.ids.to_uuid_or_uint` with uint64 allowed)."""
    if is_uint64(record_id):
        return int(record_id), False
    if _CANONICAL_UUID.fullmatch(record_id):  # == canonical_uuid(record_id)
        return record_id, False
    return _uuid5(_VECTRA_NS_BYTES, record_id), True


def namespace_uuid(namespace: str) -> uuid.UUID:
    """The UUID namespace of the point ids of a vectra namespace (payload mode)."""
    return uuid.uuid5(VECTRA_ID_NAMESPACE, "namespace:" + namespace)


def _canonical_point(pid: Any) -> int | str:
    if isinstance(pid, int) or (isinstance(pid, str) and _CANONICAL_UUID.fullmatch(pid)):
        return pid
    canon = canonical_uuid(str(pid))
    return canon if canon is not None else str(pid)


# -- names -----------------------------------------------------------------------------
def namespace_collection(index: str, namespace: str) -> str:
    """The collection of namespace ``namespace`` of ``index`` in ``collection`` mode."""
    if namespace == DEFAULT_NAMESPACE:
        return index
    if _SAFE_NS.fullmatch(namespace):
        return f"{index}{NS_SEPARATOR}{namespace}"
    return f"{index}{NS_SEPARATOR}{NS_HEX_MARK}{namespace.encode('utf-8').hex()}"


def namespace_of_collection(index: str, name: str) -> str | None:
    """The namespace a collection name stands for under ``index`` (None when it does not)."""
    prefix = index + NS_SEPARATOR
    if not name.startswith(prefix) or len(name) == len(prefix):
        return None
    tail = name[len(prefix) :]
    if tail.startswith(NS_HEX_MARK):
        try:
            return bytes.fromhex(tail[1:]).decode("utf-8")
        except ValueError:
            return None
    return tail if _SAFE_NS.fullmatch(tail) else None


def _check_name(name: str) -> None:
    if not name or len(name) > 255 or any(c in _INVALID_NAME_CHARS for c in name):
        raise ConfigError(
            f"{name!r} is not a valid Qdrant collection name (1-255 characters, none of "
            '< > : " / \\ | ? *)'
        )


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# -- location / options ------------------------------------------------------------------
def _number(value: Any, option: str, kind: type = float, minimum: float = 0) -> Any:
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"qdrant provider: option {option} must be a number") from None
    if out <= minimum:
        raise ConfigError(f"qdrant provider: option {option} must be greater than {minimum}")
    return out


def parse_location(location: str) -> tuple[str, int, str, dict[str, str]]:
    """``host[:port][/prefix][?k=v&...]`` -> (host, port, prefix, options)."""
    text = location.strip()
    if not text:
        raise ConfigError("qdrant provider: no host given (qdrant://HOST:6333)")
    parts = urllib.parse.urlsplit("//" + text)
    if parts.username or parts.password:
        raise ConfigError(
            "qdrant provider: credentials do not belong in the URL; pass api_key= or set "
            "$QDRANT_API_KEY"
        )
    host = parts.hostname or ""
    if not host:
        raise ConfigError(f"qdrant provider: no host in {text.split('?')[0]!r}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"qdrant provider: bad port in {text.split('?')[0]!r}") from None
    options: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in ("api_key", "api-key", "apikey", "key", "token"):
            raise ConfigError(
                "qdrant provider: the API key does not belong in the URL; pass api_key= or "
                "set $QDRANT_API_KEY"
            )
        options[key] = value
    return host, port, parts.path.rstrip("/"), options


# -- collection info -------------------------------------------------------------------
@dataclass
class _Info:
    """What vectra needs to know about one collection (parsed from GET /collections/{c})."""

    name: str
    config: dict[str, Any]
    payload_schema: dict[str, Any]
    dense: dict[str, dict[str, Any]]  # vector name ("" = default) -> VectorParams
    sparse: dict[str, dict[str, Any]]
    named: bool  # vectors config is a map (not a single unnamed VectorParams)
    meta: dict[str, Any]  # our entry of the collection metadata
    spec: IndexSpec | None = None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, name: str, result: Mapping[str, Any]) -> _Info:
        config = dict(result.get("config") or {})
        params = dict(config.get("params") or {})
        vectors = params.get("vectors") or {}
        named = not (isinstance(vectors, Mapping) and "size" in vectors and "distance" in vectors)
        dense = {str(k): dict(v) for k, v in vectors.items()} if named else {UNNAMED: dict(vectors)}
        sparse = {str(k): dict(v or {}) for k, v in (params.get("sparse_vectors") or {}).items()}
        metadata = config.get("metadata") or {}
        meta = metadata.get(META_KEY) if isinstance(metadata, Mapping) else None
        info = cls(
            name=name,
            config=config,
            payload_schema=dict(result.get("payload_schema") or {}),
            dense=dense,
            sparse=sparse,
            named=named,
            meta=dict(meta) if isinstance(meta, Mapping) else {},
        )
        for vname, vparams in dense.items():
            if vparams.get("multivector_config"):
                info.problems.append(
                    f"vector {vname or '(default)'!r} is a multivector (multivector_config "
                    f"{vparams['multivector_config']})"
                )
        if len(sparse) > 1:
            info.problems.append(
                f"it has {len(sparse)} sparse vectors ({', '.join(sorted(sparse))}); the "
                "snapshot format holds one"
            )
        return info

    @property
    def sparse_name(self) -> str | None:
        return next(iter(self.sparse)) if len(self.sparse) == 1 else None

    @property
    def default_dense(self) -> dict[str, Any] | None:
        return self.dense.get(UNNAMED)

    def refuse_unsupported(self, provider: QdrantProvider) -> None:
        if self.problems:
            raise UnsupportedError(
                f"collection {self.name!r} cannot be carried by vectra-io: "
                + "; ".join(self.problems)
                + ". Refusing instead of dropping those vectors",
                **provider._where(self.name),
            )

    def with_vector(self) -> bool | list[str]:
        """The ``with_vector`` selector returning every vector vectra carries."""
        if not self.named and self.sparse:
            # an unnamed collection answers a bare list for ``true``: ask by name so sparse
            # vectors come too (as a map with "" for the default vector)
            return [UNNAMED, *self.sparse]
        return True

    def create_body(self) -> dict[str, Any]:
        """A create-collection body reproducing this collection's configuration."""
        params = self.config.get("params") or {}
        body: dict[str, Any] = {}
        vectors = params.get("vectors")
        if vectors is not None:
            body["vectors"] = vectors
        if params.get("sparse_vectors"):
            body["sparse_vectors"] = params["sparse_vectors"]
        for key in _PARAM_KEYS:
            if params.get(key) is not None:
                body[key] = params[key]
        for src, dst in _CONFIG_KEYS.items():
            value = self.config.get(src)
            if value is not None:
                body[dst] = _drop_nulls(value)
        if self.config.get("metadata") is not None:
            body["metadata"] = self.config["metadata"]
        return body


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value


def _vector_params(
    spec_dim: int, metric: str, template: Mapping[str, Any] | None
) -> dict[str, Any]:
    out = {k: v for k, v in (template or {}).items() if v is not None}
    out["size"] = int(spec_dim)
    out["distance"] = to_provider("qdrant", metric)
    return out


# -- the provider ----------------------------------------------------------------------
class QdrantProvider(ProviderBase):
    name: ClassVar[str] = "qdrant"

    def __init__(
        self,
        location: str = "",
        *,
        api_key: str | None = None,
        tls: bool = False,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        host, port, prefix, url_options = parse_location(location)
        opts: dict[str, Any] = {**url_options, **options}
        known = {
            "namespaces",
            "namespace_key",
            "namespace_index",
            "sparse_name",
            "timeout",
            "connect_timeout",
            "max_connections",
            "max_batch_rows",
            "max_request_bytes",
            "verify",
        }
        unknown = sorted(set(opts) - known)
        if unknown:
            raise ConfigError(f"qdrant provider: unknown options {unknown}; known: {sorted(known)}")
        mode = str(opts.get("namespaces", "payload")).lower()
        if mode not in ("payload", "collection"):
            raise ConfigError(
                f"qdrant provider: namespaces must be 'payload' or 'collection', not {mode!r}"
            )
        self.namespace_mode = mode
        self.namespace_key = str(opts.get("namespace_key", DEFAULT_NAMESPACE_KEY))
        if not self.namespace_key or self.namespace_key == ORIGINAL_ID_KEY:
            raise ConfigError(f"qdrant provider: namespace_key {self.namespace_key!r} is reserved")
        self.namespace_index = parse_bool(
            "qdrant", "namespace_index", opts.get("namespace_index", True)
        )
        self.sparse_name = str(opts.get("sparse_name", DEFAULT_SPARSE_NAME))
        if not self.sparse_name:
            raise ConfigError("qdrant provider: sparse_name must not be empty")
        timeout = _number(opts.get("timeout", 60.0), "timeout")
        connect_timeout = _number(opts.get("connect_timeout", 10.0), "connect_timeout")
        max_connections = _number(opts.get("max_connections", 32), "max_connections", int)
        max_rows = _number(
            opts.get("max_batch_rows", DEFAULT_MAX_BATCH_ROWS), "max_batch_rows", int
        )
        self.max_request_bytes = _number(
            opts.get("max_request_bytes", MAX_REQUEST_BYTES), "max_request_bytes", int, 1023
        )
        verify_opt = opts.get("verify", True)
        verify: bool | str
        if isinstance(verify_opt, bool):
            verify = verify_opt
        elif str(verify_opt).lower() in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            verify = parse_bool("qdrant", "verify", verify_opt)
        else:
            verify = str(verify_opt)

        scheme = "https" if tls else "http"
        hostport = netloc(host, port)
        self.endpoint = f"qdrant{'+https' if tls else ''}://{hostport}{prefix}"
        headers = {"accept": "application/json", "user-agent": "vectra-io"}
        if api_key:
            headers["api-key"] = api_key
        self._api = JsonApi(
            self.name,
            self.endpoint,
            wording=_WORDING,
            secrets=[api_key],
            base_url=f"{scheme}://{hostport}{prefix}",
            headers=headers,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            keepalive_expiry=30.0,
            verify=verify,
            transport=transport,
        )
        self.capabilities = replace(
            QDRANT_CAPABILITIES,
            max_batch_rows=max_rows,
            max_batch_bytes=int(self.max_request_bytes * REQUEST_HEADROOM),
        )
        self._infos: dict[str, _Info] = {}
        self._lock = threading.Lock()
        self._create_lock = threading.Lock()
        self._known_ns_collections: set[str] = set()

    def __repr__(self) -> str:
        return f"QdrantProvider({self.endpoint!r}, namespaces={self.namespace_mode!r})"

    def close(self) -> None:
        self._api.close()

    # -- HTTP ------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        index: str | None = None,
        not_found: type[ProviderError] | None = IndexNotFoundError,
        rejected: bool = False,
    ) -> Any:
        """One request; returns the ``result`` of Qdrant's answer or raises a vectra error."""
        what = f"{method} {path.split('?')[0]}"
        response = self._api.request(
            method, path, what=what, index=index, json_body=body, content=content, params=params
        )
        status = response.status_code
        if 200 <= status < 300:
            if not response.content:
                return None
            try:
                data = loads(response.content)
            except ValueError:
                raise FatalError(
                    f"Qdrant sent a body that is not JSON ({what})", **self._where(index)
                ) from None
            return data.get("result") if isinstance(data, Mapping) else data
        raise self._http_error(response, what, index, not_found, rejected)

    def _http_error(
        self,
        response: httpx.Response,
        what: str,
        index: str | None,
        not_found: type[ProviderError] | None,
        rejected: bool,
    ) -> ProviderError:
        status = response.status_code
        text = self._api.scrub(_error_text(response))
        message = f"Qdrant answered HTTP {status} to {what}: {text}"
        where = self._api.where(index, status)
        auth = (
            f"Qdrant refused the credentials (HTTP {status}); check the API key "
            f"(api_key= or $QDRANT_API_KEY): {text}"
        )
        common = self._api.common_status_error(response, message, auth, index)
        if common is not None:
            return common
        if status == 501:
            return UnsupportedError(message, **where)
        if status == 404 and not_found is not None:
            with self._lock:
                if index is not None:
                    self._infos.pop(index, None)
            return not_found(message, **where)
        if rejected and status in (400, 422):
            return RecordsRejectedError(message, **where)
        return FatalError(message, **where)

    # -- collections -----------------------------------------------------------------------
    def _fetch_info(self, name: str) -> _Info:
        _check_name(name)
        result = self._call("GET", f"/collections/{_quote(name)}", index=name)
        info = _Info.parse(name, result or {})
        with self._lock:
            self._infos[name] = info
        return info

    def _info(self, name: str, *, fresh: bool = False) -> _Info:
        if not fresh:
            with self._lock:
                info = self._infos.get(name)
            if info is not None:
                return info
        return self._fetch_info(name)

    def _maybe_info(self, name: str) -> _Info | None:
        try:
            return self._info(name)
        except IndexNotFoundError:
            return None

    def _forget(self, name: str) -> None:
        with self._lock:
            self._infos.pop(name, None)
            self._known_ns_collections.discard(name)

    def _collection_names(self) -> list[str]:
        result = self._call("GET", "/collections")
        return sorted(str(c["name"]) for c in (result or {}).get("collections", []))

    def _spec(self, info: _Info, index: str) -> IndexSpec:
        if info.spec is not None:
            return replace(info.spec, name=index) if info.spec.name != index else info.spec
        info.refuse_unsupported(self)
        dense = dict(info.dense)
        default = dense.pop(UNNAMED, None)
        named = {
            n: VectorSpec(int(p["size"]), from_provider("qdrant", p.get("distance")))
            for n, p in sorted(dense.items())
        }
        if default is not None:
            dimension: int | None = int(default["size"])
            metric = from_provider("qdrant", default.get("distance"))
        else:
            dimension = None
            stored = info.meta.get("metric")
            if isinstance(stored, str) and stored:
                metric = stored
            elif named:
                metric = next(iter(named.values())).metric
            else:
                metric = UNKNOWN_METRIC
        distances = [p.get("distance") for p in info.dense.values()]
        reduced = sorted(
            n or "(default)"
            for n, p in info.dense.items()
            if p.get("datatype") not in (None, "float32")
        )
        if reduced:
            log.warning(
                "collection %r stores vectors %s with reduced precision (datatype); exported "
                "values are what Qdrant keeps",
                info.name,
                ", ".join(reduced),
            )
        id_type = info.meta.get("id_type")
        if id_type not in ID_TYPES:
            id_type = self._guess_id_type(info.name)
        raw = {
            "qdrant": {
                "params": info.config.get("params") or {},
                **{k: info.config[k] for k in _CONFIG_KEYS if info.config.get(k) is not None},
                "metadata": info.config.get("metadata"),
                "payload_schema": {
                    k: {kk: vv for kk, vv in v.items() if kk in ("data_type", "params")}
                    for k, v in info.payload_schema.items()
                    if isinstance(v, Mapping)
                },
            }
        }
        spec = IndexSpec(
            name=index,
            dimension=dimension,
            metric=metric,
            id_type=str(id_type),
            named_vectors=named,
            sparse=bool(info.sparse),
            normalized="Cosine" in distances,
            raw_config=raw,
        )
        info.spec = spec
        return spec

    def _guess_id_type(self, collection: str) -> str:
        result = self._call(
            "POST",
            f"/collections/{_quote(collection)}/points/scroll",
            body={
                "limit": ID_SAMPLE,
                "with_payload": {"include": [ORIGINAL_ID_KEY]},
                "with_vector": False,
            },
            index=collection,
        )
        points = (result or {}).get("points") or []
        if not points:
            return "string"
        if any(ORIGINAL_ID_KEY in (p.get("payload") or {}) for p in points):
            return "string"
        if all(isinstance(p.get("id"), int) for p in points):
            return "uint64"
        if all(isinstance(p.get("id"), str) for p in points):
            return "uuid"
        return "string"

    # -- Provider: indexes -----------------------------------------------------------------
    def list_indexes(self) -> list[str]:
        names = self._collection_names()
        if self.namespace_mode != "collection":
            return names
        present = set(names)
        out = []
        for name in names:
            if NS_SEPARATOR in name and self._is_namespace_collection(name, present):
                continue
            out.append(name)
        return out

    def _is_namespace_collection(self, name: str, present: set[str]) -> bool:
        info = self._maybe_info(name)
        if info is None:
            return False
        index, namespace = info.meta.get("index"), info.meta.get("namespace")
        return (
            isinstance(index, str)
            and isinstance(namespace, str)
            and namespace != ""
            and namespace_collection(index, namespace) == name
        )

    def describe_index(self, index: str) -> IndexSpec:
        info = self._info(index, fresh=True)
        if self.namespace_mode == "collection" and self._is_namespace_collection(index, set()):
            raise IndexNotFoundError(
                f"{index!r} is a namespace collection, not an index", **self._where(index)
            )
        return self._spec(info, index)

    def create_index(self, spec: IndexSpec) -> None:
        _check_name(spec.name)
        if self.namespace_mode == "collection" and NS_SEPARATOR in spec.name:
            raise ConfigError(
                f"index {spec.name!r} contains {NS_SEPARATOR!r}, which namespace collections "
                "use in namespaces=collection mode"
            )
        if spec.metric == UNKNOWN_METRIC and spec.dimension is not None:
            raise ConfigError(f"index {spec.name!r}: the metric is unknown; give one")
        existing = self._maybe_fresh(spec.name)
        if existing is not None:
            self._check_compatible(self._spec(existing, spec.name), spec)
            # an earlier attempt may have created the collection but not all its indexes
            wanted = self._payload_schema_for(spec)
            missing = {k: v for k, v in wanted.items() if k not in existing.payload_schema}
            self._create_payload_indexes(spec.name, missing)
            return
        body = self._create_body(spec)
        payload_schema = self._payload_schema_for(spec)
        with self._create_lock:
            try:
                self._call(
                    "PUT",
                    f"/collections/{_quote(spec.name)}",
                    body=body,
                    index=spec.name,
                    not_found=None,
                )
            except FatalError as exc:
                if exc.status != 409:
                    raise
                again = self._info(spec.name, fresh=True)
                self._check_compatible(self._spec(again, spec.name), spec)
                return
            self._forget(spec.name)
            log.info("created collection %r on %s", spec.name, self.endpoint)
            self._create_payload_indexes(spec.name, payload_schema)

    def _maybe_fresh(self, name: str) -> _Info | None:
        try:
            return self._info(name, fresh=True)
        except IndexNotFoundError:
            return None

    def _check_compatible(self, existing: IndexSpec, spec: IndexSpec) -> None:
        problem = spec_mismatch(existing, spec)
        if problem:
            raise IncompatibleIndexError(f"index {spec.name!r} {problem}", **self._where(spec.name))

    def _create_body(self, spec: IndexSpec) -> dict[str, Any]:
        raw = spec.raw_config.get("qdrant") if isinstance(spec.raw_config, Mapping) else None
        raw = raw if isinstance(raw, Mapping) else {}
        params = raw.get("params") if isinstance(raw.get("params"), Mapping) else {}
        assert isinstance(params, Mapping)
        old_vectors = params.get("vectors") or {}
        old_single = isinstance(old_vectors, Mapping) and "size" in old_vectors
        old_named: Mapping[str, Any] = {} if old_single else dict(old_vectors)
        old_default = old_vectors if old_single else old_named.get(UNNAMED)

        vectors: dict[str, Any] = {}
        if spec.dimension is not None:
            vectors[UNNAMED] = _vector_params(spec.dimension, spec.metric, old_default)
        for name, vec in sorted(spec.named_vectors.items()):
            vectors[name] = _vector_params(vec.dimension, vec.metric, old_named.get(name))
        body: dict[str, Any] = {}
        if set(vectors) == {UNNAMED}:
            body["vectors"] = vectors[UNNAMED]
        elif vectors:
            body["vectors"] = vectors
        if spec.sparse:
            old_sparse = dict(params.get("sparse_vectors") or {})
            if len(old_sparse) == 1:
                body["sparse_vectors"] = {k: _drop_nulls(v or {}) for k, v in old_sparse.items()}
            else:
                body["sparse_vectors"] = {self.sparse_name: {}}
        for key in _PARAM_KEYS:
            if params.get(key) is not None:
                body[key] = params[key]
        if body.get("sharding_method") == "custom":
            log.warning(
                "index %r: the source used custom sharding; the target is created with "
                "automatic sharding (shard keys are not carried)",
                spec.name,
            )
            body.pop("sharding_method")
        for src, dst in _CONFIG_KEYS.items():
            value = raw.get(src)
            if isinstance(value, Mapping):
                body[dst] = _drop_nulls(value)
        metadata = (
            dict(raw.get("metadata") or {}) if isinstance(raw.get("metadata"), Mapping) else {}
        )
        ours: dict[str, Any] = {"id_type": spec.id_type}
        if spec.dimension is None:
            ours["metric"] = spec.metric
        metadata[META_KEY] = ours
        body["metadata"] = metadata
        return body

    def _payload_schema_for(self, spec: IndexSpec) -> dict[str, Any]:
        raw = spec.raw_config.get("qdrant") if isinstance(spec.raw_config, Mapping) else None
        schema: dict[str, Any] = {}
        if isinstance(raw, Mapping) and isinstance(raw.get("payload_schema"), Mapping):
            for fname, info in raw["payload_schema"].items():
                if not isinstance(info, Mapping):
                    continue
                field_schema = info.get("params") or info.get("data_type")
                if field_schema:
                    schema[str(fname)] = _drop_nulls(field_schema)
        if (
            self.namespace_mode == "payload"
            and self.namespace_index
            and self.namespace_key not in schema
        ):
            schema[self.namespace_key] = {"type": "keyword", "is_tenant": True}
        return schema

    def _create_payload_indexes(self, collection: str, schema: Mapping[str, Any]) -> None:
        for fname, field_schema in schema.items():
            self._call(
                "PUT",
                f"/collections/{_quote(collection)}/index",
                params={"wait": "true"},
                body={"field_name": fname, "field_schema": field_schema},
                index=collection,
            )
        if schema:
            self._forget(collection)

    def delete_index(self, index: str) -> None:
        _check_name(index)
        names = [index]
        if self.namespace_mode == "collection":
            names += [
                name
                for name in self._collection_names()
                if namespace_of_collection(index, name) is not None
                and self._is_namespace_collection(name, set())
            ]
        found = self._call("DELETE", f"/collections/{_quote(index)}", index=index)
        self._forget(index)
        for name in names[1:]:
            self._call("DELETE", f"/collections/{_quote(name)}", index=index, not_found=None)
            self._forget(name)
        if found is False:
            raise IndexNotFoundError(f"index {index!r} does not exist", **self._where(index))

    # -- namespaces --------------------------------------------------------------------------
    def _target(self, index: str, namespace: str) -> tuple[str, dict[str, Any] | None]:
        """(collection, filter) holding the records of ``namespace``."""
        if self.namespace_mode == "collection":
            return namespace_collection(index, namespace), None
        key = self.namespace_key
        if namespace == DEFAULT_NAMESPACE:
            return index, {"must": [{"is_empty": {"key": key}}]}
        return index, {"must": [{"key": key, "match": {"value": namespace}}]}

    def _ns_info(self, index: str, namespace: str) -> tuple[_Info | None, dict[str, Any] | None]:
        """The collection info and filter of a namespace; (None, None) when it has none."""
        base = self._info(index)
        collection, flt = self._target(index, namespace)
        if collection == index:
            return base, flt
        info = self._maybe_info(collection)
        if (
            info is None
            or info.meta.get("index") != index
            or info.meta.get("namespace") != namespace
        ):
            return None, None
        return info, flt

    def list_namespaces(self, index: str) -> list[str]:
        base = self._info(index, fresh=True)
        if self.namespace_mode == "collection":
            out = []
            if self._count(index, None) > 0:
                out.append(DEFAULT_NAMESPACE)
            for name in self._collection_names():
                ns = namespace_of_collection(index, name)
                if ns is None:
                    continue
                info = self._maybe_info(name)
                if (
                    info is not None
                    and info.meta.get("index") == index
                    and info.meta.get("namespace") == ns
                ):
                    out.append(ns)
            return sorted(out)
        found = self._namespace_values(base)
        _, default_filter = self._target(index, DEFAULT_NAMESPACE)
        if self._count(index, default_filter) > 0:
            found.add(DEFAULT_NAMESPACE)
        return sorted(found)

    def _namespace_values(self, info: _Info) -> set[str]:
        indexed = info.payload_schema.get(self.namespace_key)
        if isinstance(indexed, Mapping) and indexed.get("data_type") == "keyword":
            try:
                return self._facet_values(info.name)
            except FatalError as exc:  # no /facet (Qdrant < 1.12) or no usable index
                if exc.status not in (400, 404, 422, 501) or isinstance(exc, AuthError):
                    raise
                log.info("facet on %r failed (%s); scrolling the key instead", info.name, exc)
        return self._scrolled_values(info.name)

    def _facet_values(self, collection: str) -> set[str]:
        """Every value of the namespace key, by ``/facet`` pages excluding values seen."""
        found: set[str] = set()
        while True:
            body: dict[str, Any] = {"key": self.namespace_key, "limit": FACET_PAGE, "exact": True}
            if found:
                body["filter"] = {
                    "must_not": [{"key": self.namespace_key, "match": {"any": sorted(found)}}]
                }
            result = self._call(
                "POST", f"/collections/{_quote(collection)}/facet", body=body, index=collection
            )
            hits = (result or {}).get("hits") or []
            new = {h["value"] for h in hits if isinstance(h.get("value"), str) and h.get("count")}
            if not new - found:
                return found
            found |= new
            if len(hits) < FACET_PAGE:
                return found

    def _scrolled_values(self, collection: str) -> set[str]:
        """Every value of the namespace key, scrolling that payload key only."""
        found: set[str] = set()
        offset: Any = None
        key = self.namespace_key
        while True:
            body: dict[str, Any] = {
                "limit": KEYS_PAGE,
                "with_payload": {"include": [key]},
                "with_vector": False,
                "filter": {"must_not": [{"is_empty": {"key": key}}]},
            }
            if offset is not None:
                body["offset"] = offset
            result = (
                self._call(
                    "POST",
                    f"/collections/{_quote(collection)}/points/scroll",
                    body=body,
                    index=collection,
                )
                or {}
            )
            for p in result.get("points") or []:
                value = (p.get("payload") or {}).get(key)
                if isinstance(value, str) and value:
                    found.add(value)
            offset = result.get("next_page_offset")
            if offset is None:
                return found

    # -- counting ----------------------------------------------------------------------------
    def _count(self, collection: str, flt: Mapping[str, Any] | None) -> int:
        body: dict[str, Any] = {"exact": True}
        if flt is not None:
            body["filter"] = flt
        result = self._call(
            "POST", f"/collections/{_quote(collection)}/points/count", body=body, index=collection
        )
        return int((result or {}).get("count", 0))

    def count(self, index: str, namespace: str = DEFAULT_NAMESPACE) -> int:
        info, flt = self._ns_info(index, namespace)
        if info is None:
            return 0
        return self._count(info.name, flt)

    # -- reading -----------------------------------------------------------------------------
    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        base = self._info(index, fresh=True)
        spec = self._spec(base, index)
        info, flt = self._ns_info(index, namespace)
        if info is None:
            return
        info.refuse_unsupported(self)
        path = f"/collections/{_quote(info.name)}/points/scroll"
        body: dict[str, Any] = {
            "limit": max(1, int(batch_size)),
            "with_payload": True,
            "with_vector": info.with_vector(),
        }
        if flt is not None:
            body["filter"] = flt

        def page(offset: Any) -> dict[str, Any]:
            request = body if offset is None else {**body, "offset": offset}
            return self._call("POST", path, body=request, index=index) or {}

        # the next page is requested while this one is converted (one request ahead)
        ahead = ThreadPoolExecutor(1, thread_name_prefix="vectra-qdrant-scroll")
        try:
            pending = ahead.submit(page, cursor)
            while True:
                result = pending.result()
                offset = result.get("next_page_offset")
                if offset is not None:
                    pending = ahead.submit(page, offset)
                batch = self._to_batch(spec, info, result.get("points") or [], namespace)
                if batch.num_rows or offset is None:
                    yield ScanPage(batch, offset)
                if offset is None:
                    return
        finally:
            ahead.shutdown(wait=False, cancel_futures=True)

    def fetch(
        self, index: str, ids: Sequence[str], namespace: str = DEFAULT_NAMESPACE
    ) -> pa.RecordBatch:
        base = self._info(index)
        spec = self._spec(base, index)
        schema = record_schema(spec)
        info, _ = self._ns_info(index, namespace)
        wanted = list(dict.fromkeys(str(i) for i in ids))
        if info is None or not wanted:
            return pa.RecordBatch.from_pylist([], schema=schema)
        info.refuse_unsupported(self)
        qualified = self._qualified(namespace)
        pids = [self._point_id(rid, qualified)[0] for rid in wanted]
        path = f"/collections/{_quote(info.name)}/points"
        points: list[dict[str, Any]] = []
        for start in range(0, len(pids), FETCH_CHUNK):
            body = {
                "ids": pids[start : start + FETCH_CHUNK],
                "with_payload": True,
                "with_vector": info.with_vector(),
            }
            points.extend(self._call("POST", path, body=body, index=index) or [])
        batch = self._to_batch(spec, info, points, namespace)
        keep = set(wanted)
        got = batch.column(ID).to_pylist()
        seen: set[str] = set()
        mask = []
        for rid in got:
            mask.append(rid in keep and rid not in seen)
            seen.add(rid)
        return batch if all(mask) else batch.filter(pa.array(mask))

    def _to_batch(
        self, spec: IndexSpec, info: _Info, points: list[dict[str, Any]], namespace: str
    ) -> pa.RecordBatch:
        """Qdrant points -> a record batch of ``spec``; points of other namespaces dropped."""
        ns_key = self.namespace_key if self.namespace_mode == "payload" else None
        sparse_name = info.sparse_name
        ids: list[str] = []
        metas: list[str | None] = []
        dense: list[Any] = []
        named: dict[str, list[Any]] = {n: [] for n in spec.named_vectors}
        sparse: list[Any] = []
        for p in points:
            payload = p.get("payload") or {}
            if ns_key is not None:
                ns = payload.pop(ns_key, None)
                if (ns if isinstance(ns, str) and ns else DEFAULT_NAMESPACE) != namespace:
                    continue
            original = payload.pop(ORIGINAL_ID_KEY, None)
            pid = p.get("id")
            ids.append(original if isinstance(original, str) else str(_canonical_point(pid)))
            metas.append(_dumps_meta(payload) if payload else None)
            vec = p.get("vector")
            if isinstance(vec, list):  # the unnamed vector alone
                vec = {UNNAMED: vec}
            elif not isinstance(vec, Mapping):
                vec = {}
            if spec.dimension is not None:
                dense.append(_dense_value(vec.get(UNNAMED), info.name, UNNAMED))
            for name, column in named.items():
                column.append(_dense_value(vec.get(name), info.name, name))
            if spec.sparse:
                sv = vec.get(sparse_name) if sparse_name is not None else None
                sparse.append(sv if isinstance(sv, Mapping) else None)
        schema = record_schema(spec)
        columns: list[pa.Array] = []
        for f in schema:
            if f.name == ID:
                columns.append(pa.array(ids, pa.string()))
            elif f.name == VALUES:
                assert spec.dimension is not None
                columns.append(_dense_column(dense, spec.dimension))
            elif f.name == SPARSE:
                columns.append(sparse_array(sparse))
            elif f.name == METADATA:
                columns.append(pa.array(metas, pa.string()))
            else:
                name = f.name[len(NAMED_PREFIX) :]
                columns.append(_dense_column(named[name], spec.named_vectors[name].dimension))
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    # -- writing -----------------------------------------------------------------------------
    def _qualified(self, namespace: str) -> uuid.UUID | None:
        if self.namespace_mode == "payload" and namespace != DEFAULT_NAMESPACE:
            return namespace_uuid(namespace)
        return None

    @staticmethod
    def _point_id(record_id: str, qualified: uuid.UUID | None) -> tuple[int | str, bool]:
        if qualified is None:
            return point_id(record_id)
        return _uuid5(qualified.bytes, record_id), True

    def _write_target(self, index: str, namespace: str) -> _Info:
        base = self._info(index)
        if self.namespace_mode != "collection" or namespace == DEFAULT_NAMESPACE:
            return base
        name = namespace_collection(index, namespace)
        with self._lock:
            known = name in self._known_ns_collections
        if known:
            return self._info(name)
        with self._create_lock:
            info = self._maybe_fresh(name)
            if info is None:
                info = self._create_namespace_collection(index, namespace, name, base)
            if info.meta.get("index") != index or info.meta.get("namespace") != namespace:
                raise IncompatibleIndexError(
                    f"collection {name!r} exists but is not namespace {namespace!r} of index "
                    f"{index!r} (its metadata says otherwise); rename or delete it",
                    **self._where(index),
                )
            with self._lock:
                self._known_ns_collections.add(name)
            return info

    def _create_namespace_collection(
        self, index: str, namespace: str, name: str, base: _Info
    ) -> _Info:
        if NS_SEPARATOR in index:
            raise ConfigError(
                f"index {index!r} contains {NS_SEPARATOR!r}: its namespaces cannot be "
                "collections of their own"
            )
        _check_name(name)
        body = base.create_body()
        metadata = dict(body.get("metadata") or {})
        metadata[META_KEY] = {**base.meta, "index": index, "namespace": namespace}
        body["metadata"] = metadata
        log.info("creating collection %r for namespace %r of %r", name, namespace, index)
        try:
            self._call(
                "PUT", f"/collections/{_quote(name)}", body=body, index=index, not_found=None
            )
        except FatalError as exc:
            if exc.status != 409:
                raise
            return self._info(name, fresh=True)
        schema = {
            k: v.get("params") or v.get("data_type")
            for k, v in base.payload_schema.items()
            if isinstance(v, Mapping) and (v.get("params") or v.get("data_type"))
        }
        self._create_payload_indexes(name, schema)
        return self._info(name, fresh=True)

    def check_records(self, batch: pa.RecordBatch) -> dict[str, str]:
        """Plan pre-flight (:mod:`vectra_io.engine.plan`): ``{id: reason}`` for the records
        of ``batch`` an upsert would refuse (metadata with vectra's reserved keys or integers
        beyond 64 bits, repeated sparse indices) or whose id it would map to a UUID (the
        original kept under ``_vectra_id``, restored on export). Nothing is sent. The
        namespace is not known here: in ``payload`` mode the ids of a non-default namespace
        are all mapped, but only the ids mapped in every namespace are reported."""
        names = batch.schema.names
        n = batch.num_rows
        ids = batch.column(ID).to_pylist()
        metas = batch.column(METADATA).to_pylist() if METADATA in names else [None] * n
        sparse = _sparse_rows(batch.column(SPARSE)) if SPARSE in names else [None] * n
        reserved = (ORIGINAL_ID_KEY, self.namespace_key)
        out: dict[str, str] = {}
        for i, rid in enumerate(ids):
            out.pop(rid, None)  # a repeated id: the last row wins
            try:
                payload = _load_payload(metas[i])
            except ValueError as exc:
                out[rid] = f"refused: {exc}"
                continue
            clash = [k for k in reserved if k in payload]
            sv = sparse[i]
            if clash:
                out[rid] = f"refused: metadata uses the reserved key(s) {clash}"
            elif sv is not None and len(np.unique(sv["indices"])) != len(sv["indices"]):
                out[rid] = "refused: sparse_values repeats an index"
            elif point_id(rid)[1]:
                out[rid] = f"id mapped to a UUID (original kept in the payload {ORIGINAL_ID_KEY!r})"
        return out

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        base = self._info(index)
        spec = self._spec(base, index)
        names = record_schema(spec).names
        extra = [
            n
            for n in batch.schema.names
            if n not in names
            and (n in (SPARSE, VALUES) or n.startswith(NAMED_PREFIX))
            and batch.column(n).null_count < batch.num_rows
        ]
        if extra:
            raise IncompatibleIndexError(
                f"index {index!r} has no place for the column(s) {extra} of the records",
                **self._where(index),
            )
        try:
            batch = conform(batch, spec)
        except ValueError as exc:
            raise IncompatibleIndexError(
                f"the records do not fit index {index!r}: {exc}", **self._where(index)
            ) from None
        info = self._write_target(index, namespace)
        info.refuse_unsupported(self)
        points, refused = self._points(spec, info, batch, namespace)
        if points:
            self._put_points(info.name, index, points, refused)
        return refused

    def _points(
        self, spec: IndexSpec, info: _Info, batch: pa.RecordBatch, namespace: str
    ) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
        """(original id, point) for every record Qdrant can hold, and the refused ones."""
        n = batch.num_rows
        ids = batch.column(ID).to_pylist()
        refused: dict[str, str] = {}
        bad = np.zeros(n, dtype=bool)
        dense_cols: list[tuple[str, np.ndarray, np.ndarray]] = []
        for name in batch.schema.names:
            if name != VALUES and not name.startswith(NAMED_PREFIX):
                continue
            col = batch.column(name)
            matrix = np.ascontiguousarray(dense_matrix(col), dtype=np.float32)
            valid = (
                np.ones(n, dtype=bool)
                if col.null_count == 0
                else np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            )
            finite = np.isfinite(matrix).all(axis=1) if matrix.size else np.ones(n, dtype=bool)
            for j in np.flatnonzero(valid & ~finite).tolist():
                refused.setdefault(ids[j], f"{name} holds NaN or infinite values")
                bad[j] = True
            qname = UNNAMED if name == VALUES else name[len(NAMED_PREFIX) :]
            dense_cols.append((qname, matrix, valid))
        sparse_rows: list[dict[str, Any] | None] = [None] * n
        if SPARSE in batch.schema.names and info.sparse_name is not None:
            sparse_rows = _sparse_rows(batch.column(SPARSE))
            for r, sv in enumerate(sparse_rows):
                if sv is None:
                    continue
                vals, idx = sv["values"], sv["indices"]
                if not np.isfinite(vals).all():
                    refused.setdefault(ids[r], "sparse_values holds NaN or infinite values")
                    bad[r] = True
                elif len(np.unique(idx)) != len(idx):
                    refused.setdefault(ids[r], "sparse_values repeats an index")
                    bad[r] = True
        metas = batch.column(METADATA).to_pylist()
        qualified = self._qualified(namespace)
        ns_value = namespace if qualified is not None else None
        reserved = (ORIGINAL_ID_KEY, self.namespace_key)
        sparse_name = info.sparse_name
        simple = not info.named and sparse_name is None
        points: list[tuple[str, dict[str, Any]]] = []
        for i in range(n):
            if bad[i]:
                continue
            rid = ids[i]
            text = metas[i]
            try:
                payload = _load_payload(text)
            except ValueError as exc:
                refused[rid] = str(exc)
                continue
            if (text and "_vectra" in text) or self.namespace_key in payload:
                clash = [k for k in reserved if k in payload]
                if clash:
                    refused[rid] = f"metadata uses the reserved key(s) {clash}"
                    continue
            pid, mapped = self._point_id(rid, qualified)
            if mapped:
                payload[ORIGINAL_ID_KEY] = rid
            if ns_value is not None:
                payload[self.namespace_key] = ns_value
            vectors: dict[str, Any] = {}
            for qname, matrix, valid in dense_cols:
                if valid[i]:
                    vectors[qname] = matrix[i]
            sv = sparse_rows[i]
            if sv is not None and sparse_name is not None:
                vectors[sparse_name] = sv
            vector: Any = vectors[UNNAMED] if simple and UNNAMED in vectors else vectors
            points.append((rid, {"id": pid, "vector": vector, "payload": payload}))
        return points, refused

    def _put_points(
        self,
        collection: str,
        index: str,
        points: list[tuple[str, dict[str, Any]]],
        refused: dict[str, str],
    ) -> None:
        try:
            content = dumps({"points": [p for _, p in points]})
        except TypeError:  # an integer beyond 64 bits somewhere in the payloads
            keep = []
            for rid, p in points:
                try:
                    dumps(p["payload"])
                except TypeError as exc:
                    refused[rid] = f"metadata cannot be stored by Qdrant: {exc}"
                else:
                    keep.append((rid, p))
            if not keep:
                return
            points = keep
            content = dumps({"points": [p for _, p in points]})
        if len(content) > self.max_request_bytes and len(points) > 1:
            half = len(points) // 2
            self._put_points(collection, index, points[:half], refused)
            self._put_points(collection, index, points[half:], refused)
            return
        try:
            self._call(
                "PUT",
                f"/collections/{_quote(collection)}/points?wait=true",
                content=content,
                index=index,
                rejected=True,
            )
        except RecordsRejectedError as exc:
            exc.failures = _name_points(str(exc.message), points)
            raise

    # -- search ------------------------------------------------------------------------------
    def query(
        self,
        index: str,
        vector: Sequence[float],
        top_k: int = 10,
        namespace: str = DEFAULT_NAMESPACE,
        filter: Mapping[str, Any] | None = None,
        vector_name: str | None = None,
    ) -> list[dict[str, Any]]:
        """Nearest records as ``{id, score, metadata}``; ``score`` is higher for closer
        records (Euclid/Manhattan distances are negated). ``filter`` matches metadata keys
        by equality (``{"genre": "jazz"}``), or is a Qdrant filter when its keys are
        ``must``/``should``/``must_not``/``min_should``."""
        info, ns_filter = self._ns_info(index, namespace)
        if info is None:
            return []
        info.refuse_unsupported(self)
        using = UNNAMED if vector_name is None else vector_name
        params = info.dense.get(using)
        if params is None:
            raise ConfigError(f"index {index!r} has no dense vector {vector_name or '(default)'!r}")
        q = np.asarray(vector, dtype=np.float32)
        if not np.isfinite(q).all():
            raise ConfigError("the query vector holds NaN or infinite values")
        body: dict[str, Any] = {
            "query": np.ascontiguousarray(q),
            "limit": max(1, int(top_k)),
            "with_payload": True,
        }
        if info.named:
            body["using"] = using
        must = list((ns_filter or {}).get("must") or [])
        user = _user_filter(filter)
        if user is not None:
            must.append(user)
        if must:
            body["filter"] = {"must": must}
        result = (
            self._call(
                "POST", f"/collections/{_quote(info.name)}/points/query", body=body, index=index
            )
            or {}
        )
        sign = 1.0 if params.get("distance") in ("Cosine", "Dot") else -1.0
        out = []
        for p in result.get("points") or []:
            payload = dict(p.get("payload") or {})
            if self.namespace_mode == "payload":
                payload.pop(self.namespace_key, None)
            original = payload.pop(ORIGINAL_ID_KEY, None)
            rid = original if isinstance(original, str) else str(_canonical_point(p.get("id")))
            out.append({"id": rid, "score": sign * float(p["score"]), "metadata": payload or None})
        return out


# -- helpers ---------------------------------------------------------------------------
def _error_text(response: httpx.Response) -> str:
    try:
        data = loads(response.content) if response.content else None
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        status = data.get("status")
        if isinstance(status, Mapping) and status.get("error"):
            return str(status["error"])
        if isinstance(status, str):
            return status
    text = response.text.strip() if response.content else ""
    return text[:500] or response.reason_phrase or "no details"


def _load_payload(text: str | None) -> dict[str, Any]:
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


def _dense_value(value: Any, collection: str, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, list) and value and isinstance(value[0], list):
        raise UnsupportedError(
            f"collection {collection!r}: vector {name or '(default)'!r} holds a multivector; "
            "vectra-io cannot carry multivectors"
        )
    return value if isinstance(value, list) else None


def _dense_column(rows: list[Any], dimension: int) -> pa.Array:
    present = [r for r in rows if r is not None]
    if len(present) == len(rows):
        if not rows:
            return pa.FixedSizeListArray.from_arrays(pa.array([], pa.float32()), dimension)
        matrix = np.asarray(rows, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != dimension:
            raise FatalError(f"Qdrant returned vectors of another dimension than {dimension}")
        return dense_array(matrix, dimension)
    return dense_array(rows, dimension)


def _sparse_rows(col: pa.Array) -> list[dict[str, Any] | None]:
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


def _name_points(message: str, points: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """The records a Qdrant error message names (by point id), mapped to the message."""
    by_point = {str(p["id"]): rid for rid, p in points}
    named: dict[str, str] = {}
    for token in _UUID_IN_TEXT.findall(message) + _INT_IN_TEXT.findall(message):
        rid = by_point.get(token.lower())
        if rid is not None:
            named[rid] = message
    return named


def _user_filter(filter: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A Qdrant filter from a metadata equality filter (or a native Qdrant filter)."""
    if not filter:
        return None
    if set(filter) <= {"must", "should", "must_not", "min_should"}:
        return dict(filter)
    must: list[dict[str, Any]] = []
    for key, value in filter.items():
        if key in (ORIGINAL_ID_KEY,):
            raise ConfigError(f"cannot filter on the reserved key {key!r}")
        if value is None:
            must.append({"is_null": {"key": key}})
        elif isinstance(value, bool | str) or (
            isinstance(value, int) and -(2**63) <= value < 2**63
        ):
            must.append({"key": key, "match": {"value": value}})
        elif isinstance(value, int | float):
            must.append({"key": key, "range": {"gte": value, "lte": value}})
        else:
            raise UnsupportedError(
                f"filter on {key!r}: only strings, numbers, booleans and null compare by "
                "equality; pass a Qdrant filter ({'must': [...]}) for more"
            )
    return {"must": must}
