"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

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
