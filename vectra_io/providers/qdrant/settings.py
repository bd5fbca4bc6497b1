"""Options, location and limits of the Qdrant provider: the defaults (port, payload key of
the namespace, sparse vector name), the request-size and batch limits the engine is told
(:data:`QDRANT_CAPABILITIES`), the paging sizes of reads, and the parsing of
``host[:port][/prefix][?k=v&...]`` and of numeric options.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from ...errors import (
    ConfigError,
)
from ...metrics import supported
from ..base import (
    ID_TYPES,
    Capabilities,
)

DEFAULT_PORT = 6333
DEFAULT_NAMESPACE_KEY = "_vectra_namespace"
DEFAULT_SPARSE_NAME = "sparse"
UNNAMED = ""  # Qdrant's name of the default (unnamed) vector
META_KEY = "vectra_io"  # collection metadata entry vectra-io writes
#: ``service.max_request_size_mb: 32`` (config/config.yaml)
MAX_REQUEST_BYTES = 32 * 1024 * 1024
#: the engine is told this share of the hard limit (estimates are estimates)
REQUEST_HEADROOM = 0.75
DEFAULT_MAX_BATCH_ROWS = 1000
#: request bytes per Arrow byte of an upsert (orjson, shortest float32 text), measured on
#: 768-d vectors with string ids and small metadata: N(0,1) 2.73, unit-norm embeddings 3.09,
#: uniform [0,1) 2.66. Components of magnitude 1e-6..1e-5 print positionally (up to 17
#: bytes: 4.25 per float); the 25% headroom below the body limit absorbs that
#: (24 MiB / 3.5 * 4.25 = 29 MiB), and a body still too large is split before sending.
WIRE_FACTOR = 3.5
MAX_DIMENSION = 65536
FETCH_CHUNK = 1000
FACET_PAGE = 10_000
KEYS_PAGE = 10_000
ID_SAMPLE = 64

QDRANT_CAPABILITIES = Capabilities(
    max_batch_rows=DEFAULT_MAX_BATCH_ROWS,
    max_batch_bytes=int(MAX_REQUEST_BYTES * REQUEST_HEADROOM),
    id_types=frozenset(ID_TYPES),  # uint64 and UUIDs natively, other strings mapped
    metrics=supported("qdrant"),
    namespaces=True,
    sparse=True,
    named_vectors=True,
    exact_count=True,
    nested_metadata=True,
    idempotent_upsert=True,
    optional_dense=True,
    max_dimension=MAX_DIMENSION,
    exact_floats=True,
    wire_factor=WIRE_FACTOR,
)


# -- location / options ------------------------------------------------------------------
def number(value: Any, option: str, kind: type = float, minimum: float = 0) -> Any:
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"qdrant provider: option {option} must be a number") from None
    if out <= minimum:
        raise ConfigError(f"qdrant provider: option {option} must be greater than {minimum}")
    return out


def parse_location(location: str) -> tuple[str, int, str, dict[str, str]]:
    """``host[:port][/prefix][?k=v&...]`` -> (host, port, prefix, options)."""
    text = location.strip()
    if not text:
        raise ConfigError("qdrant provider: no host given (qdrant://HOST:6333)")
    parts = urllib.parse.urlsplit("//" + text)
    if parts.username or parts.password:
        raise ConfigError(
            "qdrant provider: credentials do not belong in the URL; pass api_key= or set "
            "$QDRANT_API_KEY"
        )
    host = parts.hostname or ""
    if not host:
        raise ConfigError(f"qdrant provider: no host in {text.split('?')[0]!r}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"qdrant provider: bad port in {text.split('?')[0]!r}") from None
    options: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in ("api_key", "api-key", "apikey", "key", "token"):
            raise ConfigError(
                "qdrant provider: the API key does not belong in the URL; pass api_key= or "
                "set $QDRANT_API_KEY"
            )
        options[key] = value
    return host, port, parts.path.rstrip("/"), options
