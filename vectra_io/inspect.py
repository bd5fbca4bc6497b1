"""Offline snapshot inspection and validation (no provider involved).

:func:`inspect_snapshot` summarises a snapshot's manifest (complete or not);
:func:`validate_snapshot` checks every part against the manifest: path safety,
presence, byte size, SHA-256 and CRC-32, Parquet readability, row count (Parquet metadata)
and schema. Validation reports every problem it finds instead of stopping at
the first one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import SnapshotError
from .snapshot import layout
from .snapshot import manifest as mf
from .snapshot.checksum import CRC32, SHA256, Digests, file_digests, stored_digests
from .snapshot.parts import check_part_schema
from .snapshot.storage import SnapshotStore

#: kinds of problem :func:`validate_snapshot` reports
PROBLEM_KINDS = (
    "incomplete",  # the export did not finish
    "unsafe",  # the path could leave the snapshot directory
    "invalid",  # the manifest entry lacks a field or is malformed
    "missing",  # listed in the manifest, absent on storage
    "size",  # byte size differs from the manifest
    "checksum",  # SHA-256 or CRC-32 differs from the manifest
    "unreadable",  # not a readable Parquet file
    "rows",  # row count (Parquet metadata) differs from the manifest
    "schema",  # columns or types differ from the index's record schema
    "count",  # a namespace's rows differ from the sum of its parts
)


def inspect_snapshot(
    snapshot: str, storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A summary of the snapshot at ``snapshot``: indexes, namespaces, rows, parts, bytes.

    Namespaces are reported with their command-line name (``__default__`` for
    the default namespace). Works on incomplete snapshots (``complete`` is False).
    """
    store = SnapshotStore(snapshot, **(storage_options or {}))
    manifest = mf.load(store, require_complete=False)
    indexes = []
    for name, entry in manifest["indexes"].items():
        namespaces = []
        for key, ns in entry.get("namespaces", {}).items():
            parts = ns.get("parts", [])
            namespaces.append(
                {
                    "namespace": key,
                    "rows": ns.get("rows", 0),
                    "source_count": ns.get("source_count"),
                    "rejected": ns.get("rejected", 0),
                    "parts": len(parts),
                    "bytes": sum(int(p.get("bytes", 0)) for p in parts),
                    "status": ns.get("status"),
                }
            )
        indexes.append(
            {
                "index": name,
                "dimension": entry.get("dimension"),
                "metric": entry.get("metric"),
                "id_type": entry.get("id_type"),
                "sparse": bool(entry.get("sparse")),
                "named_vectors": [
                    f["name"] for f in entry.get("vector_fields", []) if f.get("name")
                ],
                "normalized": bool(entry.get("normalized")),
                "rows": sum(n["rows"] for n in namespaces),
                "parts": sum(n["parts"] for n in namespaces),
                "bytes": sum(n["bytes"] for n in namespaces),
                "namespaces": namespaces,
            }
        )
    source = manifest.get("source") or {}
    return {
        "snapshot": store.url,
        "format": manifest.get("format"),
        "format_version": manifest.get("format_version"),
        "tool_version": manifest.get("tool_version"),
        "complete": bool(manifest.get("complete")),
        "created_at": manifest.get("created_at"),
        "completed_at": manifest.get("completed_at"),
        "compression": manifest.get("compression"),
        "source": {"provider": source.get("provider"), "endpoint": source.get("endpoint")},
        "rows": sum(i["rows"] for i in indexes),
        "parts": sum(i["parts"] for i in indexes),
        "bytes": sum(i["bytes"] for i in indexes),
        "indexes": indexes,
    }


def _load_for_validation(store: SnapshotStore) -> dict[str, Any]:
    """The manifest; one with unsafe or malformed part entries is still returned so that
    each bad entry can be reported (anything else wrong raises SnapshotError)."""
    try:
        return mf.load(store, require_complete=False)
    except SnapshotError:
        try:
            raw = json.loads(store.read_bytes(layout.MANIFEST))
        except Exception:
            raw = None
        if (
            not isinstance(raw, dict)
            or raw.get("format") != mf.FORMAT
            or raw.get("format_version") != mf.FORMAT_VERSION
            or not isinstance(raw.get("indexes"), dict)
        ):
            raise
        return raw


