"""fetch() returns only the records that exist, in the index's record schema."""

from __future__ import annotations

from vectra_io.providers.base import Provider

from .conftest import IndexFactory
from .harness import Harness
from .support import (
    assert_no_repeats,
    assert_record_schema,
    ids_of,
    make_batch,
    make_ids,
    missing_id,
    spec_for,
    write,
)


def test_fetch_missing_ids_returns_existing_only(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    spec = make_index(spec_for(provider, "fetchmissing"))
    ids = make_ids(spec.id_type, 3)
    write(provider, spec.name, make_batch(spec, ids))
    absent = missing_id(spec.id_type)

    got = provider.fetch(spec.name, [ids[0], absent, ids[2]])
    assert_record_schema(got, spec, "fetch")
    assert_no_repeats(ids_of(got), "fetch")
    assert sorted(ids_of(got)) == sorted([ids[0], ids[2]])
    assert provider.fetch(spec.name, [absent]).num_rows == 0


def test_fetch_empty_list_returns_empty_batch(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    spec = make_index(spec_for(provider, "fetchempty"))
    write(provider, spec.name, make_batch(spec, make_ids(spec.id_type, 2)))
    got = provider.fetch(spec.name, [])
    assert got.num_rows == 0
    assert_record_schema(got, spec, "fetch([])")
