"""Snapshots on S3 (moto server on 127.0.0.1): export, import, verify, resume, and no
half-written part is ever taken for a complete one."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

import vectra_io
from vectra_io.providers.base import IndexSpec
from vectra_io.providers.memory import MemoryProvider
from vectra_io.snapshot.storage import SnapshotStore

from .util import assert_same_namespace, make_records, seed


@pytest.fixture
def s3(s3_server, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    bucket = f"snap-{uuid.uuid4().hex[:10]}"
    s3_server.make_bucket(bucket)
    return s3_server, f"s3://{bucket}/archive/2026"


@pytest.fixture
def source() -> MemoryProvider:
    src = MemoryProvider()
    spec = IndexSpec("docs", 12, "cosine", sparse=True)
    src.create_index(spec)
    seed(src, spec, "", make_records(900, 12, sparse=True))
    seed(src, spec, "eu", make_records(400, 12, prefix="eu", sparse=True))
    return src


def test_round_trip_through_s3(s3, source: MemoryProvider) -> None:  # type: ignore[no-untyped-def]
    server, url = s3
    manifest = vectra_io.export_snapshot(source, url, batch_size=100, part_rows=250)
    assert manifest["complete"]
    fs = server.filesystem()
    keys = fs.find(url.removeprefix("s3://"))
    assert any(k.endswith("manifest.json") for k in keys)
    assert not [k for k in keys if "/.tmp-" in k]
    target = MemoryProvider()
    res = vectra_io.import_snapshot(url, target, chunk_size=128, concurrency=4)
    assert res["imported_count"] == 1300 and res["errors"] == []
    for ns in ("", "eu"):
        assert_same_namespace(source, "docs", ns, target, "docs", ns)
    check = vectra_io.verify_snapshot(url, target, source=source, sample=50)
    assert check["match"], check


def test_explicit_storage_options(s3, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server, url = s3
    for key in server.env():
        monkeypatch.delenv(key)
    opts = {
        "key": server.access_key,
        "secret": server.secret_key,
        "endpoint_url": server.endpoint_url,
    }
    vectra_io.export_snapshot(source, url, indexes=["docs"], storage_options=opts)
    target = MemoryProvider()
    vectra_io.import_snapshot(url, target, storage_options=opts)
    assert target.count("docs", "eu") == 400


def test_corrupted_part_on_s3_is_refused(s3, source: MemoryProvider) -> None:  # type: ignore[no-untyped-def]
    server, url = s3
    manifest = vectra_io.export_snapshot(source, url, part_rows=300, batch_size=100)
    part = manifest["indexes"]["docs"]["namespaces"]["eu"]["parts"][0]
    fs = server.filesystem()
    key = f"{url.removeprefix('s3://')}/{part['path']}"
    data = bytearray(fs.cat_file(key))
    data[100] ^= 0x01
    fs.pipe_file(key, bytes(data))
    target = MemoryProvider()
    with pytest.raises(vectra_io.SnapshotError, match=part["path"]):
        vectra_io.import_snapshot(url, target, namespaces=["eu"], state=False)
    assert target.count("docs", "eu") == 0


def test_interrupted_upload_leaves_no_part(s3) -> None:  # type: ignore[no-untyped-def]
    """A part whose writer dies before commit never appears under its final key."""
    _, url = s3
    store = SnapshotStore(url)
    with pytest.raises(RuntimeError), store.atomic_writer("docs/eu/part-00000.parquet") as f:
        f.write(b"PAR1" + b"x" * 10_000)
        raise RuntimeError("killed mid-upload")
    assert not store.exists("docs/eu/part-00000.parquet")


def test_export_to_s3_resumes(s3, source: MemoryProvider) -> None:  # type: ignore[no-untyped-def]
    _, url = s3

    class Crash(MemoryProvider):
        def __init__(self, base: MemoryProvider) -> None:
            self.__dict__.update(base.__dict__)
            self.pages = 0

        def scan(self, index, namespace="", *, batch_size=1000, cursor=None):  # type: ignore[no-untyped-def]
            for page in super().scan(index, namespace, batch_size=batch_size, cursor=cursor):
                self.pages += 1
                if self.pages == 6:
                    raise KeyboardInterrupt
                yield page

    crash = Crash(source)
    with pytest.raises(KeyboardInterrupt):
        vectra_io.export_snapshot(crash, url, batch_size=100, part_rows=200)
    store = SnapshotStore(url)
    partial = json.loads(store.read_bytes("manifest.json"))
    assert partial["complete"] is False
    assert partial["indexes"]["docs"]["namespaces"]["__default__"]["parts"]
    done = vectra_io.export_snapshot(crash, url, batch_size=100, part_rows=200)
    assert done["complete"]
    target = MemoryProvider()
    vectra_io.import_snapshot(url, target)
    for ns in ("", "eu"):
        assert_same_namespace(source, "docs", ns, target, "docs", ns)


def test_local_snapshot_copied_to_s3_keeps_import_state(  # type: ignore[no-untyped-def]
    s3, source: MemoryProvider, tmp_path: Path
) -> None:
    """A snapshot's identity is its content: a copy elsewhere resumes the same import state."""
    server, url = s3
    local = tmp_path / "snap"
    vectra_io.export_snapshot(source, str(local))
    fs = server.filesystem()
    fs.put(str(local) + "/", url.removeprefix("s3://") + "/", recursive=True)
    target = MemoryProvider(f"copy-{uuid.uuid4().hex}")
    first = vectra_io.import_snapshot(str(local), target)
    second = vectra_io.import_snapshot(url, target)
    assert first["imported_count"] == 1300
    assert second["imported_count"] == 0 and second["skipped_count"] == 1300
