"""Parquet part files: writing rolling parts, reading verified ones."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import SnapshotError
from . import layout
from .storage import SnapshotStore

COMPRESSIONS = ("zstd", "snappy", "lz4", "gzip", "none")
DEFAULT_COMPRESSION = "zstd"
DEFAULT_PART_ROWS = 100_000
DEFAULT_PART_BYTES = 512 * 1024 * 1024  # uncompressed Arrow bytes per part
ROW_GROUP_BYTES = 32 * 1024 * 1024  # uncompressed Arrow bytes per row group
_READ_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class PartInfo:
    path: str
    rows: int
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.rows, "bytes": self.bytes, "sha256": self.sha256}


class PartWriter:
    """Writes one Parquet part; row groups are buffered to about ROW_GROUP_BYTES."""

    def __init__(
        self, store: SnapshotStore, relpath: str, schema: pa.Schema, compression: str
    ) -> None:
        self.relpath = relpath
        self.schema = schema
        self.rows = 0
        self.nbytes = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = 0
        self._cm = store.atomic_writer(relpath)
        self._file = self._cm.__enter__()
        self._writer = pq.ParquetWriter(
            self._file,
            schema,
            compression=None if compression == "none" else compression,
            write_statistics=True,
            use_dictionary=False,
        )

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

    def commit(self) -> PartInfo:
        """Finish the file and make it visible under its final name."""
        self._flush_row_group()
        self._writer.close()
        digest, size = self._file.sha256.hexdigest(), self._file.bytes
        self._cm.__exit__(None, None, None)
        return PartInfo(self.relpath, self.rows, size, digest)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
        with contextlib.suppress(Exception):
            self._cm.__exit__(RuntimeError, RuntimeError("aborted"), None)


def sha256_of(store: SnapshotStore, relpath: str, copy_to: str | None = None) -> tuple[str, int]:
    """SHA-256 and size of a stored file, optionally copying it to a local path meanwhile."""
    h = hashlib.sha256()
    size = 0
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(store.fs.open(store.path(relpath), "rb"))
        dst = stack.enter_context(open(copy_to, "wb")) if copy_to else None
        while block := src.read(_READ_BLOCK):
            h.update(block)
            size += len(block)
            if dst is not None:
                dst.write(block)
    return h.hexdigest(), size


@contextlib.contextmanager
def open_verified(store: SnapshotStore, part: dict[str, Any]) -> Iterator[pq.ParquetFile]:
    """Open a part after checking its size and SHA-256 against the manifest.

    Remote parts are downloaded once to a local temporary file while hashing,
    so the bytes read are exactly the bytes checked.
    """
    relpath = layout.checked_relpath(part["path"])
    if not store.exists(relpath):
        raise SnapshotError(f"part {relpath} is listed in the manifest but missing")
    tmpdir = None
    try:
        if store.local:
            local = store.local_path(relpath)
            digest, size = sha256_of(store, relpath)
        else:
            tmpdir = tempfile.mkdtemp(prefix="vectra-part-")
            local = os.path.join(tmpdir, "part.parquet")
            digest, size = sha256_of(store, relpath, copy_to=local)
        if size != part["bytes"] or digest != part["sha256"]:
            raise SnapshotError(
                f"part {relpath} is corrupt or truncated: {size} bytes with sha256 {digest}, "
                f"manifest says {part['bytes']} bytes with sha256 {part['sha256']}"
            )
        try:
            pf = pq.ParquetFile(local, memory_map=True)
        except (pa.ArrowException, OSError) as exc:
            raise SnapshotError(f"part {relpath} is not a readable Parquet file: {exc}") from exc
        try:
            yield pf
        finally:
            pf.close()
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


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
