"""Translation of pymilvus and gRPC failures into the vectra error tree: Milvus error codes
(merr and the legacy common.ErrorCode values) and gRPC status codes become
:class:`~vectra_io.errors.AuthError`, :class:`~vectra_io.errors.RetryableError`,
:class:`~vectra_io.errors.RecordsRejectedError` and the rest, with the token scrubbed
from every message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import (
    AuthError,
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    RecordsRejectedError,
    RetryableError,
)

# merr codes (milvus pkg/util/merr/errors.go) that may succeed when tried again
_RETRYABLE_CODES = frozenset({2, 4, 8, 12, 103, 106, 202, 1002, 1807, 10001})
_AUTH_CODES = frozenset({1400, 1401, 1800})
_INPUT_CODES = frozenset({1100, 1101, 1102, 1804, 1806})
# legacy common.ErrorCode values
_LEGACY_RETRYABLE = frozenset({2, 45, 46, 49, 53, 55, 56, 57})
_LEGACY_PERMISSION_DENIED = 3
_LEGACY_ILLEGAL_ARGUMENT = frozenset({5, 6, 7, 11})
#: Milvus Lite 3.2 (code 1): two flushes of one store raced on the manifest's sequence
#: number (another process writing to it); the write may be sent again, upserts are idempotent
_LITE_FLUSH_RACE = "current_seq is monotonic"


def translated(
    exc: BaseException,
    where: dict[str, Any],
    *,
    records: bool,
    scrub: Callable[[str], str],
    endpoint: str,
) -> Exception:
    """The vectra error for a pymilvus/gRPC failure (``where``: the error's context,
    ``scrub``: removes the token from a message)."""
    try:
        import grpc
        from pymilvus.exceptions import DataNotMatchException, MilvusException, ParamError
    except ImportError:  # pragma: no cover
        return FatalError(scrub(str(exc)), **where)
    if isinstance(exc, grpc.RpcError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        details = exc.details() if callable(getattr(exc, "details", None)) else ""
        return _from_grpc(code, str(details or exc), where, records, scrub)
    if isinstance(exc, DataNotMatchException | ParamError):
        msg = scrub(getattr(exc, "message", "") or str(exc))
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
            return _from_grpc(cause.code(), str(cause.details()), where, records, scrub)
        raw_code = exc.code
        msg = scrub(str(exc.message or exc))
        if isinstance(raw_code, grpc.StatusCode):
            return _from_grpc(raw_code, msg, where, records, scrub)
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
            return ConfigError(f"Milvus database problem ({endpoint}): {msg}")
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
            or _LITE_FLUSH_RACE in low
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
        return RetryableError(f"cannot reach Milvus: {scrub(str(exc))}", **where)
    return FatalError(f"Milvus client error: {scrub(repr(exc))}", **where)


def _from_grpc(
    code: Any, details: str, where: dict[str, Any], records: bool, scrub: Callable[[str], str]
) -> Exception:
    import grpc

    msg = scrub(details)
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
