"""The HTTP side of the provider: :class:`QdrantClient` reads the options, holds the
pooled httpx client (:class:`JsonApi`), sends one request at a time and turns Qdrant's
answers into vectra errors, and caches the :class:`Info` of the collections it has asked
about. :class:`QdrantProvider` builds on it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx

from ...errors import (
    ConfigError,
    FatalError,
    IndexNotFoundError,
    ProviderError,
    RecordsRejectedError,
    UnsupportedError,
)
from ...ids import ORIGINAL_ID_KEY
from .._http import JsonApi, Wording, loads, netloc
from ..base import (
    ProviderBase,
    parse_bool,
)
from .collection_info import Info
from .names import check_name, quote
from .settings import (
    DEFAULT_MAX_BATCH_ROWS,
    DEFAULT_NAMESPACE_KEY,
    DEFAULT_SPARSE_NAME,
    MAX_REQUEST_BYTES,
    QDRANT_CAPABILITIES,
    REQUEST_HEADROOM,
    number,
    parse_location,
)

_WORDING = Wording(
    timeout="Qdrant did not answer in time ({what}: {kind})",
    transport="cannot reach Qdrant ({what}): {detail}",
    other="request to Qdrant failed ({what}): {detail}",
)


class QdrantClient(ProviderBase):
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
        timeout = number(opts.get("timeout", 60.0), "timeout")
        connect_timeout = number(opts.get("connect_timeout", 10.0), "connect_timeout")
        max_connections = number(opts.get("max_connections", 32), "max_connections", int)
        max_rows = number(opts.get("max_batch_rows", DEFAULT_MAX_BATCH_ROWS), "max_batch_rows", int)
        self.max_request_bytes = number(
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
        self._infos: dict[str, Info] = {}
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
    def _fetch_info(self, name: str) -> Info:
        check_name(name)
        result = self._call("GET", f"/collections/{quote(name)}", index=name)
        info = Info.parse(name, result or {})
        with self._lock:
            self._infos[name] = info
        return info

    def _info(self, name: str, *, fresh: bool = False) -> Info:
        if not fresh:
            with self._lock:
                info = self._infos.get(name)
            if info is not None:
                return info
        return self._fetch_info(name)

    def _maybe_info(self, name: str) -> Info | None:
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
