"""``vectra migrate``: a direct copy between two providers, then a count verification."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from vectra_io import migrate
from vectra_io.errors import IndexNotFoundError
from vectra_io.providers.base import Provider

from . import render
from .app import EXIT_MISMATCH, EXIT_RECORD_ERRORS, command
from .endpoints import open_endpoint, parse_selection, safe_url
from .options import (
    api_key_option,
    index_option,
    namespace_option,
    retry_options,
    retry_policy,
    write_options,
)
from .output import UI
from .progress import ProgressDisplay


def _count(provider: Provider, index: str, namespace: str) -> int:
    try:
        return provider.count(index, namespace)
    except IndexNotFoundError:
        return 0


def verify_counts(
    source: Provider, target: Provider, namespaces: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """Compare source and target record counts for each target namespace a migration wrote
    (source namespaces merged into one target namespace are summed)."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for ns in namespaces:
        key = (ns["target_index"], ns["target_namespace"])
        groups.setdefault(key, []).append((ns["index"], ns["namespace"]))
    exact = source.capabilities.exact_count and target.capabilities.exact_count
    rows = []
    for (tgt_index, tgt_ns), members in groups.items():
        source_count = sum(_count(source, i, n) for i, n in members)
        target_count = _count(target, tgt_index, tgt_ns)
        reasons = []
        if source_count != target_count:
            reasons.append(
                f"source has {source_count} records, target {target_count}"
                + ("" if exact else " (a count of one of the providers is approximate)")
            )
        rows.append(
            {
                "index": members[0][0],
                "namespaces": [n for _, n in members],
                "target_index": tgt_index,
                "target_namespace": tgt_ns,
                "source_count": source_count,
                "target_count": target_count,
                "match": not reasons,
                "reasons": reasons,
            }
        )
    return {
        "match": all(r["match"] for r in rows),
        "exact": exact,
        "source_count": sum(r["source_count"] for r in rows),
        "target_count": sum(r["target_count"] for r in rows),
        "namespaces": rows,
    }


@command("migrate", short_help="Copy indexes directly from one provider to another.")
@click.argument("source_url")
@click.argument("target_url")
@index_option(rename=True)
@namespace_option(rename=True)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    metavar="N",
    default=500,
    show_default=True,
    help="Records per read from the source.",
)
@write_options(chunk_size=500, concurrency=8)
@retry_options
@api_key_option("target")
@api_key_option("source", name="--source-api-key")
def migrate_cmd(
    ui: UI,
    source_url: str,
    target_url: str,
    index: tuple[str, ...],
    namespace: tuple[str, ...],
    batch_size: int,
    chunk_size: int,
    concurrency: int,
    create_index: bool,
    metric: str | None,
    max_retries: int,
    retry_max_time: float,
    api_key: str | None,
    source_api_key: str | None,
) -> int:
    """Copy SOURCE_URL to TARGET_URL (provider URLs) without writing files, then compare the
    record counts of every namespace copied. Exits with 3 if records failed, 4 if the
    counts differ."""
    indexes = parse_selection(index, "--index", allow_rename=True)
    namespaces = parse_selection(namespace, "--namespace", allow_rename=True, namespace=True)
    source = open_endpoint(source_url, "source", source_api_key, ui.secrets)
    try:
        target = open_endpoint(target_url, "target", api_key, ui.secrets)
        try:
            with ProgressDisplay(ui) as progress:
                result = migrate(
                    source,
                    target,
                    indexes=indexes.names,
                    namespaces=namespaces.names,
                    index_map=indexes.renames,
                    namespace_map=namespaces.renames,
                    batch_size=batch_size,
                    chunk_size=chunk_size,
                    concurrency=concurrency,
                    create_index=create_index,
                    metric=metric,
                    on_progress=progress,
                    retry=retry_policy(max_retries, retry_max_time),
                )
            ui.note("verifying record counts ...")
            check = verify_counts(source, target, result["namespaces"])
        finally:
            target.close()
    finally:
        source.close()
    result = {
        "source": safe_url(source_url),
        "target": safe_url(target_url),
        **result,
        "verification": check,
    }
    ui.result(result, lambda out: render.migrate_result(out, result))
    if result.get("failed_count"):
        return EXIT_RECORD_ERRORS
    return 0 if check["match"] else EXIT_MISMATCH
