"""``vectra inspect`` and ``vectra validate`` on snapshot files (no provider needed).

The snapshot is written in this process from the memory provider; the commands run in
a subprocess and read only files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.cli.helpers import expect, run_vectra
from tests.util import reseal_part
from vectra_io import Client, export_snapshot


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete snapshot: index ``docs`` (dim 16) with 3 namespaces and several parts."""
    path = tmp_path_factory.mktemp("snapshots") / "snap"
    rng = np.random.default_rng(7)
    with Client(url="memory://cli-files") as client:
        client.create_index("docs", 16, "dot")
        for ns, n in ((None, 120), ("eu", 80), ("us", 50)):
            records = [
                {
                    "id": f"{ns}-{i}",
                    "values": rng.standard_normal(16).astype(np.float32),
                    "metadata": {"i": i, "tags": ["x", "y"], "nested": {"ok": i % 2 == 0}}
                    if i % 5
                    else None,
                }
                for i in range(n)
            ]
            client.upsert("docs", records, namespace=ns)
        export_snapshot(client, str(path), part_rows=40, batch_size=40)
    return path


@pytest.fixture
def copy(snapshot: Path, tmp_path: Path) -> Path:
    target = tmp_path / "snap"
    shutil.copytree(snapshot, target)
    return target


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def _parts(path: Path) -> list[str]:
    m = _manifest(path)
    return [
        p["path"]
        for e in m["indexes"].values()
        for ns in e["namespaces"].values()
        for p in ns["parts"]
    ]


def test_inspect_json(snapshot: Path) -> None:
    result = expect(run_vectra("inspect", snapshot, "--json"), 0)
    info = result.json
    assert info["complete"] is True
    assert info["rows"] == 250
    assert info["created_at"] and info["completed_at"]
    [index] = info["indexes"]
    assert (index["index"], index["dimension"], index["metric"], index["id_type"]) == (
        "docs",
        16,
        "dot",
        "string",
    )
    namespaces = {ns["namespace"]: ns for ns in index["namespaces"]}
    assert set(namespaces) == {"__default__", "eu", "us"}
    assert namespaces["__default__"]["rows"] == 120
    assert namespaces["__default__"]["parts"] == 3
    assert index["parts"] == len(_parts(snapshot))
    assert index["bytes"] == sum((snapshot / p).stat().st_size for p in _parts(snapshot))


def test_inspect_human(snapshot: Path) -> None:
    out = expect(run_vectra("inspect", snapshot), 0).stdout
    assert "complete" in out
    assert "__default__" in out and "eu" in out
    assert "250 records" in out


def test_validate_ok(snapshot: Path) -> None:
    result = expect(run_vectra("validate", snapshot, "--json"), 0)
    doc = result.json
    assert doc["valid"] is True
    assert doc["parts_checked"] == len(_parts(snapshot))
    assert doc["rows_checked"] == 250
    assert doc["problems"] == []


def test_validate_names_corrupt_and_missing_parts(copy: Path) -> None:
    corrupt, missing, *_ = _parts(copy)
    data = bytearray((copy / corrupt).read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip a byte: same size, other hash
    (copy / corrupt).write_bytes(bytes(data))
    (copy / missing).unlink()

    result = expect(run_vectra("validate", copy, "--json"), 1)
    problems = {p["path"]: p for p in result.json["problems"]}
    assert set(problems) == {corrupt, missing}
    assert problems[corrupt]["kind"] == "checksum"
    assert problems[missing]["kind"] == "missing"
    assert result.json["valid"] is False

    human = expect(run_vectra("validate", copy), 1)
    assert corrupt in human.stdout and missing in human.stdout
    assert "NOT valid" in human.stdout


def test_validate_truncated_part_and_unsafe_path(copy: Path) -> None:
    parts = _parts(copy)
    (copy / parts[0]).write_bytes((copy / parts[0]).read_bytes()[:100])
    manifest = _manifest(copy)
    ns = manifest["indexes"]["docs"]["namespaces"]["eu"]
    ns["parts"][0]["path"] = "../../etc/passwd"
    (copy / "manifest.json").write_text(json.dumps(manifest))

    result = expect(run_vectra("validate", copy, "--json"), 1)
    kinds = {p["path"]: p["kind"] for p in result.json["problems"]}
    assert kinds[parts[0]] == "size"
    assert kinds["../../etc/passwd"] == "unsafe"
    # the part no longer listed is reported as a leftover, not a failure
    assert any("not listed" in w for w in result.json["warnings"])


def test_validate_schema_and_rows(copy: Path, snapshot: Path) -> None:
    """A part replaced by another (valid Parquet, other rows) with a manifest that matches its
    bytes: the row count and hash checks pass only if the manifest is updated too."""

    parts = _parts(copy)
    manifest = _manifest(copy)
    ns = manifest["indexes"]["docs"]["namespaces"]["__default__"]
    # swap part 0 for the 'us' namespace's last part (fewer rows) and fix size+sha only
    other = manifest["indexes"]["docs"]["namespaces"]["us"]["parts"][-1]
    data = (copy / other["path"]).read_bytes()
    (copy / parts[0]).write_bytes(data)
    reseal_part(ns["parts"][0], data)
    (copy / "manifest.json").write_text(json.dumps(manifest))

    result = expect(run_vectra("validate", copy, "--json"), 1)
    [problem] = result.json["problems"]
    assert problem["path"] == parts[0]
    assert problem["kind"] == "rows"


def test_validate_incomplete(copy: Path) -> None:
    manifest = _manifest(copy)
    manifest["complete"] = False
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = expect(run_vectra("validate", copy, "--json"), 1)
    assert [p["kind"] for p in result.json["problems"]] == ["incomplete"]
    info = expect(run_vectra("inspect", copy, "--json"), 0).json
    assert info["complete"] is False


def test_not_a_snapshot(tmp_path: Path) -> None:
    result = expect(run_vectra("validate", tmp_path), 1)
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "no manifest.json here" in error
    assert "Traceback" not in result.stderr


def test_validate_schema_mismatch(copy: Path) -> None:
    manifest = _manifest(copy)
    manifest["indexes"]["docs"]["dimension"] = 8
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = expect(run_vectra("validate", copy, "--json"), 1)
    problems = result.json["problems"]
    assert {p["path"] for p in problems} == set(_parts(copy))
    assert {p["kind"] for p in problems} == {"schema"}
    assert "values" in problems[0]["message"]
