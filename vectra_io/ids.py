"""Deterministic id mapping for providers that accept only UUIDs (or uint64).

A string id that the target cannot take is mapped to ``uuid5(VECTRA_ID_NAMESPACE, id)``
and the original is kept in the record's payload under :data:`ORIGINAL_ID_KEY`;
exporting from such a target restores the original id when that key is present,
so Pinecone -> Qdrant -> Pinecone returns the original ids. The namespace UUID is
fixed forever (changing it would change every mapped id).
"""

from __future__ import annotations

import re
import uuid

#: uuid5(NAMESPACE_URL, "https://vectra-io.dev/ids") — fixed, documented in the README
VECTRA_ID_NAMESPACE = uuid.UUID("2f1c8c3e-5b9a-5d6e-9a47-6c1e0b7d4a21")
ORIGINAL_ID_KEY = "_vectra_id"

_UINT64 = re.compile(r"^(0|[1-9][0-9]{0,19})$")


def is_uint64(value: str) -> bool:
    return bool(_UINT64.match(value)) and int(value) < 2**64


def canonical_uuid(value: str) -> str | None:
    """The hyphenated lower-case form of a UUID string (simple, hyphenated, urn, braced)."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


def mapped_uuid(original: str) -> str:
    """The deterministic UUID that stands for ``original``."""
    return str(uuid.uuid5(VECTRA_ID_NAMESPACE, original))


def to_uuid_or_uint(original: str, *, allow_uint64: bool) -> tuple[str | int, bool]:
    """The id a uint64/UUID store accepts for ``original``, and whether it was mapped.

    Ids that already are UUIDs (in their canonical form) or, where allowed,
    uint64 numbers pass through unchanged; anything else is mapped.
    """
    if allow_uint64 and is_uint64(original):
        return int(original), False
    canon = canonical_uuid(original)
    if canon is not None and canon == original:
        return canon, False
    return mapped_uuid(original), True
