"""The ``pinecone`` provider class: :class:`PineconeProvider` keeps the HTTP client, the
options and what it knows of each index, and implements the provider interface on them
(listing, describing, creating and deleting indexes; namespaces and counts; fetching and
scanning through its :class:`RecordReader`; checking and writing records; queries), with
the helpers of this package. The conventions (URL, options, mapping, export, lossy
metadata, errors) are in the package docstring.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from ... import metrics
from ..._version import __version__
from ...errors import (
    AuthError,
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    RetryableError,
    UnsupportedError,
)
from ...records import ID, METADATA, SPARSE, VALUES, conform, dense_matrix, non_finite_rows
from .._http import JsonApi
from .._http import dumps as _dumps
from .._http import loads as _loads
from ..base import DEFAULT_NAMESPACE, Cursor, IndexSpec, ProviderBase, ScanPage
from .error_translation import RETRYABLE_TRANSPORT, WORDING, translate_error
from .index_info import IndexInfo, check_compatible, info_from_model
from .limits import (
    API_VERSION,
    CONTROL_HOST,
    DEFAULT_FETCH_IDS,
    DEFAULT_LIST_LIMIT,
    DEFAULT_NAMESPACE_NAME,
    INDEX_NAME_RE,
    LOSSY_POLICIES,
    MAX_DIMENSION,
    MAX_FETCH_IDS,
    MAX_REQUEST_BYTES,
    MAX_UPSERT_ROWS,
    PINECONE_CAPABILITIES,
    SPARSE_TAG,
)
from .reading import RecordReader
from .record_checks import (
    changes_text,
    checked_metadata,
    id_problem,
    new_lossy_report,
    sparse_problem,
    tally,
)
from .settings import is_pinecone_host, merge_options, parse_location

log = logging.getLogger("vectra_io.providers.pinecone")


def _ns_from_listing(name: str) -> str:
    return DEFAULT_NAMESPACE if name in ("", DEFAULT_NAMESPACE_NAME) else name


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
        where = parse_location(location, tls)
        opts = merge_options(where.options, options)
        self._https = where.https
        self._control = where.base_url
        if where.netloc == CONTROL_HOST or (is_pinecone_host(where.netloc) and where.https):
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
        list_limit = opts.get("list_limit", DEFAULT_LIST_LIMIT)
        fetch_ids = opts.get("fetch_ids", DEFAULT_FETCH_IDS)
        fetch_workers = opts.get("fetch_workers", 4)
        if list_limit < 1 or not 1 <= fetch_ids <= MAX_FETCH_IDS:
            raise ConfigError(
                f"pinecone provider: list_limit must be >= 1 and fetch_ids 1..{MAX_FETCH_IDS}"
            )
        if fetch_workers < 1:
            raise ConfigError("pinecone provider: fetch_workers must be at least 1")
        self._ready_timeout = opts.get("ready_timeout", 300.0)
        self._ready_poll = opts.get("ready_poll", 1.0)
        ids_from = opts.get("ids_from")
        ids_path: Path | None = None
        if ids_from:
            path = Path(ids_from).expanduser()
            if not path.is_file():
                raise ConfigError(f"pinecone provider: ids_from file {str(path)!r} not found")
            ids_path = path
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
            wording=WORDING,
            secrets=[self._api_key],
            headers=headers,
            timeout=timeout,
            connect_timeout=min(10.0, timeout),
            max_connections=64,
            max_keepalive=32,
            retryable_transport=RETRYABLE_TRANSPORT,
        )
        self._client = self._api.client
        self._lock = threading.RLock()
        self._infos: dict[str, IndexInfo] = {}
        self._caveat_logged: set[str] = set()
        #: metadata changed or refused under ``on_lossy`` (see the package docstring)
        self.lossy_report: dict[str, Any] = new_lossy_report(policy)
        self._reader = RecordReader(
            self._request,
            self._where,
            self._lock,
            list_limit=list_limit,
            fetch_ids=fetch_ids,
            fetch_workers=fetch_workers,
            ids_path=ids_path,
        )
        #: scan problems, kept by the reader: see :class:`RecordReader`
        self.scan_report = self._reader.scan_report
        #: request statistics (upsert requests, the ones split here, records sent)
        self.stats: dict[str, int] = {"upsert_requests": 0, "upsert_splits": 0, "records_sent": 0}

    def __repr__(self) -> str:
        return f"PineconeProvider({self.endpoint!r})"

    def close(self) -> None:
        self._reader.close()
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
            raise translate_error(self._api, resp, what, index)
        if not resp.content:
            return None
        try:
            return _loads(resp.content)
        except ValueError:
            raise FatalError(
                f"Pinecone {what}: the answer is not JSON", **self._where(index, resp.status_code)
            ) from None

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

    def _info(self, index: str, *, refresh: bool = False) -> IndexInfo:
        with self._lock:
            info = None if refresh else self._infos.get(index)
        if info is None:
            info = info_from_model(self.name, self._describe_model(index), self._https)
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
            check_compatible(existing.spec, spec, where)
        self._wait_ready(spec.name)
        if existing is None:
            check_compatible(self._info(spec.name).spec, spec, where)

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
    def _stats(self, info: IndexInfo, index: str) -> dict[str, Any]:
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
    def fetch(
        self, index: str, ids: Sequence[str], namespace: str = DEFAULT_NAMESPACE
    ) -> pa.RecordBatch:
        return self._reader.fetch(self._info(index), index, ids, namespace)

    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        info = self._info(index)
        yield from self._reader.scan(info, index, namespace, batch_size, cursor)

    # -- writing ----------------------------------------------------------------------------
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
            reason = id_problem(rid) or sparse_problem(sparse[i])
            if reason is None:
                _, reason, changes = checked_metadata(metas[i], self.on_lossy)
                if reason is None:
                    if changes:
                        out[rid] = changes_text(changes, self.on_lossy)
                    continue
            out[rid] = f"refused: {reason}"
        return out

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
            reason = id_problem(rid)
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
                reason = sparse_problem(sv)
            if reason is None and sv is None and spec.dimension is None:
                reason = "a sparse index needs non-empty sparse values on every record"
            meta: dict[str, Any] | None = None
            if reason is None:
                meta, reason, changes = checked_metadata(metas[i], self.on_lossy)
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
        tally(
            self.lossy_report,
            self._lock,
            self.on_lossy,
            index,
            namespace,
            len(lossy_refused),
            list(changed.values()),
        )
        if parts:
            self._send(info, index, namespace, list(parts.values()))
        return refused

    def _send(self, info: IndexInfo, index: str, namespace: str, parts: list[bytes]) -> None:
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
