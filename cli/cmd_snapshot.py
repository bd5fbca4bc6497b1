"""``vectra export | import | verify | inspect | validate``."""

from __future__ import annotations

import logging
from typing import Any

import click

from vectra_io import export_snapshot, import_snapshot, verify_snapshot
from vectra_io.errors import IndexNotFoundError, VectraError
from vectra_io.inspect import inspect_snapshot, validate_snapshot
from vectra_io.snapshot import manifest as mf
from vectra_io.snapshot.layout import MANIFEST
from vectra_io.snapshot.parts import COMPRESSIONS, DEFAULT_COMPRESSION, DEFAULT_PART_ROWS
from vectra_io.snapshot.storage import SnapshotStore

from . import render
from .app import EXIT_FAILURE, EXIT_MISMATCH, EXIT_RECORD_ERRORS, command
from .endpoints import check_not_url, namespace_map, open_endpoint, parse_selection, safe_url
from .options import api_key_option, index_option, namespace_option, write_options
from .output import UI
from .progress import ProgressDisplay

log = logging.getLogger("vectra_io.cli")


@command("export", short_help="Export indexes of a provider to a snapshot.")
@click.argument("source_url")
@click.argument("snapshot")
@index_option(rename=False)
@namespace_option(rename=False)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    metavar="N",
    default=1000,
    show_default=True,
    help="Records per read from the source.",
)
@click.option(
    "--part-rows",
    type=click.IntRange(min=1),
    metavar="N",
    default=DEFAULT_PART_ROWS,
    show_default=True,
    help="Records per Parquet part file at most.",
)
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    default=DEFAULT_COMPRESSION,
    show_default=True,
    help="Parquet compression.",
)
@click.option("--force", is_flag=True, help="Overwrite a complete snapshot at SNAPSHOT.")
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Continue an interrupted export of the same source, or start it over.",
)
@api_key_option("source")
def export_cmd(
    ui: UI,
    source_url: str,
    snapshot: str,
    index: tuple[str, ...],
    namespace: tuple[str, ...],
    batch_size: int,
    part_rows: int,
    compression: str,
    force: bool,
    resume: bool,
    api_key: str | None,
) -> int:
    """Export SOURCE_URL (a provider URL) to the snapshot SNAPSHOT (a directory, file:// or
    s3:// URL). An interrupted export resumes where it stopped when run again."""
    check_not_url(snapshot, "snapshot")
    indexes = parse_selection(index, "--index", allow_rename=False)
    namespaces = parse_selection(namespace, "--namespace", allow_rename=False, namespace=True)
    source = open_endpoint(source_url, "source", api_key, ui.secrets)
    if resume and not force:
        _note_resume(ui, snapshot)
    try:
        with ProgressDisplay(ui) as progress:
            result = export_snapshot(
                source,
                snapshot,
                indexes=indexes.names,
                namespaces=namespaces.names,
                batch_size=batch_size,
                on_progress=progress,
                part_rows=part_rows,
                compression=compression,
                resume=resume,
                force=force,
            )
    finally:
        source.close()
    result = {"snapshot": snapshot, **result}
    ui.result(result, lambda out: render.export_result(out, snapshot, result))
    return EXIT_RECORD_ERRORS if result.get("errors") else 0


def _note_resume(ui: UI, snapshot: str) -> None:
    """Say so when an export is about to continue an interrupted one."""
    try:
        store = SnapshotStore(snapshot)
        if not store.exists(MANIFEST):
            return
        manifest = mf.load(store, require_complete=False)
    except VectraError:
        return  # export_snapshot reports it
    if not manifest.get("complete"):
        done = sum(ns.get("rows", 0) for _, _, ns in mf.iter_namespaces(manifest))
        ui.note(
            f"resuming the interrupted export at {snapshot} ({done:,} records already written; "
            "--no-resume starts over)"
        )


