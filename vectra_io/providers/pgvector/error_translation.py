"""What a psycopg or network failure means for the ``pgvector`` provider: the vectra error
(retryable, authentication, missing table, incompatible table, fatal) for a driver or server
failure, chosen by its SQLSTATE or, for connection failures that have none, by its message,
with the provider's secrets scrubbed from the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg

from ...errors import (
    AuthError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    ProviderError,
    RetryableError,
)


def translate_error(
    exc: BaseException, what: str, where: dict[str, Any], scrub: Callable[[object], str]
) -> ProviderError:
    """The vectra error for a driver/server failure (message without secrets): ``what`` was
    being done, ``where`` locates it, ``scrub`` removes the secrets from a text."""
    if isinstance(exc, psycopg.Error):
        lines = str(exc).strip().splitlines()
        message = exc.diag.message_primary or (lines[0] if lines else type(exc).__name__)
        message = scrub(message)
        state = exc.sqlstate or ""
        text = f"{what}: {message}"
        lower = str(exc).lower()
        if not state:
            auth_signs = (
                "password authentication failed",
                "no password supplied",
                "authentication failed",
                "pg_hba.conf",
                "permission denied",
            )
            if any(s in lower for s in auth_signs) or re.search(r'role ".*" does not exist', lower):
                return AuthError(f"{what}: authentication refused: {message}", **where)
            if re.search(r'database ".*" does not exist', lower) or (
                "ssl" in lower and ("not support" in lower or "certificate" in lower)
            ):
                return FatalError(text, **where)
            if isinstance(exc, psycopg.OperationalError):
                return RetryableError(text, **where)
            return FatalError(text, **where)
        cls2 = state[:2]
        if cls2 in ("08", "53", "40") or state in ("57P01", "57P02", "57P03", "57014", "55P03"):
            return RetryableError(text, **where)
        if cls2 == "28" or state == "42501":
            return AuthError(text, **where)
        if state in ("42P01", "3F000"):
            return IndexNotFoundError(f"{what}: table does not exist: {message}", **where)
        if state == "42703":
            return IncompatibleIndexError(text, **where)
        return FatalError(text, **where)
    if isinstance(exc, (OSError, TimeoutError)):
        return RetryableError(f"{what}: {scrub(exc)}", **where)
    return FatalError(f"{what}: {scrub(exc)}", **where)
