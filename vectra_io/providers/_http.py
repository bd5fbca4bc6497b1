"""HTTP plumbing shared by the providers that speak JSON over httpx.

What lives here is what those providers do alike: JSON encoding (orjson with numpy
arrays when installed, the standard library otherwise), ``Retry-After`` parsing, secret
scrubbing, one shared TLS context, and :class:`JsonApi`, an ``httpx.Client`` whose
:meth:`JsonApi.request` turns transport failures into the :mod:`vectra_io.errors` tree and
whose :meth:`JsonApi.common_status_error` classifies the statuses every provider treats
the same (401/403 -> :class:`AuthError`; 429 and 5xx -> :class:`RetryableError` with
``retry_after``). The wording of messages and everything provider-specific (404 on a
collection route, per-object errors, refused batches) stays with the provider.
"""

from __future__ import annotations

import email.utils
import functools
import json
import math
import ssl
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np

from ..errors import AuthError, FatalError, ProviderError, RetryableError

try:  # orjson: float32 arrays serialised natively (shortest round-trip form), much faster
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency in practice
    _orjson = None  # type: ignore[assignment]

__all__ = [
    "JsonApi",
    "Wording",
    "dumps",
    "loads",
    "netloc",
    "parse_retry_after",
    "scrub",
    "shared_ssl_context",
]


# -- JSON ------------------------------------------------------------------------------
def _np_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(obj: Any) -> bytes:
    """JSON bytes; numpy float32 arrays in their shortest exact form with orjson."""
    if _orjson is not None:
        return _orjson.dumps(obj, option=_orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(  # pragma: no cover - without orjson
        obj, default=_np_default, allow_nan=False, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse JSON (orjson when installed); ``ValueError`` when it is not JSON."""
    return _orjson.loads(data) if _orjson is not None else json.loads(data)


# -- small helpers ---------------------------------------------------------------------
def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds (fractions allowed) or an HTTP
    date (a date without a zone is UTC). ``None`` when absent, unreadable or not finite;
    never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text


def netloc(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context (certifi's CAs) for every client: building one costs
    ~0.2-0.3 s."""
    return httpx.create_ssl_context()


# -- the client ------------------------------------------------------------------------
@dataclass(frozen=True)
class Wording:
    """How a provider words transport failures. Templates are ``str.format``-ed with
    ``what`` (the operation), ``kind`` (the exception class name), ``error`` (its text)
    and ``detail`` (its text, or ``kind`` when empty); the result is scrubbed."""

    timeout: str
    transport: str
    #: other ``httpx.HTTPError`` -> :class:`FatalError`; None lets them propagate
    other: str | None = None


def default_retryable(status: int) -> bool:
    """429 and every 5xx but 501 (Not Implemented)."""
    return status == 429 or (status >= 500 and status != 501)


class JsonApi:
    """An ``httpx.Client`` speaking JSON for one provider endpoint.

    ``request`` sends and returns the response whatever its status, raising
    :class:`RetryableError` for timeouts and ``retryable_transport`` errors (and the
    ``wording.other`` :class:`FatalError` for other httpx errors), each with the
    provider, endpoint and index; the API key never appears in a message.
    """

    def __init__(
        self,
        provider: str,
        endpoint: str,
        *,
        wording: Wording,
        secrets: Iterable[str | None] = (),
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_connections: int = 32,
        max_keepalive: int | None = None,
        keepalive_expiry: float = 5.0,
        verify: bool | str | ssl.SSLContext = True,
        transport: httpx.BaseTransport | None = None,
        retryable_transport: tuple[type[Exception], ...] = (httpx.TransportError,),
        retryable_status: Callable[[int], bool] | Collection[int] = default_retryable,
    ) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.wording = wording
        self.secrets = tuple(s for s in secrets if s)
        self.retryable_transport = retryable_transport
        if callable(retryable_status):
            self._retryable: Callable[[int], bool] = retryable_status
        else:
            statuses = frozenset(retryable_status)
            self._retryable = statuses.__contains__
        self.client = httpx.Client(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=(
                    max_connections if max_keepalive is None else max_keepalive
                ),
                keepalive_expiry=keepalive_expiry,
            ),
            follow_redirects=False,
            verify=shared_ssl_context() if verify is True else verify,
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def where(self, index: str | None, status: int | None = None) -> dict[str, Any]:
        """The ``provider``/``endpoint``/``index``/``status`` keywords of an error."""
        return {
            "provider": self.provider,
            "endpoint": self.endpoint,
            "index": index,
            "status": status,
        }

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        index: str | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        params: Any = None,
        on_disconnect: Callable[[], None] | None = None,
    ) -> httpx.Response:
        """Send one request (``json_body`` encoded with :func:`dumps`, or ready ``content``)
        and return the response, whatever its status. ``on_disconnect`` runs before a
        retryable non-timeout transport failure is raised."""
        if json_body is not None:
            content = dumps(json_body)
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            return self.client.request(method, url, params=params, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableError(
                self._say(self.wording.timeout, what, exc), **self.where(index)
            ) from None
        except self.retryable_transport as exc:
            if on_disconnect is not None:
                on_disconnect()
            raise RetryableError(
                self._say(self.wording.transport, what, exc), **self.where(index)
            ) from None
        except httpx.HTTPError as exc:
            if self.wording.other is None:
                raise
            raise FatalError(
                self._say(self.wording.other, what, exc), **self.where(index)
            ) from None

    def _say(self, template: str, what: str, exc: Exception) -> str:
        kind = type(exc).__name__
        error = str(exc)
        return self.scrub(template.format(what=what, kind=kind, error=error, detail=error or kind))

    def is_retryable(self, status: int) -> bool:
        return self._retryable(status)

    def common_status_error(
        self, response: httpx.Response, text: str, auth_text: str, index: str | None
    ) -> ProviderError | None:
        """The error every provider raises alike for ``response``: :class:`RetryableError`
        (``text``, ``retry_after`` from the header) for 429/5xx, :class:`AuthError`
        (``auth_text``) for 401/403; None for any other status. Texts must be scrubbed."""
        status = response.status_code
        where = self.where(index, status)
        if self.is_retryable(status):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return RetryableError(text, retry_after=retry_after, **where)
        if status in (401, 403):
            return AuthError(auth_text, **where)
        return None
