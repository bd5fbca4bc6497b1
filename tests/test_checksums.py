"""Part digests: both written at export, the chosen one checked at import, both at validate."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

import vectra_io
from vectra_io.errors import ConfigError, SnapshotError
from vectra_io.inspect import validate_snapshot
from vectra_io.providers.base import IndexSpec
from vectra_io.providers.memory import MemoryProvider
from vectra_io.snapshot import checksum as checksum_mod
from vectra_io.snapshot import parts as parts_mod
from vectra_io.snapshot.checksum import Digests, check_algorithm, crc32_combine, file_digests
from vectra_io.snapshot.storage import SnapshotStore

from .util import make_records, seed


@pytest.fixture
def snap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(parts_mod, "ROW_GROUP_BYTES", 4_000)  # digests fed row group by row group
    source = MemoryProvider()
    spec = IndexSpec("docs", 8, "cosine")
    source.create_index(spec)
    seed(source, spec, "", make_records(900, 8, seed=3))
    path = tmp_path / "snap"
    vectra_io.export_snapshot(source, str(path), part_rows=400, batch_size=100)
    return path


def _manifest(snap: Path) -> dict[str, Any]:
    return json.loads((snap / "manifest.json").read_text())


def _parts(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return manifest["indexes"]["docs"]["namespaces"]["__default__"]["parts"]


def _lie(snap: Path, field: str) -> dict[str, Any]:
    """Make the manifest's ``field`` digest of the first part wrong; returns that part."""
    manifest = _manifest(snap)
    part = _parts(manifest)[0]
    part[field] = "0" * len(part[field])
    (snap / "manifest.json").write_text(json.dumps(manifest))
    return part


def test_export_records_both_digests_of_every_part(snap: Path) -> None:
    parts = _parts(_manifest(snap))
    assert len(parts) >= 3
    for part in parts:
        data = (snap / part["path"]).read_bytes()
        assert part["bytes"] == len(data)
        assert part["sha256"] == hashlib.sha256(data).hexdigest()
        assert part["crc32"] == f"{zlib.crc32(data):08x}"


def test_digests_fed_in_blocks_equal_one_pass() -> None:
    data = bytes(range(256)) * 4099
    digests = Digests()
    for i in range(0, len(data), 1000):
        digests.update(memoryview(data)[i : i + 1000])
    assert digests.size == len(data)
    assert digests.hexdigests() == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "crc32": f"{zlib.crc32(data):08x}",
    }
    assert Digests(["crc32"]).hexdigests() == {"crc32": "00000000"}


def test_crc32_combine_equals_crc32_of_the_concatenation() -> None:
    rng = random.Random(5)
    lengths = [0, 1, 2, 7, 255, 4096, 65_537]
    for la in lengths:
        for lb in lengths:
            a, b = rng.randbytes(la), rng.randbytes(lb)
            assert crc32_combine(zlib.crc32(a), zlib.crc32(b), lb) == zlib.crc32(a + b)
    # lengths beyond 32 bits, where hashing real data would be slow: combining A, B and C
    # must not depend on the grouping (it would if a length were cut to 32 bits)
    a, b, c = 0x1234ABCD, 0x0BADF00D, 0x600DCAFE
    lb, lc = (1 << 32) + 3, (1 << 33) + 1
    left = crc32_combine(crc32_combine(a, b, lb), c, lc)
    assert left == crc32_combine(a, crc32_combine(b, c, lc), lb + lc)
    assert left != crc32_combine(a, crc32_combine(b, c, lc), (lb + lc) % (1 << 32))


