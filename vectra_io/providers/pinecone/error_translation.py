"""Pinecone's HTTP failures as vectra errors: the wording of transport failures and
timeouts, the transport failures worth retrying, and :func:`translate_error` for an
answer with an error status (the server's own message, scrubbed of the API key).
"""

from __future__ import annotations

import httpx

from ...errors import (
    FatalError,
    IndexNotFoundError,
    ProviderError,
    RecordsRejectedError,
    UnsupportedError,
)
from .._http import JsonApi, Wording

WORDING = Wording(
    timeout="Pinecone {what} timed out ({kind})",
    transport="Pinecone {what}: {kind}: {error}",
    other="Pinecone {what}: {kind}: {error}",
)
#: transport failures worth retrying (others, e.g. an unsupported scheme, are fatal)
RETRYABLE_TRANSPORT = (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)


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


def translate_error(
    api: JsonApi, resp: httpx.Response, what: str, index: str | None
) -> ProviderError:
    status = resp.status_code
    message = api.scrub(_server_message(resp))
    text = f"Pinecone {what} failed: HTTP {status}: {message}"
    where = api.where(index, status)
    if status == 403 and "deletion protection" in message.lower():
        return FatalError(text, **where)
    auth = (
        f"Pinecone refused the API key: {message}"
        if status == 401
        else f"Pinecone denied access: {message}"
    )
    common = api.common_status_error(resp, text, auth, index)
    if common is not None:
        return common
    if status == 404:
        return IndexNotFoundError(f"Pinecone: {message}", **where)
    if status == 501:
        return UnsupportedError(text, **where)
    if status in (400, 413, 422) and what.startswith("upsert"):
        return RecordsRejectedError(text, **where)
    return FatalError(text, **where)
