"""Verify: prove a copy by counts (manifest, source, target), then by sampled records."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import IndexNotFoundError
from ..providers.base import Provider
from ..records import (
    ID,
    METADATA,
    NAMED_PREFIX,
    SPARSE,
    VALUES,
    dense_matrix,
    json_equal,
    loads_metadata,
)
from ..snapshot import manifest as mf
from ..snapshot.layout import normalize_namespace_map
from ..snapshot.parts import open_verified
from ..snapshot.storage import SnapshotStore
from .importer import _select

log = logging.getLogger("vectra_io.verify")


def _count(provider: Provider, index: str, namespace: str) -> int:
    try:
        return provider.count(index, namespace)
    except IndexNotFoundError:
        return 0


def verify_snapshot(
    snapshot: str,
    target: Any,
    index_map: Mapping[str, str] | None = None,
    namespace_map: Mapping[str | None, str | None] | None = None,
    source: Any = None,
    *,
    indexes: Sequence[str] | None = None,
    namespaces: Sequence[str | None] | None = None,
    sample: int = 0,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compare, per namespace, the snapshot's rows with the target's (and source's) count.

    With ``sample`` > 0, also fetch up to that many records per namespace from
    the target and compare them with the snapshot: ids, vectors (bit-exact
    unless the target normalises or stores reduced precision) and metadata.
    """
    from ..api import as_provider

    dst = as_provider(target)
    src = as_provider(source) if source is not None else None
    store = SnapshotStore(snapshot, **(storage_options or {}))
    manifest = mf.load(store)
    index_map = dict(index_map or {})
    ns_map = normalize_namespace_map(namespace_map)
    chosen = _select(manifest, indexes, namespaces, index_map, ns_map)

    groups: dict[tuple[str, str], list[tuple[str, str, dict[str, Any]]]] = {}
    for index, namespace, entry in chosen:
        key = (index_map.get(index, index), ns_map.get(namespace, namespace))
        groups.setdefault(key, []).append((index, namespace, entry))

    rows = []
    for (tgt_index, tgt_ns), members in groups.items():
        manifest_rows = sum(e["rows"] for _, _, e in members)
        target_count = _count(dst, tgt_index, tgt_ns)
        source_count = sum(_count(src, i, n) for i, n, _ in members) if src is not None else None
        reasons = []
        if target_count != manifest_rows:
            reasons.append(f"target has {target_count} records, snapshot {manifest_rows}")
        if source_count is not None and source_count != manifest_rows:
            reasons.append(f"source has {source_count} records, snapshot {manifest_rows}")
        rejected = sum(e.get("rejected", 0) for _, _, e in members)
        if rejected:
            reasons.append(f"{rejected} source records were rejected at export")
        row: dict[str, Any] = {
            "index": members[0][0],
            "namespaces": [n for _, n, _ in members],
            "target_index": tgt_index,
            "target_namespace": tgt_ns,
            "manifest_count": manifest_rows,
            "source_count": source_count,
            "target_count": target_count,
        }
        if sample > 0:
            mismatches, checked = _sample_check(
                store, manifest, members, dst, tgt_index, tgt_ns, sample
            )
            row["sample_checked"] = checked
            row["sample_mismatches"] = mismatches
            if mismatches:
                reasons.append(f"{len(mismatches)} of {checked} sampled records differ")
        row["match"] = not reasons
        row["reasons"] = reasons
        rows.append(row)
    result: dict[str, Any] = {
        "match": all(r["match"] for r in rows),
        "manifest_count": sum(r["manifest_count"] for r in rows),
        "source_count": (sum(r["source_count"] for r in rows) if src is not None else None),
        "target_count": sum(r["target_count"] for r in rows),
        "namespaces": rows,
    }
    return result