@pytest.mark.parametrize("cores", [2, 3, 4])
@pytest.mark.parametrize("size", [0, 1, 999, 10_007, 65_536])
def test_parallel_file_digests_equal_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int, size: int
) -> None:
    # every file takes the threaded path, in blocks small enough to need several reads
    monkeypatch.setattr(checksum_mod, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(checksum_mod, "READ_BLOCK", 1000)
    monkeypatch.setattr(checksum_mod, "_usable_cores", lambda: cores)
    data = os.urandom(size)
    path = tmp_path / "part.parquet"
    path.write_bytes(data)
    expected = {"sha256": hashlib.sha256(data).hexdigest(), "crc32": f"{zlib.crc32(data):08x}"}
    for wanted in (["crc32"], ["sha256"], ["crc32", "sha256"]):
        digests = file_digests(str(path), wanted)
        assert digests.size == size
        assert digests.hexdigests() == {k: expected[k] for k in wanted}


def test_import_checks_crc32_by_default(snap: Path) -> None:
    part = _lie(snap, "crc32")
    with pytest.raises(SnapshotError, match=f"{part['path']} is corrupt.*crc32 00000000"):
        vectra_io.import_snapshot(str(snap), MemoryProvider(), state=False)
    target = MemoryProvider()  # the SHA-256 is right, and checked when asked for
    res = vectra_io.import_snapshot(str(snap), target, state=False, checksum="sha256")
    assert res["imported_count"] == 900 and target.count("docs", "") == 900


def test_import_checks_sha256_when_asked(snap: Path) -> None:
    part = _lie(snap, "sha256")
    with pytest.raises(SnapshotError, match=f"{part['path']} is corrupt.*sha256 0{{64}}"):
        vectra_io.import_snapshot(str(snap), MemoryProvider(), state=False, checksum="sha256")
    target = MemoryProvider()
    res = vectra_io.import_snapshot(str(snap), target, state=False)
    assert res["imported_count"] == 900


def test_snapshot_without_crc32_is_checked_by_sha256(snap: Path) -> None:
    """Snapshots written before CRC-32 was added list SHA-256 only."""
    manifest = _manifest(snap)
    for part in _parts(manifest):
        del part["crc32"]
    _parts(manifest)[1]["sha256"] = "f" * 64
    (snap / "manifest.json").write_text(json.dumps(manifest))
    assert check_algorithm(_parts(manifest)[0], "crc32") == "sha256"
    target = MemoryProvider()
    with pytest.raises(SnapshotError, match=r"sha256 f{64}"):
        vectra_io.import_snapshot(str(snap), target, state=False)
    assert target.count("docs", "") == 400  # the first part only: its SHA-256 holds
    assert validate_snapshot(str(snap))["problems"][0]["kind"] == "checksum"


@pytest.mark.parametrize("field", ["crc32", "sha256"])
def test_validate_checks_both_digests(snap: Path, field: str) -> None:
    part = _lie(snap, field)
    result = validate_snapshot(str(snap))
    assert result["valid"] is False
    [problem] = result["problems"]
    assert problem["path"] == part["path"] and problem["kind"] == "checksum"
    assert field in problem["message"]


def test_unknown_checksum_is_refused(snap: Path) -> None:
    with pytest.raises(ConfigError, match="unknown checksum 'md5'"):
        vectra_io.import_snapshot(str(snap), MemoryProvider(), checksum="md5")


def test_uploaded_parts_carry_both_digests(tmp_path: Path) -> None:
    """Where parts are uploaded (no local file), the digests are computed as bytes go out."""
    source = MemoryProvider()
    spec = IndexSpec("docs", 8, "cosine")
    source.create_index(spec)
    seed(source, spec, "", make_records(500, 8, seed=4))
    url = f"memory://{tmp_path.name}/snap"
    vectra_io.export_snapshot(source, url, part_rows=200, batch_size=100)
    store = SnapshotStore(url)
    manifest = json.loads(store.read_bytes("manifest.json"))
    for part in _parts(manifest):
        data = store.read_bytes(part["path"])
        assert part["sha256"] == hashlib.sha256(data).hexdigest()
        assert part["crc32"] == f"{zlib.crc32(data):08x}"


def test_crc32_backend_equals_zlib_in_pieces() -> None:
    """Whichever CRC-32 the checksums use (zlib-ng with the fast extra), it is zlib's:
    fed in pieces of every alignment, it gives the CRC of the whole."""
    data = os.urandom(70_001)
    for cut in (0, 1, 7, 64, 4096, 65_537, 70_001):
        digests = Digests(["crc32"])
        digests.update(data[:cut])
        digests.update(memoryview(data)[cut:])
        assert digests.hexdigests() == {"crc32": f"{zlib.crc32(data):08x}"}


def test_fast_extra_provides_the_crc32() -> None:
    pytest.importorskip("zlib_ng")  # installed by the test command (".[all]" holds "fast")
    assert checksum_mod.CRC32_BACKEND == "zlib-ng"


def test_checksums_fall_back_to_zlib_without_the_fast_extra(tmp_path: Path) -> None:
    code = (
        "import sys, zlib; sys.modules['zlib_ng'] = None\n"  # as if not installed
        "from vectra_io.snapshot import checksum as c\n"
        "d = c.Digests(); d.update(b'vectra' * 1000)\n"
        "print(c.CRC32_BACKEND, d.hexdigests()['crc32'], f\"{zlib.crc32(b'vectra' * 1000):08x}\")"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "zlib" and out[1] == out[2]
