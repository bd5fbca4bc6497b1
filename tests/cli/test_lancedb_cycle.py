"""export -> inspect -> validate -> import -> verify, and migrate, through the real ``vectra``
executable on embedded LanceDB databases (seeded in this process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from vectra_cli.demo import create_sample

from tests.cli.helpers import expect, run_vectra
from tests.util import reseal_part
from vectra_io import Client

pytest.importorskip("lancedb")
pytest.importorskip("vectra_io.providers.lancedb")

PRODUCTS = {"catalog": 450, "archive": 150}  # demo data: realistic metadata, dim 384
NOTES = 40  # index "notes" (dim 8, euclidean), default namespace only


def lancedb_url(path: Path) -> str:
    return f"lancedb://{path}"


def counts(url: str) -> dict[tuple[str, str], int]:
    with Client(url=url) as client:
        provider = client.backend
        return {
            (index, ns): provider.count(index, ns)
            for index in provider.list_indexes()
            for ns in provider.list_namespaces(index)
        }


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = lancedb_url(tmp_path_factory.mktemp("source") / "db.lancedb")
    written = create_sample(url, sum(PRODUCTS.values()))
    assert written == PRODUCTS
    rng = np.random.default_rng(3)
    with Client(url=url) as client:
        client.create_index("notes", 8, "euclidean")
        client.upsert(
            "notes",
            [
                {
                    "id": f"n{i}",
                    "values": rng.standard_normal(8).astype(np.float32),
                    "metadata": {"text": f"note {i} ✓", "pinned": i % 3 == 0, "n": None},
                }
                for i in range(NOTES)
            ],
        )
    return url


@pytest.fixture(scope="module")
def exported(source: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    snapshot = tmp_path_factory.mktemp("snap") / "snapshot"
    result = expect(
        run_vectra(
            "export",
            source,
            snapshot,
            "--json",
            "--part-rows",
            "200",
            "--batch-size",
            "100",
            env={"VECTRA_PROGRESS_INTERVAL": "0"},
        ),
        0,
    )
    return snapshot, result


def test_export(exported: tuple[Path, Any]) -> None:
    snapshot, result = exported
    manifest = result.json
    assert manifest["complete"] is True
    assert manifest["errors"] == []
    assert set(manifest["indexes"]) == {"products", "notes"}
    rows = {k: v["rows"] for k, v in manifest["indexes"]["products"]["namespaces"].items()}
    assert rows == PRODUCTS
    assert (snapshot / "manifest.json").exists()
    # not a terminal: plain progress lines on stderr, nothing but the JSON on stdout
    assert "export: " in result.stderr and " records (" in result.stderr


def test_inspect_and_validate(exported: tuple[Path, Any]) -> None:
    snapshot, _ = exported
    info = expect(run_vectra("inspect", snapshot, "--json"), 0).json
    by_name = {i["index"]: i for i in info["indexes"]}
    assert info["complete"] is True
    assert info["rows"] == sum(PRODUCTS.values()) + NOTES
    assert by_name["products"]["dimension"] == 384
    assert by_name["products"]["metric"] == "cosine"
    assert by_name["notes"]["metric"] == "euclidean"
    assert by_name["products"]["parts"] == 4  # pages of 100: 450 -> 200+200+50; 150
    assert [n["namespace"] for n in by_name["notes"]["namespaces"]] == ["__default__"]

    valid = expect(run_vectra("validate", snapshot, "--json"), 0).json
    assert valid["valid"] is True
    assert valid["rows_checked"] == info["rows"]


def test_import_and_verify(exported: tuple[Path, Any], source: str, tmp_path: Path) -> None:
    snapshot, _ = exported
    target = lancedb_url(tmp_path / "target.lancedb")
    imported = expect(run_vectra("import", snapshot, target, "--json"), 0).json
    assert imported["imported_count"] == sum(PRODUCTS.values()) + NOTES
    assert imported["failed_count"] == 0
    assert counts(target) == counts(source)

    result = expect(
        run_vectra("verify", snapshot, target, "--source", source, "--sample", "50", "--json"),
        0,
    )
    assert result.json["match"] is True
    assert all(row["sample_checked"] > 0 for row in result.json["namespaces"])


def test_renames_and_mismatch(exported: tuple[Path, Any], tmp_path: Path) -> None:
    snapshot, _ = exported
    target = lancedb_url(tmp_path / "renamed.lancedb")
    renames = [
        "--index",
        "products=items",
        "--namespace",
        "archive=old",
        "--index",
        "notes=memos",
        "--namespace",
        "__default__=main",
    ]
    result = expect(run_vectra("import", snapshot, target, *renames, "--json"), 0).json
    assert result["imported_count"] == PRODUCTS["archive"] + NOTES
    assert counts(target) == {("items", "old"): PRODUCTS["archive"], ("memos", "main"): NOTES}

    verified = expect(
        run_vectra("verify", snapshot, target, *renames, "--sample", "20", "--json"), 0
    ).json
    assert verified["match"] is True
    assert {(r["target_index"], r["target_namespace"]) for r in verified["namespaces"]} == {
        ("items", "old"),
        ("memos", "main"),
    }

    # the whole snapshot against this target: the names differ, so it does not match
    mismatch = expect(run_vectra("verify", snapshot, target, "--json"), 4)
    assert mismatch.json["match"] is False
    reasons = [r for row in mismatch.json["namespaces"] for r in row["reasons"]]
    assert "target has 0 records, snapshot 450" in reasons


def test_migrate(source: str, tmp_path: Path) -> None:
    target = lancedb_url(tmp_path / "migrated.lancedb")
    result = expect(
        run_vectra(
            "migrate",
            source,
            target,
            "--index",
            "products=shop",
            "--namespace",
            "catalog",
            "--json",
        ),
        0,
    ).json
    assert result["migrated_count"] == PRODUCTS["catalog"]
    assert result["verification"]["match"] is True
    assert counts(target) == {("shop", "catalog"): PRODUCTS["catalog"]}


def test_record_errors_exit_3(tmp_path: Path) -> None:
    """A snapshot whose part holds a NaN vector (rewritten with a matching manifest): the
    import writes every other record and exits with 3, naming the failed id."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from vectra_io import export_snapshot

    snapshot = tmp_path / "snap"
    with Client(url="memory://cli-nan") as client:
        client.create_index("v", 4, "cosine")
        client.upsert(
            "v", [{"id": f"r{i}", "values": [1.0, 2.0, 3.0, float(i)]} for i in range(10)]
        )
        export_snapshot(client, str(snapshot))
    manifest = json.loads((snapshot / "manifest.json").read_text())
    part = manifest["indexes"]["v"]["namespaces"]["__default__"]["parts"][0]
    table = pq.read_table(snapshot / part["path"])
    values = table.column("values").combine_chunks().flatten().to_numpy().copy()
    values[4 * 3] = np.nan  # record r3
    column = pa.FixedSizeListArray.from_arrays(pa.array(values, pa.float32()), 4)
    table = table.set_column(table.schema.get_field_index("values"), "values", column)
    pq.write_table(table, snapshot / part["path"])
    data = (snapshot / part["path"]).read_bytes()
    reseal_part(part, data)
    (snapshot / "manifest.json").write_text(json.dumps(manifest))

    target = lancedb_url(tmp_path / "t.lancedb")
    result = expect(run_vectra("import", snapshot, target, "--json"), 3).json
    assert result["imported_count"] == 9
    assert result["failed_count"] == 1
    assert result["errors"][0]["ids"] == ["r3"]


