"""Bad snapshots: each refused with an error that names the file, part or record; nothing
is written from a part that failed its checks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import vectra_io
from vectra_io.errors import SnapshotError
from vectra_io.providers.base import IndexSpec
from vectra_io.providers.memory import MemoryProvider

from .util import make_records, reseal_part, seed


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    src = MemoryProvider()
    spec = IndexSpec("items", 8, "dot")
    src.create_index(spec)
    seed(src, spec, "", make_records(300, 8))
    path = tmp_path / "snap"
    vectra_io.export_snapshot(src, str(path), part_rows=100, batch_size=50)
    return path


def manifest_of(snap: Path) -> dict[str, Any]:
    return dict(json.loads((snap / "manifest.json").read_text()))


def save_manifest(snap: Path, manifest: dict[str, Any]) -> None:
    (snap / "manifest.json").write_text(json.dumps(manifest))


def parts_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return list(manifest["indexes"]["items"]["namespaces"]["__default__"]["parts"])


def import_into_fresh(snap: Path) -> MemoryProvider:
    target = MemoryProvider()
    vectra_io.import_snapshot(str(snap), target, state=False)
    return target


def test_missing_manifest(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SnapshotError, match=r"no manifest\.json"):
        import_into_fresh(tmp_path / "empty")


def test_manifest_not_json(snap: Path) -> None:
    (snap / "manifest.json").write_text("{not json")
    with pytest.raises(SnapshotError, match=r"manifest\.json is not valid JSON"):
        import_into_fresh(snap)


def test_incomplete_manifest(snap: Path) -> None:
    m = manifest_of(snap)
    m["complete"] = False
    save_manifest(snap, m)
    with pytest.raises(SnapshotError, match="incomplete"):
        import_into_fresh(snap)


def test_unknown_format_version(snap: Path) -> None:
    m = manifest_of(snap)
    m["format_version"] = 2
    save_manifest(snap, m)
    with pytest.raises(SnapshotError, match="format_version 2"):
        import_into_fresh(snap)


def test_not_a_vectra_manifest(snap: Path) -> None:
    save_manifest(snap, {"format": "something-else"})
    with pytest.raises(SnapshotError, match="not a vectra-snapshot manifest"):
        import_into_fresh(snap)


def test_truncated_part_refused_before_any_write(snap: Path) -> None:
    m = manifest_of(snap)
    first = parts_of(m)[0]
    path = snap / first["path"]
    path.write_bytes(path.read_bytes()[:-100])
    target = MemoryProvider()
    with pytest.raises(SnapshotError, match=f"{first['path']} is corrupt or truncated"):
        vectra_io.import_snapshot(str(snap), target, state=False)
    assert target.count("items") == 0


def test_listed_part_missing(snap: Path) -> None:
    m = manifest_of(snap)
    last = parts_of(m)[-1]
    (snap / last["path"]).unlink()
    with pytest.raises(
        SnapshotError, match=f"{last['path']} is listed in the manifest but missing"
    ):
        import_into_fresh(snap)


def rewrite_part(snap: Path, part: dict[str, Any], table: pa.Table) -> None:
    """Replace a part and make the manifest agree on size and hash (a schema lie stays)."""
    path = snap / part["path"]
    pq.write_table(table, path)
    m = manifest_of(snap)
    for p in parts_of(m):
        if p["path"] == part["path"]:
            reseal_part(p, path.read_bytes())
    save_manifest(snap, m)


def test_part_schema_differs_from_manifest(snap: Path) -> None:
    part = parts_of(manifest_of(snap))[1]
    table = pq.read_table(snap / part["path"])
    table = table.set_column(
        1, "values", pa.array([[1.0, 2.0]] * table.num_rows, pa.list_(pa.float32(), 2))
    )
    rewrite_part(snap, part, table)
    with pytest.raises(SnapshotError, match=rf"part {part['path']}: column 'values'"):
        import_into_fresh(snap)


def test_part_with_extra_column(snap: Path) -> None:
    part = parts_of(manifest_of(snap))[0]
    table = pq.read_table(snap / part["path"])
    rewrite_part(snap, part, table.append_column("surprise", pa.array([1] * table.num_rows)))
    with pytest.raises(SnapshotError, match="unexpected columns"):
        import_into_fresh(snap)


def test_nan_inside_a_snapshot_is_rejected_by_id(snap: Path) -> None:
    part = parts_of(manifest_of(snap))[0]
    table = pq.read_table(snap / part["path"])
    values = np.stack(table.column("values").to_numpy(zero_copy_only=False)).astype(np.float32)
    values[3, 2] = np.nan
    vec = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), 8)
    rewrite_part(snap, part, table.set_column(1, table.schema.field(1), vec))
    target = MemoryProvider()
    res = vectra_io.import_snapshot(str(snap), target, state=False)
    bad = table.column("id")[3].as_py()
    assert res["failed_count"] == 1 and res["errors"][0]["ids"] == [bad]
    assert res["errors"][0]["part"] == part["path"]
    assert target.count("items") == 299 and target.fetch("items", [bad]).num_rows == 0


@pytest.mark.parametrize(
    "evil",
    [
        "../outside.parquet",
        "/etc/passwd",
        "items/../../x.parquet",
        "C:\\evil.parquet",
        "s3://other/bucket.parquet",
        "a//b",
    ],
)
def test_manifest_paths_cannot_escape(snap: Path, evil: str) -> None:
    m = manifest_of(snap)
    parts_of(m)[0]["path"] = evil
    save_manifest(snap, m)
    with pytest.raises(SnapshotError, match=r"escapes the snapshot|not a relative"):
        import_into_fresh(snap)


def test_symlinked_part_leading_outside_is_refused(snap: Path, tmp_path: Path) -> None:
    part = parts_of(manifest_of(snap))[0]
    outside = tmp_path / "outside.parquet"
    path = snap / part["path"]
    os.replace(path, outside)
    path.symlink_to(outside)
    with pytest.raises(SnapshotError, match="leads outside the snapshot"):
        import_into_fresh(snap)


def test_bad_metric_and_index_selection_are_config_errors(snap: Path) -> None:
    with pytest.raises(vectra_io.ConfigError, match="unknown metric"):
        vectra_io.import_snapshot(str(snap), MemoryProvider(), metric="hamming", state=False)
    with pytest.raises(vectra_io.ConfigError, match="index 'nope' is not in the snapshot"):
        vectra_io.import_snapshot(str(snap), MemoryProvider(), index_map={"nope": "x"})


def test_unknown_metric_needs_metric_option(tmp_path: Path) -> None:
    src = MemoryProvider()
    src.create_index(IndexSpec("u", 4, "cosine"))
    snap = tmp_path / "s"
    vectra_io.export_snapshot(src, str(snap))
    m = manifest_of(snap)
    m["indexes"]["u"]["metric"] = "unknown"
    save_manifest(snap, m)
    with pytest.raises(vectra_io.ConfigError, match="--metric"):
        vectra_io.import_snapshot(str(snap), MemoryProvider(), state=False)
    target = MemoryProvider()
    vectra_io.import_snapshot(str(snap), target, metric="euclidean", state=False)
    assert target.describe_index("u").metric == "euclidean"
