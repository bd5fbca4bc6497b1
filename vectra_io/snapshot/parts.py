"""Parquet part files: writing rolling parts, reading verified ones."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import SnapshotError
from . import layout
from .checksum import (
    DEFAULT_IMPORT_CHECK,
    READ_BLOCK,
    Digests,
    check_algorithm,
    feed_to_end,
    file_digests,
    stored_digests,
)
from .storage import HashingWriter, SnapshotStore

COMPRESSIONS = ("zstd", "snappy", "lz4", "gzip", "none")
DEFAULT_COMPRESSION = "zstd"
DEFAULT_PART_ROWS = 100_000
DEFAULT_PART_BYTES = 512 * 1024 * 1024  # uncompressed Arrow bytes per part
ROW_GROUP_BYTES = 32 * 1024 * 1024  # uncompressed Arrow bytes per row group


# Min/max statistics for the id column only: they let readers skip row groups by id,
# while those of vectors and metadata JSON are never useful and cost the writer about
# a tenth of its time.
STATISTICS_COLUMNS = ["id"]


def parquet_options(compression: str) -> dict[str, Any]:
    """The ``pyarrow.parquet.ParquetWriter`` options of part files."""
    return {
        "compression": None if compression == "none" else compression,
        "write_statistics": list(STATISTICS_COLUMNS),
        "use_dictionary": False,
    }


@dataclass(frozen=True)
class PartInfo:
    path: str
    rows: int
    bytes: int
    sha256: str
    crc32: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "crc32": self.crc32,
        }

    @classmethod
    def of(cls, path: str, rows: int, digests: Digests) -> PartInfo:
        sums = digests.hexdigests()
        return cls(path, rows, digests.size, sums["sha256"], sums["crc32"])


class PartWriter:
    """Writes one Parquet part; row groups are buffered to about ROW_GROUP_BYTES.

    On local disk the file is written natively by Arrow under a temporary
    name, then fsynced and renamed; its digests (SHA-256 and CRC-32) are computed
    in a background thread that reads each row group back from the page cache
    once it is written, so hashing overlaps with writing. Elsewhere the bytes
    are hashed as they are uploaded.
    """

    def __init__(
        self,
        store: SnapshotStore,
        relpath: str,
        schema: pa.Schema,
        compression: str,
        hasher: Executor | None = None,
    ) -> None:
        self.store = store
        self.relpath = relpath
        self.schema = schema
        self.rows = 0
        self.nbytes = 0
        self._hasher = hasher
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = 0
        options = parquet_options(compression)
        self._tmp: str | None = None
        self._hashing: HashingWriter | None = None
        self._tail: _TailHash | None = None
        if store.local:
            self._tmp = store.temp_path(relpath)
            self._writer = pq.ParquetWriter(self._tmp, schema, **options)
            self._tail = _TailHash(self._tmp)
        else:
            self._cm = store.atomic_writer(relpath)
            self._hashing = self._cm.__enter__()
            self._writer = pq.ParquetWriter(self._hashing, schema, **options)

    def write(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        self.rows += batch.num_rows
        self.nbytes += batch.nbytes
        if self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush_row_group()

    def _flush_row_group(self) -> None:
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._pending, self._pending_bytes = [], 0
        if self._tail is not None and self._hasher is not None:
            self._hasher.submit(self._tail.catch_up)  # hash what is written, in the background

    def commit(self) -> Future[PartInfo]:
        """Finish the file and make it durable under its final name.

        The returned future gives the part's size and digests.
        """
        self._flush_row_group()
        self._writer.close()
        rows = self.rows
        done: Future[PartInfo] = Future()
        if self._hashing is not None:
            self._cm.__exit__(None, None, None)
            done.set_result(PartInfo.of(self.relpath, rows, self._hashing.digests))
            return done
        assert self._tmp is not None and self._tail is not None
        self.store.commit_temp(self._tmp, self.relpath)
        tail = self._tail

        def digest_part() -> PartInfo:
            return PartInfo.of(self.relpath, rows, tail.finish())

        if self._hasher is None:
            done.set_result(digest_part())
            return done
        return self._hasher.submit(digest_part)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
        if self._tail is not None:
            self._tail.close()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(self._tmp)
        else:
            with contextlib.suppress(Exception):
                self._cm.__exit__(RuntimeError, RuntimeError("aborted"), None)


class _TailHash:
    """Digests of a file that is still growing, read through a descriptor opened at start.

    The descriptor stays valid across the rename that commits the file, so the
    bytes hashed are exactly the bytes that end up under the final name.
    """

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by finish()/close()
        self._digests = Digests()
        self._buf = bytearray(READ_BLOCK)

    def catch_up(self) -> None:
        grew = feed_to_end(self._file, self._digests, self._buf)
        if grew:
            # flush what is written so far from this background thread, so the fsync
            # that commits the part has only the tail left to write
            with contextlib.suppress(OSError):
                os.fdatasync(self._file.fileno())

    def finish(self) -> Digests:
        try:
            self.catch_up()
            return self._digests
        finally:
            self.close()

    def close(self) -> None:
        self._file.close()


class VerifiedPart:
    """A part whose bytes matched the manifest, readable from a local file."""

    def __init__(self, relpath: str, local: str, tmpdir: str | None) -> None:
        self.relpath = relpath
        self.local = local
        self._tmpdir = tmpdir

    def open(self) -> pq.ParquetFile:
        return open_part_file(self.local, self.relpath)

    def release(self) -> None:
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


def open_part_file(local: str, relpath: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(local, memory_map=True)
    except (pa.ArrowException, OSError) as exc:
        raise SnapshotError(f"part {relpath} is not a readable Parquet file: {exc}") from exc


class PendingPart:
    """A part whose verification runs in the background.

    A part on local disk can be opened and decoded while it is being checked;
    nothing read from it may be written before :meth:`verified` returns.
    """

    def __init__(self, check: Future[VerifiedPart], relpath: str, local: str | None) -> None:
        self.check = check
        self.relpath = relpath
        self.local = local

    def verified(self) -> VerifiedPart:
        """Wait for the check; raises :class:`SnapshotError` when the part is bad."""
        return self.check.result()

    def open(self) -> pq.ParquetFile:
        return open_part_file(self.local or self.verified().local, self.relpath)

    def release(self) -> None:
        """Drop the part (after its check, which may still be writing a local copy)."""
        if not self.check.cancel():
            with contextlib.suppress(BaseException):
                self.check.result().release()


def verify_part(
    store: SnapshotStore, part: dict[str, Any], checksum: str = DEFAULT_IMPORT_CHECK
) -> VerifiedPart:
    """Check a part's size and digest against the manifest.

    ``checksum`` names the digest to check (``crc32`` or ``sha256``); a manifest
    that lists no CRC-32 is checked by SHA-256. Remote parts are downloaded once
    to a local temporary file while hashing, so the bytes read later are exactly
    the bytes checked.
    """
    relpath = layout.checked_relpath(part["path"])
    algorithm = check_algorithm(part, checksum)
    if not store.exists(relpath):
        raise SnapshotError(f"part {relpath} is listed in the manifest but missing")
    tmpdir = None
    try:
        if store.local:
            local = store.local_path(relpath)
            digests = file_digests(local, [algorithm])
        else:
            tmpdir = tempfile.mkdtemp(prefix="vectra-part-")
            local = os.path.join(tmpdir, "part.parquet")
            digests = stored_digests(store, relpath, [algorithm], copy_to=local)
        digest, size = digests.hexdigests()[algorithm], digests.size
        if size != part["bytes"] or digest != part[algorithm]:
            raise SnapshotError(
                f"part {relpath} is corrupt or truncated: {size} bytes with {algorithm} "
                f"{digest}, manifest says {part['bytes']} bytes with {algorithm} "
                f"{part[algorithm]}; run `vectra validate` on the snapshot"
            )
    except BaseException:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return VerifiedPart(relpath, local, tmpdir)


@contextlib.contextmanager
def open_verified(
    store: SnapshotStore, part: dict[str, Any], checksum: str = DEFAULT_IMPORT_CHECK
) -> Iterator[pq.ParquetFile]:
    """Verify a part (see :func:`verify_part`) and open it."""
    verified = verify_part(store, part, checksum)
    try:
        pf = verified.open()
        try:
            yield pf
        finally:
            pf.close()
    finally:
        verified.release()


def check_part_schema(pf: pq.ParquetFile, expected: pa.Schema, relpath: str) -> None:
    actual = pf.schema_arrow
    for f in expected:
        idx = actual.get_field_index(f.name)
        if idx < 0:
            if f.nullable:
                continue
            raise SnapshotError(f"part {relpath}: column {f.name!r} is missing")
        if not actual.field(idx).type.equals(f.type):
            raise SnapshotError(
                f"part {relpath}: column {f.name!r} has type {actual.field(idx).type}, "
                f"manifest says {f.type}"
            )
    extra = set(actual.names) - set(expected.names)
    if extra:
        raise SnapshotError(f"part {relpath}: unexpected columns {sorted(extra)}")