@command("import", short_help="Import a snapshot into a provider.")
@click.argument("snapshot")
@click.argument("target_url")
@index_option(rename=True)
@namespace_option(rename=True)
@write_options(chunk_size=500, concurrency=8)
@api_key_option("target")
def import_cmd(
    ui: UI,
    snapshot: str,
    target_url: str,
    index: tuple[str, ...],
    namespace: tuple[str, ...],
    chunk_size: int,
    concurrency: int,
    create_index: bool,
    metric: str | None,
    api_key: str | None,
) -> int:
    """Import the snapshot SNAPSHOT into TARGET_URL (a provider URL). Every part is checked
    (size, sha256, schema) before any of its records is written."""
    check_not_url(snapshot, "snapshot")
    indexes = parse_selection(index, "--index", allow_rename=True)
    namespaces = parse_selection(namespace, "--namespace", allow_rename=True, namespace=True)
    target = open_endpoint(target_url, "target", api_key, ui.secrets)
    try:
        with ProgressDisplay(ui) as progress:
            result = import_snapshot(
                snapshot,
                target,
                index_map=indexes.renames,
                namespace_map=namespace_map(namespaces),
                chunk_size=chunk_size,
                concurrency=concurrency,
                create_index=create_index,
                on_progress=progress,
                indexes=indexes.names,
                namespaces=namespaces.names,
                metric=metric,
            )
    finally:
        target.close()
    result = {"snapshot": snapshot, "target": safe_url(target_url), **result}
    ui.result(result, lambda out: render.import_result(out, safe_url(target_url), result))
    return EXIT_RECORD_ERRORS if result.get("failed_count") else 0


@command("verify", short_help="Compare a snapshot with a target (and its source).")
@click.argument("snapshot")
@click.argument("target_url")
@click.option(
    "--source",
    "source_url",
    metavar="SOURCE_URL",
    default=None,
    help="Also compare the counts with the source the snapshot was exported from.",
)
@index_option(rename=True)
@namespace_option(rename=True)
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    metavar="N",
    default=0,
    show_default=True,
    help="Also fetch up to N records per namespace from the target and compare them "
    "(ids, vectors, metadata) with the snapshot.",
)
@api_key_option("target")
@api_key_option("source", name="--source-api-key")
def verify_cmd(
    ui: UI,
    snapshot: str,
    target_url: str,
    source_url: str | None,
    index: tuple[str, ...],
    namespace: tuple[str, ...],
    sample: int,
    api_key: str | None,
    source_api_key: str | None,
) -> int:
    """Compare, per namespace, the records of SNAPSHOT with those in TARGET_URL: counts, and
    with --sample N the content of N records. Exits with 4 on a mismatch."""
    check_not_url(snapshot, "snapshot")
    indexes = parse_selection(index, "--index", allow_rename=True)
    namespaces = parse_selection(namespace, "--namespace", allow_rename=True, namespace=True)
    target = open_endpoint(target_url, "target", api_key, ui.secrets)
    source = None
    try:
        if source_url:
            source = open_endpoint(source_url, "source", source_api_key, ui.secrets)
        ui.note(f"verifying {snapshot} against {safe_url(target_url)} ...")
        kwargs: dict[str, Any] = {
            "index_map": indexes.renames,
            "namespace_map": namespace_map(namespaces),
            "source": source,
            "indexes": indexes.names,
            "namespaces": namespaces.names,
        }
        try:
            result = verify_snapshot(snapshot, target, sample=sample, **kwargs)
        except IndexNotFoundError as exc:
            if not sample:
                raise
            # a missing target index fails the sample fetch; its counts still tell the story
            log.info("no sample check: %s", exc)
            result = verify_snapshot(snapshot, target, sample=0, **kwargs)
            if result["match"]:
                raise
    finally:
        target.close()
        if source is not None:
            source.close()
    result = {"snapshot": snapshot, "target": safe_url(target_url), **result}
    ui.result(result, lambda out: render.verify_result(out, result))
    return 0 if result["match"] else EXIT_MISMATCH


@command("inspect", short_help="Show what a snapshot holds.")
@click.argument("snapshot")
def inspect_cmd(ui: UI, snapshot: str) -> int:
    """Show the indexes, namespaces, records, dimension, metric, id type, parts, bytes and
    dates of SNAPSHOT, and whether its export completed. Reads only the manifest."""
    check_not_url(snapshot, "snapshot")
    info = inspect_snapshot(snapshot)
    ui.result(info, lambda out: render.inspect_result(out, info))
    return 0


@command("validate", short_help="Check a snapshot's files against its manifest, offline.")
@click.argument("snapshot")
def validate_cmd(ui: UI, snapshot: str) -> int:
    """Check every part of SNAPSHOT against the manifest, without any provider: present,
    safe path, byte size, sha256, row count and schema. Exits with 1 naming each bad part."""
    check_not_url(snapshot, "snapshot")
    ui.note(f"validating {snapshot} ...")
    result = validate_snapshot(snapshot)
    ui.result(result, lambda out: render.validate_result(out, result))
    return 0 if result["valid"] else EXIT_FAILURE
