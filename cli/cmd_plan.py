"""``vectra plan``: what an import (or a migration) would do, without writing anything.

``vectra plan SNAPSHOT_OR_SOURCE TARGET_URL`` reads a snapshot (a directory, file:// or
s3:// URL) or a provider URL and reports, per index: whether the target index will be
created or an existing one used, the dimension and the metric (in the target's own
vocabulary, e.g. Qdrant ``Cosine``, Pinecone ``dotproduct``), how ids, namespaces,
sparse and named vectors and metadata map, and the problems that would stop the copy
(a metric the target cannot express, an existing index of another dimension, ...). With
the records scanned (the default; ``--no-scan`` skips it) it also counts the records the
target would refuse or change, per namespace and reason, with a few example ids. The
engine is :func:`vectra_io.plan`; the target's own pre-flight (``check_records``) gives
provider rules such as Pinecone's ``on_lossy`` metadata policy
(``pinecone://host?on_lossy=stringify`` plans that policy).

Nothing is created or written on the target: only ``describe``-style reads are made.

Exit codes: 0 when the plan is clean (no problem, no record with an issue); 4 (as a
verification mismatch) when the plan found problems or records that would be refused,
changed or have their ids mapped; 1 and 2 as for the other commands.

The ``--json`` document is the engine's plan plus, per index, ``vectors``, ``id_mapping``,
``metadata`` and ``namespace_mapping`` (how they map onto the target), and ``source``,
``source_kind`` (``snapshot`` | ``provider``), ``scanned``, ``problems`` (their count)
and ``clean`` at the top.
"""

from __future__ import annotations

from typing import Any

import click

from vectra_io import metrics
from vectra_io.engine.plan import plan
from vectra_io.errors import VectraError
from vectra_io.ids import ORIGINAL_ID_KEY
from vectra_io.providers.base import IndexSpec, Provider
from vectra_io.providers.registry import ALIASES, PROVIDERS
from vectra_io.snapshot import manifest as mf
from vectra_io.snapshot.storage import SnapshotStore

from . import render
from .app import EXIT_MISMATCH, command
from .endpoints import CLIError, namespace_map, open_endpoint, parse_selection, safe_url
from .options import api_key_option, index_option, namespace_option, scan_option, storage_option
from .output import UI, ns_label

#: how each target keeps namespaces (the README's "namespaces are" column)
NAMESPACE_MAPPING = {
    "memory": "native namespaces",
    "lancedb": "a namespace column of the table",
    "pgvector": "a namespace column in the primary key",
    "chroma": "one collection per namespace",
    "milvus": "partitions",
    "pinecone": "Pinecone namespaces (the default namespace is __default__)",
    "weaviate": "tenants of a multi-tenant class (the default namespace is the tenant __default__)",
}


def is_provider_url(text: str) -> bool:
    """``qdrant://...``, ``pgvector+https://...``: a provider, not a snapshot location."""
    if "://" not in text:
        return False
    scheme = text.split("://", 1)[0].partition("+")[0].lower()
    return scheme in PROVIDERS or scheme in ALIASES


@command("plan", short_help="Show what an import would create, map, change or refuse.")
@click.argument("snapshot_or_source")
@click.argument("target_url")
@index_option(rename=True)
@namespace_option(rename=True)
@scan_option
@storage_option
@api_key_option("target")
@api_key_option("source", name="--source-api-key")
def plan_cmd(
    ui: UI,
    snapshot_or_source: str,
    target_url: str,
    index: tuple[str, ...],
    namespace: tuple[str, ...],
    scan: bool,
    storage_options: dict[str, Any],
    api_key: str | None,
    source_api_key: str | None,
) -> int:
    """Plan copying SNAPSHOT_OR_SOURCE (a snapshot, or a provider URL) into TARGET_URL,
    writing nothing: the indexes that will be created (or used), how ids, metrics (in the
    target's own names), namespaces, sparse and named vectors and metadata map, and which
    records the target would refuse or change and why, with counts and example ids.

    Exits with 0 when the plan is clean, 4 when it found problems or records with issues
    (refused, changed, or ids mapped to UUIDs)."""
    indexes = parse_selection(index, "--index", allow_rename=True)
    namespaces = parse_selection(namespace, "--namespace", allow_rename=True, namespace=True)
    from_provider = is_provider_url(snapshot_or_source)
    target = open_endpoint(target_url, "target", api_key, ui.secrets)
    source: Provider | None = None
    try:
        if from_provider:
            source = open_endpoint(snapshot_or_source, "source", source_api_key, ui.secrets)
        ui.note(
            f"planning {safe_url(snapshot_or_source)} -> {safe_url(target_url)}"
            + (" (scanning every record) ..." if scan else " ...")
        )
        result = plan(
            source if source is not None else snapshot_or_source,
            target,
            index_map=indexes.renames,
            namespace_map=namespace_map(namespaces),
            indexes=indexes.names,
            namespaces=namespaces.names,
            scan_records=scan,
            storage_options=storage_options,
        )
        _check_selection(result, indexes.names, namespaces.names, snapshot_or_source)
        specs = _source_specs(source, snapshot_or_source, storage_options, result)
        for entry in result["indexes"]:
            entry.update(describe_mapping(specs[entry["source_index"]], target))
    finally:
        target.close()
        if source is not None:
            source.close()
    problems = sum(len(p["problems"]) for p in result["indexes"])
    result = {
        "source": safe_url(snapshot_or_source),
        "source_kind": "provider" if from_provider else "snapshot",
        **result,
        "target": result.get("target") or safe_url(target_url),
        "scanned": scan,
        "problems": problems,
        "clean": bool(result["ok"]) and not result["records_with_issues"],
    }
    ui.result(result, lambda out: render.plan_result(out, result))
    return 0 if result["clean"] else EXIT_MISMATCH