def test_import_checksum_option(tmp_path: Path) -> None:
    """`--checksum` picks the digest import checks: a wrong CRC-32 in the manifest stops the
    default import (naming the part) and not one that checks the SHA-256."""
    import json

    from vectra_io import export_snapshot

    snapshot = tmp_path / "snap"
    with Client(url="memory://cli-checksum") as client:
        client.create_index("v", 4, "cosine")
        client.upsert("v", [{"id": f"r{i}", "values": [1.0, 2.0, 3.0, float(i)]} for i in range(6)])
        export_snapshot(client, str(snapshot))
    manifest = json.loads((snapshot / "manifest.json").read_text())
    part = manifest["indexes"]["v"]["namespaces"]["__default__"]["parts"][0]
    part["crc32"] = "00000000"
    (snapshot / "manifest.json").write_text(json.dumps(manifest))

    target = lancedb_url(tmp_path / "t.lancedb")
    refused = run_vectra("import", snapshot, target)
    assert refused.code not in (0, 3), str(refused)
    assert part["path"] in refused.stderr and "crc32 00000000" in refused.stderr
    result = expect(run_vectra("import", snapshot, target, "--checksum", "sha256", "--json"), 0)
    assert result.json["imported_count"] == 6
    assert run_vectra("import", snapshot, target, "--checksum", "md5").code == 2
