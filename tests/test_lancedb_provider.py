"""LanceDB-specific behaviour of the ``lancedb://`` provider (the generic contract is checked
by ``tests/conformance`` through ``harness_lancedb.py``)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

lancedb = pytest.importorskip("lancedb")

import vectra_io  # noqa: E402
from vectra_io.errors import (  # noqa: E402
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
)
from vectra_io.providers.base import IndexSpec, VectorSpec  # noqa: E402
from vectra_io.providers.lancedb import (  # noqa: E402
    LanceDBProvider,
    _commit_group,
    _PendingWrite,
    _TableWriter,
    named_vector_column,
)
from vectra_io.providers.memory import MemoryProvider  # noqa: E402
from vectra_io.providers.registry import open_provider  # noqa: E402
from vectra_io.records import batch_from_records, dense_matrix, loads_metadata  # noqa: E402

DIM = 8


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "db")


@pytest.fixture
def provider(db_path: str) -> LanceDBProvider:
    return LanceDBProvider(db_path)


def records(n: int, *, start: int = 0, seed: int = 0, tag: str = "v1") -> list[dict[str, Any]]:
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return [
        {
            "id": f"id{start + i}",
            "values": vectors[i],
            "metadata": {"i": start + i, "tag": tag, "nested": {"l": [1, None]}},
        }
        for i in range(n)
    ]


def batch(spec: IndexSpec, recs: list[dict[str, Any]]) -> pa.RecordBatch:
    return batch_from_records(spec, recs)


def make_index(provider: LanceDBProvider, name: str = "docs", **kw: Any) -> IndexSpec:
    kw.setdefault("metric", "dot")
    spec = IndexSpec(name, kw.pop("dimension", DIM), **kw)
    provider.create_index(spec)
    return spec


def all_ids(provider: LanceDBProvider, index: str, namespace: str = "", bs: int = 100) -> list[str]:
    return [
        rid
        for page in provider.scan(index, namespace, batch_size=bs)
        for rid in page.batch.column("id").to_pylist()
    ]


def metas_by_id(b: pa.RecordBatch | pa.Table) -> dict[str, Any]:
    return dict(
        zip(
            b.column("id").to_pylist(),
            [loads_metadata(m) for m in b.column("metadata").to_pylist()],
            strict=True,
        )
    )


# -- URLs and the table layout ----------------------------------------------------
def test_url_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = open_provider(f"lancedb://{tmp_path}/abs")
    assert isinstance(absolute, LanceDBProvider)
    assert absolute.location == f"{tmp_path}/abs"
    assert absolute.endpoint == f"lancedb://{tmp_path}/abs"

    monkeypatch.chdir(tmp_path)
    relative = open_provider("lancedb://rel/db")
    assert isinstance(relative, LanceDBProvider)
    assert (relative.location, relative.endpoint) == ("rel/db", "lancedb://rel/db")
    make_index(relative, "t")
    assert (tmp_path / "rel" / "db" / "t.lance").is_dir()

    with pytest.raises(ConfigError):
        open_provider("lancedb://")
    with pytest.raises(ConfigError):
        LanceDBProvider(str(tmp_path), bogus=1)


def test_table_layout_spec_metadata_and_lancedb_search(
    provider: LanceDBProvider, db_path: str
) -> None:
    spec = make_index(
        provider,
        "layout",
        sparse=True,
        id_type="uuid",
        named_vectors={"title.v": VectorSpec(4, "cosine"), "body": VectorSpec(3, "euclidean")},
    )
    tbl = lancedb.connect(db_path).open_table("layout")
    schema = tbl.schema
    assert schema.names == [
        "id",
        "namespace",
        "vector",
        "sparse_values",
        "metadata",
        named_vector_column("body"),
        named_vector_column("title.v"),
    ]
    assert named_vector_column("title.v") == "vector_title%2Ev"
    assert schema.field("vector").type == pa.list_(pa.float32(), DIM)
    stored = json.loads(schema.metadata[b"vectra.index_spec"])
    assert stored["metric"] == "dot" and stored["id_type"] == "uuid" and stored["sparse"] is True
    assert provider.describe_index("layout") == spec

    recs = records(5)
    for r in recs:
        r["vectors"] = {"title.v": np.ones(4, np.float32)}
        r["sparse_values"] = {"indices": [3, 7], "values": [0.5, -1.0]}
    provider.upsert("layout", batch(spec, recs), "")
    tbl = lancedb.connect(db_path).open_table("layout")
    # the dense column is LanceDB's own vector column: its search works on it
    hit = tbl.search(recs[2]["values"]).metric("l2").limit(1).to_arrow()
    assert hit.column("id").to_pylist() == ["id2"]


# -- tables not created by vectra-io ----------------------------------------------
def user_table(db_path: str, n: int = 6, **columns: Any) -> Any:
    vectors = np.arange(n * 4, dtype=np.float32).reshape(n, 4) / 7
    data = {
        "id": [f"u{i}" for i in range(n)],
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 4),
        "title": [f'title "{i}"\n\\ ü' if i % 3 else None for i in range(n)],
        "year": pa.array([2000 + i for i in range(n)], pa.int64()),
        "score": pa.array([i / 4 if i != 1 else float("nan") for i in range(n)], pa.float64()),
        "public": [i % 2 == 0 for i in range(n)],
        "tags": [["a", str(i)] for i in range(n)],
        "created": pa.array(
            [dt.datetime(2024, 1, 1 + i, 12, 0, 0) for i in range(n)], pa.timestamp("us")
        ),
        "info": [{"k": i, "deep": {"x": [i, None]}} for i in range(n)],
        **columns,
    }
    return lancedb.connect(db_path).create_table("user", pa.table(data)), vectors


def expected_user_metadata(i: int) -> dict[str, Any]:
    return {
        "title": f'title "{i}"\n\\ ü' if i % 3 else None,
        "year": 2000 + i,
        "score": None if i == 1 else i / 4,
        "public": i % 2 == 0,
        "tags": ["a", str(i)],
        "created": f"2024-01-{1 + i:02d}T12:00:00",
        "info": {"k": i, "deep": {"x": [i, None]}},
    }


def test_user_table_is_exported_with_extra_columns_as_metadata(
    provider: LanceDBProvider, db_path: str, tmp_path: Path
) -> None:
    _, vectors = user_table(db_path)
    spec = provider.describe_index("user")
    assert (spec.dimension, spec.metric, spec.id_type, spec.sparse) == (
        4,
        "unknown",
        "string",
        False,
    )
    assert provider.list_namespaces("user") == [""]
    assert provider.count("user") == 6 and provider.count("user", "other") == 0

    snapshot = str(tmp_path / "snap")
    manifest = vectra_io.export_snapshot(provider, snapshot, indexes=["user"], batch_size=4)
    assert manifest["errors"] == []
    memory = MemoryProvider()
    result = vectra_io.import_snapshot(snapshot, memory, metric="cosine")
    assert result["imported_count"] == 6
    got = memory.fetch("user", [f"u{i}" for i in range(6)])
    for i, meta in enumerate(got.column("metadata").to_pylist()):
        assert loads_metadata(meta) == expected_user_metadata(i)
    assert np.array_equal(
        dense_matrix(got.column("values")).view(np.uint32), vectors.view(np.uint32)
    )

    with pytest.raises(IncompatibleIndexError, match="not created by vectra-io"):
        provider.upsert("user", got, "")


def test_user_table_other_vector_columns_become_named_vectors(db_path: str) -> None:
    emb = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(12, dtype=np.float64)), 2)
    user_table(db_path, emb=emb)
    spec = LanceDBProvider(db_path).describe_index("user")
    assert spec.dimension == 4 and set(spec.named_vectors) == {"emb"}
    got = LanceDBProvider(db_path).fetch("user", ["u2"])
    assert got.column("vector.emb").to_pylist() == [[4.0, 5.0]]
    # with vector_column= the other one is the dense vector
    other = LanceDBProvider(db_path, vector_column="emb").describe_index("user")
    assert other.dimension == 2 and set(other.named_vectors) == {"vector"}


def test_user_table_id_column_option(db_path: str) -> None:
    db = lancedb.connect(db_path)
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(np.ones(8, np.float32)), 2)
    db.create_table(
        "ints", pa.table({"doc_id": pa.array([7, 8, 9, 10], pa.uint64()), "emb": vectors})
    )
    with pytest.raises(IncompatibleIndexError, match="id_column"):
        LanceDBProvider(db_path).describe_index("ints")
    p = LanceDBProvider(db_path, id_column="doc_id")
    spec = p.describe_index("ints")
    assert (spec.id_type, spec.dimension) == ("uint64", 2)  # the only vector column
    assert p.fetch("ints", ["9", "x", "-1", "07", "7", str(2**64)]).column("id").to_pylist() == [
        "9",
        "7",
    ]
    assert sorted(all_ids(p, "ints")) == ["10", "7", "8", "9"]


def test_metric_read_from_the_vector_index(db_path: str) -> None:
    n = 300
    data = pa.table(
        {
            "id": [str(i) for i in range(n)],
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(np.random.default_rng(1).random(n * 4, dtype=np.float32)), 4
            ),
        }
    )
    tbl = lancedb.connect(db_path).create_table("indexed", data)
    from lancedb.index import IvfFlat

    p = LanceDBProvider(db_path)
    assert p.describe_index("indexed").metric == "unknown"
    tbl.create_index("vector", config=IvfFlat(distance_type="dot", num_partitions=2))
    assert p.describe_index("indexed").metric == "dot"
    tbl.create_index("vector", config=IvfFlat(distance_type="l2", num_partitions=2), replace=True)
    assert p.describe_index("indexed").metric == "euclidean"


# -- writes ------------------------------------------------------------------------
def test_reupsert_is_idempotent(provider: LanceDBProvider, db_path: str) -> None:
    spec = make_index(provider)
    first = batch(spec, records(300, tag="v1"))
    for _ in range(3):
        assert provider.upsert("docs", first, "") == {}
    assert provider.count("docs") == 300
    second = records(300, seed=5)
    for r in second:
        r["metadata"] = {"only_new": True}
    provider.upsert("docs", batch(spec, second), "")
    tbl = lancedb.connect(db_path).open_table("docs")
    assert tbl.count_rows() == 300  # no duplicate rows in the table itself
    got = provider.fetch("docs", ["id0", "id299"])
    assert [loads_metadata(m) for m in got.column("metadata").to_pylist()] == [
        {"only_new": True}
    ] * 2
    assert np.array_equal(dense_matrix(got.column("values"))[0], second[0]["values"])


def test_repeated_id_in_one_batch_last_wins(provider: LanceDBProvider) -> None:
    spec = make_index(provider)
    recs = [*records(3), {**records(1)[0], "metadata": {"last": True}}, *records(2, start=10)]
    assert provider.upsert("docs", batch(spec, recs), "") == {}
    assert provider.count("docs") == 5
    assert metas_by_id(provider.fetch("docs", ["id0"]))["id0"] == {"last": True}


def test_non_finite_vectors_are_refused_individually(provider: LanceDBProvider) -> None:
    spec = make_index(provider)
    recs = records(4)
    recs[1]["values"][3] = np.nan
    recs[2]["values"][0] = np.inf
    refused = provider.upsert("docs", batch(spec, recs), "")
    assert set(refused) == {"id1", "id2"}
    assert sorted(all_ids(provider, "docs")) == ["id0", "id3"]


def test_namespace_isolation(provider: LanceDBProvider) -> None:
    spec = make_index(provider)
    odd = 'it\'s a "namespace"'
    provider.upsert("docs", batch(spec, records(50, tag="default")), "")
    provider.upsert("docs", batch(spec, records(20, seed=9, tag="a")), "a")
    provider.upsert("docs", batch(spec, records(5, start=100, tag="odd")), odd)
    assert provider.list_namespaces("docs") == ["", "a", odd]
    assert [provider.count("docs", ns) for ns in ("", "a", odd, "none")] == [50, 20, 5, 0]
    assert sorted(all_ids(provider, "docs", "a")) == sorted(f"id{i}" for i in range(20))
    assert all_ids(provider, "docs", "none") == []
    # the same ids in two namespaces are two records
    assert metas_by_id(provider.fetch("docs", ["id3"], ""))["id3"]["tag"] == "default"
    assert metas_by_id(provider.fetch("docs", ["id3"], "a"))["id3"]["tag"] == "a"
    assert provider.fetch("docs", ["id100"], "").num_rows == 0
    # rewriting one namespace leaves the other alone
    provider.upsert("docs", batch(spec, records(50, tag="rewritten")), "a")
    assert provider.count("docs", "a") == 50 and provider.count("docs", "") == 50
    tags = {m["tag"] for m in metas_by_id(provider.fetch("docs", ["id1", "id40"], "")).values()}
    assert tags == {"default"}


def test_concurrent_upserts_from_8_threads(provider: LanceDBProvider, db_path: str) -> None:
    spec = make_index(provider)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        other = LanceDBProvider(db_path)  # also through separate provider objects
        try:
            for j in range(6):
                # overlapping id ranges: threads update each other's rows
                recs = records(60, start=k * 40 + j * 5, seed=k * 10 + j, tag=f"t{k}")
                (provider if j % 2 else other).upsert("docs", batch(spec, recs), "")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    expected = {f"id{k * 40 + j * 5 + i}" for k in range(8) for j in range(6) for i in range(60)}
    ids = all_ids(provider, "docs")
    assert Counter(ids).most_common(1)[0][1] == 1
    assert set(ids) == expected and provider.count("docs") == len(expected)


def test_concurrent_writes_are_committed_in_groups() -> None:
    writer = _TableWriter()
    commits: list[list[str]] = []
    entered, gate = threading.Event(), threading.Event()

    def commit(data: pa.Table) -> None:
        entered.set()
        gate.wait(10)  # the first commit holds the lock while the others queue up
        commits.append(data.column("id").to_pylist())

    def write(k: int) -> None:
        writer.write(pa.table({"id": [f"a{k}", "shared"], "namespace": ["", ""]}), commit)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
    threads[0].start()
    assert entered.wait(10)
    for t in threads[1:]:
        t.start()
    for _ in range(1000):  # seven writes queue behind the first commit
        if len(writer.queue) == 7:
            break
        threading.Event().wait(0.01)
    gate.set()
    for t in threads:
        t.join()
    assert len(commits) == 2, commits
    assert commits[0] == ["a0", "shared"]
    assert sorted(commits[1]) == sorted([f"a{k}" for k in range(1, 8)] + ["shared"])


def test_groups_with_disjoint_keys_commit_at_once() -> None:
    writer = _TableWriter(slots=2)
    both = threading.Barrier(2, timeout=10)  # breaks unless two commits run together
    errors: list[BaseException] = []

    def commit(data: pa.Table) -> None:
        both.wait()

    def write(rid: str) -> None:
        try:
            writer.write(pa.table({"id": [rid], "namespace": [""]}), commit)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(rid,)) for rid in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_a_write_sharing_a_key_waits_for_the_running_merge() -> None:
    writer = _TableWriter(slots=2)
    entered, gate = threading.Event(), threading.Event()
    spans: dict[str, list[float]] = {}

    def commit(data: pa.Table) -> None:
        ids = data.column("id").to_pylist()
        start = time.monotonic()
        if ids == ["k"]:
            entered.set()
            gate.wait(10)
        spans[",".join(ids)] = [start, time.monotonic()]

    first = threading.Thread(
        target=writer.write, args=(pa.table({"id": ["k"], "namespace": [""]}), commit)
    )
    first.start()
    assert entered.wait(10)
    second = threading.Thread(
        target=writer.write, args=(pa.table({"id": ["k", "m"], "namespace": ["", ""]}), commit)
    )
    second.start()
    time.sleep(0.2)  # a free slot, but the key is held: the second merge must not start
    assert "k,m" not in spans
    gate.set()
    first.join()
    second.join()
    assert spans["k,m"][0] >= spans["k"][1]


def test_failed_group_commit_keeps_errors_with_their_writes() -> None:
    group = [
        _PendingWrite(pa.table({"id": [f"r{k}"], "namespace": [""]}), frozenset({("", f"r{k}")}))
        for k in range(3)
    ]

    def commit(data: pa.Table) -> None:
        if "r1" in data.column("id").to_pylist():
            raise RuntimeError("bad write")

    _commit_group(group, commit)
    assert all(g.done for g in group)
    assert [g.error is not None for g in group] == [False, True, False]


# -- the scan cursor ---------------------------------------------------------------
def test_cursor_resume_after_new_writes_and_compaction(
    provider: LanceDBProvider, db_path: str
) -> None:
    spec = make_index(provider)
    original = records(1000, tag="original")
    for start in range(0, 1000, 100):  # ten fragments
        provider.upsert("docs", batch(spec, original[start : start + 100]), "")
    pages = provider.scan("docs", batch_size=150)
    first = [next(pages) for _ in range(3)]
    pages.close()
    cursor = json.loads(json.dumps(first[-1].cursor))
    seen = [rid for p in first for rid in p.batch.column("id").to_pylist()]
    assert len(seen) == 450

    # writes after the page: updates of scanned and unscanned records, new records,
    # records in another namespace, then compaction of the fragments
    changed = records(1000, seed=3, tag="changed")
    provider.upsert("docs", batch(spec, changed[::7]), "")
    provider.upsert("docs", batch(spec, records(200, start=5000, tag="new")), "")
    provider.upsert("docs", batch(spec, records(30, tag="elsewhere")), "b")
    lancedb.connect(db_path).open_table("docs").optimize()

    resumed = list(LanceDBProvider(db_path).scan("docs", batch_size=150, cursor=cursor))
    rest = [rid for p in resumed for rid in p.batch.column("id").to_pylist()]
    # exactly the rest of the snapshot the scan started on: no repeat, no gap, no new ids
    assert Counter(seen + rest) == Counter(r["id"] for r in original)
    assert resumed[-1].cursor is None
    assert all(m["tag"] == "original" for p in resumed for m in metas_by_id(p.batch).values())
    # a new scan sees the writes
    fresh = all_ids(provider, "docs", bs=500)
    assert len(fresh) == 1200 and len(set(fresh)) == 1200
    assert metas_by_id(provider.fetch("docs", ["id7"]))["id7"]["tag"] == "changed"


@pytest.mark.filterwarnings("ignore:optimize\\(cleanup_older_than=0\\):UserWarning")
def test_resume_after_version_cleanup_fails_clearly(
    provider: LanceDBProvider, db_path: str
) -> None:
    spec = make_index(provider)
    provider.upsert("docs", batch(spec, records(300)), "")
    cursor = next(iter(provider.scan("docs", batch_size=100))).cursor
    provider.upsert("docs", batch(spec, records(300, seed=1)), "")
    tbl = lancedb.connect(db_path).open_table("docs")
    tbl.optimize(cleanup_older_than=dt.timedelta(0), delete_unverified=True)
    with pytest.raises(FatalError, match="restart"):
        list(provider.scan("docs", batch_size=100, cursor=cursor))


def test_pages_larger_than_a_read_batch(provider: LanceDBProvider) -> None:
    spec = make_index(provider)
    for start in range(0, 2600, 650):
        provider.upsert("docs", batch(spec, records(650, start=start)), "")
    pages = list(provider.scan("docs", batch_size=1500))
    assert [p.batch.num_rows for p in pages] == [1500, 1100]
    assert pages[0].cursor == {"version": pages[0].cursor["version"], "offset": 1500}
    assert pages[1].cursor is None
    resumed = list(provider.scan("docs", batch_size=1500, cursor=pages[0].cursor))
    assert resumed[0].batch.equals(pages[1].batch)
    ids = [rid for p in pages for rid in p.batch.column("id").to_pylist()]
    assert sorted(ids) == sorted(f"id{i}" for i in range(2600))


def test_bad_cursor_is_a_config_error(provider: LanceDBProvider) -> None:
    make_index(provider)
    for bad in ([0, 1], {"version": 1}, {"version": 1, "offset": -1}, "x"):
        with pytest.raises(ConfigError):
            list(provider.scan("docs", cursor=bad))


# -- errors and index lifecycle ----------------------------------------------------
def test_missing_index_errors(provider: LanceDBProvider) -> None:
    spec = IndexSpec("nope", DIM, "dot")
    calls = [
        lambda: provider.describe_index("nope"),
        lambda: provider.count("nope"),
        lambda: provider.list_namespaces("nope"),
        lambda: list(provider.scan("nope")),
        lambda: provider.fetch("nope", ["a"]),
        lambda: provider.upsert("nope", batch(spec, records(1)), ""),
        lambda: provider.delete_index("nope"),
        lambda: provider.describe_index("not a valid name"),
    ]
    for call in calls:
        with pytest.raises(IndexNotFoundError):
            call()


def test_create_index_checks(provider: LanceDBProvider) -> None:
    make_index(provider)
    make_index(provider)  # the same spec again is fine
    with pytest.raises(IncompatibleIndexError):
        make_index(provider, dimension=DIM + 1)
    with pytest.raises(IncompatibleIndexError):
        make_index(provider, "man", metric="manhattan")
    with pytest.raises(ConfigError):
        make_index(provider, "bad name/")
    wide = IndexSpec("docs", DIM + 2, "dot")
    with pytest.raises(IncompatibleIndexError, match="do not fit"):
        provider.upsert("docs", batch(wide, [{"id": "w", "values": np.zeros(DIM + 2)}]), "")
    assert provider.list_indexes() == ["docs"]
    provider.delete_index("docs")
    assert provider.list_indexes() == []


def test_fetch_awkward_ids(provider: LanceDBProvider) -> None:
    spec = make_index(provider)
    ids = ["it's", "back\\slash", "new\nline", "ünï 😀", "", "a' OR '1'='1", "%_"]
    recs = [{"id": rid, "values": np.full(DIM, i, np.float32)} for i, rid in enumerate(ids)]
    provider.upsert("docs", batch(spec, recs), "")
    got = provider.fetch("docs", [*reversed(ids), "missing"])
    assert got.column("id").to_pylist() == list(reversed(ids))
    assert provider.fetch("docs", ["a"]).num_rows == 0


def test_index_without_dense_vector(provider: LanceDBProvider) -> None:
    spec = make_index(provider, "named", dimension=None, named_vectors={"a": VectorSpec(3)})
    recs = [{"id": "x", "vectors": {"a": [1.0, 2.0, 3.0]}}, {"id": "y", "metadata": {"k": 1}}]
    assert provider.upsert("named", batch(spec, recs), "") == {}
    got = provider.fetch("named", ["x", "y"])
    assert "values" not in got.schema.names
    assert got.column("vector.a").to_pylist() == [[1.0, 2.0, 3.0], None]