def _check_selection(
    result: dict[str, Any],
    indexes: list[str] | None,
    namespaces: list[str] | None,
    source: str,
) -> None:
    """A selected index or namespace that is not in the source is a usage error (as for
    import), not an empty plan."""
    planned = {p["source_index"] for p in result["indexes"]}
    missing = [i for i in indexes or [] if i not in planned]
    if missing:
        raise CLIError(f"{safe_url(source)}: no index {', '.join(map(repr, missing))}", 2)
    found = {n["source"] for p in result["indexes"] for n in p["namespaces"]}
    missing = [ns_label(n) for n in namespaces or [] if n not in found]
    if missing:
        raise CLIError(
            f"{safe_url(source)}: no namespace {', '.join(map(repr, missing))} in the selected "
            "indexes",
            2,
        )


def _source_specs(
    source: Provider | None,
    snapshot: str,
    storage_options: dict[str, Any],
    result: dict[str, Any],
) -> dict[str, IndexSpec]:
    """The specs of the planned source indexes (the snapshot's manifest, or the provider)."""
    names = [p["source_index"] for p in result["indexes"]]
    if source is not None:
        return {name: source.describe_index(name) for name in names}
    manifest = mf.load(SnapshotStore(snapshot, **storage_options))
    return {name: mf.spec_from_entry(name, manifest["indexes"][name]) for name in names}


def _target_metric(target: Provider, metric: str) -> str | None:
    """The target's own name of a metric (None: it cannot express it)."""
    if target.name not in metrics.METRIC_NAMES:
        return metric
    try:
        return metrics.to_provider(target.name, metric)
    except VectraError:
        return None


def describe_mapping(spec: IndexSpec, target: Provider) -> dict[str, Any]:
    """How the vectors, metadata and namespaces of one index map onto ``target``."""
    caps = target.capabilities
    vectors: dict[str, Any] = {}
    if spec.dimension is not None:
        vectors["dense"] = {
            "dimension": spec.dimension,
            "metric": spec.metric,
            "target_metric": _target_metric(target, spec.metric),
        }
    if spec.sparse:
        vectors["sparse"] = (
            "kept" if caps.sparse else "cannot be stored by the target (see problems)"
        )
        if target.name == "pinecone" and spec.metric != "dot":
            vectors["sparse"] += (
                f"; but Pinecone keeps sparse values only in dotproduct indexes, not "
                f"{spec.metric}: import with --metric dot"
            )
    if spec.named_vectors:
        vectors["named"] = {
            name: {
                "dimension": v.dimension,
                "metric": v.metric,
                "target_metric": _target_metric(target, v.metric),
                "kept": caps.named_vectors,
            }
            for name, v in spec.named_vectors.items()
        }
    return {
        "vectors": vectors,
        "id_mapping": _id_mapping(target),
        "metadata": _metadata_mapping(target),
        "namespace_mapping": _namespace_mapping(target),
    }


def _id_mapping(target: Provider) -> str:
    restored = f"the original kept under {ORIGINAL_ID_KEY!r} and restored on export"
    if target.name == "qdrant":
        text = f"uint64 numbers and canonical UUIDs kept, other ids mapped to uuid5 ({restored})"
        if getattr(target, "namespace_mode", "payload") == "payload":
            text += "; every id of a non-default namespace is mapped"
        return text
    if target.name == "weaviate":
        return f"canonical UUIDs kept, other ids mapped to uuid5 ({restored})"
    if target.name == "pinecone":
        return "kept (strings of 1 to 512 characters; other ids are refused)"
    if "string" in target.capabilities.id_types:
        return "kept as they are"
    return "ids the target cannot take are mapped to UUIDs (original in the payload)"


def _metadata_mapping(target: Provider) -> str:
    if target.name == "pinecone":
        policy = getattr(target, "on_lossy", "error")
        what = {
            "error": "the record is refused",
            "drop-field": "the field is dropped",
            "stringify": "the value is written as JSON text (nulls dropped)",
        }.get(policy, policy)
        return (
            "flat: strings, numbers (stored as float64), booleans, lists of strings; for "
            "nulls, objects, other lists, integers beyond 2^53 and metadata over 40 KB, "
            f"on_lossy={policy}: {what}"
        )
    if target.name == "qdrant":
        return (
            f"the payload, as JSON (nested values and nulls kept; integers beyond 64 bits "
            f"refused); a mapped id's original is kept under {ORIGINAL_ID_KEY!r}"
        )
    if target.name == "weaviate":
        return (
            "the exact JSON text, in the property _vectra_metadata (typed properties "
            "only if configured)"
        )
    if target.capabilities.nested_metadata:
        return "kept exactly (JSON: nested values, nulls, big integers)"
    return "flat only: records with nested values, nulls or big integers are listed below"


def _namespace_mapping(target: Provider) -> str:
    if not target.capabilities.namespaces:
        return "none: only the default namespace can be kept"
    if target.name == "qdrant":
        if getattr(target, "namespace_mode", "payload") == "collection":
            return "one collection per namespace (INDEX__NAMESPACE)"
        key = getattr(target, "namespace_key", "_vectra_namespace")
        return f"the payload key {key!r} (the default namespace has none)"
    return NAMESPACE_MAPPING.get(target.name, "native namespaces")
