"""Index lifecycle: create, describe, list, delete; metrics round-trip; missing indexes."""

from __future__ import annotations

import pytest

from vectra_io.errors import IndexNotFoundError
from vectra_io.providers.base import METRICS, Provider

from .conftest import IndexFactory
from .harness import Harness
from .support import DIM, make_batch, make_ids, spec_for


def test_create_describe_list_delete(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    name = make_index.reserve("lifecycle")
    spec = spec_for(provider, name)
    provider.create_index(spec)

    got = provider.describe_index(name)
    assert got.name == name
    assert got.dimension == DIM
    assert got.metric == spec.metric, f"created with {spec.metric!r}, described {got.metric!r}"
    assert got.id_type == spec.id_type
    assert not got.sparse and not got.named_vectors
    assert name in provider.list_indexes()

    provider.delete_index(name)
    with pytest.raises(IndexNotFoundError):
        provider.describe_index(name)
    assert name not in provider.list_indexes()


@pytest.mark.parametrize("metric", METRICS)
def test_metric_round_trip(
    harness: Harness, provider: Provider, make_index: IndexFactory, metric: str
) -> None:
    if metric not in provider.capabilities.metrics:
        pytest.skip(f"{harness.name} does not declare metric {metric}")
    spec = make_index(spec_for(provider, f"metric{metric}", metric=metric))
    got = provider.describe_index(spec.name)
    assert got.metric == metric, f"created with {metric!r}, described {got.metric!r}"
    assert got.dimension == DIM


def test_missing_index_raises_index_not_found(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    spec = spec_for(provider, make_index.reserve("nevercreated"))
    with pytest.raises(IndexNotFoundError):
        provider.describe_index(spec.name)
    assert spec.name not in provider.list_indexes()
    # the engine aborts a run on IndexNotFoundError instead of failing every chunk
    batch = make_batch(spec, make_ids(spec.id_type, 2))
    with pytest.raises(IndexNotFoundError):
        provider.upsert(spec.name, batch)


def test_every_declared_id_type_round_trips(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    for id_type in sorted(provider.capabilities.id_types):
        spec = make_index(spec_for(provider, f"idtype{id_type}", id_type=id_type))
        got = provider.describe_index(spec.name).id_type
        assert got == id_type, f"created with id_type {id_type!r}, described {got!r}"
