"""One error tree for the whole library.

Providers translate their driver's and server's failures into these classes at
their boundary; the engine decides what to retry by class alone
(:class:`RetryableError`) and never inspects provider-specific exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class VectraError(Exception):
    """Base class of every error vectra-io raises on purpose."""


class ConfigError(VectraError):
    """Bad usage or configuration: a URL, an option, a missing driver."""


class DriverMissingError(ConfigError):
    """A provider's optional driver is not installed."""


class SnapshotError(VectraError):
    """A snapshot is missing, incomplete, corrupt or unsafe to read."""


class VerificationError(VectraError):
    """A verification found a mismatch."""


class ProviderError(VectraError):
    """A provider operation failed. ``provider``, ``endpoint`` and ``index`` say where."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        endpoint: str | None = None,
        index: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.endpoint = endpoint
        self.index = index
        self.status = status

    def __str__(self) -> str:
        where = [
            p
            for p in (
                self.provider and f"provider {self.provider}",
                self.endpoint and f"endpoint {self.endpoint}",
                self.index and f"index {self.index!r}",
            )
            if p
        ]
        return f"{self.message} ({', '.join(where)})" if where else self.message


class RetryableError(ProviderError):
    """A failure that may succeed if tried again: connection, timeout, 429, 5xx."""

    def __init__(self, message: str, *, retry_after: float | None = None, **where: Any) -> None:
        super().__init__(message, **where)
        self.retry_after = retry_after


class FatalError(ProviderError):
    """A failure that cannot succeed on retry."""


class AuthError(FatalError):
    """Credentials missing or refused. The secret itself is never part of the message."""


class IndexNotFoundError(FatalError):
    """The index (table, collection, class) does not exist."""


class IncompatibleIndexError(FatalError):
    """An existing target index has another dimension, metric or shape."""


class UnsupportedError(FatalError):
    """The provider cannot do this (a capability it does not declare)."""


class RecordsRejectedError(FatalError):
    """The provider refused the records of a batch (bad id, bad metadata, ...).

    ``failures`` maps record id to the reason, when the provider says which.
    """

    def __init__(self, message: str, *, failures: dict[str, str] | None = None, **where: Any):
        super().__init__(message, **where)
        self.failures = failures or {}


@dataclass
class RecordFailure:
    """Records that could not be moved, with the reason. Collected, never raised."""

    index: str
    namespace: str
    ids: list[str]
    error: str
    part: str | None = None
    kind: str = "write"  # "write" | "invalid" (bad input, e.g. NaN) | "lossy"
    details: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "namespace": self.namespace,
            "ids": list(self.ids),
            "error": self.error,
            "kind": self.kind,
        }
        if self.part is not None:
            out["part"] = self.part
        if self.details:
            out["details"] = dict(self.details)
        return out
