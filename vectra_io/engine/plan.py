"""Plan: what an import or migration would do, without writing anything.

For each index: what will be created (or checked) on the target, how the metric,
ids, namespaces, sparse and named vectors map, and which records would be lossy
or refused and why, with counts. Record checks come from the target's declared
capabilities, plus the provider's own ``check_records(batch)`` when it has
one (a provider-specific pre-flight that returns ``{id: reason}``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from .. import metrics
from ..errors import IndexNotFoundError, VectraError
from ..ids import canonical_uuid, is_uint64
from ..providers.base import UNKNOWN_METRIC, IndexSpec, Provider
from ..providers.registry import ALIASES, PROVIDERS, split_url
from ..records import ID, METADATA, SPARSE, VALUES, dense_matrix
from ..snapshot import layout
from ..snapshot import manifest as mf
from ..snapshot.layout import normalize_namespace, normalize_namespace_map
from ..snapshot.parts import open_verified
from ..snapshot.storage import SnapshotStore

MAX_EXAMPLES = 5


def _id_kind(rid: str) -> str:
    if is_uint64(rid):
        return "uint64"
    if canonical_uuid(rid) == rid:
        return "uuid"
    return "string"


def record_issues(batch: pa.RecordBatch, target: Provider) -> dict[str, list[str]]:
    """Why each record of ``batch`` would be changed or refused by ``target`` (id -> reasons)."""
    caps = target.capabilities
    issues: dict[str, list[str]] = {}
    ids = batch.column(ID).to_pylist()

    def note(i: int, why: str) -> None:
        issues.setdefault(ids[i], []).append(why)

    if "string" not in caps.id_types:
        for i, rid in enumerate(ids):
            if _id_kind(rid) not in caps.id_types:
                note(i, "id mapped to a UUID (original kept in the payload)")
    check = getattr(target, "check_records", None)
    if not caps.nested_metadata and METADATA in batch.schema.names and check is None:
        for i, text in enumerate(batch.column(METADATA).to_pylist()):
            problem = _flat_metadata_problem(json.loads(text)) if text else None
            if problem:
                note(i, problem)
    if VALUES in batch.schema.names and len(batch):
        col = batch.column(VALUES)
        valid = col.is_valid().to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(~np.any(dense_matrix(col), axis=1) & valid).tolist():
            note(i, "all-zero dense vector (refused by some stores)")
        if not caps.optional_dense:
            for i in np.flatnonzero(~valid).tolist():
                note(i, "record has no dense vector; the target needs one")
    if SPARSE in batch.schema.names and not caps.sparse:
        has_sparse = batch.column(SPARSE).is_valid().to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(has_sparse).tolist():
            note(i, "sparse vector dropped: the target cannot store sparse vectors")
    if check is not None:  # the provider's own rules (e.g. Pinecone's metadata policy)
        for rid, why in check(batch).items():
            issues.setdefault(rid, []).append(why)
    return issues


def is_reversible(reason: str) -> bool:
    """A change that export undoes (an id mapped to a UUID): noted, but not lossy."""
    return reason.startswith("id mapped")


def _flat_metadata_problem(meta: Mapping[str, Any]) -> str | None:
    for key, value in meta.items():
        if value is None:
            return f"metadata key {key!r} is null (the target has no null)"
        if isinstance(value, dict):
            return f"metadata key {key!r} holds a nested object"
        if isinstance(value, list) and any(isinstance(v, dict | list) or v is None for v in value):
            return f"metadata key {key!r} holds a list of objects, lists or nulls"
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
            return f"metadata key {key!r} is an integer beyond 2^53"
    return None


def plan_index(spec: IndexSpec, target_index: str, target: Provider) -> dict[str, Any]:
    """How one index maps onto the target: creation, metric, vectors, namespaces."""
    caps = target.capabilities
    problems: list[str] = []
    out: dict[str, Any] = {"source_index": spec.name, "target_index": target_index}
    try:
        existing = target.describe_index(target_index)
        out["action"] = "use existing index"
        if existing.dimension != spec.dimension:
            problems.append(
                f"target has dimension {existing.dimension}, records have {spec.dimension}"
            )
        if UNKNOWN_METRIC not in (existing.metric, spec.metric) and existing.metric != spec.metric:
            problems.append(f"target metric {existing.metric} differs from {spec.metric}")
    except IndexNotFoundError:
        out["action"] = "create index"
    name = target.name if target.name in metrics.METRIC_NAMES else None
    if spec.metric == UNKNOWN_METRIC:
        problems.append("the source metric is unknown: give --metric")
        out["metric"] = {"source": UNKNOWN_METRIC, "target": None}
    elif name is None:
        out["metric"] = {"source": spec.metric, "target": spec.metric}
    else:
        try:
            out["metric"] = {
                "source": spec.metric,
                "target": metrics.to_provider(name, spec.metric),
            }
        except VectraError as exc:
            problems.append(str(exc))
            out["metric"] = {"source": spec.metric, "target": None}
    out["dimension"] = spec.dimension
    if caps.max_dimension and spec.dimension and spec.dimension > caps.max_dimension:
        problems.append(f"dimension {spec.dimension} exceeds the target's {caps.max_dimension}")
    if spec.sparse and not caps.sparse:
        problems.append("records have sparse vectors; the target cannot store them")
    if spec.named_vectors and not caps.named_vectors:
        problems.append(
            f"records have named vectors {sorted(spec.named_vectors)}; the target has none"
        )
    out["ids"] = (
        "kept as they are"
        if spec.id_type in caps.id_types
        else "ids the target cannot take are mapped to UUIDs (original in the payload)"
    )
    out["normalized"] = spec.normalized
    out["problems"] = problems
    return out


def plan(
    source: Any,
    target: Any,
    *,
    index_map: Mapping[str, str] | None = None,
    namespace_map: Mapping[str | None, str | None] | None = None,
    indexes: Sequence[str] | None = None,
    namespaces: Sequence[str | None] | None = None,
    scan_records: bool = True,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Plan a copy from ``source`` (a snapshot URL/path, or a Client/Provider) to ``target``.

    Nothing is written. With ``scan_records`` every record is checked against
    the target's rules (reading the snapshot's parts or scanning the source).
    """
    from ..api import as_provider

    dst = as_provider(target)
    index_map = dict(index_map or {})
    ns_map = normalize_namespace_map(namespace_map)
    plans: list[dict[str, Any]] = []
    total = 0
    affected: set[str] = set()
    for spec, members in _items(source, indexes, namespaces, storage_options):
        p = plan_index(spec, index_map.get(spec.name, spec.name), dst)
        p["namespaces"] = []
        plans.append(p)
        for namespace, rows, batches in members:
            tgt_ns = ns_map.get(namespace, namespace)
            entry: dict[str, Any] = {"source": namespace, "target": tgt_ns, "records": rows}
            if namespace and not dst.capabilities.namespaces:
                p["problems"].append(f"the target has no namespaces: {namespace!r} cannot be kept")
            if scan_records:
                reasons: Counter[str] = Counter()
                examples: dict[str, list[str]] = {}
                for batch in batches:
                    for rid, whys in record_issues(batch, dst).items():
                        if not all(is_reversible(why) for why in whys):
                            affected.add(f"{spec.name}\x00{namespace}\x00{rid}")
                        for why in whys:
                            reasons[why] += 1
                            ids = examples.setdefault(why, [])
                            if len(ids) < MAX_EXAMPLES:
                                ids.append(rid)
                entry["issues"] = [
                    {
                        "reason": why,
                        "records": n,
                        "examples": examples[why],
                        "lossy": not is_reversible(why),
                    }
                    for why, n in reasons.most_common()
                ]
            total += rows
            p["namespaces"].append(entry)
    return {
        "target": dst.endpoint,
        "indexes": plans,
        "records": total,
        "records_with_issues": len(affected),
        "ok": all(not p["problems"] for p in plans),
    }


