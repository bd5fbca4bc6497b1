"""Where things live inside a snapshot directory, and safe path handling.

Index and namespace names become path segments by percent-encoding (RFC 3986
style, UTF-8, upper-case hex) every character outside ``A-Z a-z 0-9 - _ .``,
plus a leading ``.`` so that no segment is hidden, ``.`` or ``..``. Decoding is
plain percent-decoding, so the mapping is reversible.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from urllib.parse import unquote

from ..errors import SnapshotError
from ..providers.base import DEFAULT_NAMESPACE

MANIFEST = "manifest.json"
DEFAULT_NAMESPACE_DIR = "__default__"
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def encode_segment(name: str) -> str:
    if not name:
        raise SnapshotError("an index or namespace name cannot be empty here")
    out = []
    for i, ch in enumerate(name):
        if ch in _SAFE and not (i == 0 and ch == "."):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def decode_segment(segment: str) -> str:
    return unquote(segment, errors="strict")


def namespace_key(namespace: str) -> str:
    """The manifest key and directory name of a namespace (default: ``__default__``)."""
    return DEFAULT_NAMESPACE_DIR if namespace == DEFAULT_NAMESPACE else namespace


def namespace_from_key(key: str) -> str:
    return DEFAULT_NAMESPACE if key == DEFAULT_NAMESPACE_DIR else key


def normalize_namespace(namespace: str | None) -> str:
    """A namespace as given by a user: None and ``__default__`` mean the default ``""``."""
    return DEFAULT_NAMESPACE if namespace is None else namespace_from_key(namespace)


def normalize_namespace_map(mapping: Mapping[str | None, str | None] | None) -> dict[str, str]:
    """A user's namespace renames with both sides normalised (see normalize_namespace)."""
    return {normalize_namespace(k): normalize_namespace(v) for k, v in (mapping or {}).items()}


def namespace_dir(index: str, namespace: str) -> str:
    return f"{encode_segment(index)}/{encode_segment(namespace_key(namespace))}"


def part_path(index: str, namespace: str, number: int) -> str:
    return f"{namespace_dir(index, namespace)}/part-{number:05d}.parquet"


def checked_relpath(path: str) -> str:
    """A manifest path, refused if it could leave the snapshot directory."""
    if not isinstance(path, str) or not path:
        raise SnapshotError(f"manifest lists an invalid part path {path!r}")
    if "\\" in path or "\x00" in path or ":" in path.split("/", 1)[0]:
        raise SnapshotError(f"part path {path!r} is not a relative POSIX path")
    if path.startswith("/") or any(seg in ("", ".", "..") for seg in path.split("/")):
        raise SnapshotError(f"part path {path!r} escapes the snapshot directory")
    return posixpath.normpath(path)


def join(root: str, relpath: str) -> str:
    return f"{root.rstrip('/')}/{checked_relpath(relpath)}"
