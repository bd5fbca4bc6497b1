"""Checks of records against what Pinecone stores: the ids and sparse values it refuses,
and its flat metadata under the ``on_lossy`` policy (:func:`checked_metadata`: the
metadata to send, or why the record is refused, and the fields dropped or stringified),
with the texts of those changes and their tally in a provider's ``lossy_report``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from .._http import dumps as _dumps
from .limits import (
    DEFAULT_NAMESPACE_NAME,
    MAX_ID_CHARS,
    MAX_METADATA_BYTES,
    MAX_SPARSE_NONZEROS,
    REPORT_SAMPLE,
)

log = logging.getLogger("vectra_io.providers.pinecone")

_LOSSY_TEXT = {
    "null": "null values are not supported",
    "object": "nested objects are not supported",
    "list": "lists may hold only strings",
    "big_int": "an integer beyond 2**53 would lose precision as a float64",
    "oversize": "metadata is larger than 40 KB",
}


def id_problem(rid: str) -> str | None:
    if not 1 <= len(rid) <= MAX_ID_CHARS:
        return f"id has {len(rid)} characters; Pinecone ids have 1 to {MAX_ID_CHARS} characters"
    return None


def sparse_problem(sv: Mapping[str, Any] | None) -> str | None:
    """Why Pinecone refuses these sparse values (None: it takes them, or there are none)."""
    if not sv or not sv["indices"]:
        return None
    if len(sv["indices"]) > MAX_SPARSE_NONZEROS:
        return (
            f"sparse vector has {len(sv['indices'])} non-zeros; "
            f"Pinecone allows {MAX_SPARSE_NONZEROS}"
        )
    if len(set(sv["indices"])) != len(sv["indices"]):
        return "sparse vector repeats indices"
    return None


def _lossy_kind(value: Any) -> str | None:
    """Why Pinecone cannot store this metadata value as it is (None: it can)."""
    if value is None:
        return "null"
    if isinstance(value, bool | str | float):
        return None
    if isinstance(value, int):
        try:
            return None if float(value) == value else "big_int"
        except OverflowError:
            return "big_int"
    if isinstance(value, list):
        return None if all(isinstance(v, str) for v in value) else "list"
    if isinstance(value, dict):
        return "object"
    return "object"  # pragma: no cover - JSON has no other types


def _stored_size(meta: Mapping[str, Any]) -> int:
    """Bytes of the metadata as Pinecone stores it (numbers as float64)."""
    as_stored = {
        k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
        for k, v in meta.items()
    }
    return len(_dumps(as_stored))


def new_lossy_report(policy: str) -> dict[str, Any]:
    return {
        "policy": policy,
        "records_refused": 0,
        "records_changed": 0,
        "fields_dropped": 0,
        "fields_stringified": 0,
        "by_kind": {},
        "by_field": {},
    }


def checked_metadata(
    text: str | None, on_lossy: str
) -> tuple[dict[str, Any] | None, str | None, list[tuple[str, str, str]]]:
    """(metadata to send, refusal reason, [(action, field, kind)]) under ``on_lossy``."""
    if text is None:
        return None, None, []
    meta = json.loads(text)  # stdlib: integers of any size stay exact
    out: dict[str, Any] = {}
    changes: list[tuple[str, str, str]] = []
    for key, value in meta.items():
        kind = _lossy_kind(value)
        if kind is None:
            out[key] = value
            continue
        if on_lossy == "error":
            return None, _lossy_reason(key, kind), []
        if on_lossy == "drop-field" or kind == "null":
            changes.append(("dropped", key, kind))
            continue
        if kind == "big_int":
            out[key] = str(value)
        else:
            out[key] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        changes.append(("stringified", key, kind))
    size = _stored_size(out)
    if size > MAX_METADATA_BYTES:
        if on_lossy != "drop-field":
            reason = (
                f"metadata is {size} bytes as Pinecone stores it, more than its limit of "
                f"{MAX_METADATA_BYTES} bytes per record (on_lossy={on_lossy}; "
                "on_lossy=drop-field drops the largest fields)"
            )
            return None, reason, []
        by_size = sorted(out, key=lambda k: len(_dumps({k: out[k]})), reverse=True)
        for key in by_size:
            del out[key]
            changes.append(("dropped", key, "oversize"))
            if _stored_size(out) <= MAX_METADATA_BYTES:
                break
    return (out or None), None, changes


def changes_text(changes: Sequence[tuple[str, str, str]], on_lossy: str) -> str:
    """``changed (on_lossy=P): metadata fields dropped: 'a' (null); stringified: ...``"""
    by_action: dict[str, list[str]] = {}
    for action, key, kind in changes:
        by_action.setdefault(action, []).append(f"{key!r} ({kind.replace('_', ' ')})")
    fields = "; ".join(f"{action}: {', '.join(keys)}" for action, keys in by_action.items())
    return f"changed (on_lossy={on_lossy}): metadata fields {fields}"


def _lossy_reason(key: str, kind: str) -> str:
    return (
        f"metadata field {key!r}: {_LOSSY_TEXT[kind]} by Pinecone (on_lossy=error; "
        "on_lossy=drop-field or stringify writes the record without it or as text)"
    )


def tally(
    report: dict[str, Any],
    lock: threading.RLock,
    on_lossy: str,
    index: str,
    namespace: str,
    refused_lossy: int,
    changed: list[list[tuple[str, str, str]]],
) -> None:
    if not refused_lossy and not changed:
        return
    kinds: dict[str, int] = {}
    fields: set[str] = set()
    with lock:
        rep = report
        rep["records_refused"] += refused_lossy
        rep["records_changed"] += len(changed)
        for changes in changed:
            for action, key, kind in changes:
                rep["fields_dropped" if action == "dropped" else "fields_stringified"] += 1
                by_kind = rep["by_kind"].setdefault(kind, {})
                by_kind[action] = by_kind.get(action, 0) + 1
                if key in rep["by_field"] or len(rep["by_field"]) < REPORT_SAMPLE:
                    by_field = rep["by_field"].setdefault(key, {})
                    by_field[action] = by_field.get(action, 0) + 1
                label = f"{action} {kind}"
                kinds[label] = kinds.get(label, 0) + 1
                fields.add(key)
    if changed:
        log.warning(
            "index %r namespace %r: on_lossy=%s changed the metadata of %d records (%s; "
            "fields %s); see lossy_report",
            index,
            namespace or DEFAULT_NAMESPACE_NAME,
            on_lossy,
            len(changed),
            ", ".join(f"{n} {label}" for label, n in sorted(kinds.items())),
            sorted(fields)[:20],
        )
    if refused_lossy:
        log.warning(
            "index %r namespace %r: on_lossy=%s refused %d records whose metadata Pinecone "
            "cannot store as it is",
            index,
            namespace or DEFAULT_NAMESPACE_NAME,
            on_lossy,
            refused_lossy,
        )
