"""The snapshot manifest (``manifest.json``): build, save atomically, load and check.

The manifest is plain JSON (see docs/FORMAT.md). While an export runs it is
rewritten after every committed part with ``complete: false`` and a per-namespace
checkpoint, so an interrupted export can resume; the final write sets
``complete: true``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from .._version import __version__
from ..errors import SnapshotError
from ..providers.base import IndexSpec, VectorSpec
from ..records import NAMED_PREFIX, VALUES, record_schema
from . import layout
from .storage import SnapshotStore

FORMAT = "vectra-snapshot"
FORMAT_VERSION = 1


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_manifest(
    source: dict[str, Any], compression: str, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": utc_now(),
        "completed_at": None,
        "tool_version": __version__,
        "complete": False,
        "compression": compression,
        "source": source,
        "export_options": options or {},
        "indexes": {},
    }


def index_entry(spec: IndexSpec) -> dict[str, Any]:
    fields = []
    if spec.dimension is not None:
        fields.append(
            {"name": "", "column": VALUES, "dimension": spec.dimension, "metric": spec.metric}
        )
    for name, vec in sorted(spec.named_vectors.items()):
        fields.append(
            {
                "name": name,
                "column": NAMED_PREFIX + name,
                "dimension": vec.dimension,
                "metric": vec.metric,
            }
        )
    schema = record_schema(spec)
    return {
        "path": layout.encode_segment(spec.name),
        "dimension": spec.dimension,
        "metric": spec.metric,
        "id_type": spec.id_type,
        "vector_fields": fields,
        "sparse": spec.sparse,
        "normalized": spec.normalized,
        "columns": [{"name": f.name, "type": str(f.type)} for f in schema],
        "raw_config": dict(spec.raw_config),
        "namespaces": {},
    }


def namespace_entry(index: str, namespace: str, source_count: int | None) -> dict[str, Any]:
    return {
        "path": layout.namespace_dir(index, namespace),
        "source_count": source_count,
        "rows": 0,
        "rejected": 0,
        "rejected_ids": [],
        "parts": [],
        "status": "in_progress",
        "cursor": None,
    }


def spec_from_entry(name: str, entry: dict[str, Any]) -> IndexSpec:
    named = {
        f["name"]: VectorSpec(int(f["dimension"]), f.get("metric", entry.get("metric")))
        for f in entry.get("vector_fields", [])
        if f.get("name")
    }
    return IndexSpec(
        name=name,
        dimension=entry.get("dimension"),
        metric=entry.get("metric", "unknown"),
        id_type=entry.get("id_type", "string"),
        named_vectors=named,
        sparse=bool(entry.get("sparse")),
        normalized=bool(entry.get("normalized")),
        raw_config=entry.get("raw_config") or {},
    )


def save(store: SnapshotStore, manifest: dict[str, Any]) -> None:
    data = json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=False).encode("utf-8")
    store.write_bytes(layout.MANIFEST, data + b"\n")


def load(store: SnapshotStore, *, require_complete: bool = True) -> dict[str, Any]:
    """Read and check the manifest. Raises SnapshotError naming what is wrong."""
    where = store.url
    if not store.exists(layout.MANIFEST):
        raise SnapshotError(f"{where}: no manifest.json here; is this a vectra snapshot?")
    try:
        manifest = json.loads(store.read_bytes(layout.MANIFEST))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{where}/manifest.json is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SnapshotError(f"{where}/manifest.json is not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise SnapshotError(
            f"{where}: snapshot format_version {version!r} is not supported by vectra-io "
            f"{__version__} (supports {FORMAT_VERSION}); upgrade vectra-io"
        )
    if require_complete and not manifest.get("complete"):
        raise SnapshotError(
            f"{where}: snapshot is incomplete (its export did not finish); "
            "resume it with `vectra export` on the same source and snapshot"
        )
    if not isinstance(manifest.get("indexes"), dict):
        raise SnapshotError(f"{where}/manifest.json has no 'indexes' object")
    for index, entry in manifest["indexes"].items():
        for key, ns in entry.get("namespaces", {}).items():
            for part in ns.get("parts", []):
                layout.checked_relpath(part.get("path"))
                for field in ("rows", "bytes", "sha256"):
                    if field not in part:
                        raise SnapshotError(
                            f"{where}: part {part.get('path')!r} of index {index!r} "
                            f"namespace {key!r} has no {field!r}"
                        )
    return manifest


def iter_namespaces(manifest: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(index, namespace, entry) for every namespace, default namespace as ``""``."""
    for index, entry in manifest["indexes"].items():
        for key, ns in entry.get("namespaces", {}).items():
            yield index, layout.namespace_from_key(key), ns


def expected_schema(entry: dict[str, Any], name: str) -> pa.Schema:
    return record_schema(spec_from_entry(name, entry))