NamespacePlan = tuple[str, int, Iterator[pa.RecordBatch]]


def _items(
    source: Any,
    indexes: Sequence[str] | None,
    namespaces: Sequence[str | None] | None,
    storage_options: dict[str, Any] | None,
) -> Iterator[tuple[IndexSpec, Iterator[NamespacePlan]]]:
    """Per index of the source: its spec and its namespaces (name, records, their batches)."""
    wanted = None if namespaces is None else {normalize_namespace(n) for n in namespaces}
    if _is_snapshot(source):
        store = SnapshotStore(source, **(storage_options or {}))
        manifest = mf.load(store)
        for index, entry in manifest["indexes"].items():
            if indexes and index not in indexes:
                continue
            nss = [
                (layout.namespace_from_key(k), ns["rows"], _part_batches(store, ns["parts"]))
                for k, ns in entry.get("namespaces", {}).items()
                if wanted is None or layout.namespace_from_key(k) in wanted
            ]
            yield mf.spec_from_entry(index, entry), iter(nss)
        return
    from ..api import as_provider

    src = as_provider(source)
    for index in indexes or src.list_indexes():
        names = [n for n in src.list_namespaces(index) if wanted is None or n in wanted]
        yield (
            src.describe_index(index),
            (
                (n, src.count(index, n), (p.batch for p in src.scan(index, n, batch_size=1000)))
                for n in names
            ),
        )


def _is_snapshot(source: Any) -> bool:
    """A path or a filesystem URL (s3://, file://, ...) rather than a provider URL."""
    if not isinstance(source, str):
        return False
    if "://" not in source:
        return True
    scheme = split_url(source)[0]
    return scheme not in PROVIDERS and scheme not in ALIASES


def _part_batches(store: SnapshotStore, parts: list[dict[str, Any]]) -> Iterator[pa.RecordBatch]:
    for part in parts:
        with open_verified(store, part) as pf:
            yield from pf.iter_batches(batch_size=10_000)
