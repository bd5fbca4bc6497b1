"""Options shared by several commands."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

from vectra_io.engine.retry import RetryPolicy
from vectra_io.providers.base import METRICS

F = TypeVar("F", bound=Callable[..., Any])


def index_option(*, rename: bool) -> Callable[[F], F]:
    help_text = (
        "Index to include, or SRC=DST to write index SRC as DST. Repeatable; default: all."
        if rename
        else "Index to include. Repeatable; default: all."
    )
    return click.option(
        "--index",
        "index",
        multiple=True,
        metavar="SRC[=DST]" if rename else "NAME",
        help=help_text,
    )


def namespace_option(*, rename: bool) -> Callable[[F], F]:
    help_text = (
        "Namespace to include, or SRC=DST to write namespace SRC as DST; the default "
        "namespace is __default__. Repeatable; default: all."
        if rename
        else "Namespace to include; the default namespace is __default__. Repeatable; default: all."
    )
    return click.option(
        "--namespace",
        "namespace",
        multiple=True,
        metavar="SRC[=DST]" if rename else "NAME",
        help=help_text,
    )


def api_key_option(role: str = "target", *, name: str = "--api-key") -> Callable[[F], F]:
    dest = name.lstrip("-").replace("-", "_")
    return click.option(
        name,
        dest,
        metavar="KEY",
        default=None,
        help=f"API key of the {role} (default: the provider's environment variable, "
        "see `vectra providers`). Never printed.",
    )


def write_options(*, chunk_size: int, concurrency: int) -> Callable[[F], F]:
    """--chunk-size, --concurrency, --create-index/--no-create-index, --metric."""

    def decorate(f: F) -> F:
        f = click.option(
            "--metric",
            type=click.Choice(METRICS),
            default=None,
            help="Metric of the indexes created on the target (default: the source's).",
        )(f)
        f = click.option(
            "--create-index/--no-create-index",
            default=True,
            show_default=True,
            help="Create missing target indexes (otherwise they must exist).",
        )(f)
        f = click.option(
            "--concurrency",
            type=click.IntRange(min=1),
            metavar="N",
            default=concurrency,
            show_default=True,
            help="Upserts in flight at once.",
        )(f)
        f = click.option(
            "--chunk-size",
            type=click.IntRange(min=1),
            metavar="N",
            default=chunk_size,
            show_default=True,
            help="Records per upsert (split further to the target's limits).",
        )(f)
        return f

    return decorate


def scan_option(f: F) -> F:
    """``--scan/--no-scan`` (``plan``): check every record, or only the indexes."""
    return click.option(
        "--scan/--no-scan",
        "scan",
        default=True,
        show_default=True,
        help="Check every record against the target's rules (reads the whole snapshot or "
        "source); --no-scan plans the indexes only (creation, metric, ids, vectors, "
        "namespaces).",
    )(f)


# -- retries -------------------------------------------------------------------------

_DEFAULT_RETRY = RetryPolicy()
#: ``--max-retries`` counts the retries after the first attempt
DEFAULT_MAX_RETRIES = _DEFAULT_RETRY.max_attempts - 1
DEFAULT_RETRY_MAX_TIME = _DEFAULT_RETRY.max_elapsed


def retry_options(f: F) -> F:
    """``--max-retries N`` and ``--retry-max-time SECONDS`` (the engine's RetryPolicy)."""
    f = click.option(
        "--retry-max-time",
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        default=DEFAULT_RETRY_MAX_TIME,
        show_default=True,
        help="Give up retrying a request once this much time has passed since its first "
        "attempt (backoff waits included).",
    )(f)
    f = click.option(
        "--max-retries",
        type=click.IntRange(min=0),
        metavar="N",
        default=DEFAULT_MAX_RETRIES,
        show_default=True,
        help="Retries of a request that failed with a transient error (connection error, "
        "timeout, 429, 5xx), after the first attempt, with exponential backoff and jitter "
        "(Retry-After is honoured); 0: no retry. Other errors are never retried.",
    )(f)
    return f


def retry_policy(max_retries: int, retry_max_time: float) -> RetryPolicy:
    """The engine's policy for ``--max-retries N`` (N + 1 attempts) and ``--retry-max-time``."""
    return RetryPolicy(max_attempts=max_retries + 1, max_elapsed=retry_max_time)


# -- snapshot storage ------------------------------------------------------------------

#: storage option keys whose values are credentials (redacted from every output)
SECRET_KEY_WORDS = ("secret", "token", "password", "passwd", "credential")
SECRET_KEYS = {"key", "access_key", "access_key_id", "account_key", "sas_token"}
_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")  # no leading zeros: "007" stays a string


def parse_storage_value(text: str) -> Any:
    """``true``/``false`` (any case) -> bool, a decimal integer -> int, anything else as is."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if _INT.fullmatch(text):
        return int(text)
    return text


def parse_storage_options(values: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a (nested, for ``A.B=VALUE``) dict of fsspec storage options."""
    options: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        path = key.strip().split(".")
        if not sep or not all(path):  # (values are not echoed: they may be credentials)
            raise click.BadParameter(
                ("no '=' in a value" if not sep else f"{key.strip()!r}: empty key")
                + ": expected KEY=VALUE (e.g. endpoint_url=http://localhost:9000)",
                param_hint="'--storage-option'",
            )
        where = options
        for part in path[:-1]:
            nested = where.setdefault(part, {})
            if not isinstance(nested, dict):
                raise click.BadParameter(
                    f"{key.strip()!r}: {part!r} is given both as a value and as a group",
                    param_hint="'--storage-option'",
                )
            where = nested
        if path[-1] in where:
            raise click.BadParameter(
                f"{key.strip()!r} is given twice", param_hint="'--storage-option'"
            )
        where[path[-1]] = parse_storage_value(raw)
    return options


def storage_secrets(options: Mapping[str, Any]) -> list[str]:
    """The values of ``options`` that are credentials (by the name of their key)."""
    found: list[str] = []
    for key, value in options.items():
        if isinstance(value, Mapping):
            found += storage_secrets(value)
            continue
        low = key.lower()
        if low in SECRET_KEYS or any(word in low for word in SECRET_KEY_WORDS):
            found.append(str(value))
    return found


def _storage_callback(
    _ctx: click.Context, _param: click.Parameter, values: Sequence[str]
) -> dict[str, Any]:
    return parse_storage_options(values)


def storage_option(f: F) -> F:
    """``--storage-option KEY=VALUE`` (repeatable): options of the snapshot's filesystem."""
    return click.option(
        "--storage-option",
        "storage_options",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_storage_callback,
        help="Option of the snapshot's filesystem (fsspec), repeatable, e.g. for s3:// "
        "endpoint_url=http://localhost:9000, key=..., secret=..., anon=true. true/false and "
        "integers are converted; A.B=VALUE sets a nested option "
        "(client_kwargs.region_name=eu-west-1). S3 endpoint and credentials can also come "
        "from the standard AWS_* environment variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_DEFAULT_REGION). Credentials are never printed.",
    )(f)
