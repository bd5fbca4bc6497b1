"""Location and options of the ``pinecone`` provider: :func:`parse_location` reads the
host, TLS and query options of a ``pinecone://`` URL into a :class:`Location`, and
:func:`merge_options` types the options and checks them against the ones given as
arguments (see the package docstring for the URL and the options).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError
from .limits import CONTROL_HOST

_OPTION_TYPES: dict[str, Callable[[Any], Any]] = {
    "timeout": float,
    "cloud": str,
    "region": str,
    "environment": str,
    "pod_type": str,
    "deletion_protection": str,
    "on_lossy": str,
    "ids_from": str,
    "list_limit": int,
    "fetch_ids": int,
    "fetch_workers": int,
    "ready_timeout": float,
    "ready_poll": float,
}


# -- location and options -------------------------------------------------------------------
@dataclass(frozen=True)
class Location:
    https: bool
    netloc: str
    options: dict[str, str]

    @property
    def base_url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.netloc}"


def is_pinecone_host(host: str) -> bool:
    host = host.lower()
    return host == "pinecone.io" or host.endswith(".pinecone.io")


def parse_location(location: str, tls: bool) -> Location:
    loc, _, query = location.partition("?")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    options: dict[str, str] = {}
    for key, value in pairs:
        if key in options and options[key] != value:
            raise ConfigError(f"pinecone URL: option {key!r} given twice")
        options[key] = value
    loc = loc.strip().rstrip("/")
    if "@" in loc:
        raise ConfigError(
            "pinecone URL: credentials in the URL are refused; "
            "pass api_key= or set PINECONE_API_KEY"
        )
    if "/" in loc:
        raise ConfigError(f"pinecone URL: unexpected path in {loc!r}: use pinecone://host:port")
    if not loc:
        return Location(True, CONTROL_HOST, options)
    try:
        parts = urllib.parse.urlsplit("//" + loc)
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigError(f"pinecone URL: bad host {loc!r}: {exc}") from None
    if not host:
        raise ConfigError(f"pinecone URL: bad host {loc!r}")
    return Location(tls or is_pinecone_host(host), loc, options)


def merge_options(from_url: Mapping[str, str], given: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted((set(from_url) | set(given)) - set(_OPTION_TYPES))
    if unknown:
        raise ConfigError(
            f"pinecone provider: unknown options {unknown}; known: {sorted(_OPTION_TYPES)}"
        )
    out: dict[str, Any] = {}
    for key, convert in _OPTION_TYPES.items():
        values = [v for v in (from_url.get(key), given.get(key)) if v is not None]
        if not values:
            continue
        try:
            typed = [convert(v) for v in values]
        except (TypeError, ValueError):
            raise ConfigError(f"pinecone provider: bad value for option {key!r}") from None
        if len(typed) == 2 and typed[0] != typed[1]:
            raise ConfigError(
                f"pinecone provider: option {key!r} differs between the URL and the options"
            )
        out[key] = typed[0]
    return out
