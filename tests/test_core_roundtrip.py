"""Round trips through the engine on the memory provider: exact, complete, bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import vectra_io
from vectra_io import Client, Migration
from vectra_io.engine import importer
from vectra_io.providers.base import IndexSpec, VectorSpec
from vectra_io.providers.memory import MemoryProvider
from vectra_io.snapshot import parts as parts_mod

from .util import assert_same_namespace, make_records, read_all, seed

NAMESPACES = ["", "tenant-1", "tenant/2"]


@pytest.fixture
def source() -> MemoryProvider:
    p = MemoryProvider()
    spec = IndexSpec("products", 16, "cosine", sparse=True)
    p.create_index(spec)
    for k, ns in enumerate(NAMESPACES):
        seed(p, spec, ns, make_records(700 + 300 * k, 16, seed=k, prefix=f"n{k}-", sparse=True))
    p.create_index(IndexSpec("empty", 4, "dot"))
    return p


def test_snapshot_round_trip_is_exact(source: MemoryProvider, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(parts_mod, "ROW_GROUP_BYTES", 20_000)  # several row groups per part
    snap = str(tmp_path / "snap")
    progress: list[dict[str, Any]] = []
    manifest = vectra_io.export_snapshot(
        source, snap, batch_size=100, part_rows=250, on_progress=progress.append
    )
    assert manifest["complete"] is True
    entry = manifest["indexes"]["products"]
    assert set(entry["namespaces"]) == {"__default__", "tenant-1", "tenant/2"}
    ns1 = entry["namespaces"]["tenant-1"]
    assert ns1["rows"] == ns1["source_count"] == 1000
    assert len(ns1["parts"]) >= 3  # spans several part files
    assert all(p["rows"] < 250 + 100 for p in ns1["parts"])  # bounded: part_rows + one page
    meta = pq.ParquetFile(tmp_path / "snap" / ns1["parts"][0]["path"]).metadata
    assert meta.num_row_groups > 1  # and several row groups
    assert meta.row_group(0).column(0).statistics is not None
    assert manifest["indexes"]["empty"]["namespaces"] == {}
    assert progress[-1]["migrated"] == progress[-1]["total"] == 700 + 1000 + 1300
    for key in ("percentage", "migrated", "total", "batches_processed", "total_batches"):
        assert key in progress[-1]

    target = MemoryProvider()
    res = vectra_io.import_snapshot(snap, target, chunk_size=97, concurrency=4)
    assert res["errors"] == [] and res["imported_count"] == 3000
    assert sorted(target.list_indexes()) == ["empty", "products"]
    for ns in NAMESPACES:
        assert_same_namespace(source, "products", ns, target, "products", ns)
    assert target.describe_index("empty").metric == "dot"
    check = vectra_io.verify_snapshot(snap, target, source=source, sample=200)
    assert check["match"] is True
    assert check["manifest_count"] == check["source_count"] == check["target_count"] == 3000


def test_migrate_memory_to_memory_exact(source: MemoryProvider) -> None:
    target = MemoryProvider()
    m = Migration(source, target)
    seen: list[dict[str, Any]] = []
    r = m.migrate(
        source_index="products",
        target_index="copy",
        source_namespace="tenant-1",
        target_namespace="t1",
        batch_size=300,
        chunk_size=64,
        on_progress=seen.append,
    )
    assert r["migrated_count"] == 1000 and r["errors"] == []
    assert r["batches"] == 16  # ceil(1000 / 64)
    assert seen[-1]["percentage"] == 100.0
    assert_same_namespace(source, "products", "tenant-1", target, "copy", "t1")
    v = m.verify(
        source_index="products",
        target_index="copy",
        source_namespace="tenant-1",
        target_namespace="t1",
    )
    assert v["match"] and v["source_count"] == v["target_count"] == 1000
    # the whole store, every namespace
    everything = MemoryProvider()
    r2 = vectra_io.migrate(source, everything, chunk_size=200, concurrency=3)
    assert r2["migrated_count"] == 3000
    for ns in NAMESPACES:
        assert_same_namespace(source, "products", ns, everything, "products", ns)


def test_python_api_contract(tmp_path: Path) -> None:
    src = Client(provider="memory")
    dst = Client(provider="memory")
    src.create_index(name="products", dimension=8, metric="cosine")
    vecs = [{"id": f"a{i}", "values": [float(i + 1)] * 8, "metadata": {"k": i}} for i in range(120)]
    src.upsert(index="products", vectors=vecs, namespace="tenant-1")
    m = Migration(src, dst)
    r = m.migrate(
        source_index="products",
        target_index="products",
        source_namespace="tenant-1",
        target_namespace=None,
        batch_size=500,
        chunk_size=50,
        on_progress=lambda s: None,
    )
    assert (r["migrated_count"], r["batches"], r["errors"]) == (120, 3, [])
    v = m.verify(
        source_index="products",
        target_index="products",
        source_namespace="tenant-1",
        target_namespace=None,
    )
    assert v["match"] and v["source_count"] == 120 and v["target_count"] == 120
    snap = str(tmp_path / "snap")
    manifest = vectra_io.export_snapshot(
        src, snap, indexes=["products"], namespaces=None, batch_size=1000, on_progress=None
    )
    assert manifest["format"] == "vectra-snapshot" and manifest["format_version"] == 1
    res = vectra_io.import_snapshot(
        snap,
        dst,
        index_map={"products": "products2"},
        namespace_map={"tenant-1": "tenant-2"},
        chunk_size=500,
        concurrency=8,
        create_index=True,
        on_progress=None,
    )
    assert (res["imported_count"], res["errors"]) == (120, [])
    assert res["batches"] == 1
    chk = vectra_io.verify_snapshot(
        snap,
        dst,
        index_map={"products": "products2"},
        namespace_map={"tenant-1": "tenant-2"},
        source=src,
    )
    assert chk["match"] and chk["manifest_count"] == chk["source_count"] == chk["target_count"]
    rec = dst.fetch(index="products2", ids=["a3", "missing"], namespace="tenant-2")
    assert [r["id"] for r in rec] == ["a3"]
    assert rec[0]["values"] == [4.0] * 8 and rec[0]["metadata"] == {"k": 3}
    hits = dst.query(index="products2", vector=[1.0] * 8, top_k=3, namespace="tenant-2")
    assert len(hits) == 3 and hits[0]["score"] == pytest.approx(1.0)
    assert [i["name"] for i in dst.list_indexes()] == ["products", "products2"]
    assert dst.describe_index(index="products2")["dimension"] == 8
    st = dst.stats(index="products2")
    assert st["total_vector_count"] == 120 and st["namespaces"]["tenant-2"]["vector_count"] == 120
    assert dst.list_namespaces(index="products2") == ["tenant-2"]
    dst.delete_index(name="products2")
    assert [i["name"] for i in dst.list_indexes()] == ["products"]


class FailingTarget(MemoryProvider):
    """Refuses every batch that holds the poisoned id."""

    def __init__(self, poison: str) -> None:
        super().__init__()
        self.poison = poison

    def upsert(self, index, batch, namespace=""):  # type: ignore[no-untyped-def]
        if self.poison in batch.column("id").to_pylist():
            raise vectra_io.errors.FatalError("server said no")
        return super().upsert(index, batch, namespace)


def test_failed_chunk_is_collected_with_its_ids(source: MemoryProvider, tmp_path: Path) -> None:
    snap = str(tmp_path / "s")
    vectra_io.export_snapshot(source, snap, namespaces=["tenant-1"])
    target = FailingTarget("n1-150")
    res = vectra_io.import_snapshot(snap, target, chunk_size=100, concurrency=4)
    assert res["imported_count"] == 900
    assert res["failed_count"] == 100
    [err] = res["errors"]
    assert "n1-150" in err["ids"] and len(err["ids"]) == 100
    assert "server said no" in err["error"]
    stored = set(read_all(target, "products", "tenant-1").column("id").to_pylist())
    assert stored.isdisjoint(err["ids"])
    assert len(stored) == 900
    [row] = [r for r in res["namespaces"] if r["index"] == "products"]
    assert row["failed"] == 100 and row["imported"] == 900


def test_dimension_mismatch_is_refused(source: MemoryProvider, tmp_path: Path) -> None:
    snap = str(tmp_path / "s")
    vectra_io.export_snapshot(source, snap)
    target = MemoryProvider()
    target.create_index(IndexSpec("products", 32, "cosine", sparse=True))
    with pytest.raises(vectra_io.errors.IncompatibleIndexError, match="dimension 32"):
        vectra_io.import_snapshot(snap, target)
    assert target.count("products", "tenant-1") == 0


def test_metric_mismatch_is_refused(source: MemoryProvider, tmp_path: Path) -> None:
    snap = str(tmp_path / "s")
    vectra_io.export_snapshot(source, snap, indexes=["products"])
    target = MemoryProvider()
    target.create_index(IndexSpec("products", 16, "euclidean", sparse=True))
    with pytest.raises(vectra_io.errors.IncompatibleIndexError, match="metric euclidean"):
        vectra_io.import_snapshot(snap, target)


def test_missing_target_index_without_create(source: MemoryProvider, tmp_path: Path) -> None:
    snap = str(tmp_path / "s")
    vectra_io.export_snapshot(source, snap, indexes=["products"])
    with pytest.raises(vectra_io.ConfigError, match="does not exist"):
        vectra_io.import_snapshot(snap, MemoryProvider(), create_index=False)


def test_nan_and_inf_are_rejected_by_id(tmp_path: Path) -> None:
    src = MemoryProvider()
    spec = IndexSpec("v", 4, "dot", sparse=True)
    src.create_index(spec)
    recs = make_records(50, 4, sparse=True)
    recs[7]["values"] = np.array([0, np.nan, 0, 0], dtype=np.float32)
    recs[9]["values"] = np.array([np.inf, 0, 0, 0], dtype=np.float32)
    recs[11]["sparse_values"] = {"indices": [1, 2], "values": [1.0, float("-inf")]}
    seed(src, spec, "", recs)
    snap = tmp_path / "s"
    manifest = vectra_io.export_snapshot(src, str(snap))
    bad = {"id7", "id9", "id11"}
    assert {i for e in manifest["errors"] for i in e["ids"]} == bad
    ns = manifest["indexes"]["v"]["namespaces"]["__default__"]
    assert ns["rows"] == 47 and ns["rejected"] == 3 and set(ns["rejected_ids"]) == bad
    written = pq.read_table(snap / ns["parts"][0]["path"]).column("id").to_pylist()
    assert bad.isdisjoint(written) and len(written) == 47
    # a direct migration rejects them too
    r = vectra_io.migrate(src, MemoryProvider())
    assert r["migrated_count"] == 47 and r["failed_count"] == 3
    assert {i for e in r["errors"] for i in e["ids"]} == bad
    # verify does not pretend the copy is whole
    target = MemoryProvider()
    vectra_io.import_snapshot(str(snap), target)
    check = vectra_io.verify_snapshot(str(snap), target, source=src)
    assert check["match"] is False
    assert any("rejected at export" in r for r in check["namespaces"][0]["reasons"])


@pytest.mark.parametrize(
    "index,namespace",
    [
        ("a/b", "../../etc"),
        ("..", "x y"),
        ("ünï cødé 漢字", "."),
        ("%2F", "__default__x"),
        (".hidden", "/abs"),
    ],
)
def test_hostile_names_stay_inside_the_snapshot(tmp_path: Path, index: str, namespace: str) -> None:
    src = MemoryProvider()
    spec = IndexSpec(index, 3, "euclidean")
    src.create_index(spec)
    seed(src, spec, namespace, make_records(10, 3))
    snap = tmp_path / "snap"
    manifest = vectra_io.export_snapshot(src, str(snap))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(snap in p.parents for p in files)
    assert len([p for p in files if p.suffix == ".parquet"]) == 1
    ns_entry = manifest["indexes"][index]["namespaces"][namespace]
    rel = ns_entry["parts"][0]["path"]
    assert ".." not in rel.split("/") and not rel.startswith("/")
    target = MemoryProvider()
    vectra_io.import_snapshot(str(snap), target)
    assert target.list_indexes() == [index]
    assert target.list_namespaces(index) == [namespace]
    assert_same_namespace(src, index, namespace, target, index, namespace)


def test_empty_index_and_empty_namespace(tmp_path: Path) -> None:
    src = MemoryProvider()
    src.create_index(IndexSpec("e", 5, "cosine"))
    snap = str(tmp_path / "s")
    manifest = vectra_io.export_snapshot(src, snap, namespaces=[None, "nothing-here"])
    nss = manifest["indexes"]["e"]["namespaces"]
    assert nss["__default__"]["rows"] == 0 and nss["__default__"]["parts"] == []
    assert nss["nothing-here"]["rows"] == 0
    target = MemoryProvider()
    res = vectra_io.import_snapshot(snap, target)
    assert res["imported_count"] == 0 and target.describe_index("e").dimension == 5
    assert vectra_io.verify_snapshot(snap, target)["match"] is True


def test_named_vectors_and_records_without_dense(tmp_path: Path) -> None:
    src = MemoryProvider()
    spec = IndexSpec("nv", 4, "cosine", named_vectors={"title": VectorSpec(3, "dot")})
    src.create_index(spec)
    recs = make_records(20, 4)
    for i, r in enumerate(recs):
        r["vectors"] = {"title": [i, -0.0, 1e-45]} if i % 3 else {}
        if i % 4 == 0:
            r["values"] = None
    seed(src, spec, "", recs)
    snap = tmp_path / "s"
    manifest = vectra_io.export_snapshot(src, str(snap))
    fields = manifest["indexes"]["nv"]["vector_fields"]
    assert {"name": "title", "column": "vector.title", "dimension": 3, "metric": "dot"} in fields
    target = MemoryProvider()
    vectra_io.import_snapshot(str(snap), target)
    assert_same_namespace(src, "nv", "", target, "nv", "")


def test_snapshot_is_readable_by_pyarrow_and_duckdb(source: MemoryProvider, tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    manifest = vectra_io.export_snapshot(source, str(snap), indexes=["products"])
    entry = manifest["indexes"]["products"]
    part = entry["namespaces"]["tenant-1"]["parts"][0]
    table = pq.read_table(snap / part["path"])
    assert table.schema.field("id").type == pa.string() and not table.schema.field("id").nullable
    assert table.schema.field("values").type == pa.list_(pa.float32(), 16)
    assert table.schema.field("sparse_values").type == pa.struct(
        [("indices", pa.list_(pa.uint32())), ("values", pa.list_(pa.float32()))]
    )
    assert table.schema.field("metadata").type == pa.string()
    assert [c["name"] for c in entry["columns"]] == table.schema.names
    assert part["rows"] == table.num_rows
    glob = str(snap / entry["path"] / "*" / "*.parquet")
    con = duckdb.connect()
    total = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()
    assert total is not None and total[0] == 3000
    row = con.execute(
        f"SELECT id, len(values), json_extract(metadata, '$.big')::UBIGINT "
        f"FROM read_parquet('{snap / part['path']}') WHERE id = 'n1-1'"
    ).fetchone()
    assert row is not None and row[0] == "n1-1" and row[1] == 16
    assert (
        row[2]
        == json.loads(source.fetch("products", ["n1-1"], "tenant-1").column("metadata")[0].as_py())[
            "big"
        ]
    )


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_corrupted_part_is_refused_before_any_write(
    source: MemoryProvider, tmp_path: Path, compression: str
) -> None:
    """Parts are decoded while their checksum is verified; still nothing may be written.

    Uncompressed, the flipped byte lands in a float and the part decodes fine:
    only the checksum can catch it. Compressed, decoding fails too, and the
    checksum error is the one reported."""
    snap = tmp_path / "s"
    manifest = vectra_io.export_snapshot(
        source, str(snap), indexes=["products"], namespaces=["tenant-1"], compression=compression
    )
    part = manifest["indexes"]["products"]["namespaces"]["tenant-1"]["parts"][0]
    path = snap / part["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    if compression == "none":
        assert pq.read_table(path).num_rows == part["rows"]  # decodes: only the checksum knows
    target = MemoryProvider()
    with pytest.raises(vectra_io.SnapshotError, match=f"{part['path']} is corrupt or truncated"):
        vectra_io.import_snapshot(str(snap), target)
    assert target.count("products", "tenant-1") == 0


def test_complete_snapshot_is_not_overwritten(source: MemoryProvider, tmp_path: Path) -> None:
    snap = str(tmp_path / "s")
    vectra_io.export_snapshot(source, snap, indexes=["empty"])
    with pytest.raises(vectra_io.SnapshotError, match="force"):
        vectra_io.export_snapshot(source, snap, indexes=["empty"])
    again = vectra_io.export_snapshot(source, snap, indexes=["products"], force=True)
    assert list(again["indexes"]) == ["products"]


class CrashingSource(MemoryProvider):
    """A memory source that dies after ``pages`` pages, once."""

    def __init__(self, base: MemoryProvider, pages: int) -> None:
        self.__dict__.update(base.__dict__)
        self.left = pages

    def scan(self, index, namespace="", *, batch_size=1000, cursor=None):  # type: ignore[no-untyped-def]
        for page in super().scan(index, namespace, batch_size=batch_size, cursor=cursor):
            if self.left == 0:
                raise KeyboardInterrupt("killed")
            self.left -= 1
            yield page


@pytest.mark.parametrize("pages", [0, 1, 3, 5, 8, 13])
def test_export_resumes_after_interruption(
    source: MemoryProvider, tmp_path: Path, pages: int
) -> None:
    snap = str(tmp_path / "s")
    crashing = CrashingSource(source, pages)
    with pytest.raises(KeyboardInterrupt):
        vectra_io.export_snapshot(crashing, snap, batch_size=100, part_rows=250)
    crashing.left = -1  # no more crashes
    manifest = vectra_io.export_snapshot(crashing, snap, batch_size=100, part_rows=250)
    assert manifest["complete"]
    target = MemoryProvider()
    vectra_io.import_snapshot(snap, target)
    for ns in NAMESPACES:
        assert_same_namespace(source, "products", ns, target, "products", ns)
    assert vectra_io.verify_snapshot(snap, target, source=source)["match"]


class LossySource(MemoryProvider):
    """A source that cannot read some records and says so on its pages."""

    def scan(self, index, namespace="", *, batch_size=1000, cursor=None):  # type: ignore[no-untyped-def]
        for page in super().scan(index, namespace, batch_size=batch_size, cursor=cursor):
            yield page._replace(failures={"ghost-1": "cannot be fetched", "ghost-2": "gone"})
            break


def test_unreadable_records_are_reported_not_lost(tmp_path: Path) -> None:
    src = LossySource()
    spec = IndexSpec("u", 4, "dot")
    src.create_index(spec)
    seed(src, spec, "", make_records(10, 4))
    manifest = vectra_io.export_snapshot(src, str(tmp_path / "s"))
    kinds = {(e["kind"], tuple(e["ids"])) for e in manifest["errors"]}
    assert ("unreadable", ("ghost-1",)) in kinds and ("unreadable", ("ghost-2",)) in kinds
    ns = manifest["indexes"]["u"]["namespaces"]["__default__"]
    assert ns["rejected"] == 2 and set(ns["rejected_ids"]) == {"ghost-1", "ghost-2"}
    r = vectra_io.migrate(src, MemoryProvider())
    assert r["failed_count"] == 2 and r["migrated_count"] == 10


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
def test_read_chunks_numbering_depends_on_the_file_alone(tmp_path: Path, chunk_size: int) -> None:
    """Chunks are cut per row group, in file order, whatever the decoders' timing."""
    table = pa.table({"id": [f"r{i}" for i in range(500)], "n": list(range(500))})
    path = tmp_path / "p.parquet"
    pq.write_table(table, path, row_group_size=90)  # 6 groups, the last one short
    groups = pq.ParquetFile(path).num_row_groups
    expected = []
    for g in range(groups):
        rows = table.slice(90 * g, 90)
        expected += [rows.slice(k, chunk_size) for k in range(0, rows.num_rows, chunk_size)]
    for workers in (1, 3):
        got = list(importer.read_chunks(lambda: pq.ParquetFile(path), groups, chunk_size, workers))
        assert [c.num_rows for c in got] == [e.num_rows for e in expected]
        assert [c.column("id").to_pylist() for c in got] == [
            e.column("id").to_pylist() for e in expected
        ]


def test_read_chunks_recuts_uneven_decoder_batches(tmp_path: Path) -> None:
    """Should a reader hand back batches shorter than asked, chunks are recut to size."""
    table = pa.table({"n": list(range(100))})

    class Uneven:
        def iter_batches(self, batch_size: int, row_groups: list[int], use_threads: bool):  # type: ignore[no-untyped-def]
            assert row_groups == [0] and not use_threads
            yield from table.to_batches(max_chunksize=batch_size // 2 + 1)

        def close(self) -> None:
            pass

    got = list(importer.read_chunks(Uneven, 1, 30))  # type: ignore[arg-type]
    assert [c.num_rows for c in got] == [30, 30, 30, 10]
    assert pa.Table.from_batches(got).column("n").to_pylist() == list(range(100))
