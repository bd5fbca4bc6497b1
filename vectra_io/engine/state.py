"""Import state: what a target already holds of a snapshot, kept outside the snapshot.

The snapshot may be read-only (an archive bucket), so state lives in a file of
its own, by default under ``$VECTRA_STATE_DIR``, else ``$XDG_STATE_HOME/vectra-io``,
else ``~/.local/state/vectra-io``, named by a key derived from the snapshot's
identity (its content, not its location), the target endpoint and the
index/namespace mapping. Importing the same snapshot into another target, or
with another mapping, therefore starts a state of its own.

Progress is recorded per chunk only after the target acknowledged it (or the
chunk's records were written to the failed-records files), so a crash can
repeat a chunk (upserts are idempotent) but never skip one.

Failed records are kept beside the state file, in ``<key>.failed/``, as
Parquet files with the records' own columns plus ``error``; ``retry_failed``
replays them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.parquet as pq

from ..snapshot.layout import encode_segment, namespace_key

log = logging.getLogger("vectra_io.state")
STATE_VERSION = 1
SAVE_INTERVAL = 1.0  # seconds between state writes while chunks complete
TARGET_INDEX_KEY = b"vectra.target_index"
TARGET_NAMESPACE_KEY = b"vectra.target_namespace"


def default_state_dir() -> Path:
    if os.environ.get("VECTRA_STATE_DIR"):
        return Path(os.environ["VECTRA_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "vectra-io"


def snapshot_identity(manifest: Mapping[str, Any]) -> str:
    """Identity of a snapshot's content: the same after a copy to another place."""
    parts = sorted(
        p["sha256"]
        for entry in manifest["indexes"].values()
        for ns in entry.get("namespaces", {}).values()
        for p in ns.get("parts", [])
    )
    ident = {
        "created_at": manifest.get("created_at"),
        "source": manifest.get("source", {}).get("endpoint"),
        "indexes": sorted(manifest["indexes"]),
        "parts": parts,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def scrub_url(url: str) -> str:
    """A URL without user info (credentials never reach state files)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ImportState:
    """Progress of one snapshot into one target with one mapping."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self._dirty = False
        self._saved_at = 0.0

    @classmethod
    def open(
        cls,
        location: str | os.PathLike[str] | None,
        *,
        manifest: Mapping[str, Any],
        snapshot_url: str,
        target_endpoint: str,
        mapping: Mapping[str, Any],
        restart: bool = False,
    ) -> ImportState:
        ident = snapshot_identity(manifest)
        key_src = json.dumps([ident, target_endpoint, mapping], sort_keys=True)
        key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
        if location is None:
            path = default_state_dir() / f"import-{key}.json"
        else:
            path = Path(location)
            if path.is_dir() or str(location).endswith(os.sep):
                path = path / f"import-{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = {
            "version": STATE_VERSION,
            "snapshot_id": ident,
            "snapshot": scrub_url(snapshot_url),
            "target": target_endpoint,
            "mapping": mapping,
            "parts": {},
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        data = fresh
        if path.exists() and not restart:
            data = json.loads(path.read_text())
            if data.get("snapshot_id") != ident or data.get("target") != target_endpoint:
                raise ValueError(
                    f"state file {path} belongs to another snapshot or target; "
                    "give another --state location or --restart"
                )
        state = cls(path, data)
        if restart:
            state.clear_failed()
        state.save(force=True)
        return state

    # -- parts and chunks ----------------------------------------------------
    def _part(self, relpath: str, chunk_size: int) -> dict[str, Any]:
        part: dict[str, Any] = self.data["parts"].setdefault(
            relpath, {"chunk_size": chunk_size, "done": [], "complete": False}
        )
        if part["chunk_size"] != chunk_size and not part["complete"]:
            # chunks are numbered by size: with another size, the part starts over
            part.update(chunk_size=chunk_size, done=[])
        return part

    def part_complete(self, relpath: str) -> bool:
        part = self.data["parts"].get(relpath)
        return bool(part and part["complete"])

    def chunks_done(self, relpath: str, chunk_size: int) -> set[int]:
        return set(self._part(relpath, chunk_size)["done"])

    def mark_chunk(self, relpath: str, chunk_size: int, number: int) -> None:
        self._part(relpath, chunk_size)["done"].append(number)
        self._dirty = True
        self.save()

    def mark_part(self, relpath: str, chunk_size: int) -> None:
        part = self._part(relpath, chunk_size)
        part.update(complete=True, done=[])
        self._dirty = True
        self.save(force=True)

    def save(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (not self._dirty or now - self._saved_at < SAVE_INTERVAL):
            return
        self.data["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        _atomic_write(self.path, json.dumps(self.data, indent=1).encode())
        self._dirty, self._saved_at = False, now

    # -- failed records ------------------------------------------------------
    @property
    def failed_dir(self) -> Path:
        return self.path.with_suffix(".failed")

    def write_failed(
        self, index: str, namespace: str, batch: pa.RecordBatch, reasons: list[str]
    ) -> Path:
        """Keep records that failed for good, with their errors (durably, before settling)."""
        folder = self.failed_dir / encode_segment(index) / encode_segment(namespace_key(namespace))
        folder.mkdir(parents=True, exist_ok=True)
        meta = {TARGET_INDEX_KEY: index.encode(), TARGET_NAMESPACE_KEY: namespace.encode()}
        table = pa.Table.from_batches([batch]).append_column(
            "error", pa.array(reasons, pa.string())
        )
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
        path = folder / f"failed-{uuid.uuid4().hex}.parquet"
        tmp = folder / f".tmp-{uuid.uuid4().hex}"
        pq.write_table(table, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def failed_files(self) -> list[Path]:
        if not self.failed_dir.exists():
            return []
        return sorted(
            p for p in self.failed_dir.rglob("*.parquet*") if not p.name.startswith(".tmp-")
        )

    def failed_count(self) -> int:
        return sum(pq.ParquetFile(p).metadata.num_rows for p in self.failed_files())

    def clear_failed(self) -> None:
        for p in self.failed_files():
            p.unlink()


def read_failed(path: Path) -> tuple[str, str, pa.Table]:
    """A failed-records file: (target index, target namespace, records without ``error``)."""
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    index = meta[TARGET_INDEX_KEY].decode()
    namespace = meta[TARGET_NAMESPACE_KEY].decode()
    return index, namespace, table.drop_columns(["error"]).replace_schema_metadata(None)


@contextlib.contextmanager
def claimed(paths: list[Path]) -> Iterator[list[Path]]:
    """Rename failed files aside while they are retried; remove them once settled.

    A crash leaves them renamed (``.retrying``), and the next retry picks them up.
    """
    taken = []
    for p in paths:
        if p.suffix == ".retrying":
            taken.append(p)
            continue
        q = p.with_name(p.name + ".retrying")
        os.replace(p, q)
        taken.append(q)
    yield taken
    for q in taken:
        with contextlib.suppress(FileNotFoundError):
            q.unlink()
