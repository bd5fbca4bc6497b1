"""The ``pinecone`` provider: Pinecone's REST API (version ``2026-04``) over httpx.

URLs
----
- ``pinecone://`` — the real control plane ``https://api.pinecone.io``.
- ``pinecone://api.pinecone.io`` (any ``*.pinecone.io`` host) — always HTTPS.
- ``pinecone://host:port`` — a control plane at ``http://host:port`` (test doubles, local
  proxies); ``pinecone+https://host:port`` (or ``tls=True``) uses HTTPS.
- Options may follow in the URL as a query string, e.g.
  ``pinecone://?ids_from=/path/ids.txt&on_lossy=stringify``, or be given as keyword
  options (``open_provider(url, ids_from=...)``); the same option given both ways must agree.

The API key comes from ``api_key`` or ``$PINECONE_API_KEY``. It is sent as the ``Api-Key``
header (with ``X-Pinecone-Api-Version: 2026-04``) and never appears in ``endpoint``,
``repr()``, logs or error messages; credentials in the URL are refused.

Each index is served on its own data-plane host, discovered from ``GET /indexes/{name}``
(``host``) and cached per index. Pinecone's hosts are bare (``name-xyz.svc.pinecone.io``):
the provider adds ``https://``, or ``http://`` when the control plane itself is plain
HTTP (a local double); a host that already carries a scheme is used as is.

Options
-------
``timeout`` (seconds per request, default 60), ``cloud`` / ``region`` (serverless indexes
created here, default ``aws`` / ``us-east-1``), ``environment`` + ``pod_type`` (create
pod-based indexes instead), ``deletion_protection`` (``disabled``), ``on_lossy``
(``error`` | ``drop-field`` | ``stringify``, default ``error``: see below), ``ids_from``
(a file of ids, one per line: scans fetch exactly these ids), ``list_limit`` (ids per
``list`` call, default 100), ``fetch_ids`` (ids per ``fetch`` GET, default 100, at most
1,000), ``fetch_workers`` (concurrent fetch GETs per page, default 4), ``ready_timeout``
and ``ready_poll`` (seconds: the wait for a new index to be ready, default 300 / 1).

Mapping
-------
- index = Pinecone index; namespace = Pinecone namespace. The default namespace ``""`` is
  listed by Pinecone as ``__default__``; both names mean the default namespace here, so a
  namespace literally called ``__default__`` cannot be told apart from it.
- Ids are strings of 1-512 characters (``id_types={"string"}``); others are refused per
  record.
- Metrics through :mod:`vectra_io.metrics`: cosine, dot (``dotproduct``), euclidean.
- ``IndexSpec.sparse``: a ``vector_type: sparse`` index (``dimension`` None), or a dense
  ``dotproduct`` index, whose records may carry ``sparseValues``. Dense dotproduct
  indexes created here carry the tag ``vectra_sparse`` (``1``/``0``) saying whether they
  hold sparse values; a dotproduct index without the tag is described as sparse (it may
  hold sparse values, and a sparse column that stays null costs nothing).
- Metadata comes back as Pinecone stores it: numbers are float64 (``42`` reads back as
  ``42.0``), an empty metadata object reads back as null.

Export
------
Serverless indexes: every namespace (``GET /namespaces``, paginated), then ``GET
/vectors/list`` (the scan cursor is ``{"token": <paginationToken>}``) and ``GET
/vectors/fetch`` in URL-encoded groups of at most ``fetch_ids`` ids and about 6,000
characters of query string (the next page is listed while a page is fetched). ``fetch``
does not accept ids containing spaces: those are
read with ``POST /query`` by id (the record itself is the best match in practice); an id
neither call returns is an *unexportable* record, logged at ERROR and kept in
``scan_report``. Pod-based indexes have no ``list``: a scan refuses with a message naming
``--ids-from FILE`` / the ``ids_from`` option, which scans exactly the ids of the file
(in every namespace scanned; cursor ``{"offset": n, "ids": <file digest>}``) and reports
the ids not found as missing (log + count in ``scan_report``); never a partial export by
random queries. Pods have no namespace API either: their namespaces are the keys of
``describe_index_stats`` (which may lag).

Counts come from ``POST /describe_index_stats`` and are eventually consistent
(``capabilities.exact_count`` is False): they may lag recent writes.

Writes and lossy metadata
-------------------------
``POST /vectors/upsert`` with at most 1,000 records and 2,000,000 bytes per request
(the provider declares a little less to the engine and splits a request that would still
be larger). Per record, refused with a reason: ids outside 1-512 characters, an all-zero
or missing dense vector, NaN/infinite values, sparse vectors with more than 1,000
non-zeros or repeated indices, sparse values the index cannot hold. Pinecone metadata is
flat: strings, numbers (float64), booleans and lists of strings. Values outside that
(null, nested objects, lists of anything else, integers beyond 2**53) and metadata larger
than 40 KB follow ``on_lossy``:

- ``error`` (default): the record is refused, the reason names the field;
- ``drop-field``: the offending fields are dropped (for oversize metadata, the largest
  fields until it fits);
- ``stringify``: objects and non-string lists become JSON strings, big integers become
  decimal strings, nulls are dropped (oversize metadata is refused).

Every dropped or changed field is logged at WARNING (with counts) and tallied in the
provider's ``lossy_report`` dict.

Errors: connection errors, timeouts, 429 and 5xx are :class:`RetryableError` (with
``Retry-After``); 401/403 :class:`AuthError` (403 for deletion protection is a
:class:`FatalError`); 501 :class:`UnsupportedError`; a missing index
:class:`IndexNotFoundError`; a refused upsert :class:`RecordsRejectedError` with the
server's message. The provider never retries or sleeps, except while waiting for a new
index to become ready.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
import pyarrow as pa

from .. import metrics
from .._version import __version__
from ..errors import (
    AuthError,
    ConfigError,
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
    non_finite_rows,
    record_schema,
    sparse_array,
)
from ._http import JsonApi, Wording
from ._http import _orjson as _orjson
from ._http import dumps as _dumps
from ._http import loads as _loads
from .base import (
    DEFAULT_NAMESPACE,
    UNKNOWN_METRIC,
    Capabilities,
    Cursor,
    IndexSpec,
    ProviderBase,
    ScanPage,
)

log = logging.getLogger("vectra_io.providers.pinecone")

API_VERSION = "2026-04"
CONTROL_HOST = "api.pinecone.io"
DEFAULT_NAMESPACE_NAME = "__default__"
MAX_UPSERT_ROWS = 1000
#: hard cap of one upsert request body (Pinecone: "2 MB"; decimal, to be safe)
MAX_REQUEST_BYTES = 2_000_000
#: what the engine is told: the cap minus headroom for the JSON envelope and escapes
DECLARED_BATCH_BYTES = 1_900_000
#: request bytes per Arrow byte. Measured with orjson (float32 shortest text): normal
#: N(0,1) vectors 2.73, unit-length 3.09, uniform [0,1) 2.66, tiny (1e-30) 3.53, random
#: bit patterns 3.43 (worst case 4.25). Stdlib json writes float64 text: about 5.
WIRE_FACTOR = 3.5 if _orjson is not None else 5.5
MAX_FETCH_IDS = 1000
DEFAULT_FETCH_IDS = 100
FETCH_QUERY_CHARS = 6000
DEFAULT_LIST_LIMIT = 100
QUERY_FALLBACK_TOP_K = 100
MAX_ID_CHARS = 512
MAX_METADATA_BYTES = 40 * 1024
MAX_SPARSE_NONZEROS = 1000
MAX_DIMENSION = 20_000
FLOAT64_EXACT = 2**53
SPARSE_TAG = "vectra_sparse"
INDEX_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?")
LOSSY_POLICIES = ("error", "drop-field", "stringify")
REPORT_SAMPLE = 1000  # ids kept per namespace in scan_report

POD_SCAN_MESSAGE = (
    "index {index!r} is pod-based: Pinecone cannot list the records of pod-based indexes, "
    "and exporting by random queries could silently miss records. Give the ids to export "
    "in a file, one per line: --ids-from FILE (provider option ids_from=PATH, e.g. "
    "pinecone://?ids_from=/path/ids.txt); ids not found are reported as missing"
)

PINECONE_CAPABILITIES = Capabilities(
    max_batch_rows=MAX_UPSERT_ROWS,
    max_batch_bytes=DECLARED_BATCH_BYTES,
    id_types=frozenset({"string"}),
    metrics=metrics.supported("pinecone"),
    namespaces=True,
    sparse=True,
    named_vectors=False,
    exact_count=False,
    nested_metadata=False,
    idempotent_upsert=True,
    optional_dense=False,
    max_dimension=MAX_DIMENSION,
    exact_floats=True,
    wire_factor=WIRE_FACTOR,
)

_LOSSY_TEXT = {
    "null": "null values are not supported",
    "object": "nested objects are not supported",
    "list": "lists may hold only strings",
    "big_int": "an integer beyond 2**53 would lose precision as a float64",
    "oversize": "metadata is larger than 40 KB",
}

_OPTION_TYPES: dict[str, Callable[[Any], Any]] = {
    "timeout": float,
    "cloud": str,
    "region": str,
    "environment": str,
    "pod_type": str,
    "deletion_protection": str,
    "on_lossy": str,
    "ids_from": str,
    "list_limit": int,
    "fetch_ids": int,
    "fetch_workers": int,
    "ready_timeout": float,
    "ready_poll": float,
}


_WORDING = Wording(
    timeout="Pinecone {what} timed out ({kind})",
    transport="Pinecone {what}: {kind}: {error}",
    other="Pinecone {what}: {kind}: {error}",
)
#: transport failures worth retrying (others, e.g. an unsupported scheme, are fatal)
_RETRYABLE_TRANSPORT = (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)


# -- location and options -------------------------------------------------------------------
@dataclass(frozen=True)
class _Location:
    https: bool
    netloc: str
    options: dict[str, str]

    @property
    def base_url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.netloc}"


def _is_pinecone_host(host: str) -> bool:
    host = host.lower()
    return host == "pinecone.io" or host.endswith(".pinecone.io")


def _parse_location(location: str, tls: bool) -> _Location:
    loc, _, query = location.partition("?")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    options: dict[str, str] = {}
    for key, value in pairs:
        if key in options and options[key] != value:
            raise ConfigError(f"pinecone URL: option {key!r} given twice")
        options[key] = value
    loc = loc.strip().rstrip("/")
    if "@" in loc:
        raise ConfigError(
            "pinecone URL: credentials in the URL are refused; "
            "pass api_key= or set PINECONE_API_KEY"
        )
    if "/" in loc:
        raise ConfigError(f"pinecone URL: unexpected path in {loc!r}: use pinecone://host:port")
    if not loc:
        return _Location(True, CONTROL_HOST, options)
    try:
        parts = urllib.parse.urlsplit("//" + loc)
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigError(f"pinecone URL: bad host {loc!r}: {exc}") from None
    if not host:
        raise ConfigError(f"pinecone URL: bad host {loc!r}")
    return _Location(tls or _is_pinecone_host(host), loc, options)


def _merge_options(from_url: Mapping[str, str], given: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted((set(from_url) | set(given)) - set(_OPTION_TYPES))
    if unknown:
        raise ConfigError(
            f"pinecone provider: unknown options {unknown}; known: {sorted(_OPTION_TYPES)}"
        )
    out: dict[str, Any] = {}
    for key, convert in _OPTION_TYPES.items():
        values = [v for v in (from_url.get(key), given.get(key)) if v is not None]
        if not values:
            continue
        try:
            typed = [convert(v) for v in values]
        except (TypeError, ValueError):
            raise ConfigError(f"pinecone provider: bad value for option {key!r}") from None
        if len(typed) == 2 and typed[0] != typed[1]:
            raise ConfigError(
                f"pinecone provider: option {key!r} differs between the URL and the options"
            )
        out[key] = typed[0]
    return out


# -- helpers ------------------------------------------------------------------------------
def _ns_from_listing(name: str) -> str:
    return DEFAULT_NAMESPACE if name in ("", DEFAULT_NAMESPACE_NAME) else name


def _id_problem(rid: str) -> str | None:
    if not 1 <= len(rid) <= MAX_ID_CHARS:
        return f"id has {len(rid)} characters; Pinecone ids have 1 to {MAX_ID_CHARS} characters"
    return None


def _sparse_problem(sv: Mapping[str, Any] | None) -> str | None:
    """Why Pinecone refuses these sparse values (None: it takes them, or there are none)."""
    if not sv or not sv["indices"]:
        return None
    if len(sv["indices"]) > MAX_SPARSE_NONZEROS:
        return (
            f"sparse vector has {len(sv['indices'])} non-zeros; "
            f"Pinecone allows {MAX_SPARSE_NONZEROS}"
        )
    if len(set(sv["indices"])) != len(sv["indices"]):
        return "sparse vector repeats indices"
    return None


def _lossy_kind(value: Any) -> str | None:
    """Why Pinecone cannot store this metadata value as it is (None: it can)."""
    if value is None:
        return "null"
    if isinstance(value, bool | str | float):
        return None
    if isinstance(value, int):
        try:
            return None if float(value) == value else "big_int"
        except OverflowError:
            return "big_int"
    if isinstance(value, list):
        return None if all(isinstance(v, str) for v in value) else "list"
    if isinstance(value, dict):
        return "object"
    return "object"  # pragma: no cover - JSON has no other types


def _stored_size(meta: Mapping[str, Any]) -> int:
    """Bytes of the metadata as Pinecone stores it (numbers as float64)."""
    as_stored = {
        k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in meta.items()
    }
    return len(_dumps(as_stored))


def _server_message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:500] or resp.reason_phrase
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str) and err:
            return err
        if body.get("message"):
            return str(body["message"])
    return str(body)[:500]


def _fetch_groups(ids: Sequence[str], per_request: int) -> list[list[str]]:
    """Ids in groups of at most ``per_request`` and about FETCH_QUERY_CHARS encoded chars."""
    groups: list[list[str]] = []
    current: list[str] = []
    chars = 0
    for rid in ids:
        cost = len(urllib.parse.quote(rid, safe="")) + 5  # "&ids="
        if current and (len(current) >= per_request or chars + cost > FETCH_QUERY_CHARS):
            groups.append(current)
            current, chars = [], 0
        current.append(rid)
        chars += cost
    if current:
        groups.append(current)
    return groups


@dataclass
class _IndexInfo:
    spec: IndexSpec
    url: str  # data-plane base URL
    pod: bool
    vector_type: str
    state: str
    ready: bool


def _new_lossy_report(policy: str) -> dict[str, Any]:
    return {
        "policy": policy,
        "records_refused": 0,
        "records_changed": 0,
        "fields_dropped": 0,
        "fields_stringified": 0,
        "by_kind": {},
        "by_field": {},
    }


class PineconeProvider(ProviderBase):
    name: ClassVar[str] = "pinecone"

    def __init__(
        self,
        location: str = "",
        *,
        api_key: str | None = None,
        tls: bool = False,
        **options: Any,
    ) -> None:
        where = _parse_location(location, tls)
        opts = _merge_options(where.options, options)
        self._https = where.https
        self._control = where.base_url
        if where.netloc == CONTROL_HOST or (_is_pinecone_host(where.netloc) and where.https):
            self.endpoint = f"pinecone://{where.netloc}"
        else:
            self.endpoint = f"pinecone{'+https' if where.https else ''}://{where.netloc}"
        self.capabilities = PINECONE_CAPABILITIES
        self._api_key = (api_key or "").strip() or None
        if self._api_key is not None and not re.fullmatch(r"[\x21-\x7e]+", self._api_key):
            raise ConfigError(
                "the Pinecone API key holds characters an HTTP header cannot carry "
                "(spaces, newlines or non-ASCII): check PINECONE_API_KEY"
            )
        self._cloud = opts.get("cloud", "aws")
        self._region = opts.get("region", "us-east-1")
        self._environment: str | None = opts.get("environment")
        self._pod_type = opts.get("pod_type", "p1.x1")
        self._deletion_protection = opts.get("deletion_protection", "disabled")
        if self._deletion_protection not in ("disabled", "enabled"):
            raise ConfigError("pinecone provider: deletion_protection is disabled or enabled")
        policy = str(opts.get("on_lossy", "error")).replace("_", "-").lower()
        if policy not in LOSSY_POLICIES:
            raise ConfigError(
                f"pinecone provider: on_lossy must be one of {', '.join(LOSSY_POLICIES)}"
            )
        self.on_lossy = policy
        self._list_limit = opts.get("list_limit", DEFAULT_LIST_LIMIT)
        self._fetch_ids = opts.get("fetch_ids", DEFAULT_FETCH_IDS)
        self._fetch_workers = opts.get("fetch_workers", 4)
        if self._list_limit < 1 or not 1 <= self._fetch_ids <= MAX_FETCH_IDS:
            raise ConfigError(
                f"pinecone provider: list_limit must be >= 1 and fetch_ids 1..{MAX_FETCH_IDS}"
            )
        if self._fetch_workers < 1:
            raise ConfigError("pinecone provider: fetch_workers must be at least 1")
        self._ready_timeout = opts.get("ready_timeout", 300.0)
        self._ready_poll = opts.get("ready_poll", 1.0)
        ids_from = opts.get("ids_from")
        self._ids_path: Path | None = None
        if ids_from:
            path = Path(ids_from).expanduser()
            if not path.is_file():
                raise ConfigError(f"pinecone provider: ids_from file {str(path)!r} not found")
            self._ids_path = path
        self._ids: tuple[list[str], str] | None = None
        timeout = opts.get("timeout", 60.0)
        headers = {
            "X-Pinecone-Api-Version": API_VERSION,
            "User-Agent": f"vectra-io/{__version__}",
            "Accept": "application/json",
        }
        if self._api_key:
            headers["Api-Key"] = self._api_key
        self._api = JsonApi(
            self.name,
            self.endpoint,
            wording=_WORDING,
            secrets=[self._api_key],
            headers=headers,
            timeout=timeout,
            connect_timeout=min(10.0, timeout),
            max_connections=64,
            max_keepalive=32,
            retryable_transport=_RETRYABLE_TRANSPORT,
        )
        self._client = self._api.client
        self._lock = threading.RLock()
        self._infos: dict[str, _IndexInfo] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._page_executor: ThreadPoolExecutor | None = None
        self._caveat_logged: set[str] = set()
        #: metadata changed or refused under ``on_lossy`` (see the module docstring)
        self.lossy_report: dict[str, Any] = _new_lossy_report(policy)
        #: scan problems: {"missing" | "unexportable" | "vanished": {index: {ns: {...}}}}
        self.scan_report: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
            "missing": {},
            "unexportable": {},
            "vanished": {},
        }
        #: request statistics (upsert requests, the ones split here, records sent)
        self.stats: dict[str, int] = {"upsert_requests": 0, "upsert_splits": 0, "records_sent": 0}

    def __repr__(self) -> str:
        return f"PineconeProvider({self.endpoint!r})"

    def close(self) -> None:
        with self._lock:
            executors = [self._page_executor, self._executor]
            self._page_executor = self._executor = None
        for executor in executors:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
        self._api.close()

    # -- HTTP -------------------------------------------------------------------------------
    def _where(self, index: str | None, status: int | None = None) -> dict[str, Any]:
        return self._api.where(index, status)

    def _request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        index: str | None = None,
        params: Any = None,
        body: Any = None,
        content: bytes | None = None,
        data_plane: bool = False,
    ) -> Any:
        if not self._api_key:
            raise AuthError(
                "no Pinecone API key: pass api_key= or set PINECONE_API_KEY", **self._where(index)
            )
        # a data-plane host may have moved: describe the index again next time
        forget = None
        if data_plane and index is not None:
            forget = functools.partial(self._forget, index)
        resp = self._api.request(
            method,
            url,
            what=what,
            index=index,
            json_body=body,
            content=content,
            params=params,
            on_disconnect=forget,
        )
        if resp.status_code >= 400:
            if resp.status_code == 404 and index is not None:
                self._forget(index)
            raise self._error(resp, what, index)
        if not resp.content:
            return None
        try:
            return _loads(resp.content)
        except ValueError:
            raise FatalError(
                f"Pinecone {what}: the answer is not JSON", **self._where(index, resp.status_code)
            ) from None

    def _error(self, resp: httpx.Response, what: str, index: str | None) -> ProviderError:
        status = resp.status_code
        message = self._api.scrub(_server_message(resp))
        text = f"Pinecone {what} failed: HTTP {status}: {message}"
        where = self._where(index, status)
        if status == 403 and "deletion protection" in message.lower():
            return FatalError(text, **where)
        auth = (
            f"Pinecone refused the API key: {message}"
            if status == 401
            else f"Pinecone denied access: {message}"
        )
        common = self._api.common_status_error(resp, text, auth, index)
        if common is not None:
            return common
        if status == 404:
            return IndexNotFoundError(f"Pinecone: {message}", **where)
        if status == 501:
            return UnsupportedError(text, **where)
        if status in (400, 413, 422) and what.startswith("upsert"):
            return RecordsRejectedError(text, **where)
        return FatalError(text, **where)

    # -- indexes ----------------------------------------------------------------------------
    def _index_path(self, index: str) -> str:
        return f"{self._control}/indexes/{urllib.parse.quote(index, safe='')}"

    def _forget(self, index: str) -> None:
        with self._lock:
            self._infos.pop(index, None)

    def _describe_model(self, index: str) -> dict[str, Any]:
        model = self._request("GET", self._index_path(index), "describe_index", index=index)
        if not isinstance(model, dict):
            raise FatalError("Pinecone describe_index: unexpected answer", **self._where(index))
        return model

    def _info_from_model(self, model: Mapping[str, Any]) -> _IndexInfo:
        name = str(model["name"])
        own_metric = model.get("metric")
        metric = metrics.from_provider(self.name, own_metric)
        vector_type = str(model.get("vector_type") or "dense")
        tags = model.get("tags") or {}
        if vector_type == "sparse":
            sparse, dimension = True, None
        else:
            dimension = model.get("dimension")
            sparse = own_metric == "dotproduct" and tags.get(SPARSE_TAG, "1") != "0"
        spec_body = model.get("spec") or {}
        status = model.get("status") or {}
        raw = {
            "vector_type": vector_type,
            "metric": own_metric,
            "spec": spec_body,
            "deletion_protection": model.get("deletion_protection"),
            "tags": dict(tags),
        }
        spec = IndexSpec(
            name=name,
            dimension=int(dimension) if dimension is not None else None,
            metric=metric,
            id_type="string",
            sparse=sparse,
            raw_config=raw,
        )
        host = str(model.get("host") or "")
        if "://" in host:
            url = host.rstrip("/")
        else:
            url = f"{'https' if self._https else 'http'}://{host}"
        return _IndexInfo(
            spec=spec,
            url=url,
            pod="pod" in spec_body,
            vector_type=vector_type,
            state=str(status.get("state") or ""),
            ready=bool(status.get("ready")),
        )

    def _info(self, index: str, *, refresh: bool = False) -> _IndexInfo:
        with self._lock:
            info = None if refresh else self._infos.get(index)
        if info is None:
            info = self._info_from_model(self._describe_model(index))
            if info.state == "Terminating":
                self._forget(index)
                raise IndexNotFoundError(f"index {index!r} is being deleted", **self._where(index))
            with self._lock:
                self._infos[index] = info
        return info

    def list_indexes(self) -> list[str]:
        body = self._request("GET", f"{self._control}/indexes", "list_indexes") or {}
        return sorted(
            str(m["name"])
            for m in body.get("indexes") or []
            if (m.get("status") or {}).get("state") != "Terminating"
        )

    def describe_index(self, index: str) -> IndexSpec:
        return self._info(index, refresh=True).spec

    def create_index(self, spec: IndexSpec) -> None:
        where = self._where(spec.name)
        if spec.named_vectors:
            raise IncompatibleIndexError(
                "Pinecone indexes hold one dense vector per record (and sparse values); "
                f"named vectors {sorted(spec.named_vectors)} cannot be stored",
                **where,
            )
        own_metric = metrics.to_provider(self.name, spec.metric)
        if spec.sparse and own_metric != "dotproduct":
            raise IncompatibleIndexError(
                f"Pinecone stores sparse vectors only in indexes with the dotproduct metric "
                f"(dot); the index has metric {spec.metric!r}: pass --metric dot or drop the "
                "sparse vectors",
                **where,
            )
        if spec.dimension is None and not spec.sparse:
            raise IncompatibleIndexError(
                "a Pinecone index needs a dense dimension or sparse vectors", **where
            )
        if spec.dimension is not None and not 1 <= spec.dimension <= MAX_DIMENSION:
            raise IncompatibleIndexError(
                f"Pinecone dense dimensions are 1 to {MAX_DIMENSION}, not {spec.dimension}",
                **where,
            )
        if not INDEX_NAME_RE.fullmatch(spec.name):
            raise ConfigError(
                f"{spec.name!r} is not a valid Pinecone index name: 1-45 lower-case letters, "
                "digits or '-', starting and ending with a letter or digit"
            )
        try:
            existing = self._info(spec.name, refresh=True)
        except IndexNotFoundError:
            existing = None
        if existing is None:
            body = self._create_body(spec, own_metric)
            try:
                self._request("POST", f"{self._control}/indexes", "create_index", body=body)
            except FatalError as exc:
                if exc.status != 409:
                    raise
                try:  # created meanwhile, or an index of that name is still being deleted
                    self._info(spec.name, refresh=True)
                except IndexNotFoundError:
                    raise RetryableError(
                        f"index {spec.name!r} is still being deleted; create it again shortly",
                        **where,
                    ) from None
        else:
            self._check_compatible(existing.spec, spec)
        self._wait_ready(spec.name)
        if existing is None:
            self._check_compatible(self._info(spec.name).spec, spec)

    def _create_body(self, spec: IndexSpec, own_metric: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": spec.name,
            "metric": own_metric,
            "deletion_protection": self._deletion_protection,
        }
        if spec.dimension is None:
            body["vector_type"] = "sparse"
        else:
            body["vector_type"] = "dense"
            body["dimension"] = spec.dimension
            if own_metric == "dotproduct":
                body["tags"] = {SPARSE_TAG: "1" if spec.sparse else "0"}
        if self._environment:
            body["spec"] = {"pod": {"environment": self._environment, "pod_type": self._pod_type}}
        else:
            body["spec"] = {"serverless": {"cloud": self._cloud, "region": self._region}}
        return body

    def _check_compatible(self, existing: IndexSpec, wanted: IndexSpec) -> None:
        problems = []
        if existing.dimension != wanted.dimension:
            problems.append(f"dimension {existing.dimension}, not {wanted.dimension}")
        known = UNKNOWN_METRIC not in (existing.metric, wanted.metric)
        if known and existing.metric != wanted.metric:
            problems.append(f"metric {existing.metric}, not {wanted.metric}")
        if wanted.sparse and not existing.sparse:
            problems.append("no sparse values")
        if problems:
            raise IncompatibleIndexError(
                f"index {wanted.name!r} exists with {', '.join(problems)}",
                **self._where(wanted.name),
            )

    def _wait_ready(self, index: str) -> None:
        """Poll describe until ``status.ready`` (an expected state, not a retry)."""
        deadline = time.monotonic() + self._ready_timeout
        while True:
            info = self._info(index, refresh=True)
            if info.ready:
                return
            if info.state == "InitializationFailed":
                raise FatalError(
                    f"index {index!r} failed to initialise (state {info.state})",
                    **self._where(index),
                )
            if time.monotonic() + self._ready_poll > deadline:
                raise FatalError(
                    f"index {index!r} is not ready after {self._ready_timeout:g}s "
                    f"(state {info.state or 'unknown'}); try again later",
                    **self._where(index),
                )
            log.debug("index %r not ready yet (state %s)", index, info.state)
            time.sleep(self._ready_poll)

    def delete_index(self, index: str) -> None:
        try:
            self._request("DELETE", self._index_path(index), "delete_index", index=index)
        finally:
            self._forget(index)

    # -- namespaces and counts --------------------------------------------------------------
    def _stats(self, info: _IndexInfo, index: str) -> dict[str, Any]:
        body = self._request(
            "POST",
            f"{info.url}/describe_index_stats",
            "describe_index_stats",
            index=index,
            body={},
            data_plane=True,
        )
        return body if isinstance(body, dict) else {}

    def list_namespaces(self, index: str) -> list[str]:
        info = self._info(index)
        if info.pod:  # no namespace API on pods: the (lagging) stats are all there is
            names = (self._stats(info, index).get("namespaces") or {}).keys()
            return sorted({_ns_from_listing(n) for n in names})
        found: set[str] = set()
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if token:
                params["paginationToken"] = token
            page = (
                self._request(
                    "GET",
                    f"{info.url}/namespaces",
                    "list_namespaces",
                    index=index,
                    params=params,
                    data_plane=True,
                )
                or {}
            )
            found.update(_ns_from_listing(str(n["name"])) for n in page.get("namespaces") or [])
            token = (page.get("pagination") or {}).get("next") or None
            if not token:
                return sorted(found)

    def count(self, index: str, namespace: str = DEFAULT_NAMESPACE) -> int:
        """The namespace's ``vectorCount`` from describe_index_stats: it may lag writes."""
        info = self._info(index)
        if index not in self._caveat_logged:
            self._caveat_logged.add(index)
            log.info(
                "Pinecone counts of index %r are eventually consistent: describe_index_stats "
                "may lag recent writes, so treat them as approximate",
                index,
            )
        spaces = self._stats(info, index).get("namespaces") or {}
        keys = [namespace] if namespace else [DEFAULT_NAMESPACE_NAME, ""]
        for key in keys:
            if key in spaces:
                return int((spaces[key] or {}).get("vectorCount") or 0)
        return 0

    # -- reading ----------------------------------------------------------------------------
    def _pages(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._page_executor is None:
                self._page_executor = ThreadPoolExecutor(
                    2, thread_name_prefix="vectra-pinecone-page"
                )
            return self._page_executor

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self._fetch_workers, thread_name_prefix="vectra-pinecone-fetch"
                )
            return self._executor

    def _fetch_group(
        self, info: _IndexInfo, index: str, ids: list[str], namespace: str
    ) -> dict[str, Any]:
        params: list[tuple[str, str]] = [("ids", rid) for rid in ids]
        if namespace:
            params.append(("namespace", namespace))
        body = self._request(
            "GET",
            f"{info.url}/vectors/fetch",
            f"fetch of {len(ids)} records",
            index=index,
            params=params,
            data_plane=True,
        )
        vectors = (body or {}).get("vectors") or {}
        return dict(vectors)

    def _query_by_id(
        self, info: _IndexInfo, index: str, rid: str, namespace: str
    ) -> dict[str, Any] | None:
        """The record ``rid`` read through ``POST /query`` by id (fetch refuses its id)."""
        body: dict[str, Any] = {
            "id": rid,
            "topK": QUERY_FALLBACK_TOP_K,
            "includeValues": True,
            "includeMetadata": True,
        }
        if namespace:
            body["namespace"] = namespace
        answer = self._request(
            "POST",
            f"{info.url}/query",
            "query by id",
            index=index,
            body=body,
            data_plane=True,
        )
        for match in (answer or {}).get("matches") or []:
            if match.get("id") == rid:
                return dict(match)
        return None

    def _fetch_records(
        self, info: _IndexInfo, index: str, ids: Sequence[str], namespace: str
    ) -> tuple[dict[str, Any], list[str]]:
        """Records by id (fetch GETs, concurrently) and the ids fetch could not ask for."""
        wanted = list(dict.fromkeys(rid for rid in ids if _id_problem(rid) is None))
        plain = [rid for rid in wanted if " " not in rid]
        spaced = [rid for rid in wanted if " " in rid]
        found: dict[str, Any] = {}
        groups = _fetch_groups(plain, self._fetch_ids)
        if len(groups) == 1:
            found.update(self._fetch_group(info, index, groups[0], namespace))
        elif groups:
            pool = self._pool()
            futures = [pool.submit(self._fetch_group, info, index, g, namespace) for g in groups]
            try:
                for fut in futures:
                    found.update(fut.result())
            finally:
                for fut in futures:
                    fut.cancel()
        unfetched = []
        for rid in spaced:
            rec = self._query_by_id(info, index, rid, namespace)
            if rec is None:
                unfetched.append(rid)
            else:
                found[rid] = rec
        return found, unfetched

    def _to_batch(
        self, spec: IndexSpec, ids: Sequence[str], found: Mapping[str, Any]
    ) -> pa.RecordBatch:
        schema = record_schema(spec)
        rows = [found[rid] for rid in dict.fromkeys(ids) if rid in found]
        if not rows:
            return pa.RecordBatch.from_pylist([], schema=schema)
        if not spec.sparse:
            carrying = [r["id"] for r in rows if (r.get("sparseValues") or {}).get("indices")]
            if carrying:
                raise FatalError(
                    f"records of index {spec.name!r} carry sparse values although the index is "
                    f"described as dense-only (tag {SPARSE_TAG}=0), e.g. {carrying[:3]}; "
                    f"remove the tag so that they are exported",
                    **self._where(spec.name),
                )
        columns: list[pa.Array] = []
        for f in schema:
            if f.name == ID:
                columns.append(pa.array([str(r["id"]) for r in rows], pa.string()))
            elif f.name == VALUES:
                columns.append(self._dense_column(spec, rows))
            elif f.name == SPARSE:
                columns.append(sparse_array([_sparse_of(r) for r in rows]))
            elif f.name == METADATA:
                columns.append(
                    pa.array([dumps_metadata(r.get("metadata")) for r in rows], pa.string())
                )
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def _dense_column(self, spec: IndexSpec, rows: list[dict[str, Any]]) -> pa.Array:
        dim = spec.dimension
        assert dim is not None
        matrix = np.zeros((len(rows), dim), dtype=np.float32)
        mask = np.zeros(len(rows), dtype=bool)
        for i, r in enumerate(rows):
            values = r.get("values")
            if not values:
                mask[i] = True
                continue
            if len(values) != dim:
                raise FatalError(
                    f"record {r['id']!r} has {len(values)} values, the index dimension is {dim}",
                    **self._where(spec.name),
                )
            matrix[i] = values  # float64 text of a float32 -> the same float32 bits
        flat = pa.array(matrix.reshape(-1))
        return pa.FixedSizeListArray.from_arrays(
            flat, dim, mask=pa.array(mask) if mask.any() else None
        )

    def fetch(
        self, index: str, ids: Sequence[str], namespace: str = DEFAULT_NAMESPACE
    ) -> pa.RecordBatch:
        info = self._info(index)
        found, _ = self._fetch_records(info, index, ids, namespace)
        return self._to_batch(info.spec, ids, found)

    def _report(self, kind: str, index: str, namespace: str, ids: list[str]) -> None:
        with self._lock:
            entry = (
                self.scan_report[kind]
                .setdefault(index, {})
                .setdefault(namespace, {"count": 0, "ids": []})
            )
            entry["count"] += len(ids)
            room = REPORT_SAMPLE - len(entry["ids"])
            entry["ids"].extend(ids[: max(room, 0)])

    def _page(
        self, info: _IndexInfo, index: str, namespace: str, ids: list[str], *, listed: bool
    ) -> tuple[pa.RecordBatch, list[str]]:
        """The records of ``ids``, and the ids that were not found."""
        found, unfetched = self._fetch_records(info, index, ids, namespace)
        label = namespace or DEFAULT_NAMESPACE_NAME
        if unfetched:
            self._report("unexportable", index, namespace, unfetched)
            log.error(
                "index %r namespace %r: %d records could not be exported: Pinecone's fetch does "
                "not accept ids containing spaces and a query by id did not return them "
                "(ids %s); see scan_report['unexportable']",
                index,
                label,
                len(unfetched),
                unfetched[:10],
            )
        gone = [rid for rid in ids if rid not in found and rid not in unfetched]
        if gone:
            self._report("vanished" if listed else "missing", index, namespace, gone)
            if listed:
                log.info(
                    "index %r namespace %r: %d listed records were gone when fetched "
                    "(deleted meanwhile), e.g. %s",
                    index,
                    label,
                    len(gone),
                    gone[:5],
                )
        return self._to_batch(info.spec, ids, found), gone

    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        info = self._info(index)
        batch_size = max(1, int(batch_size))
        if self._ids_path is not None:
            yield from self._scan_ids(info, index, namespace, batch_size, cursor)
            return
        if info.pod:
            raise UnsupportedError(POD_SCAN_MESSAGE.format(index=index), **self._where(index))
        token: str | None = None
        if cursor is not None:
            if not isinstance(cursor, dict) or not isinstance(cursor.get("token"), str):
                raise ConfigError(f"not a cursor of a Pinecone list scan: {cursor!r}")
            token = cursor["token"]
        # pipelined: the records of a page are fetched while the next page's ids are listed
        ids: list[str] = []
        pending: tuple[Future[tuple[pa.RecordBatch, list[str]]], Cursor] | None = None
        try:
            while True:
                token = self._list_into(info, index, namespace, ids, batch_size, token)
                if token is not None and len(ids) < batch_size:
                    continue
                fut = self._pages().submit(self._page, info, index, namespace, ids, listed=True)
                if pending is not None:
                    yield ScanPage(pending[0].result()[0], pending[1])
                pending = (fut, {"token": token} if token else None)
                if token is None:
                    break
                ids = []
            yield ScanPage(pending[0].result()[0], None)
        finally:
            if pending is not None:
                pending[0].cancel()

    def _list_into(
        self,
        info: _IndexInfo,
        index: str,
        namespace: str,
        ids: list[str],
        batch_size: int,
        token: str | None,
    ) -> str | None:
        """One ``list`` call appending to ``ids``; returns the next token (None at the end)."""
        params: dict[str, Any] = {"limit": min(self._list_limit, batch_size - len(ids))}
        if namespace:
            params["namespace"] = namespace
        if token:
            params["paginationToken"] = token
        page = (
            self._request(
                "GET",
                f"{info.url}/vectors/list",
                "list",
                index=index,
                params=params,
                data_plane=True,
            )
            or {}
        )
        ids.extend(str(v["id"]) for v in page.get("vectors") or [])
        return (page.get("pagination") or {}).get("next") or None

    def _id_list(self) -> tuple[list[str], str]:
        assert self._ids_path is not None
        with self._lock:
            if self._ids is None:
                try:
                    data = self._ids_path.read_bytes()
                except OSError as exc:
                    raise ConfigError(f"cannot read the ids_from file: {exc}") from None
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise ConfigError("the ids_from file is not UTF-8 text") from None
                lines = (line.removesuffix("\r") for line in text.split("\n"))
                ids = list(dict.fromkeys(line for line in lines if line))
                self._ids = (ids, hashlib.sha256(data).hexdigest()[:16])
            return self._ids

    def _scan_ids(
        self, info: _IndexInfo, index: str, namespace: str, batch_size: int, cursor: Cursor
    ) -> Iterator[ScanPage]:
        ids, digest = self._id_list()
        offset = 0
        if cursor is not None:
            if (
                not isinstance(cursor, dict)
                or not isinstance(cursor.get("offset"), int)
                or cursor.get("ids") != digest
            ):
                raise ConfigError(
                    "the scan cursor does not belong to this ids_from file (it changed?): "
                    "restart the export"
                )
            offset = cursor["offset"]
        invalid = [rid for rid in ids[offset:] if _id_problem(rid) is not None]
        if invalid and offset == 0:
            log.warning(
                "ids_from: %d lines are not valid Pinecone ids (1-%d characters), e.g. %s",
                len(invalid),
                MAX_ID_CHARS,
                [rid[:40] for rid in invalid[:3]],
            )
        if not ids:
            yield ScanPage(pa.RecordBatch.from_pylist([], schema=record_schema(info.spec)), None)
            return
        missing: list[str] = []
        n_missing = 0
        while offset < len(ids):
            chunk = ids[offset : offset + batch_size]
            offset += len(chunk)
            batch, gone = self._page(info, index, namespace, chunk, listed=False)
            n_missing += len(gone)
            missing.extend(gone[: max(0, 10 - len(missing))])
            if offset >= len(ids) and n_missing:
                log.warning(
                    "index %r namespace %r: %d ids of the ids_from file were not found "
                    "(in this scan), e.g. %s; see scan_report['missing']",
                    index,
                    namespace or DEFAULT_NAMESPACE_NAME,
                    n_missing,
                    missing,
                )
            yield ScanPage(batch, {"offset": offset, "ids": digest} if offset < len(ids) else None)

    # -- writing ----------------------------------------------------------------------------
    def _metadata(
        self, text: str | None
    ) -> tuple[dict[str, Any] | None, str | None, list[tuple[str, str, str]]]:
        """(metadata to send, refusal reason, [(action, field, kind)]) under ``on_lossy``."""
        if text is None:
            return None, None, []
        meta = json.loads(text)  # stdlib: integers of any size stay exact
        out: dict[str, Any] = {}
        changes: list[tuple[str, str, str]] = []
        for key, value in meta.items():
            kind = _lossy_kind(value)
            if kind is None:
                out[key] = value
                continue
            if self.on_lossy == "error":
                return None, self._lossy_reason(key, kind), []
            if self.on_lossy == "drop-field" or kind == "null":
                changes.append(("dropped", key, kind))
                continue
            if kind == "big_int":
                out[key] = str(value)
            else:
                out[key] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            changes.append(("stringified", key, kind))
        size = _stored_size(out)
        if size > MAX_METADATA_BYTES:
            if self.on_lossy != "drop-field":
                reason = (
                    f"metadata is {size} bytes as Pinecone stores it, more than its limit of "
                    f"{MAX_METADATA_BYTES} bytes per record (on_lossy={self.on_lossy}; "
                    "on_lossy=drop-field drops the largest fields)"
                )
                return None, reason, []
            by_size = sorted(out, key=lambda k: len(_dumps({k: out[k]})), reverse=True)
            for key in by_size:
                del out[key]
                changes.append(("dropped", key, "oversize"))
                if _stored_size(out) <= MAX_METADATA_BYTES:
                    break
        return (out or None), None, changes

    def check_records(self, batch: pa.RecordBatch) -> dict[str, str]:
        """Plan pre-flight (:mod:`vectra_io.engine.plan`): ``{id: reason}`` for every record
        of ``batch`` that an upsert would refuse or change under the current ``on_lossy``
        policy, by the same rules as :meth:`upsert` (ids, sparse values, metadata), without
        sending anything and without touching ``lossy_report``. Reasons start with
        ``refused:`` or ``changed:``. Checks that depend on the target index (dimension,
        dense or sparse kind, metric) are the plan's index checks, not made here; a
        repeated id is judged by its last row, as :meth:`upsert` does."""
        names = batch.schema.names
        n = batch.num_rows
        ids = batch.column(ID).to_pylist()
        metas = batch.column(METADATA).to_pylist() if METADATA in names else [None] * n
        sparse = batch.column(SPARSE).to_pylist() if SPARSE in names else [None] * n
        out: dict[str, str] = {}
        for i, rid in enumerate(ids):
            out.pop(rid, None)  # a repeated id: the last row wins
            reason = _id_problem(rid) or _sparse_problem(sparse[i])
            if reason is None:
                _, reason, changes = self._metadata(metas[i])
                if reason is None:
                    if changes:
                        out[rid] = self._changes_text(changes)
                    continue
            out[rid] = f"refused: {reason}"
        return out

    def _changes_text(self, changes: Sequence[tuple[str, str, str]]) -> str:
        """``changed (on_lossy=P): metadata fields dropped: 'a' (null); stringified: ...``"""
        by_action: dict[str, list[str]] = {}
        for action, key, kind in changes:
            by_action.setdefault(action, []).append(f"{key!r} ({kind.replace('_', ' ')})")
        fields = "; ".join(f"{action}: {', '.join(keys)}" for action, keys in by_action.items())
        return f"changed (on_lossy={self.on_lossy}): metadata fields {fields}"

    def _lossy_reason(self, key: str, kind: str) -> str:
        return (
            f"metadata field {key!r}: {_LOSSY_TEXT[kind]} by Pinecone (on_lossy=error; "
            "on_lossy=drop-field or stringify writes the record without it or as text)"
        )

    def _tally(
        self,
        index: str,
        namespace: str,
        refused_lossy: int,
        changed: list[list[tuple[str, str, str]]],
    ) -> None:
        if not refused_lossy and not changed:
            return
        kinds: dict[str, int] = {}
        fields: set[str] = set()
        with self._lock:
            rep = self.lossy_report
            rep["records_refused"] += refused_lossy
            rep["records_changed"] += len(changed)
            for changes in changed:
                for action, key, kind in changes:
                    rep["fields_dropped" if action == "dropped" else "fields_stringified"] += 1
                    by_kind = rep["by_kind"].setdefault(kind, {})
                    by_kind[action] = by_kind.get(action, 0) + 1
                    if key in rep["by_field"] or len(rep["by_field"]) < REPORT_SAMPLE:
                        by_field = rep["by_field"].setdefault(key, {})
                        by_field[action] = by_field.get(action, 0) + 1
                    label = f"{action} {kind}"
                    kinds[label] = kinds.get(label, 0) + 1
                    fields.add(key)
        if changed:
            log.warning(
                "index %r namespace %r: on_lossy=%s changed the metadata of %d records (%s; "
                "fields %s); see lossy_report",
                index,
                namespace or DEFAULT_NAMESPACE_NAME,
                self.on_lossy,
                len(changed),
                ", ".join(f"{n} {label}" for label, n in sorted(kinds.items())),
                sorted(fields)[:20],
            )
        if refused_lossy:
            log.warning(
                "index %r namespace %r: on_lossy=%s refused %d records whose metadata Pinecone "
                "cannot store as it is",
                index,
                namespace or DEFAULT_NAMESPACE_NAME,
                self.on_lossy,
                refused_lossy,
            )

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        info = self._info(index)
        spec = info.spec
        refused: dict[str, str] = {}
        no_sparse = np.zeros(batch.num_rows, dtype=bool)
        if SPARSE in batch.schema.names and not spec.sparse:
            # conform() would drop these sparse vectors: refuse the records instead
            no_sparse = np.asarray(
                batch.column(SPARSE).is_valid().to_numpy(zero_copy_only=False), dtype=bool
            )
            batch = batch.select([n for n in batch.schema.names if n != SPARSE])
        try:
            batch = conform(batch, spec)
        except ValueError as exc:
            raise IncompatibleIndexError(str(exc), **self._where(index)) from None
        n = batch.num_rows
        ids = batch.column(ID).to_pylist()
        bad = non_finite_rows(batch)
        dense: np.ndarray | None = None
        valid = zero = np.zeros(n, dtype=bool)
        if VALUES in batch.schema.names:
            col = batch.column(VALUES)
            dense = np.ascontiguousarray(dense_matrix(col))
            valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            zero = ~(dense != 0).any(axis=1)
        sparse = batch.column(SPARSE).to_pylist() if SPARSE in batch.schema.names else [None] * n
        metas = batch.column(METADATA).to_pylist()
        parts: dict[str, bytes] = {}
        changed: dict[str, list[tuple[str, str, str]]] = {}
        lossy_refused: set[str] = set()
        for i in range(n):
            rid = ids[i]
            parts.pop(rid, None)  # a repeated id: the last row wins
            changed.pop(rid, None)
            refused.pop(rid, None)
            lossy_refused.discard(rid)
            reason = _id_problem(rid)
            if reason is None and no_sparse[i]:
                reason = (
                    f"the index cannot store sparse vectors (metric {spec.metric}"
                    f"{', tag ' + SPARSE_TAG + '=0' if spec.metric == 'dot' else ''})"
                )
            if reason is None and bad[i]:
                reason = "NaN or infinite value in a vector"
            if reason is None and dense is not None:
                if not valid[i]:
                    reason = "the index needs a dense vector on every record"
                elif zero[i]:
                    reason = "the dense vector is all zeros; Pinecone needs a non-zero value"
            sv = sparse[i]
            if sv is not None and not sv["indices"]:
                sv = None
            if reason is None:
                reason = _sparse_problem(sv)
            if reason is None and sv is None and spec.dimension is None:
                reason = "a sparse index needs non-empty sparse values on every record"
            meta: dict[str, Any] | None = None
            if reason is None:
                meta, reason, changes = self._metadata(metas[i])
                if reason is not None:
                    lossy_refused.add(rid)
                elif changes:
                    changed[rid] = changes
            if reason is not None:
                refused[rid] = reason
                continue
            rec: dict[str, Any] = {"id": rid}
            if dense is not None:
                rec["values"] = dense[i]
            if sv is not None:
                rec["sparseValues"] = {
                    "indices": [int(x) for x in sv["indices"]],
                    "values": np.asarray(sv["values"], dtype=np.float32),
                }
            if meta:
                rec["metadata"] = meta
            parts[rid] = _dumps(rec)
        self._tally(index, namespace, len(lossy_refused), list(changed.values()))
        if parts:
            self._send(info, index, namespace, list(parts.values()))
        return refused

    def _send(self, info: _IndexInfo, index: str, namespace: str, parts: list[bytes]) -> None:
        tail = b"]" + (b',"namespace":' + _dumps(namespace) if namespace else b"") + b"}"
        head = b'{"vectors":['
        room = MAX_REQUEST_BYTES - len(head) - len(tail)
        requests: list[list[bytes]] = []
        current: list[bytes] = []
        size = 0
        for part in parts:
            cost = len(part) + (1 if current else 0)
            if current and (len(current) >= MAX_UPSERT_ROWS or size + cost > room):
                requests.append(current)
                current, size = [], 0
                cost = len(part)
            current.append(part)
            size += cost
        if current:
            requests.append(current)
        with self._lock:
            self.stats["upsert_requests"] += len(requests)
            self.stats["upsert_splits"] += len(requests) - 1
        if len(requests) > 1:
            log.debug("upsert of %d records sent as %d requests", len(parts), len(requests))
        for group in requests:
            content = head + b",".join(group) + tail
            answer = self._request(
                "POST",
                f"{info.url}/vectors/upsert",
                f"upsert of {len(group)} records",
                index=index,
                content=content,
                data_plane=True,
            )
            upserted = (answer or {}).get("upsertedCount")
            if upserted is not None and upserted != len(group):
                log.warning(
                    "index %r: Pinecone acknowledged %s of %d upserted records",
                    index,
                    upserted,
                    len(group),
                )
            with self._lock:
                self.stats["records_sent"] += len(group)

    # -- search -----------------------------------------------------------------------------
    def query(
        self,
        index: str,
        vector: Sequence[float] | None,
        top_k: int = 10,
        namespace: str = DEFAULT_NAMESPACE,
        filter: Mapping[str, Any] | None = None,
        vector_name: str | None = None,
        *,
        sparse_vector: Mapping[str, Sequence[Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Pinecone's top-k: ``[{id, score, metadata}]``, best first. ``filter`` is a
        Pinecone metadata filter (a plain ``{key: value}`` means equality). Scores are
        Pinecone's own (euclidean: squared distance, lower is closer)."""
        if vector_name is not None:
            raise UnsupportedError("Pinecone indexes have no named vectors", **self._where(index))
        info = self._info(index)
        body: dict[str, Any] = {"topK": int(top_k), "includeMetadata": True}
        if vector is not None:
            body["vector"] = np.asarray(vector, dtype=np.float32)
        if sparse_vector is not None:
            body["sparseVector"] = {
                "indices": [int(x) for x in sparse_vector["indices"]],
                "values": np.asarray(sparse_vector["values"], dtype=np.float32),
            }
        if vector is None and sparse_vector is None:
            raise ConfigError("query needs a vector or a sparse_vector")
        if namespace:
            body["namespace"] = namespace
        if filter:
            body["filter"] = dict(filter)
        answer = self._request(
            "POST", f"{info.url}/query", "query", index=index, body=body, data_plane=True
        )
        return [
            {"id": m["id"], "score": float(m.get("score", 0.0)), "metadata": m.get("metadata")}
            for m in (answer or {}).get("matches") or []
        ]


def _sparse_of(record: Mapping[str, Any]) -> dict[str, Any] | None:
    sv = record.get("sparseValues")
    if not sv or not sv.get("indices"):
        return None
    return {"indices": sv["indices"], "values": sv["values"]}
