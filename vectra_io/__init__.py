"""vectra-io: move vector databases between providers through exact, verifiable snapshots."""

from __future__ import annotations

import logging

from ._version import __version__
from .api import Client, Migration
from .engine.export import export_snapshot
from .engine.importer import import_snapshot
from .engine.migrate import migrate
from .engine.plan import plan
from .engine.retry import RetryPolicy
from .engine.verify import verify_snapshot
from .errors import (
    ConfigError,
    ProviderError,
    RecordFailure,
    RetryableError,
    SnapshotError,
    VectraError,
)
from .providers.base import Capabilities, IndexSpec, Provider, VectorSpec

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Capabilities",
    "Client",
    "ConfigError",
    "IndexSpec",
    "Migration",
    "Provider",
    "ProviderError",
    "RecordFailure",
    "RetryPolicy",
    "RetryableError",
    "SnapshotError",
    "VectorSpec",
    "VectraError",
    "__version__",
    "export_snapshot",
    "import_snapshot",
    "migrate",
    "plan",
    "verify_snapshot",
]
