"""Checksums of part files: SHA-256 and CRC-32, computed in one pass.

Every part carries both in the manifest (docs/FORMAT.md). SHA-256 is the
archival digest that ``vectra validate`` checks; CRC-32 (zlib's, IEEE 802.3)
is what import checks by default, because it costs about half the CPU and
catches the same accidental damage (truncation, flipped bits, a bad copy).
The manifest is not signed, so neither digest protects against someone who
can rewrite it too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from .storage import SnapshotStore

CRC32 = "crc32"
SHA256 = "sha256"
ALGORITHMS = (CRC32, SHA256)
DEFAULT_IMPORT_CHECK = CRC32
READ_BLOCK = 8 * 1024 * 1024


def known_checksum(algorithm: str) -> str:
    """``algorithm`` when it names a digest parts carry; a clear error otherwise."""
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"unknown checksum {algorithm!r}: use one of {', '.join(ALGORITHMS)}")
    return algorithm


class Digests:
    """Size and the chosen digests of one byte stream, fed block by block."""

    def __init__(self, algorithms: Iterable[str] = ALGORITHMS) -> None:
        wanted = {known_checksum(a) for a in algorithms}
        self._sha = hashlib.sha256() if SHA256 in wanted else None
        self._crc: int | None = 0 if CRC32 in wanted else None
        self.size = 0

    def update(self, data: Any) -> None:
        if self._sha is not None:
            self._sha.update(data)
        if self._crc is not None:
            self._crc = zlib.crc32(data, self._crc)
        self.size += memoryview(data).nbytes

    def hexdigests(self) -> dict[str, str]:
        """``{"sha256": 64 hex digits, "crc32": 8 hex digits}`` for the digests computed."""
        out = {}
        if self._sha is not None:
            out[SHA256] = self._sha.hexdigest()
        if self._crc is not None:
            out[CRC32] = f"{self._crc:08x}"
        return out


def check_algorithm(part: dict[str, Any], wanted: str) -> str:
    """The digest to check ``part`` with: ``wanted`` when the manifest has it, else SHA-256
    (snapshots written before CRC-32 was added list SHA-256 only)."""
    wanted = known_checksum(wanted)
    return wanted if wanted in part else SHA256


def feed_to_end(f: io.RawIOBase, digests: Digests, buf: bytearray) -> int:
    """Feed ``digests`` what is left of ``f``, through ``buf``; returns the bytes read."""
    view = memoryview(buf)
    size = 0
    while got := f.readinto(buf):
        digests.update(view[:got])
        size += got
    return size


def file_digests(path: str, algorithms: Iterable[str] = ALGORITHMS) -> Digests:
    """Digests of a local file, read into one reused buffer.

    Not through a memory map: mapped pages would count in the process's RSS.
    """
    digests = Digests(algorithms)
    with open(path, "rb", buffering=0) as f:
        feed_to_end(f, digests, bytearray(READ_BLOCK))
    return digests


def stored_digests(
    store: SnapshotStore,
    relpath: str,
    algorithms: Iterable[str] = ALGORITHMS,
    copy_to: str | None = None,
) -> Digests:
    """Digests of a stored file, optionally copying it to a local path meanwhile."""
    digests = Digests(algorithms)
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(store.fs.open(store.path(relpath), "rb"))
        dst = stack.enter_context(open(copy_to, "wb")) if copy_to else None
        while block := src.read(READ_BLOCK):
            digests.update(block)
            if dst is not None:
                dst.write(block)
    return digests
