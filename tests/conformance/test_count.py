"""count() is exact after upserts and after re-upserts of existing ids."""

from __future__ import annotations

from vectra_io.providers.base import Provider

from .conftest import IndexFactory
from .harness import Harness
from .support import make_batch, make_ids, require, spec_for, write


def test_count_exact_after_upserts_and_reupserts(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    require(harness, provider, "exact_count")
    spec = make_index(spec_for(provider, "count"))
    ids = make_ids(spec.id_type, 350)

    write(provider, spec.name, make_batch(spec, ids[:300], seed=1))
    assert provider.count(spec.name) == 300, "after upserting 300 new records"
    write(provider, spec.name, make_batch(spec, ids[200:], seed=2))
    assert provider.count(spec.name) == 350, "after re-upserting 100 and adding 50 records"
    write(provider, spec.name, make_batch(spec, ids, seed=3))
    assert provider.count(spec.name) == 350, "after re-upserting all 350 records"
