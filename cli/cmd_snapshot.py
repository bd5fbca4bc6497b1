"""``vectra export | import | verify | inspect | validate``."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import Any

import click
import pyarrow as pa
import pyarrow.parquet as pq

from vectra_io import export_snapshot, import_snapshot, verify_snapshot
from vectra_io.errors import IndexNotFoundError
from vectra_io.inspect import inspect_snapshot, validate_snapshot
from vectra_io.snapshot import manifest as mf
from vectra_io.snapshot.layout import MANIFEST
from vectra_io.snapshot.parts import COMPRESSIONS, DEFAULT_COMPRESSION, DEFAULT_PART_ROWS
from vectra_io.snapshot.storage import SnapshotStore

from . import render
from .app import EXIT_FAILURE, EXIT_MISMATCH, EXIT_RECORD_ERRORS, command
from .endpoints import (
    check_not_url,
    namespace_map,
    open_endpoint,
    parse_selection,
    safe_url,
)
from .options import (
    api_key_option,
    index_option,
    namespace_option,
    retry_options,
    retry_policy,
    storage_option,
    write_options,
)
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
    help="Records per Parquet part file: a part closes at the end of the first source page "
    "that reaches N (so it holds at most N plus one --batch-size page).",
)
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    default=DEFAULT_COMPRESSION,
    show_default=True,
    help="Parquet compression.",
)
@click.option(
    "--resume/--restart",
    default=True,
    show_default=True,
    help="--resume: an incomplete snapshot of the same source at SNAPSHOT (an interrupted "
    "export) continues from its last checkpoint; --restart: discard it and start over.",
)
@click.option("--no-resume", "no_resume", is_flag=True, hidden=True)  # old name of --restart
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite a complete snapshot at SNAPSHOT (never done without it).",
)
@retry_options
@storage_option
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
    resume: bool,
    no_resume: bool,
    force: bool,
    max_retries: int,
    retry_max_time: float,
    storage_options: dict[str, Any],
    api_key: str | None,
) -> int:
    """Export SOURCE_URL (a provider URL) to the snapshot SNAPSHOT (a directory, file:// or
    s3:// URL).

    The manifest keeps a checkpoint (the source's scan cursor) after every part written, so
    an interrupted export (Ctrl-C, crash, kill) continues where it stopped when the same
    command is run again: no record is skipped or written twice."""
    check_not_url(snapshot, "snapshot")
    resume = resume and not no_resume
    indexes = parse_selection(index, "--index", allow_rename=False)
    namespaces = parse_selection(namespace, "--namespace", allow_rename=False, namespace=True)
    source = open_endpoint(source_url, "source", api_key, ui.secrets)
    if resume:
        _note_resume(ui, snapshot, storage_options)
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
                retry=retry_policy(max_retries, retry_max_time),
                storage_options=storage_options,
            )
    finally:
        source.close()
    result = {"snapshot": snapshot, **result}
    ui.result(result, lambda out: render.export_result(out, snapshot, result))
    return EXIT_RECORD_ERRORS if result.get("errors") else 0


def _note_resume(ui: UI, snapshot: str, storage_options: dict[str, Any]) -> None:
    """Say so when an export is about to continue an interrupted one."""
    try:
        store = SnapshotStore(snapshot, **storage_options)
        if not store.exists(MANIFEST):
            return
        manifest = mf.load(store, require_complete=False)
    except Exception:
        return  # export_snapshot reports it
    if not manifest.get("complete"):
        done = sum(ns.get("rows", 0) for _, _, ns in mf.iter_namespaces(manifest))
        ui.note(
            f"resuming the interrupted export at {snapshot} ({done:,} records already written; "
            "--restart starts over)"
        )


STATE_HELP = (
    "Where the import's progress is kept: a file, or a directory (existing, or given with a "
    "trailing /) holding one state file per snapshot, target and mapping. Default: "
    "$VECTRA_STATE_DIR, else $XDG_STATE_HOME/vectra-io, else ~/.local/state/vectra-io. "
    "Failed records are kept beside it, in <state file without .json>.failed/."
)


@command("import", short_help="Import a snapshot into a provider.")
@click.argument("snapshot")
@click.argument("target_url")
@index_option(rename=True)
@namespace_option(rename=True)
@write_options(chunk_size=500, concurrency=8)
@click.option("--state", "state_path", metavar="PATH", default=None, help=STATE_HELP)
@click.option(
    "--restart",
    is_flag=True,
    help="Ignore the progress of earlier runs (and forget their failed records): import "
    "every record again.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Replay only the records that failed in earlier runs (kept beside the state file); "
    "give the same --index/--namespace/--state as the run that failed.",
)
@click.option(
    "--checksum",
    type=click.Choice(["crc32", "sha256"]),
    default="crc32",
    show_default=True,
    help="Digest every part is checked by before its records are written. CRC-32 costs "
    "half the CPU of SHA-256 and catches the same accidental damage; snapshots that list no "
    "CRC-32 are checked by SHA-256. `vectra validate` always checks both.",
)
@retry_options
@storage_option
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
    state_path: str | None,
    restart: bool,
    retry_failed: bool,
    checksum: str,
    max_retries: int,
    retry_max_time: float,
    storage_options: dict[str, Any],
    api_key: str | None,
) -> int:
    """Import the snapshot SNAPSHOT into TARGET_URL (a provider URL). Every part is checked
    (size, checksum, schema) before any of its records is written.

    Progress is kept in a state file (see --state), recorded per chunk only once the target
    acknowledged it: an interrupted import continues when the same command is run again (a
    chunk may be written twice, never skipped; upserts replace by id). Records the target
    refused are kept beside the state file and the exit code is 3; --retry-failed replays
    them."""
    check_not_url(snapshot, "snapshot")
    if restart and retry_failed:
        raise click.UsageError(
            "--restart forgets the failed records that --retry-failed would replay; give one"
        )
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
                retry=retry_policy(max_retries, retry_max_time),
                storage_options=storage_options,
                state=state_path,
                restart=restart,
                retry_failed=retry_failed,
                checksum=checksum,
            )
    finally:
        target.close()
    pending = pending_failed(result.get("failed_records"))
    retry_argv = None
    if pending:
        retry_argv = ["vectra", "import", snapshot, safe_url(target_url)]
        retry_argv += [a for v in index for a in ("--index", v)]
        retry_argv += [a for v in namespace for a in ("--namespace", v)]
        if state_path is not None:
            retry_argv += ["--state", state_path]
        retry_argv += _storage_argv(storage_options)
        retry_argv.append("--retry-failed")
    result = {
        "snapshot": snapshot,
        "target": safe_url(target_url),
        "mode": "retry-failed" if retry_failed else "restart" if restart else "import",
        **result,
        "state_dir": str(Path(result["state_file"]).parent) if result.get("state_file") else None,
        "pending_failed": pending,
        "retry_command": shlex.join(retry_argv) if retry_argv else None,
    }
    ui.result(result, lambda out: render.import_result(out, safe_url(target_url), result))
    failed = result.get("failed_count") or result.get("pending_failed_count")
    return EXIT_RECORD_ERRORS if failed else 0


def pending_failed(folder: str | None) -> list[dict[str, Any]]:
    """Records waiting in the failed-records files of ``folder``, per target namespace."""
    if not folder:
        return []
    from vectra_io.engine.state import TARGET_INDEX_KEY, TARGET_NAMESPACE_KEY

    counts: dict[tuple[str, str], int] = {}
    for path in sorted(Path(folder).rglob("*.parquet*")):
        if path.name.startswith(".tmp-") or not path.is_file():
            continue
        try:
            meta = pq.ParquetFile(path).metadata
        except (OSError, pa.ArrowException) as exc:
            log.warning("unreadable failed-records file %s: %s", path, exc)
            continue
        kv = meta.metadata or {}
        key = (
            kv.get(TARGET_INDEX_KEY, b"?").decode(),
            kv.get(TARGET_NAMESPACE_KEY, b"").decode(),
        )
        counts[key] = counts.get(key, 0) + meta.num_rows
    return [
        {"target_index": i, "target_namespace": n, "records": c}
        for (i, n), c in sorted(counts.items())
    ]


def _storage_argv(options: dict[str, Any], prefix: str = "") -> list[str]:
    """``--storage-option`` arguments giving ``options`` again (secrets are redacted on output)."""
    argv: list[str] = []
    for key, value in options.items():
        if isinstance(value, dict):
            argv += _storage_argv(value, f"{prefix}{key}.")
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            argv += ["--storage-option", f"{prefix}{key}={text}"]
    return argv


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
@storage_option
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
    storage_options: dict[str, Any],
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
            "storage_options": storage_options,
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
@storage_option
def inspect_cmd(ui: UI, snapshot: str, storage_options: dict[str, Any]) -> int:
    """Show the indexes, namespaces, records, dimension, metric, id type, parts, bytes and
    dates of SNAPSHOT, and whether its export completed. Reads only the manifest."""
    check_not_url(snapshot, "snapshot")
    info = inspect_snapshot(snapshot, storage_options=storage_options)
    ui.result(info, lambda out: render.inspect_result(out, info))
    return 0


@command("validate", short_help="Check a snapshot's files against its manifest, offline.")
@click.argument("snapshot")
@storage_option
def validate_cmd(ui: UI, snapshot: str, storage_options: dict[str, Any]) -> int:
    """Check every part of SNAPSHOT against the manifest, without any provider: present,
    safe path, byte size, sha256 and crc32, row count and schema. Exits with 1 naming each bad
    part."""
    check_not_url(snapshot, "snapshot")
    ui.note(f"validating {snapshot} ...")
    result = validate_snapshot(snapshot, storage_options=storage_options)
    ui.result(result, lambda out: render.validate_result(out, result))
    return 0 if result["valid"] else EXIT_FAILURE
