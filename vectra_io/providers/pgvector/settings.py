"""Options of the ``pgvector`` provider: the vectra options (given as keyword arguments or
URL query parameters) checked into :class:`Settings`, and the ``user:pw@host:port/db?k=v``
location split into libpq connection parameters and query options, without echoing it
(it may hold a password).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ...errors import ConfigError
from ..base import IndexSpec, parse_bool

OPTIONS = {
    "schema",
    "id_column",
    "vector_column",
    "namespace_column",
    "sparse_column",
    "metadata_column",
    "metadata_columns",
    "hnsw",
    "sparse_dim",
    "pool_size",
    "pool_timeout",
}


def _number(name: str, value: Any, kind: type, low: float, high: float) -> Any:
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"pgvector option {name}: expected a number, got {value!r}") from None
    if not low <= out <= high:
        raise ConfigError(f"pgvector option {name}: {out} is not between {low:g} and {high:g}")
    return out


@dataclass(frozen=True)
class Settings:
    schema: str = "public"
    id_column: str | None = None
    vector_column: str | None = None
    namespace_column: str | None = None
    sparse_column: str | None = None
    metadata_column: str | None = None
    metadata_columns: tuple[str, ...] | None = None  # ("*",) = every other column
    hnsw: bool = True
    sparse_dim: int | None = None
    pool_size: int = 10
    pool_timeout: float = 60.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Settings:
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ConfigError(f"pgvector provider: unknown options {unknown}")
        kw: dict[str, Any] = {}
        for key in ("schema", "id_column", "vector_column", "namespace_column", "sparse_column"):
            if key in options:
                kw[key] = str(options[key])
        if "metadata_column" in options:
            kw["metadata_column"] = str(options["metadata_column"])
        if "metadata_columns" in options:
            value = options["metadata_columns"]
            names = value.split(",") if isinstance(value, str) else list(value)
            kw["metadata_columns"] = tuple(n.strip() for n in names if n.strip())
            if kw.get("metadata_column"):
                raise ConfigError("pgvector: give metadata_column or metadata_columns, not both")
        if not kw.get("schema", "public"):
            raise ConfigError("pgvector option schema must not be empty")
        if "hnsw" in options:
            kw["hnsw"] = parse_bool("pgvector", "hnsw", options["hnsw"])
        if "sparse_dim" in options:
            kw["sparse_dim"] = _number("sparse_dim", options["sparse_dim"], int, 1, 1e9)
        if "pool_size" in options:
            kw["pool_size"] = _number("pool_size", options["pool_size"], int, 1, 1000)
        if "pool_timeout" in options:
            kw["pool_timeout"] = _number("pool_timeout", options["pool_timeout"], float, 0, 86400)
        return cls(**kw)

    def new_table_columns(self, spec: IndexSpec) -> dict[str, str]:
        """Column names of a table to create: the defaults, or the names given as options."""
        s = self
        if s.metadata_columns:
            raise ConfigError(
                "pgvector: metadata_columns maps existing tables; vectra cannot create the "
                "columns (their types are unknown): create the table first"
            )
        names = {
            "namespace": "namespace" if s.namespace_column is None else s.namespace_column,
            "id": s.id_column or "id",
            "embedding": "embedding" if s.vector_column is None else s.vector_column,
            "sparse": s.sparse_column or "sparse",
            "metadata": s.metadata_column or "metadata",
        }
        if spec.dimension is not None and not names["embedding"]:
            raise ConfigError("pgvector: vector_column is empty, the records have vectors")
        return names


def parse_location(location: str) -> tuple[dict[str, str], dict[str, str]]:
    """``user:pw@host:port/db?k=v`` -> (libpq parameters, query options). Never echoes it."""
    parts = urlsplit("//" + location)
    params: dict[str, str] = {}
    try:
        port = parts.port
    except ValueError:
        raise ConfigError("pgvector: the port in the location is not a number") from None
    if parts.hostname:
        params["host"] = parts.hostname
    if port is not None:
        params["port"] = str(port)
    if parts.username:
        params["user"] = unquote(parts.username)
    if parts.password:
        params["password"] = unquote(parts.password)
    dbname = unquote(parts.path.lstrip("/"))
    if "/" in dbname:
        raise ConfigError("pgvector: the location is host:port/dbname (one path segment)")
    if dbname:
        params["dbname"] = dbname
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query[key] = value
    return params, query
