"""The filesystem under a snapshot: any fsspec URL or a plain path.

Files are committed atomically: written under a temporary name and renamed
where the filesystem can rename (local disk, memory), written once to the final
key where it cannot (object stores make an object visible only when its upload
completes, so a killed upload leaves nothing behind).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..errors import ConfigError, SnapshotError
from . import layout
from .checksum import Digests


class HashingWriter:
    """A write-only file wrapper that counts bytes and computes the part digests as it goes."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digests = Digests()
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digests.update(view)
        self.raw.write(view)
        return len(view)

    def tell(self) -> int:
        return self.digests.size

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        self.closed = True  # the owner closes ``raw`` after committing

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False


class SnapshotStore:
    """A snapshot directory on some filesystem."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        try:
            self.fs, self.root = fsspec.core.url_to_fs(str(url), **storage_options)
        except ImportError as exc:
            raise ConfigError(
                f"cannot open {url!r}: {exc}. For s3:// install the extra: "
                'pip install "vectra-io[s3]"'
            ) from exc
        self.url = str(url)
        self.root = self.root.rstrip("/") or "/"
        self.local = isinstance(self.fs, LocalFileSystem)
        self.can_rename = (
            self.local
            or self.fs.protocol in ("memory",)
            or (isinstance(self.fs.protocol, tuple) and "memory" in self.fs.protocol)
        )

    def path(self, relpath: str) -> str:
        return layout.join(self.root, relpath)

    def exists(self, relpath: str) -> bool:
        return bool(self.fs.exists(self.path(relpath)))

    def size(self, relpath: str) -> int:
        return int(self.fs.size(self.path(relpath)))

    def read_bytes(self, relpath: str) -> bytes:
        data: bytes = self.fs.cat_file(self.path(relpath))
        return data

    @contextlib.contextmanager
    def atomic_writer(self, relpath: str) -> Iterator[HashingWriter]:
        """Open ``relpath`` for writing; it appears complete, or not at all."""
        final = self.path(relpath)
        parent = final.rsplit("/", 1)[0]
        if self.local:
            os.makedirs(parent, exist_ok=True)
        target = f"{parent}/.tmp-{uuid.uuid4().hex}" if self.can_rename else final
        raw = self.fs.open(target, "wb")
        writer = HashingWriter(raw)
        try:
            yield writer
            raw.flush()
            if self.local:
                os.fsync(raw.fileno())
            raw.close()
        except BaseException:
            _discard(raw)
            if target != final:
                with contextlib.suppress(Exception):
                    self.fs.rm(target)
            raise
        if target != final:
            self.fs.mv(target, final)
            if self.local:
                _fsync_dir(parent)

    def temp_path(self, relpath: str) -> str:
        """Local disk: a temporary file name beside ``relpath`` (see :meth:`commit_temp`)."""
        final = self.path(relpath)
        parent = final.rsplit("/", 1)[0]
        os.makedirs(parent, exist_ok=True)
        return f"{parent}/.tmp-{uuid.uuid4().hex}"

    def commit_temp(self, tmp: str, relpath: str) -> None:
        """Local disk: make a finished temporary file durable under its final name."""
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        final = self.path(relpath)
        os.replace(tmp, final)
        _fsync_dir(final.rsplit("/", 1)[0])

    def write_bytes(self, relpath: str, data: bytes) -> None:
        with self.atomic_writer(relpath) as f:
            f.write(data)

    def remove_tree(self, relpath: str) -> None:
        path = self.path(relpath)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def local_path(self, relpath: str) -> str:
        """For local snapshots: the real path, refused if a symlink leads outside the root."""
        path = self.path(relpath)
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        if os.path.commonpath([real_root, real]) != real_root:
            raise SnapshotError(f"part {relpath!r} is a link that leads outside the snapshot")
        return real


def _discard(raw: IO[bytes]) -> None:
    """Abandon a write: on object stores, closing would publish the object, so abort it."""
    discard = getattr(raw, "discard", None)
    with contextlib.suppress(Exception):
        if discard is not None:
            discard()  # fsspec buffered files: drop buffers, abort any multipart upload
            raw.closed = True  # type: ignore[misc]
        else:
            raw.close()


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
