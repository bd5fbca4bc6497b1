"""Milvus names for vectra names: the reversible namespace <-> partition mapping (a plain
name as is, anything else ``_vx_`` + escaped UTF-8 bytes), the field name of a named
vector, and the expression literal of a primary-key value. Pure functions on strings,
without pymilvus.
"""

from __future__ import annotations

import re
from typing import Any

from ..base import DEFAULT_NAMESPACE

DEFAULT_PARTITION = "_default"

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
PLAIN_NAMESPACE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,254}")
ESCAPE_PREFIX = "_vx_"
_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _escape(text: str) -> str:
    return "".join(chr(b) if b in _SAFE_BYTES else f"_{b:02x}" for b in text.encode("utf-8"))


def _unescape(text: str) -> str | None:
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "_":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or not re.fullmatch(r"[0-9a-f]{2}", pair):
                return None
            out.append(int(pair, 16))
            i += 3
        else:
            out.extend(ch.encode("ascii", "replace"))
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def partition_for(namespace: str) -> str:
    """The partition name of a namespace (reversible, see the package docstring)."""
    if namespace == DEFAULT_NAMESPACE:
        return DEFAULT_PARTITION
    if PLAIN_NAMESPACE_RE.fullmatch(namespace) and not namespace.startswith(ESCAPE_PREFIX):
        return namespace
    return ESCAPE_PREFIX + _escape(namespace)


def namespace_for(partition: str) -> str:
    """The namespace of a partition name (inverse of :func:`partition_for`)."""
    if partition == DEFAULT_PARTITION:
        return DEFAULT_NAMESPACE
    if partition.startswith(ESCAPE_PREFIX):
        decoded = _unescape(partition[len(ESCAPE_PREFIX) :])
        if decoded is not None and partition_for(decoded) == partition:
            return decoded
    return partition


def named_field(name: str, reserved: set[str]) -> str:
    if NAME_RE.fullmatch(name) and name not in reserved and not name.startswith(ESCAPE_PREFIX):
        return name
    return ESCAPE_PREFIX + _escape(name)


def literal(value: Any) -> str:
    """A Milvus expression literal for a primary-key value."""
    if isinstance(value, int):
        return str(value)
    text = (
        str(value)
        .replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )
    return f'"{text}"'
