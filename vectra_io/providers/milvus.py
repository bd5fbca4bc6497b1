"""The ``milvus`` provider: Milvus server (gRPC, pymilvus) and embedded Milvus Lite stores.

URLs
----
- ``milvus://host:19530`` is a Milvus server over gRPC (``http://host:19530``);
  ``milvus+https://host:443`` (or ``tls=True``) uses TLS. The port defaults to 19530.
- ``milvus://host:19530/mydb`` selects database ``mydb`` (so does the option ``db=``;
  both at once must agree). Without either: the server's default database.
- ``milvus:///abs/path/lite.db`` or ``milvus://./rel/lite.db`` is an embedded Milvus Lite
  store (pymilvus's rule: the path ends in ``.db``; Milvus Lite keeps a directory there
  and serves it in-process on a local gRPC port).

The token (``user:password`` or an API key) comes from ``api_key`` or ``$MILVUS_TOKEN``;
credentials in the URL are refused, and the token never appears in ``endpoint``, logs or
error messages.

Options: ``db``; ``timeout`` (seconds per call, default 60); ``metadata`` (``"text"``,
the default, or ``"json"``: the type of the ``metadata`` field of created collections);
``index_type`` of created collections (default ``AUTOINDEX``, ``FLAT`` on Milvus Lite,
whose AUTOINDEX is an HNSW built in the background); ``flush_on_close`` (default true:
``close()`` flushes the collections it wrote to).

Mapping
-------
- index = collection; namespace = partition; the default namespace ``""`` is the
  ``_default`` partition. A namespace that is a valid Milvus name (a letter, then
  letters, digits, ``_``; at most 255 characters) and does not start with ``_vx_`` is
  the partition name as is; any other namespace becomes ``_vx_`` + its UTF-8 bytes with
  every byte outside ``[A-Za-z0-9]`` written as ``_`` + two lower-case hex digits
  (``"my-ns"`` -> ``_vx_my_2dns``, ``"_default"`` -> ``_vx__5fdefault``): reversible.
  A primary key is unique across a collection's partitions, so an id lives in one
  namespace of a collection: writing it into another namespace is refused (by id).
  Collections with a partition key have one namespace, ``""``.
- Collections created here: ``id`` primary key (VARCHAR(65535) for id types ``string``
  and ``uuid``, INT64 for ``uint64``; ``auto_id`` off), ``vector`` FLOAT_VECTOR(dim),
  ``sparse_values`` SPARSE_FLOAT_VECTOR (sparse indexes), a FLOAT_VECTOR per named
  vector (its name when that is a valid field name, else ``_vx_`` + escaped) and
  ``metadata``: the record's metadata as its exact JSON text in a nullable VARCHAR(65535)
  (Milvus JSON fields refuse integers beyond 64 bits; ``metadata="json"`` makes it a
  filterable JSON field taking int64 integers). The IndexSpec and this layout are kept
  in the collection property ``vectra.spec``; no dynamic field; consistency Strong.
- Other collections: the primary key is the id (INT64 -> id type ``uint64``, VARCHAR
  -> ``string``); the FLOAT_VECTOR field ``vector`` (else the first one) gives
  ``values``, other FLOAT_VECTOR fields are named vectors under their field names, the
  SPARSE_FLOAT_VECTOR field gives ``sparse_values``; every scalar field and every key of
  the dynamic field becomes a metadata key. Writing into such a collection maps metadata
  keys back to fields (other keys go to the dynamic field, or the record is refused).
- Metric: from the index of the vector field, ``COSINE``/``IP``/``L2`` ->
  cosine/dot/euclidean (anything else, or no index: ``unknown``).

Writes are upserts (an insert duplicates existing primary keys). A collection with
``auto_id`` is refused as a target: Milvus would give every upserted row a new key.
Every entity carries every vector field, so records without a dense, named or (in sparse
collections) non-empty sparse vector are refused. Scans page by primary key
(``pk > last``, with the query iterator's ordering flag), so a cursor
(``{"after": last_pk}``) resumes in another process.

Milvus Lite (3.2) has no write lock of its own: an upsert that overlaps another one's
MemTable flush can be acknowledged and then lost. So the provider sends one write
(upsert, delete, flush) at a time to a Lite store, across every provider of the process;
the rest (building rows, queries) stays concurrent. Two processes writing to one Lite
server at once are not protected.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import (
    AuthError,
    ConfigError,
    DriverMissingError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    ProviderError,
    RecordsRejectedError,
    RetryableError,
    UnsupportedError,
)
from ..records import (
    ID,
    METADATA,
    SPARSE,
    VALUES,
    conform,
    dense_matrix,
    dumps_metadata,
    named_column,
    non_finite_rows,
    record_schema,
    sparse_array,
)
from .base import (
    DEFAULT_NAMESPACE,
    UNKNOWN_METRIC,
    Capabilities,
    Cursor,
    IndexSpec,
    ProviderBase,
    ScanPage,
    VectorSpec,
    parse_bool,
)

log = logging.getLogger("vectra_io.providers.milvus")

DEFAULT_PORT = 19530
DEFAULT_PARTITION = "_default"
SPEC_PROPERTY = "vectra.spec"
LAYOUT_VERSION = 1
VARCHAR_MAX = 65_535
MAX_DIMENSION = 32_768
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
SPARSE_INDEX_LIMIT = 2**32 - 1  # indices must be below it
#: rows per query RPC (Milvus caps limit+offset at 16,384) and bytes per page we aim for
MAX_QUERY_ROWS = 16_384
QUERY_BYTES = 16 * 1024 * 1024
FETCH_CHUNK = 512
CONFLICT_CHUNK = 1024
#: upsert calls spent isolating refused records before the rest of a sub-batch is refused
BISECT_BUDGET = 128

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
PLAIN_NAMESPACE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,254}")
ESCAPE_PREFIX = "_vx_"
_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

TO_MILVUS_METRIC = {"cosine": "COSINE", "dot": "IP", "euclidean": "L2"}
FROM_MILVUS_METRIC = {v: k for k, v in TO_MILVUS_METRIC.items()}

# pymilvus DataType values (kept numeric so this module imports without pymilvus)
BOOL, INT8, INT16, INT32, INT64 = 1, 2, 3, 4, 5
FLOAT, DOUBLE, VARCHAR, ARRAY, JSON_T = 10, 11, 21, 22, 23
BINARY_VECTOR, FLOAT_VECTOR, FLOAT16_VECTOR, BFLOAT16_VECTOR = 100, 101, 102, 103
SPARSE_FLOAT_VECTOR, INT8_VECTOR = 104, 105
DYNAMIC_FIELD = "$meta"

#: The provider's own gRPC connection (closed with it, not pooled for the whole process),
#: sending no keepalive pings while no call is active. pymilvus pings every 10 s even when
#: idle; Milvus Lite's gRPC server counts those as abuse and drops the connection with
#: GOAWAY "too many pings", which then fails a later call or connection in the process.
CONNECTION_OPTIONS: dict[str, Any] = {
    "dedicated": True,
    "grpc_options": {"grpc.keepalive_permit_without_calls": False},
}

#: calls that change a Milvus Lite store, sent one at a time per store (see the docstring)
_LITE_WRITES = frozenset({"upsert", "insert", "delete", "flush"})
_lite_write_locks: dict[str, threading.Lock] = {}
_lite_write_locks_guard = threading.Lock()


def _lite_write_lock(endpoint: str) -> threading.Lock:
    """The process-wide lock of the Milvus Lite store at ``endpoint``."""
    with _lite_write_locks_guard:
        return _lite_write_locks.setdefault(endpoint, threading.Lock())


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

# merr codes (milvus pkg/util/merr/errors.go) that may succeed when tried again
_RETRYABLE_CODES = frozenset({2, 4, 8, 12, 103, 106, 202, 1002, 1807, 10001})
_AUTH_CODES = frozenset({1400, 1401, 1800})
_INPUT_CODES = frozenset({1100, 1101, 1102, 1804, 1806})
# legacy common.ErrorCode values
_LEGACY_RETRYABLE = frozenset({2, 45, 46, 49, 53, 55, 56, 57})
_LEGACY_PERMISSION_DENIED = 3
_LEGACY_ILLEGAL_ARGUMENT = frozenset({5, 6, 7, 11})
_COLLECTION_NOT_LOADED = 101


# -- names --------------------------------------------------------------------------
def _escape(text: str) -> str:
    return "".join(chr(b) if b in _SAFE_BYTES else f"_{b:02x}" for b in text.encode("utf-8"))


def _unescape(text: str) -> str | None:
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "_":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or not re.fullmatch(r"[0-9a-f]{2}", pair):
                return None
            out.append(int(pair, 16))
            i += 3
        else:
            out.extend(ch.encode("ascii", "replace"))
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def partition_for(namespace: str) -> str:
    """The partition name of a namespace (reversible, see the module docstring)."""
    if namespace == DEFAULT_NAMESPACE:
        return DEFAULT_PARTITION
    if PLAIN_NAMESPACE_RE.fullmatch(namespace) and not namespace.startswith(ESCAPE_PREFIX):
        return namespace
    return ESCAPE_PREFIX + _escape(namespace)


def namespace_for(partition: str) -> str:
    """The namespace of a partition name (inverse of :func:`partition_for`)."""
    if partition == DEFAULT_PARTITION:
        return DEFAULT_NAMESPACE
    if partition.startswith(ESCAPE_PREFIX):
        decoded = _unescape(partition[len(ESCAPE_PREFIX) :])
        if decoded is not None and partition_for(decoded) == partition:
            return decoded
    return partition


def _named_field(name: str, reserved: set[str]) -> str:
    if NAME_RE.fullmatch(name) and name not in reserved and not name.startswith(ESCAPE_PREFIX):
        return name
    return ESCAPE_PREFIX + _escape(name)


def _literal(value: Any) -> str:
    """A Milvus expression literal for a primary-key value."""
    if isinstance(value, int):
        return str(value)
    text = (
        str(value)
        .replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )
    return f'"{text}"'


# -- the layout of one collection -----------------------------------------------------
@dataclass
class _Scalar:
    name: str
    dtype: int
    nullable: bool
    has_default: bool


@dataclass
class _Layout:
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


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


class MilvusProvider(ProviderBase):
    """Milvus (server or embedded Lite) through pymilvus."""

    name: ClassVar[str] = "milvus"

    def __init__(
        self,
        location: str,
        *,
        api_key: str | None = None,
        tls: bool = False,
        **options: Any,
    ) -> None:
        opts = dict(options)
        db = opts.pop("db", None)
        timeout = opts.pop("timeout", 60.0)
        self._metadata_format = str(opts.pop("metadata", "text")).lower()
        index_type = opts.pop("index_type", None)
        self._index_type = str(index_type).upper() if index_type else None
        self._flush_on_close = parse_bool(
            "milvus", "flush_on_close", opts.pop("flush_on_close", True)
        )
        if opts:
            raise ConfigError(f"milvus provider: unknown options {sorted(opts)}")
        if self._metadata_format not in ("text", "json"):
            raise ConfigError("milvus option metadata must be 'text' or 'json'")
        try:
            self._timeout = float(timeout) if timeout is not None else None
        except (TypeError, ValueError):
            raise ConfigError(f"milvus option timeout must be seconds, got {timeout!r}") from None
        uri, self.endpoint, self._db, self.embedded = _parse_location(location, tls, db)
        self._token = api_key or ""
        self.capabilities = MILVUS_CAPABILITIES
        self._lock = threading.RLock()
        self._layouts: dict[str, _Layout] = {}
        self._partitions: dict[str, set[str]] = {}
        self._loaded: set[str] = set()
        self._written: set[str] = set()
        self._lite_flushed: set[str] = set()
        self._warned_nonfinite = False
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:  # pragma: no cover - the registry checks first
            raise DriverMissingError(
                'the milvus provider needs pymilvus: pip install "vectra-io[milvus]"'
            ) from exc
        kwargs: dict[str, Any] = {"uri": uri, "timeout": self._timeout, **CONNECTION_OPTIONS}
        if self._token and not self.embedded:
            kwargs["token"] = self._token
        if self._db:
            kwargs["db_name"] = self._db
        with self._translate(None):
            self._client = MilvusClient(**kwargs)
        self._closed = False
        self._write_lock: threading.Lock | None = None
        #: Milvus Lite (embedded or ``milvus-lite server``) has rules of its own
        try:
            version = "" if self.embedded else str(self._call("get_server_version") or "")
        except Exception:
            self.close()
            raise
        self.lite = self.embedded or version.lower().startswith(("milvus_lite", "milvus-lite"))
        self._write_lock = _lite_write_lock(self.endpoint) if self.lite else None

    # -- plumbing -----------------------------------------------------------------
    def _where(self, index: str | None) -> dict[str, Any]:
        return {"provider": self.name, "endpoint": self.endpoint, "index": index}

    def _scrub(self, text: str) -> str:
        if self._token:
            text = text.replace(self._token, "***")
            if ":" in self._token:
                text = text.replace(self._token.split(":", 1)[1], "***")
        return text

    @contextmanager
    def _translate(self, index: str | None, *, records: bool = False) -> Iterator[None]:
        """Translate pymilvus/gRPC failures into the vectra error tree."""
        try:
            yield
        except ProviderError:
            raise
        except Exception as exc:
            raise self._translated(exc, index, records=records) from None

    def _translated(self, exc: BaseException, index: str | None, *, records: bool) -> Exception:
        where = self._where(index)
        try:
            import grpc
            from pymilvus.exceptions import DataNotMatchException, MilvusException, ParamError
        except ImportError:  # pragma: no cover
            return FatalError(self._scrub(str(exc)), **where)
        if isinstance(exc, grpc.RpcError):
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            details = exc.details() if callable(getattr(exc, "details", None)) else ""
            return self._from_grpc(code, str(details or exc), where, records)
        if isinstance(exc, DataNotMatchException | ParamError):
            msg = self._scrub(getattr(exc, "message", "") or str(exc))
            if records:
                return RecordsRejectedError(f"Milvus refused the records: {msg}", **where)
            return FatalError(f"Milvus refused the request: {msg}", **where)
        if isinstance(exc, MilvusException):
            # pymilvus raises ``e from e``: the cause chain can loop
            cause, seen = exc.__cause__, {id(exc)}
            while cause is not None and id(cause) not in seen:
                if isinstance(cause, grpc.RpcError):
                    break
                seen.add(id(cause))
                cause = cause.__cause__
            # pymilvus wraps a refused login as "Fail connecting to server" (code 2)
            auth_codes = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
            if (
                isinstance(cause, grpc.RpcError)
                and callable(getattr(cause, "code", None))
                and cause.code() in auth_codes
            ):
                return self._from_grpc(cause.code(), str(cause.details()), where, records)
            raw_code = exc.code
            msg = self._scrub(str(exc.message or exc))
            try:
                import grpc as _grpc

                if isinstance(raw_code, _grpc.StatusCode):
                    return self._from_grpc(raw_code, msg, where, records)
            except ImportError:  # pragma: no cover
                pass
            code = int(raw_code) if isinstance(raw_code, int) else -1
            legacy = int(exc.compatible_code or 0)
            low = msg.lower()
            if (
                code == 100
                or legacy == 4
                or "collection not found" in low
                or ("collection" in low and ("not exist" in low or "can't find" in low))
            ):
                return IndexNotFoundError(f"collection does not exist: {msg}", **where)
            if ("database" in low and ("not exist" in low or "not found" in low)) or code == 800:
                return ConfigError(f"Milvus database problem ({self.endpoint}): {msg}")
            if (
                code in _AUTH_CODES
                or legacy == _LEGACY_PERMISSION_DENIED
                or any(w in low for w in ("unauthenticated", "authenticat", "permission denied"))
            ):
                return AuthError(f"Milvus refused the credentials: {msg}", **where)
            if (
                getattr(exc, "retriable", False)
                or code in _RETRYABLE_CODES
                or legacy in _LEGACY_RETRYABLE
                or "rate limit" in low
                or "retry timeout" in low
                or "retry run out" in low
                or "server unavailable" in low
            ):
                return RetryableError(f"Milvus is unavailable or busy: {msg}", **where)
            is_input = (
                getattr(exc, "is_input_error", False)
                or code in _INPUT_CODES
                or legacy in _LEGACY_ILLEGAL_ARGUMENT
                or code == 6  # Milvus Lite: IllegalArgument
            )
            if is_input and records:
                return RecordsRejectedError(f"Milvus refused the records: {msg}", **where)
            if is_input and ("dim" in low or "schema" in low or "field" in low):
                return IncompatibleIndexError(f"Milvus refused the request: {msg}", **where)
            return FatalError(f"Milvus error (code {code}): {msg}", **where)
        if isinstance(exc, ConnectionError | TimeoutError | OSError):
            return RetryableError(f"cannot reach Milvus: {self._scrub(str(exc))}", **where)
        return FatalError(f"Milvus client error: {self._scrub(repr(exc))}", **where)

    def _from_grpc(
        self, code: Any, details: str, where: dict[str, Any], records: bool
    ) -> Exception:
        import grpc

        msg = self._scrub(details)
        name = getattr(code, "name", str(code))
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return AuthError(f"Milvus refused the credentials ({name}): {msg}", **where)
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than" in msg.lower():
            if records:
                return RecordsRejectedError(f"request too large for Milvus: {msg}", **where)
            return FatalError(f"request too large for Milvus: {msg}", **where)
        if code in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.ABORTED,
            grpc.StatusCode.CANCELLED,
        ):
            return RetryableError(f"Milvus call failed ({name}): {msg}", **where)
        if code == grpc.StatusCode.INVALID_ARGUMENT and records:
            return RecordsRejectedError(f"Milvus refused the records: {msg}", **where)
        return FatalError(f"Milvus call failed ({name}): {msg}", **where)

    def _call(
        self, method: str, *args: Any, index: str | None = None, records: bool = False, **kw: Any
    ) -> Any:
        """One client call: no driver-side retries, the per-call timeout, translated errors."""
        if self._closed:
            raise FatalError("the provider is closed", **self._where(index))
        kw.setdefault("timeout", self._timeout)
        kw.setdefault("retry_times", 0)
        kw.setdefault("retry_on_rate_limit", False)
        serial = self._write_lock if method in _LITE_WRITES else None
        try:
            with serial or nullcontext(), self._translate(index, records=records):
                return getattr(self._client, method)(*args, **kw)
        except IndexNotFoundError:
            if index is not None:
                with self._lock:
                    self._forget(index)
            raise

    def _query(self, layout: _Layout, **kw: Any) -> Any:
        """A query on a loaded collection (loads it once when Milvus says it is not)."""
        self._ensure_loaded(layout.name)
        kw.setdefault("consistency_level", "Strong")
        kw.setdefault("strict_float32", True)
        try:
            return self._call("query", layout.name, index=layout.name, **kw)
        except FatalError as exc:
            if "not loaded" not in str(exc).lower() and "released" not in str(exc).lower():
                raise
            with self._lock:
                self._loaded.discard(layout.name)
            self._ensure_loaded(layout.name)
            return self._call("query", layout.name, index=layout.name, **kw)

    def _ensure_loaded(self, name: str) -> None:
        if name in self._loaded:
            return
        state = self._call("get_load_state", name, index=name)
        text = str(state.get("state") if isinstance(state, Mapping) else state)
        if "Loaded" not in text or "NotLoad" in text:
            log.info("loading Milvus collection %r on %s", name, self.endpoint)
            self._call("load_collection", name, index=name)
        with self._lock:
            self._loaded.add(name)

    # -- layouts ------------------------------------------------------------------
    def _layout(self, index: str, *, refresh: bool = False) -> _Layout:
        with self._lock:
            cached = self._layouts.get(index)
        if cached is not None and not refresh:
            return cached
        if not self._call("has_collection", index, index=index):
            with self._lock:
                self._forget(index)
            raise IndexNotFoundError(f"collection {index!r} does not exist", **self._where(index))
        desc = self._call("describe_collection", index, index=index)
        metrics: dict[str, str] = {}
        index_info: dict[str, Any] = {}
        for idx_name in self._call("list_indexes", index, index=index) or []:
            info = self._call("describe_index", index, idx_name, index=index) or {}
            fld = info.get("field_name", idx_name)
            metrics[fld] = str(info.get("metric_type", "")).upper()
            index_info[fld] = _json_safe(
                {
                    k: v
                    for k, v in info.items()
                    if k not in ("total_rows", "indexed_rows", "pending_index_rows", "state")
                }
            )
        layout = self._build_layout(index, desc, metrics, index_info)
        with self._lock:
            self._layouts[index] = layout
        return layout

    def _forget(self, index: str) -> None:
        self._lite_flushed.discard(index)
        self._layouts.pop(index, None)
        self._partitions.pop(index, None)
        self._loaded.discard(index)
        self._written.discard(index)

    def _build_layout(
        self,
        name: str,
        desc: Mapping[str, Any],
        metrics: Mapping[str, str],
        index_info: Mapping[str, Any],
    ) -> _Layout:
        where = self._where(name)
        fields = list(desc.get("fields") or [])
        function_outputs = {
            out
            for fn in desc.get("functions") or []
            for out in (fn.get("output_field_names") or [])
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
            f
            for f in fields
            if _dtype(f["type"]) == FLOAT_VECTOR and f["name"] not in function_outputs
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
                    "consistency_level": _json_safe(desc.get("consistency_level_name")),
                    "partition_key": partition_key,
                    "fields": [
                        _json_safe(
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
        layout = _Layout(
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

    def _partitions_of(self, layout: _Layout, *, refresh: bool = False) -> set[str]:
        with self._lock:
            cached = self._partitions.get(layout.name)
        if cached is not None and not refresh:
            return cached
        names = set(self._call("list_partitions", layout.name, index=layout.name) or [])
        with self._lock:
            self._partitions[layout.name] = names
        return names

    def _partition(self, layout: _Layout, namespace: str) -> str | None:
        """The partition to read ``namespace`` from, or None when it does not exist.
        Partition-key collections are read whole (their one namespace is "")."""
        if layout.partition_key:
            return "" if namespace == DEFAULT_NAMESPACE else None
        part = partition_for(namespace)
        if part in self._partitions_of(layout):
            return part
        if part in self._partitions_of(layout, refresh=True):
            return part
        return None

    def _partition_args(self, part: str) -> dict[str, Any]:
        return {"partition_names": [part]} if part else {}

    # -- Provider -----------------------------------------------------------------
    def list_indexes(self) -> list[str]:
        return sorted(self._call("list_collections") or [])

    def describe_index(self, index: str) -> IndexSpec:
        return self._layout(index, refresh=True).spec

    def list_namespaces(self, index: str) -> list[str]:
        layout = self._layout(index)
        if layout.partition_key:
            return [DEFAULT_NAMESPACE]
        parts = self._partitions_of(layout, refresh=True)
        out = [namespace_for(p) for p in parts if p != DEFAULT_PARTITION]
        # "_default" always exists: list it when it holds records or is the only one
        if DEFAULT_PARTITION in parts and (not out or self.count(index, DEFAULT_NAMESPACE) > 0):
            out.append(DEFAULT_NAMESPACE)
        return sorted(out)

    def count(self, index: str, namespace: str = DEFAULT_NAMESPACE) -> int:
        layout = self._layout(index)
        part = self._partition(layout, namespace)
        if part is None:
            return 0
        expr = ""
        if self.lite and part and len(self._partitions_of(layout)) > 1:
            # Milvus Lite ignores partition_names for an unfiltered count(*): give a filter
            # that every entity matches (real Milvus counts the partition either way)
            expr = f"{layout.pk} <= {INT64_MAX}" if layout.pk_int else f'{layout.pk} >= ""'
        res = self._query(
            layout, filter=expr, output_fields=["count(*)"], **self._partition_args(part)
        )
        rows = list(res)
        if not rows:
            return 0
        return int(rows[0].get("count(*)", 0))

    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        layout = self._layout(index)
        schema = record_schema(layout.spec)
        part = self._partition(layout, namespace)
        if part is None:
            return
        after = self._cursor_value(layout, cursor)
        batch_size = max(1, int(batch_size))
        self._lite_flush(layout.name)
        rpc_rows = max(1, min(batch_size, MAX_QUERY_ROWS, QUERY_BYTES // layout.row_bytes()))
        pages = self._pk_pages(layout, part, after, rpc_rows)
        buf: list[dict[str, Any]] = []
        exhausted = False
        while True:
            while not exhausted and len(buf) <= batch_size:
                nxt = next(pages, None)
                if nxt is None:
                    exhausted = True
                else:
                    buf.extend(nxt)
            if len(buf) > batch_size:
                page, buf = buf[:batch_size], buf[batch_size:]
                yield ScanPage(self._to_batch(layout, schema, page), {"after": page[-1][layout.pk]})
                continue
            if buf:
                yield ScanPage(self._to_batch(layout, schema, buf), None)
            return

    def _lite_flush(self, name: str) -> None:
        """Milvus Lite answers every query by a pass over its unflushed rows (its MemTable
        holds up to 128 MB), so a scan of freshly written data costs O(rows^2): seal them
        into segments once before scanning. Real Milvus needs no such thing."""
        if not self.lite or name in self._lite_flushed:
            return
        try:
            self._call("flush", name, index=name)
        except (FatalError, RetryableError) as exc:
            log.debug("Milvus Lite flush of %r before a scan failed: %s", name, exc)
        with self._lock:
            self._lite_flushed.add(name)

    def _cursor_value(self, layout: _Layout, cursor: Cursor) -> Any:
        if cursor is None:
            return None
        value = cursor.get("after") if isinstance(cursor, Mapping) else None
        ok = (
            isinstance(value, int) and not isinstance(value, bool)
            if layout.pk_int
            else (isinstance(value, str))
        )
        if not ok:
            raise ConfigError(f"not a cursor of Milvus collection {layout.name!r}: {cursor!r}")
        return value

    def _pk_pages(
        self, layout: _Layout, part: str, after: Any, limit: int
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows in primary-key order after ``after``, until an empty answer."""
        last = after
        while True:
            expr = "" if last is None else f"{layout.pk} > {_literal(last)}"
            res = self._query(
                layout,
                filter=expr,
                output_fields=layout.output_fields,
                limit=limit,
                iterator="True",
                reduce_stop_for_best="False",
                **self._partition_args(part),
            )
            rows = [dict(r) for r in res]
            if not rows:
                return
            keys = [r[layout.pk] for r in rows]
            if any(a >= b for a, b in itertools.pairwise(keys)):
                rows.sort(key=lambda r: r[layout.pk])
                keys = [r[layout.pk] for r in rows]
            if last is not None and keys[0] <= last:
                raise FatalError(
                    "Milvus returned rows out of primary-key order; cannot page safely",
                    **self._where(layout.name),
                )
            yield rows
            last = keys[-1]

    def fetch(
        self, index: str, ids: Sequence[str], namespace: str = DEFAULT_NAMESPACE
    ) -> pa.RecordBatch:
        layout = self._layout(index)
        schema = record_schema(layout.spec)
        part = self._partition(layout, namespace)
        keys: list[Any] = []
        seen: set[Any] = set()
        for rid in ids:
            key = _pk_value(layout, str(rid))
            if key is not None and key not in seen:
                seen.add(key)
                keys.append(key)
        if part is None or not keys:
            return pa.RecordBatch.from_pylist([], schema=schema)
        found: dict[Any, dict[str, Any]] = {}
        for start in range(0, len(keys), FETCH_CHUNK):
            chunk = keys[start : start + FETCH_CHUNK]
            expr = f"{layout.pk} in [{', '.join(_literal(k) for k in chunk)}]"
            res = self._query(
                layout,
                filter=expr,
                output_fields=layout.output_fields,
                **self._partition_args(part),
            )
            for r in res:
                row = dict(r)
                found[row[layout.pk]] = row
        rows = [found[k] for k in keys if k in found]
        return self._to_batch(layout, schema, rows)

    def create_index(self, spec: IndexSpec) -> None:
        where = self._where(spec.name)
        if not NAME_RE.fullmatch(spec.name):
            raise ConfigError(
                f"{spec.name!r} is not a valid Milvus collection name: a letter or '_', then "
                "letters, digits and '_' (at most 255); map it to another name"
            )
        if self._call("has_collection", spec.name, index=spec.name):
            layout = self._layout(spec.name, refresh=True)
            if layout.auto_id:
                raise IncompatibleIndexError(_AUTO_ID_REFUSAL, **where)
            if layout.spec.dimension != spec.dimension:
                raise IncompatibleIndexError(
                    f"collection {spec.name!r} exists with dimension {layout.spec.dimension}, "
                    f"not {spec.dimension}",
                    **where,
                )
            return
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
        if spec.id_type not in self.capabilities.id_types:
            raise IncompatibleIndexError(f"id type {spec.id_type!r} is not supported", **where)
        from pymilvus import DataType, MilvusClient

        pk, dense, sparse, meta = "id", "vector", "sparse_values", "metadata"
        reserved = {pk, dense, sparse, meta}
        named: dict[str, str] = {}
        for vname in sorted(spec.named_vectors):
            fname = _named_field(vname, reserved)
            reserved.add(fname)
            named[vname] = fname
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        if spec.id_type == "uint64":
            schema.add_field(pk, DataType.INT64, is_primary=True, auto_id=False)
        else:
            schema.add_field(
                pk, DataType.VARCHAR, is_primary=True, auto_id=False, max_length=VARCHAR_MAX
            )
        index_params = self._client.prepare_index_params()
        # Milvus Lite builds HNSW for AUTOINDEX in the background (slow, and dropping the
        # collection waits for it); its FLAT index is exact and free to build
        index_type = self._index_type or ("FLAT" if self.lite else "AUTOINDEX")
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
        if self._metadata_format == "json":
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
                "metadata_format": self._metadata_format,
            },
        }
        log.info("creating Milvus collection %r on %s", spec.name, self.endpoint)
        self._call(
            "create_collection",
            spec.name,
            schema=schema,
            index_params=index_params,
            consistency_level="Strong",
            properties={SPEC_PROPERTY: json.dumps(stored, separators=(",", ":"))},
            index=spec.name,
        )
        with self._lock:
            self._forget(spec.name)

    def delete_index(self, index: str) -> None:
        if not self._call("has_collection", index, index=index):
            raise IndexNotFoundError(f"collection {index!r} does not exist", **self._where(index))
        self._call("drop_collection", index, index=index)
        with self._lock:
            self._forget(index)

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        layout = self._layout(index)
        where = self._where(index)
        if layout.auto_id:
            raise IncompatibleIndexError(_AUTO_ID_REFUSAL, **where)
        if layout.partition_key and namespace != DEFAULT_NAMESPACE:
            raise UnsupportedError(
                "the collection routes rows by its partition key: it has no namespaces", **where
            )
        try:
            batch = conform(batch, layout.spec)
        except ValueError as exc:
            raise IncompatibleIndexError(
                f"the records do not fit collection {index!r}: {exc}", **where
            ) from None
        if batch.num_rows == 0:
            return {}
        rows, row_ids, failures = self._rows(layout, batch)
        if rows:
            part = "" if layout.partition_key else self._ensure_partition(layout, namespace)
            if part:
                rows, row_ids = self._drop_ids_of_other_partitions(
                    layout, part, namespace, rows, row_ids, failures
                )
        if rows:
            budget = [BISECT_BUDGET]
            self._write(layout, part, rows, row_ids, failures, budget)
            with self._lock:
                self._written.add(index)
                self._lite_flushed.discard(index)
        return failures

    def _drop_ids_of_other_partitions(
        self,
        layout: _Layout,
        part: str,
        namespace: str,
        rows: list[dict[str, Any]],
        row_ids: list[str],
        failures: dict[str, str],
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Refuse the records whose id lives in another partition.

        A primary key is unique across a collection's partitions: Milvus (Lite at least)
        resolves a key to its newest version whichever partition holds it, so writing an
        id into a second namespace would silently take it out of the first.
        """
        others = sorted(self._partitions_of(layout, refresh=True) - {part})
        if not others:
            return rows, row_ids
        keys = [r[layout.pk] for r in rows]
        taken: set[Any] = set()
        for start in range(0, len(keys), CONFLICT_CHUNK):
            chunk = keys[start : start + CONFLICT_CHUNK]
            res = self._query(
                layout,
                filter=f"{layout.pk} in [{', '.join(_literal(k) for k in chunk)}]",
                output_fields=[layout.pk],
                partition_names=others,
            )
            taken.update(r[layout.pk] for r in res)
        if not taken:
            return rows, row_ids
        reason = (
            f"the id already lives in another namespace of collection {layout.name!r}: "
            "Milvus primary keys are unique across a collection's partitions, so writing "
            f"it into namespace {namespace!r} would remove it from the other one"
        )
        keep_rows, keep_ids = [], []
        for row, rid in zip(rows, row_ids, strict=True):
            if row[layout.pk] in taken:
                failures[rid] = reason
            else:
                keep_rows.append(row)
                keep_ids.append(rid)
        return keep_rows, keep_ids

    def _ensure_partition(self, layout: _Layout, namespace: str) -> str:
        part = partition_for(namespace)
        if part in self._partitions_of(layout):
            return part
        with self._lock:
            if part in self._partitions_of(layout, refresh=True):
                return part
            try:
                self._call("create_partition", layout.name, part, index=layout.name)
            except FatalError as exc:
                if "exist" not in str(exc).lower():
                    raise
            self._partitions_of(layout, refresh=True)
        return part

    def _write(
        self,
        layout: _Layout,
        part: str,
        rows: list[dict[str, Any]],
        ids: list[str],
        failures: dict[str, str],
        budget: list[int],
    ) -> None:
        """Upsert ``rows``; when Milvus refuses the batch, split it to find the records."""
        try:
            budget[0] -= 1
            kw = {"partition_name": part} if part else {}
            self._call("upsert", layout.name, rows, index=layout.name, records=True, **kw)
        except RecordsRejectedError as exc:
            if len(rows) == 1 or budget[0] <= 0:
                reason = exc.message
                for rid in ids:
                    failures[rid] = reason
                return
            mid = len(rows) // 2
            self._write(layout, part, rows[:mid], ids[:mid], failures, budget)
            self._write(layout, part, rows[mid:], ids[mid:], failures, budget)

    def _rows(
        self, layout: _Layout, batch: pa.RecordBatch
    ) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
        """Entity dicts for pymilvus, the ids they carry, and the records refused up front."""
        n = batch.num_rows
        ids: list[str] = batch.column(ID).to_pylist()
        bad: list[str | None] = [None] * n

        def refuse(mask: np.ndarray, reason: str) -> None:
            for i in np.flatnonzero(mask):
                if bad[i] is None:
                    bad[i] = reason

        # ids
        keys: list[Any] = [None] * n
        for i, rid in enumerate(ids):
            key = _pk_value(layout, rid)
            if key is None:
                bad[i] = _pk_problem(layout, rid)
            keys[i] = key
        if not layout.pk_int and layout.pk_max_length:
            lengths = pc.binary_length(batch.column(ID)).to_numpy(zero_copy_only=False)
            refuse(
                lengths > layout.pk_max_length,
                f"id longer than the primary key's max_length of {layout.pk_max_length} bytes",
            )
        refuse(non_finite_rows(batch), "vector values must be finite (no NaN or infinity)")
        # vectors
        vectors: dict[str, np.ndarray] = {}
        if layout.dense:
            col = batch.column(VALUES)
            refuse(
                ~col.is_valid().to_numpy(zero_copy_only=False),
                "Milvus keeps a dense vector on every entity and this record has none",
            )
            vectors[layout.dense] = dense_matrix(col)
        for vname, (fname, _) in layout.named.items():
            col = batch.column(named_column(vname))
            refuse(
                ~col.is_valid().to_numpy(zero_copy_only=False),
                f"Milvus keeps every vector field on every entity; named vector {vname!r} "
                "is missing",
            )
            vectors[fname] = dense_matrix(col)
        sparse: list[dict[int, float] | None] = [None] * n
        if layout.sparse:
            for i, item in enumerate(batch.column(SPARSE).to_pylist()):
                value, problem = _sparse_value(item, positive=self.lite)
                if problem and bad[i] is None:
                    bad[i] = problem
                sparse[i] = value
        # metadata
        meta_text: list[str | None] = batch.column(METADATA).to_pylist()
        meta_out: list[Any] = [None] * n
        extra: list[dict[str, Any]] = [{} for _ in range(n)]
        if layout.vectra and layout.metadata_format == "text":
            lengths = pc.fill_null(pc.binary_length(batch.column(METADATA)), 0)
            refuse(
                lengths.to_numpy(zero_copy_only=False) > VARCHAR_MAX,
                f"metadata longer than {VARCHAR_MAX} bytes of JSON",
            )
            meta_out = meta_text
        else:
            for i, text in enumerate(meta_text):
                if bad[i] is not None:
                    continue
                try:
                    meta = json.loads(text) if text is not None else None
                except ValueError:
                    bad[i] = "metadata is not valid JSON"
                    continue
                if layout.vectra:
                    problem = _json_field_problem(meta, text)
                    if problem:
                        bad[i] = problem
                    meta_out[i] = meta
                else:
                    fields, problem = self._map_metadata(layout, meta)
                    if problem:
                        bad[i] = problem
                    extra[i] = fields
        # entities (the last occurrence of a repeated id wins)
        last: dict[Any, int] = {}
        for i in range(n):
            if bad[i] is None:
                last[keys[i]] = i
        rows: list[dict[str, Any]] = []
        row_ids: list[str] = []
        for i in sorted(last.values()):
            row: dict[str, Any] = {layout.pk: keys[i]}
            for fname, matrix in vectors.items():
                row[fname] = matrix[i]
            if layout.sparse:
                row[layout.sparse] = sparse[i]
            if layout.vectra:
                assert layout.metadata_field is not None
                row[layout.metadata_field] = meta_out[i]
            else:
                row.update(extra[i])
            rows.append(row)
            row_ids.append(ids[i])
        failures = {ids[i]: reason for i, reason in enumerate(bad) if reason is not None}
        return rows, row_ids, failures

    def _map_metadata(
        self, layout: _Layout, meta: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], str | None]:
        """Metadata -> scalar fields (+ dynamic keys) of a collection vectra did not create."""
        meta = dict(meta or {})
        out: dict[str, Any] = {}
        for sc in layout.scalars:
            if sc.name in meta:
                value = meta.pop(sc.name)
                if value is None and not sc.nullable:
                    return {}, f"field {sc.name!r} is not nullable and the metadata value is null"
                out[sc.name] = value
            elif sc.nullable:
                out[sc.name] = None
            elif not sc.has_default:
                return {}, f"metadata has no key {sc.name!r} for the required field"
        reserved = {layout.pk, layout.dense, layout.sparse, DYNAMIC_FIELD}
        reserved |= {f for f, _ in layout.named.values()}
        clash = sorted(k for k in meta if k in reserved)
        if clash:
            return {}, f"metadata keys {clash} are names of fields that are not metadata"
        if meta and not layout.dynamic:
            return {}, (
                f"the collection has no fields {sorted(meta)[:5]} and no dynamic field "
                "to keep other metadata keys"
            )
        out.update(meta)
        return out, None

    def _to_batch(
        self, layout: _Layout, schema: pa.Schema, rows: list[dict[str, Any]]
    ) -> pa.RecordBatch:
        if not rows:
            return pa.RecordBatch.from_pylist([], schema=schema)
        columns: list[pa.Array] = []
        for f in schema:
            if f.name == ID:
                columns.append(pa.array([str(r[layout.pk]) for r in rows], pa.string()))
            elif f.name == VALUES:
                assert layout.dense is not None
                columns.append(_dense_column(rows, layout.dense, f.type.list_size))
            elif f.name == SPARSE:
                assert layout.sparse is not None
                columns.append(sparse_array([_sparse_record(r.get(layout.sparse)) for r in rows]))
            elif f.name == METADATA:
                columns.append(pa.array(self._metadata_texts(layout, rows), pa.string()))
            else:
                vname = f.name[len(named_column("")) :]
                fname = layout.named[vname][0]
                columns.append(_dense_column(rows, fname, f.type.list_size))
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def _metadata_texts(self, layout: _Layout, rows: list[dict[str, Any]]) -> list[str | None]:
        if layout.vectra:
            mf = layout.metadata_field
            assert mf is not None
            if layout.metadata_format == "text":
                return [r.get(mf) for r in rows]
            return [self._dumps(r.get(mf)) for r in rows]
        skip = {layout.pk, layout.dense, layout.sparse, DYNAMIC_FIELD}
        skip |= {f for f, _ in layout.named.values()}
        if not layout.scalars and not layout.dynamic:
            return [None] * len(rows)
        return [self._dumps({k: v for k, v in r.items() if k not in skip}) for r in rows]

    def _dumps(self, meta: Any) -> str | None:
        if meta is None:
            return None
        safe = _json_safe(meta)
        try:
            return dumps_metadata(safe)
        except ValueError:
            if not self._warned_nonfinite:
                log.warning("Milvus metadata holds NaN or infinity: exported as strings")
                self._warned_nonfinite = True
            return dumps_metadata(_finite(safe))

    def close(self) -> None:
        if self._closed:
            return
        try:
            if self._flush_on_close:
                for name in sorted(self._written):
                    try:
                        self._call("flush", name, index=name)
                    except (ProviderError, ConfigError) as exc:  # data written; flush is tuning
                        log.warning("could not flush Milvus collection %r: %s", name, exc)
        finally:
            self._written.clear()
            self._closed = True
            try:
                self._client.close()
            except Exception as exc:  # pragma: no cover - closing never fails the run
                log.debug("closing the Milvus client: %s", self._scrub(str(exc)))


_AUTO_ID_REFUSAL = (
    "the collection generates its primary keys (auto_id): an upsert would give every "
    "record a new key instead of replacing it, so re-imports would duplicate records; "
    "import into a new collection (vectra-io creates it with auto_id off) or one whose "
    "primary key is not auto_id"
)


# -- helpers --------------------------------------------------------------------------
def _parse_location(location: str, tls: bool, db: str | None) -> tuple[str, str, str | None, bool]:
    """-> (pymilvus uri, printable endpoint, database, embedded)."""
    loc = location.strip()
    if not loc:
        raise ConfigError(
            "milvus needs a location: milvus://host:19530 or milvus:///path/to/lite.db"
        )
    if loc.startswith(("/", "./", "../", "~")):
        path = os.path.abspath(os.path.expanduser(loc))
        if not path.endswith(".db"):
            raise ConfigError(
                f"a Milvus Lite location must end in .db (pymilvus's rule), got {location!r}"
            )
        if not os.path.isdir(os.path.dirname(path)):
            raise ConfigError(f"the directory of the Milvus Lite store does not exist: {path}")
        if db not in (None, "", "default"):
            raise ConfigError("Milvus Lite files have one database: drop the db option")
        return path, f"milvus://{path}", None, True
    hostport, _, path = loc.partition("/")
    if "@" in hostport:
        raise ConfigError("put Milvus credentials in MILVUS_TOKEN (or the api key), not in the URL")
    if "?" in loc or "#" in loc:
        raise ConfigError(f"unexpected query or fragment in the Milvus location {location!r}")
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        host_out = f"[{host}]"
    else:
        host, _, port_text = hostport.partition(":")
        host_out = host
    if not host:
        raise ConfigError(f"no host in the Milvus location {location!r}")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"bad port in the Milvus location {location!r}") from None
    path = path.strip("/")
    if "/" in path:
        raise ConfigError(f"the Milvus location takes at most a database: {location!r}")
    if path and db and path != db:
        raise ConfigError(f"database {path!r} in the URL and db={db!r} disagree")
    database = path or db or None
    scheme = "https" if tls else "http"
    uri = f"{scheme}://{host_out}:{port}"
    endpoint = f"milvus{'+https' if tls else ''}://{host_out}:{port}"
    if database:
        endpoint += f"/{database}"
    return uri, endpoint, database, False


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


def _pk_value(layout: _Layout, rid: str) -> Any:
    """The primary-key value of a vectra id, or None when it cannot be one."""
    if not layout.pk_int:
        if layout.spec.id_type == "uuid":
            try:
                return rid if str(uuid.UUID(rid)) == rid else None
            except ValueError:
                return None
        return rid
    if not re.fullmatch(r"-?(0|[1-9][0-9]{0,18})", rid):
        return None
    value = int(rid)
    return value if INT64_MIN <= value <= INT64_MAX and rid != "-0" else None


def _pk_problem(layout: _Layout, rid: str) -> str:
    if layout.spec.id_type == "uuid":
        return f"id {rid!r} is not a canonical UUID (the collection's id type is uuid)"
    if re.fullmatch(r"[0-9]+", rid) and int(rid) > INT64_MAX:
        return f"id {rid} does not fit Milvus's INT64 primary key (at most {INT64_MAX})"
    return f"id {rid!r} is not a decimal integer for the INT64 primary key"


def _sparse_value(
    item: Mapping[str, Any] | None, *, positive: bool
) -> tuple[dict[int, float] | None, str | None]:
    if item is None or not item.get("indices"):
        return None, "Milvus keeps a non-empty sparse vector on every entity of a sparse collection"
    indices, values = list(item["indices"]), list(item["values"])
    if len(set(indices)) != len(indices):
        return None, "the sparse vector repeats an index"
    if max(indices) >= SPARSE_INDEX_LIMIT:
        return None, f"sparse indices must be below {SPARSE_INDEX_LIMIT}"
    if any(v == 0.0 for v in values):
        return None, "the sparse vector holds a zero weight, which Milvus drops"
    if positive and any(v < 0.0 for v in values):
        return (
            None,
            "Milvus Lite keeps only positive sparse weights; this vector has a negative one",
        )
    return dict(zip(indices, values, strict=True)), None


def _sparse_record(value: Any) -> dict[str, list[Any]] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        items = sorted((int(k), float(v)) for k, v in value.items())
    else:  # scipy-like row
        coo = value.tocoo()
        items = sorted(zip(coo.col.tolist(), coo.data.tolist(), strict=True))
    return {"indices": [k for k, _ in items], "values": [v for _, v in items]}


def _dense_column(rows: list[dict[str, Any]], fld: str, dim: int) -> pa.FixedSizeListArray:
    values = [r.get(fld) for r in rows]
    if all(v is not None for v in values):
        matrix = np.stack([np.asarray(v, dtype=np.float32) for v in values])
        if matrix.shape != (len(rows), dim):
            raise FatalError(f"vector field {fld!r} came back with shape {matrix.shape}")
        flat = pa.array(matrix.reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, dim)
    matrix = np.zeros((len(rows), dim), dtype=np.float32)
    mask = np.zeros(len(rows), dtype=bool)
    for i, v in enumerate(values):
        if v is None:
            mask[i] = True
        else:
            matrix[i] = np.asarray(v, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), dim, mask=pa.array(mask))


def _json_field_problem(meta: Any, text: str | None) -> str | None:
    """Why metadata cannot go into a Milvus JSON field exactly (None when it can)."""
    if text is not None and len(text.encode("utf-8")) > VARCHAR_MAX:
        return f"metadata longer than {VARCHAR_MAX} bytes of JSON"
    stack = [meta]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, int) and not isinstance(v, bool) and not INT64_MIN <= v <= INT64_MAX:
            return f"the integer {v} does not fit a Milvus JSON field (int64)"
    return None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


__all__ = ["MILVUS_CAPABILITIES", "MilvusProvider", "namespace_for", "partition_for"]
