"""What a provider declares it cannot store is refused with a clear error, never dropped,
coerced or flattened silently."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from vectra_io.errors import (
    FatalError,
    IncompatibleIndexError,
    RecordsRejectedError,
    UnsupportedError,
)
from vectra_io.providers.base import IndexSpec, Provider, VectorSpec
from vectra_io.records import batch_from_records, loads_metadata

from .conftest import IndexFactory
from .harness import Harness
from .support import (
    FLAT_METADATA,
    ids_of,
    json_equal,
    make_batch,
    make_ids,
    random_vectors,
    spec_for,
)

BAD_ID = "not-a-valid-id"


def _expect_refusal(
    provider: Provider, index: str, batch: object, rid: str, what: str, *, must_name: bool
) -> Mapping[str, str] | None:
    """Upsert must refuse record ``rid``: in the returned ``{id: reason}`` mapping, or by
    raising a FatalError (RecordsRejectedError, UnsupportedError, ...) naming it when
    ``must_name``. Returns the mapping, or None when it raised."""
    try:
        refused = provider.upsert(index, batch)  # type: ignore[arg-type]
    except FatalError as exc:
        failures = exc.failures if isinstance(exc, RecordsRejectedError) else {}
        if must_name:
            assert rid in failures or rid in str(exc), (
                f"{what}: {type(exc).__name__} does not name the record {rid!r}: {exc}"
            )
        return None
    assert rid in refused, (
        f"{what}: upsert returned {dict(refused)!r}; record {rid!r} was accepted silently"
    )
    assert refused[rid], f"{what}: empty reason for {rid!r}"
    return refused


def test_refuses_undeclared_id_kind(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    if "string" in provider.capabilities.id_types:
        pytest.skip(f"{harness.name} declares id type 'string': every string id is valid")
    spec = make_index(spec_for(provider, "badids"))
    good = make_ids(spec.id_type, 2)
    batch = make_batch(spec, [*good, BAD_ID])
    refused = _expect_refusal(provider, spec.name, batch, BAD_ID, "bad id", must_name=True)
    if refused is not None:
        assert set(refused) == {BAD_ID}, f"valid ids were refused too: {dict(refused)!r}"
        assert sorted(ids_of(provider.fetch(spec.name, good))) == sorted(good)


def _refused_at_create_or_upsert(
    provider: Provider, make_index: IndexFactory, spec: IndexSpec, rows: list[dict], what: str
) -> None:
    spec = spec.renamed(make_index.reserve(spec.name))
    batch = batch_from_records(spec, rows)
    try:
        provider.create_index(spec)
    except (IncompatibleIndexError, UnsupportedError):
        return  # refused up front: the clearest answer
    _expect_refusal(provider, spec.name, batch, rows[0]["id"], what, must_name=False)


def test_refuses_sparse_when_not_declared(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    if provider.capabilities.sparse:
        pytest.skip(f"{harness.name} declares sparse: nothing to refuse")
    spec = spec_for(provider, "sparserefused", sparse=True)
    rid = make_ids(spec.id_type, 1)[0]
    sparse = {"indices": [1, 5], "values": [0.5, -1.0]}
    rows = [{"id": rid, "values": random_vectors(1)[0], "sparse_values": sparse}]
    _refused_at_create_or_upsert(provider, make_index, spec, rows, "sparse vectors")


def test_refuses_named_vectors_when_not_declared(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    if provider.capabilities.named_vectors:
        pytest.skip(f"{harness.name} declares named_vectors: nothing to refuse")
    spec = spec_for(provider, "namedrefused")
    spec = IndexSpec(
        spec.name, spec.dimension, spec.metric, spec.id_type, {"title": VectorSpec(4, spec.metric)}
    )
    rid = make_ids(spec.id_type, 1)[0]
    rows = [{"id": rid, "values": random_vectors(1)[0], "vectors": {"title": [1.0, 2.0, 3.0, 4.0]}}]
    _refused_at_create_or_upsert(provider, make_index, spec, rows, "named vectors")


def test_refuses_nested_metadata_when_not_declared(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    if provider.capabilities.nested_metadata:
        pytest.skip(f"{harness.name} declares nested_metadata: nothing to refuse")
    spec = make_index(spec_for(provider, "nestedrefused"))
    ok, bad = make_ids(spec.id_type, 2)
    vectors = random_vectors(2)
    batch = batch_from_records(
        spec,
        [
            {"id": ok, "values": vectors[0], "metadata": FLAT_METADATA},
            {"id": bad, "values": vectors[1], "metadata": {"title": "x", "obj": {"a": 1}}},
        ],
    )
    refused = _expect_refusal(provider, spec.name, batch, bad, "nested metadata", must_name=True)
    got = provider.fetch(spec.name, [ok, bad])
    assert bad not in ids_of(got), (
        f"the nested-metadata record {bad!r} was stored (flattened?) although refused: "
        f"{got.to_pylist()}"
    )
    if refused is not None:
        assert set(refused) == {bad}, f"a flat-metadata record was refused: {dict(refused)!r}"
        assert ids_of(got) == [ok]
        meta = loads_metadata(got.column("metadata")[0].as_py())
        assert json_equal(meta, FLAT_METADATA), f"flat metadata changed: {meta!r}"
