"""Endpoint URLs and ``--index`` / ``--namespace`` selections.

``--index NAME`` selects an index; ``--index SRC=DST`` selects SRC and writes it
as DST. ``--namespace`` works the same way; the default namespace is written
``__default__``. Without any of them, everything is selected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, unquote_plus, urlsplit

import click

from vectra_io.errors import ConfigError, VectraError
from vectra_io.providers.base import Provider
from vectra_io.providers.registry import PROVIDERS, open_provider, split_url
from vectra_io.snapshot.layout import DEFAULT_NAMESPACE_DIR

from .options import storage_secrets
from .output import Secrets

#: query parameters of a URL whose values are API keys (providers refuse keys in the URL,
#: but the URL itself is echoed in errors and results); see also ``storage_secrets``
API_KEY_PARAMS = {"api_key", "api-key", "apikey"}


class CLIError(Exception):
    """An error with the exit code it maps to; the message is one actionable line."""

    def __init__(self, message: str, exit_code: int = 1, kind: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.kind = kind or type(self).__name__


@dataclass
class Selection:
    """Names chosen on the command line and their renames (source name -> target name)."""

    names: list[str] | None = None  # None: all
    renames: dict[str, str] = field(default_factory=dict)


def namespace_map(selection: Selection) -> dict[str | None, str | None]:
    """The renames of a namespace selection, typed as import/verify take them."""
    return {src: dst for src, dst in selection.renames.items()}


def _namespace(value: str) -> str:
    return "" if value == DEFAULT_NAMESPACE_DIR else value


def parse_selection(
    values: Sequence[str], option: str, *, allow_rename: bool, namespace: bool = False
) -> Selection:
    """Parse repeated ``--index``/``--namespace`` values (``NAME`` or ``SRC=DST``)."""
    if not values:
        return Selection()
    names: list[str] = []
    renames: dict[str, str] = {}
    for value in values:
        src, sep, dst = value.partition("=")
        if sep and not allow_rename:
            raise click.BadParameter(
                f"{value!r}: renaming is done on import/migrate/verify; here give only a name",
                param_hint=f"'{option}'",
            )
        if not src or (sep and not dst):
            raise click.BadParameter(
                f"{value!r}: expected NAME or SRC=DST with both names non-empty",
                param_hint=f"'{option}'",
            )
        if namespace:
            src, dst = _namespace(src), _namespace(dst)
        if src in names:
            raise click.BadParameter(f"{value!r}: {src!r} is given twice", param_hint=f"'{option}'")
        names.append(src)
        if sep and dst != src:
            renames[src] = dst
    return Selection(names, renames)


def _secret_param(name: str) -> bool:
    low = unquote_plus(name).strip().lower()
    return low in API_KEY_PARAMS or bool(storage_secrets({low: "-"}))


def _query_secrets(query: str) -> list[str]:
    """The values of the credential parameters of a URL query, as written and decoded."""
    found = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if value and _secret_param(name):
            found += [value, unquote(value), unquote_plus(value)]
    return found


def _redact_param(pair: str) -> str:
    name, _, value = pair.partition("=")
    return f"{name}=***" if value and _secret_param(name) else pair


def safe_url(url: str) -> str:
    """The URL with any password, and the value of any credential query parameter
    (``api_key=``, ``token=``, ...), replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    netloc, query = parts.netloc, parts.query
    if password:
        netloc = netloc.replace(f":{password}@", ":***@", 1)
    if query:
        query = "&".join(_redact_param(pair) for pair in query.split("&"))
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return parts._replace(netloc=netloc, query=query).geturl()


def remember_url_secrets(url: str, secrets: Secrets) -> None:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    secrets.add(password)
    for value in _query_secrets(parts.query):
        secrets.add(value)


def provider_env(url: str) -> str | None:
    """The API-key environment variable of the URL's provider, if known."""
    try:
        name = split_url(url)[0]
    except ConfigError:
        return None
    entry = PROVIDERS.get(name)
    return entry.api_key_env if entry else None


def open_endpoint(url: str, role: str, api_key: str | None, secrets: Secrets) -> Provider:
    """Open the provider of ``url``; errors name the role (source/target) and the URL."""
    remember_url_secrets(url, secrets)
    secrets.add(api_key)
    try:
        return open_provider(url, api_key=api_key)
    except ConfigError as exc:
        raise CLIError(f"{role} {safe_url(url)}: {exc}", 2, type(exc).__name__) from exc
    except VectraError as exc:
        raise CLIError(f"{role} {safe_url(url)}: {exc}", 1, type(exc).__name__) from exc


def check_not_url(path: str, role: str) -> None:
    """Refuse a provider URL where a snapshot location is expected (and the reverse mix-up)."""
    if "://" in path:
        scheme = path.split("://", 1)[0].partition("+")[0].lower()
        if scheme in PROVIDERS:
            raise CLIError(
                f"{role} {safe_url(path)!r} is a provider URL, a snapshot location was expected "
                "(a directory, file:// or s3:// URL); check the order of the arguments",
                2,
            )
