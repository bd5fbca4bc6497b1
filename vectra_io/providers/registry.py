"""Provider registry: URL scheme -> provider class, imported lazily.

A provider URL is ``<name>://<location>`` or ``<name>+https://<location>``.
Drivers are optional extras: opening a provider whose driver is missing raises
:class:`~vectra_io.errors.DriverMissingError` naming the extra to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, DriverMissingError
from .base import Provider


@dataclass(frozen=True)
class ProviderEntry:
    name: str  # also the module under vectra_io.providers
    cls: str
    extra: str | None  # pip extra that installs the driver; None = core
    drivers: tuple[str, ...] = ()  # importable modules the driver needs
    api_key_env: str | None = None
    url_example: str = ""

    def installed(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.drivers)

    def install_hint(self) -> str:
        return f'pip install "vectra-io[{self.extra}]"' if self.extra else "pip install vectra-io"


# fmt: off
_TABLE = [
    # name       class               extra       drivers        API-key env          URL form
    ("memory",   "MemoryProvider",   None,       (),            None,                "memory://NAME"),
    ("lancedb",  "LanceDBProvider",  "lancedb",  ("lancedb",),  None,                "lancedb:///path/to/db"),
    ("pgvector", "PgVectorProvider", "pgvector", ("psycopg",),  "PGPASSWORD",        "pgvector://user@host:5432/db"),
    ("chroma",   "ChromaProvider",   None,       (),            "CHROMA_API_KEY",    "chroma://host:8000"),
    ("milvus",   "MilvusProvider",   "milvus",   ("pymilvus",), "MILVUS_TOKEN",      "milvus://host:19530"),
    ("qdrant",   "QdrantProvider",   None,       (),            "QDRANT_API_KEY",    "qdrant://host:6333"),
    ("pinecone", "PineconeProvider", None,       (),            "PINECONE_API_KEY",  "pinecone://api.pinecone.io"),
    ("weaviate", "WeaviateProvider", None,       (),            "WEAVIATE_API_KEY",  "weaviate://host:8080"),
]
# fmt: on
PROVIDERS: dict[str, ProviderEntry] = {row[0]: ProviderEntry(*row) for row in _TABLE}
ALIASES = {"postgresql": "pgvector", "postgres": "pgvector", "lance": "lancedb"}


def entry(name: str) -> ProviderEntry:
    key = ALIASES.get(name.lower(), name.lower())
    try:
        return PROVIDERS[key]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(f"unknown provider {name!r}; known providers: {known}") from None


def provider_class(name: str) -> type[Provider]:
    e = entry(name)
    missing = [m for m in e.drivers if importlib.util.find_spec(m) is None]
    if missing:
        raise DriverMissingError(
            f"provider {e.name!r} needs the driver {', '.join(missing)}: {e.install_hint()}"
        )
    module = importlib.import_module(f"vectra_io.providers.{e.name}")
    cls: type[Provider] = getattr(module, e.cls)
    return cls


def split_url(url: str) -> tuple[str, bool, str]:
    """``qdrant+https://h:1`` -> ("qdrant", True, "h:1"). The location keeps everything after ://."""
    if "://" not in url:
        raise ConfigError(
            f"{url!r} is not a provider URL: expected <provider>://<location>, "
            f"e.g. {PROVIDERS['lancedb'].url_example}"
        )
    scheme, location = url.split("://", 1)
    base, _, transport = scheme.partition("+")
    if transport not in ("", "http", "https"):
        raise ConfigError(f"unknown transport {transport!r} in {url!r}: use +https or +http")
    return base.lower(), transport == "https", location


def open_provider(
    url: str | None = None,
    *,
    provider: str | None = None,
    location: str = "",
    api_key: str | None = None,
    tls: bool = False,
    **options: Any,
) -> Provider:
    """Open a provider from a URL, or from a provider name and a location.

    The API key falls back to the provider's documented environment variable.
    """
    if url is not None:
        provider, tls, location = split_url(url)
    if provider is None:
        raise ConfigError("no provider given")
    e = entry(provider)
    if api_key is None and e.api_key_env:
        api_key = os.environ.get(e.api_key_env) or None
    cls = provider_class(e.name)
    return cls(location, api_key=api_key, tls=tls, **options)  # type: ignore[call-arg]


def providers_info() -> list[dict[str, Any]]:
    return [
        {
            "name": e.name,
            "installed": e.installed(),
            "extra": e.extra,
            "install": e.install_hint(),
            "api_key_env": e.api_key_env,
            "url": e.url_example,
        }
        for e in PROVIDERS.values()
    ]
