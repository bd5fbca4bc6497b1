"""Checksums of part files: SHA-256 and CRC-32, computed in one pass.

Every part carries both in the manifest (docs/FORMAT.md). SHA-256 is the
archival digest that ``vectra validate`` checks; CRC-32 (zlib's, IEEE 802.3)
is what import checks by default, because it costs about half the CPU and
catches the same accidental damage (truncation, flipped bits, a bad copy).
The manifest is not signed, so neither digest protects against someone who
can rewrite it too.

With the ``fast`` extra installed (``zlib-ng``), the CRC-32 is zlib-ng's: the
same function, about five times faster (11 vs 2 GB/s measured) where the CPU
has carry-less multiplication. Without it, Python's zlib computes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from .storage import SnapshotStore

try:
    from zlib_ng.zlib_ng import crc32

    CRC32_BACKEND = "zlib-ng"
except ImportError:  # the fast extra is not installed
    from zlib import crc32

    CRC32_BACKEND = "zlib"

CRC32 = "crc32"
SHA256 = "sha256"
ALGORITHMS = (CRC32, SHA256)
DEFAULT_IMPORT_CHECK = CRC32
READ_BLOCK = 8 * 1024 * 1024
#: Local files at least this large are hashed by several threads (see file_digests)
PARALLEL_MIN_BYTES = 64 * 1024 * 1024
MAX_HASH_THREADS = 4
_CRC32_POLY = 0xEDB88320  # the IEEE 802.3 polynomial, bit-reflected as zlib computes it


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

    @classmethod
    def of_segments(cls, segments: list[Digests], whole: Digests | None = None) -> Digests:
        """Digests of a stream from the CRC-32s of its consecutive ``segments`` (combined)
        and, when given, the SHA-256 of the ``whole`` stream."""
        out = cls([CRC32])
        crc = 0
        for seg in segments:
            assert seg._crc is not None, "segments carry a CRC-32"
            crc = crc32_combine(crc, seg._crc, seg.size)
            out.size += seg.size
        out._crc = crc
        if whole is not None:
            # a file that changed meanwhile gives a size or digests the manifest does not match
            out._sha, out.size = whole._sha, max(out.size, whole.size)
        return out

    def update(self, data: Any) -> None:
        if self._sha is not None:
            self._sha.update(data)
        if self._crc is not None:
            self._crc = crc32(data, self._crc)
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
    """Digests of a local file.

    A large file is read by several threads at once: its CRC-32 in contiguous
    segments, combined afterwards, and its SHA-256 (inherently sequential) beside
    them. zlib, zlib-ng and hashlib release the GIL, so this divides the time an import
    waits for its first part's check by the number of cores (up to four).
    Read through reused buffers, not a memory map: mapped pages would count in
    the process's RSS.
    """
    wanted = {known_checksum(a) for a in algorithms}
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        threads = min(MAX_HASH_THREADS, _usable_cores())
        parallel = threads >= 2 and hasattr(os, "preadv")  # no os.preadv on Windows
        if CRC32 not in wanted or size < PARALLEL_MIN_BYTES or not parallel:
            digests = Digests(wanted)
            feed_to_end(f, digests, bytearray(READ_BLOCK))
            return digests
        return _parallel_digests(f.fileno(), size, wanted, threads)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _parallel_digests(fd: int, size: int, wanted: set[str], threads: int) -> Digests:
    crc_threads = threads - 1 if SHA256 in wanted else threads
    bounds = [size * k // crc_threads for k in range(crc_threads + 1)]
    with ThreadPoolExecutor(threads, thread_name_prefix="vectra-hash") as pool:
        whole = pool.submit(_read_range, fd, 0, None, [SHA256]) if SHA256 in wanted else None
        # the last segment reads to the end of the file, so bytes appended meanwhile count
        segments = [
            pool.submit(_read_range, fd, bounds[k], bounds[k + 1] if k < crc_threads - 1 else None)
            for k in range(crc_threads)
        ]
        return Digests.of_segments(
            [seg.result() for seg in segments], whole.result() if whole is not None else None
        )


def _read_range(
    fd: int, start: int, end: int | None, algorithms: Iterable[str] = (CRC32,)
) -> Digests:
    """Digests of bytes ``start:end`` of ``fd`` (to its end when ``end`` is None)."""
    digests = Digests(algorithms)
    view = memoryview(bytearray(READ_BLOCK))
    pos = start
    while end is None or pos < end:
        want = READ_BLOCK if end is None else min(READ_BLOCK, end - pos)
        got = os.preadv(fd, [view[:want]], pos)
        if got <= 0:
            break
        digests.update(view[:got])
        pos += got
    return digests


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of ``A + B`` from ``crc1`` of ``A``, ``crc2`` of ``B`` and ``len(B)``.

    The CRC of ``A`` is carried past ``len2`` zero bytes by multiplying it by
    x^(8 * len2) modulo the polynomial (in zlib's bit-reflected form, where bit 31
    is x^0); the CRC's initial and final inversions cancel out in the sum.
    """
    return _mul_mod_poly(_x_pow_8n(len2), crc1) ^ crc2


def _mul_mod_poly(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial, both bit-reflected."""
    product = 0
    for bit in range(31, -1, -1):
        if a & (1 << bit):
            product ^= b
        b = (b >> 1) ^ _CRC32_POLY if b & 1 else b >> 1
    return product


def _x_pow_8n(n: int) -> int:
    """x^(8 * n) modulo the polynomial, by squaring: x^8, x^16, x^32, ..."""
    result, square = 1 << 31, 1 << 23  # x^0 and x^8, bit-reflected
    while n:
        if n & 1:
            result = _mul_mod_poly(square, result)
        square = _mul_mod_poly(square, square)
        n >>= 1
    return result


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
