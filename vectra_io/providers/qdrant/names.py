"""Point ids and collection names: the Qdrant point id of a record id (uint64 and
canonical UUIDs as themselves, other strings as a UUIDv5, per namespace in ``payload``
mode), record ids back from point ids, the collection of a namespace in ``collection``
mode and back, and the checks and quoting of collection names in request paths.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
import uuid
from typing import Any

from ...errors import (
    ConfigError,
)
from ...ids import VECTRA_ID_NAMESPACE, canonical_uuid, is_uint64
from ..base import (
    DEFAULT_NAMESPACE,
)

NS_SEPARATOR = "__"
NS_HEX_MARK = "~"
_SAFE_NS = re.compile(r"[A-Za-z0-9._-]+")
_INVALID_NAME_CHARS = set('<>:"/\\|?*\0\x1f')


# -- ids -------------------------------------------------------------------------------
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_VECTRA_NS_BYTES = VECTRA_ID_NAMESPACE.bytes


def uuid5(namespace: bytes, name: str) -> str:
    """``str(uuid.uuid5(UUID(bytes=namespace), name))`` without building UUID objects
    (several times faster; tests check it against :func:`vectra_io.ids.mapped_uuid`)."""
    digest = bytearray(hashlib.sha1(namespace + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def point_id(record_id: str) -> tuple[int | str, bool]:
    """The point id of a record id of the default namespace, and whether it was mapped
    (:func:`vectra_io.ids.to_uuid_or_uint` with uint64 allowed)."""
    if is_uint64(record_id):
        return int(record_id), False
    if _CANONICAL_UUID.fullmatch(record_id):  # == canonical_uuid(record_id)
        return record_id, False
    return uuid5(_VECTRA_NS_BYTES, record_id), True


def namespace_uuid(namespace: str) -> uuid.UUID:
    """The UUID namespace of the point ids of a vectra namespace (payload mode)."""
    return uuid.uuid5(VECTRA_ID_NAMESPACE, "namespace:" + namespace)


def canonical_point(pid: Any) -> int | str:
    if isinstance(pid, int) or (isinstance(pid, str) and _CANONICAL_UUID.fullmatch(pid)):
        return pid
    canon = canonical_uuid(str(pid))
    return canon if canon is not None else str(pid)


# -- names -----------------------------------------------------------------------------
def namespace_collection(index: str, namespace: str) -> str:
    """The collection of namespace ``namespace`` of ``index`` in ``collection`` mode."""
    if namespace == DEFAULT_NAMESPACE:
        return index
    if _SAFE_NS.fullmatch(namespace):
        return f"{index}{NS_SEPARATOR}{namespace}"
    return f"{index}{NS_SEPARATOR}{NS_HEX_MARK}{namespace.encode('utf-8').hex()}"


def namespace_of_collection(index: str, name: str) -> str | None:
    """The namespace a collection name stands for under ``index`` (None when it does not)."""
    prefix = index + NS_SEPARATOR
    if not name.startswith(prefix) or len(name) == len(prefix):
        return None
    tail = name[len(prefix) :]
    if tail.startswith(NS_HEX_MARK):
        try:
            return bytes.fromhex(tail[1:]).decode("utf-8")
        except ValueError:
            return None
    return tail if _SAFE_NS.fullmatch(tail) else None


def check_name(name: str) -> None:
    if not name or len(name) > 255 or any(c in _INVALID_NAME_CHARS for c in name):
        raise ConfigError(
            f"{name!r} is not a valid Qdrant collection name (1-255 characters, none of "
            '< > : " / \\ | ? *)'
        )


def quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")