@contextlib.contextmanager
def _local_copy(store: SnapshotStore, relpath: str) -> Iterator[tuple[str, Digests]]:
    """(local path, digests) of a part; remote parts are downloaded once while hashing."""
    if store.local:
        local = store.local_path(relpath)
        yield local, file_digests(local)
        return
    tmpdir = tempfile.mkdtemp(prefix="vectra-validate-")
    try:
        local = os.path.join(tmpdir, "part.parquet")
        yield local, stored_digests(store, relpath, copy_to=local)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _check_part(
    store: SnapshotStore, part: Any, expected: pa.Schema | None
) -> tuple[str, str] | None:
    """(kind, message) of the first problem of one part, or None when it is sound."""
    if not isinstance(part, dict):
        return "invalid", f"manifest lists a malformed part entry {part!r}"
    path = part.get("path")
    try:
        relpath = layout.checked_relpath(path)  # type: ignore[arg-type]
    except SnapshotError as exc:
        return "unsafe", str(exc)
    for field in ("rows", "bytes", "sha256"):
        if field not in part:
            return "invalid", f"the manifest entry has no {field!r}"
    if not store.exists(relpath):
        return "missing", "listed in the manifest but missing"
    try:
        with _local_copy(store, relpath) as (local, digests):
            if digests.size != part["bytes"]:
                return "size", f"{digests.size} bytes, the manifest says {part['bytes']}"
            sums = digests.hexdigests()
            for algorithm in (SHA256, CRC32):  # snapshots before CRC-32 list SHA-256 only
                if algorithm in part and sums[algorithm] != part[algorithm]:
                    return (
                        "checksum",
                        f"{algorithm} {sums[algorithm]}, the manifest says {part[algorithm]}",
                    )
            try:
                pf = pq.ParquetFile(local)
            except (pa.ArrowException, OSError) as exc:
                return "unreadable", f"not a readable Parquet file: {exc}"
            try:
                rows = pf.metadata.num_rows
                if rows != part["rows"]:
                    return "rows", f"{rows} rows, the manifest says {part['rows']}"
                if expected is not None:
                    try:
                        check_part_schema(pf, expected, relpath)
                    except SnapshotError as exc:
                        return "schema", str(exc).removeprefix(f"part {relpath}: ")
            finally:
                pf.close()
    except SnapshotError as exc:  # e.g. a symlink leading outside the snapshot
        return "unsafe", str(exc)
    except OSError as exc:
        return "unreadable", f"cannot read it: {exc}"
    return None


def validate_snapshot(
    snapshot: str, storage_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Check every part of the snapshot against its manifest, offline.

    Returns ``valid`` (bool), ``complete``, ``parts_checked``, ``rows_checked``,
    ``bytes_checked``, ``problems`` (each with ``index``, ``namespace``, ``path``,
    ``kind`` (see :data:`PROBLEM_KINDS`) and ``message``) and ``warnings`` (e.g.
    Parquet files not listed in the manifest, left by an interrupted export).
    Raises :class:`SnapshotError` only when there is no readable manifest at all.
    """
    store = SnapshotStore(snapshot, **(storage_options or {}))
    manifest = _load_for_validation(store)
    problems: list[dict[str, Any]] = []
    warnings: list[str] = []
    listed: set[str] = set()
    parts_checked = rows_checked = bytes_checked = 0
    if not manifest.get("complete"):
        problems.append(
            {
                "index": None,
                "namespace": None,
                "path": None,
                "kind": "incomplete",
                "message": "the snapshot is incomplete (its export did not finish); "
                "resume it with `vectra export` on the same source and snapshot",
            }
        )
    for index, entry in manifest["indexes"].items():
        try:
            expected: pa.Schema | None = mf.expected_schema(entry, index)
        except Exception as exc:
            expected = None
            problems.append(
                {
                    "index": index,
                    "namespace": None,
                    "path": None,
                    "kind": "invalid",
                    "message": f"the index entry is malformed: {exc}",
                }
            )
        for key, ns in (entry.get("namespaces") or {}).items():
            total = 0
            for part in ns.get("parts", []):
                path = part.get("path") if isinstance(part, dict) else None
                if isinstance(path, str):
                    listed.add(path)
                problem = _check_part(store, part, expected)
                parts_checked += 1
                if problem is None:
                    rows_checked += int(part["rows"])
                    bytes_checked += int(part["bytes"])
                else:
                    problems.append(
                        {
                            "index": index,
                            "namespace": key,
                            "path": path,
                            "kind": problem[0],
                            "message": problem[1],
                        }
                    )
                if isinstance(part, dict) and isinstance(part.get("rows"), int):
                    total += part["rows"]
            if ns.get("status") == "done" and ns.get("rows") != total:
                problems.append(
                    {
                        "index": index,
                        "namespace": key,
                        "path": None,
                        "kind": "count",
                        "message": f"the namespace lists {ns.get('rows')} rows, "
                        f"its parts hold {total}",
                    }
                )
    for path in _stored_parts(store):
        if path not in listed:
            warnings.append(
                f"{path} is not listed in the manifest (left by an interrupted export?)"
            )
    return {
        "snapshot": store.url,
        "valid": not problems,
        "complete": bool(manifest.get("complete")),
        "parts_checked": parts_checked,
        "rows_checked": rows_checked,
        "bytes_checked": bytes_checked,
        "problems": problems,
        "warnings": warnings,
    }


def _stored_parts(store: SnapshotStore) -> list[str]:
    """Relative paths of the Parquet files stored under the snapshot root."""
    try:
        found = store.fs.find(store.root)
    except (OSError, ValueError):
        return []
    root = store.root.rstrip("/") + "/"
    out = []
    for full in found:
        full = str(full)
        rel = full[len(root) :] if full.startswith(root) else full
        if rel.endswith(".parquet"):
            out.append(rel)
    return sorted(out)
