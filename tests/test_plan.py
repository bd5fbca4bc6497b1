"""`plan`: what a copy would do, with lossy and refused records counted, writing nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import vectra_io
from vectra_io import Migration
from vectra_io.providers.base import IndexSpec, VectorSpec
from vectra_io.providers.memory import MEMORY_CAPABILITIES, MemoryProvider

from .util import make_records, seed

STRICT = dataclasses.replace(
    MEMORY_CAPABILITIES,
    id_types=frozenset({"uint64", "uuid"}),
    nested_metadata=False,
    sparse=False,
    named_vectors=False,
    metrics=frozenset({"cosine", "dot"}),
)


@pytest.fixture
def source() -> MemoryProvider:
    src = MemoryProvider()
    spec = IndexSpec(
        "docs", 4, "euclidean", sparse=True, named_vectors={"title": VectorSpec(2, "dot")}
    )
    src.create_index(spec)
    recs = make_records(40, 4, sparse=True)
    recs[0]["id"] = "123"  # a uint64 id passes through
    recs[1]["metadata"] = {"flat": "yes", "n": 3, "tags": ["a"]}
    recs[2]["values"] = [0.0, 0.0, 0.0, 0.0]
    seed(src, spec, "", recs)
    seed(src, spec, "eu", make_records(5, 4, prefix="eu", sparse=True))
    return src


def test_plan_reports_lossy_and_refused_records(source: MemoryProvider) -> None:
    target = MemoryProvider(capabilities=STRICT)
    before = target.list_indexes()
    p = vectra_io.plan(source, target)
    assert target.list_indexes() == before  # nothing written
    [idx] = p["indexes"]
    assert idx["action"] == "create index"
    problems = " ".join(idx["problems"])
    assert "metric 'euclidean' cannot be expressed" not in problems  # memory has its own names
    assert "sparse vectors" in problems and "named vectors" in problems
    assert p["ok"] is False and p["records"] == 45
    default = next(n for n in idx["namespaces"] if n["source"] == "")
    reasons = {i["reason"]: i for i in default["issues"]}
    mapped = reasons["id mapped to a UUID (original kept in the payload)"]
    assert mapped["records"] == 39 and "123" not in mapped["examples"]
    nested = [r for r in reasons if "nested object" in r or "is null" in r or "2^53" in r]
    assert nested, reasons
    assert sum(i["records"] for i in default["issues"]) >= 39


def test_plan_from_a_snapshot_and_metric_refusal(source: MemoryProvider, tmp_path: Path) -> None:
    snap = str(tmp_path / "snap")
    vectra_io.export_snapshot(source, snap)

    target = MemoryProvider(capabilities=STRICT)
    p = vectra_io.plan(snap, target, index_map={"docs": "d2"}, namespace_map={"eu": "europe"})
    [idx] = p["indexes"]
    assert idx["target_index"] == "d2"
    assert {n["target"] for n in idx["namespaces"]} == {"", "europe"}
    assert idx["namespaces"][0]["issues"]


def test_plan_flags_existing_incompatible_index(source: MemoryProvider) -> None:
    target = MemoryProvider()
    target.create_index(IndexSpec("docs", 8, "cosine"))
    p = Migration(source, target).plan("docs")
    [idx] = p["indexes"]
    assert idx["action"] == "use existing index"
    assert any("dimension 8" in x for x in idx["problems"])
    assert any("metric cosine" in x for x in idx["problems"])


def test_plan_metric_the_target_cannot_express() -> None:
    src = MemoryProvider()
    src.create_index(IndexSpec("m", 3, "manhattan"))

    class PineconeLike(MemoryProvider):
        name = "pinecone"  # borrows Pinecone's row of the metric table

    p = vectra_io.plan(src, PineconeLike())
    assert any("manhattan" in x and "cannot be expressed" in x for x in p["indexes"][0]["problems"])