def _sample_check(
    store: SnapshotStore,
    manifest: dict[str, Any],
    members: list[tuple[str, str, dict[str, Any]]],
    target: Provider,
    tgt_index: str,
    tgt_ns: str,
    sample: int,
) -> tuple[list[dict[str, Any]], int]:
    """Compare up to ``sample`` records spread over the parts with the target's copy."""
    mismatches: list[dict[str, Any]] = []
    checked = 0
    parts = [(i, p) for i, _, e in members for p in e["parts"]]
    if not parts:
        return mismatches, 0
    per_part = max(1, sample // len(parts))
    try:  # a target that normalises (Qdrant cosine) keeps directions, not bits
        target_normalizes = target.describe_index(tgt_index).normalized
    except IndexNotFoundError:
        target_normalizes = False
    for index, part in parts:
        if checked >= sample:
            break
        normalized = bool(manifest["indexes"][index].get("normalized")) or target_normalizes
        exact = target.capabilities.exact_floats and not normalized
        with open_verified(store, part) as pf:
            want = next(pf.iter_batches(batch_size=min(per_part, sample - checked)))
        try:
            got = target.fetch(tgt_index, want.column(ID).to_pylist(), tgt_ns)
        except IndexNotFoundError:
            got = want.slice(0, 0)  # every sampled record is missing
        checked += want.num_rows
        mismatches.extend(compare_batches(want, got, exact=exact))
    return mismatches, checked


def compare_batches(
    want: pa.RecordBatch, got: pa.RecordBatch, *, exact: bool = True
) -> list[dict[str, Any]]:
    """Differences between expected and actual records, by id."""
    out: list[dict[str, Any]] = []
    got_pos = {rid: i for i, rid in enumerate(got.column(ID).to_pylist())}
    want_ids = want.column(ID).to_pylist()
    for rid in want_ids:
        if rid not in got_pos:
            out.append({"id": rid, "reason": "missing in target"})
    present = [i for i, rid in enumerate(want_ids) if rid in got_pos]
    if not present:
        return out
    w = want.take(pa.array(present))
    g = got.take(pa.array([got_pos[want_ids[i]] for i in present]))
    ids = w.column(ID).to_pylist()
    for name in w.schema.names:
        if name not in g.schema.names:
            continue
        if name == VALUES or name.startswith(NAMED_PREFIX):
            wa, ga = w.column(name), g.column(name)
            a, b = dense_matrix(wa), dense_matrix(ga)
            if exact:
                same = (a.view(np.uint32) == b.view(np.uint32)).all(axis=1)
            else:
                same = np.isclose(_unit(a), _unit(b), rtol=1e-3, atol=1e-5).all(axis=1)
            same &= _valid(wa) == _valid(ga)
            out.extend({"id": ids[i], "reason": f"{name} differs"} for i in np.flatnonzero(~same))
        elif name == SPARSE:
            pairs = zip(w.column(name).to_pylist(), g.column(name).to_pylist(), strict=True)
            for rid, (sa, sb) in zip(ids, pairs, strict=True):
                if not _sparse_equal(sa, sb, exact):
                    out.append({"id": rid, "reason": "sparse_values differs"})
        elif name == METADATA:
            pairs = zip(w.column(name).to_pylist(), g.column(name).to_pylist(), strict=True)
            for rid, (ma, mb) in zip(ids, pairs, strict=True):
                if not json_equal(loads_metadata(ma), loads_metadata(mb)):
                    out.append({"id": rid, "reason": "metadata differs"})
    return out


def _valid(col: pa.Array) -> np.ndarray:
    return np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _sparse_equal(a: dict[str, Any] | None, b: dict[str, Any] | None, exact: bool) -> bool:
    if a is None or b is None:
        return a is b
    if sorted(a["indices"]) != sorted(b["indices"]):
        return False
    # the same index -> value map, whatever order the store returns the indices in
    va = np.asarray(a["values"], dtype=np.float32)[np.argsort(a["indices"], kind="stable")]
    vb = np.asarray(b["values"], dtype=np.float32)[np.argsort(b["indices"], kind="stable")]
    if exact:
        return bool(np.array_equal(va.view(np.uint32), vb.view(np.uint32)))
    return bool(np.allclose(va, vb, rtol=1e-3, atol=1e-6))


def _unit(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)
