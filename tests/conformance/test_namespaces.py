"""Namespaces (and the default namespace "") are isolated for count, scan and fetch."""

from __future__ import annotations

from vectra_io.providers.base import DEFAULT_NAMESPACE, Provider

from .conftest import IndexFactory
from .harness import Harness
from .support import (
    assert_same_records,
    ids_of,
    make_batch,
    make_ids,
    require,
    scan_batch,
    scan_pages,
    spec_for,
    write,
)


def test_namespaces_are_isolated(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    require(harness, provider, "namespaces")
    caps = provider.capabilities
    spec = make_index(spec_for(provider, "namespaces"))
    sizes = {DEFAULT_NAMESPACE: 5, "alpha": 3, "beta": 4}
    shared = make_ids(spec.id_type, 1)[0]  # one id in every namespace, with other content
    batches = {}
    for k, (ns, n) in enumerate(sizes.items()):
        ids = [shared, *make_ids(spec.id_type, n - 1, start=100 * (k + 1))]
        label = ns or "default"
        batches[ns] = make_batch(
            spec, ids, seed=k, metadata=lambda i, rid, label=label: {"ns": label, "i": i}
        )
        write(provider, spec.name, batches[ns], ns)

    listed = provider.list_namespaces(spec.name)
    assert sorted(listed) == sorted(sizes), f"list_namespaces returned {listed!r}"
    every_id = [rid for b in batches.values() for rid in ids_of(b)]
    normalized = provider.describe_index(spec.name).normalized
    for ns, n in sizes.items():
        where = f"namespace {ns!r}"
        if caps.exact_count:
            assert provider.count(spec.name, ns) == n, f"count of {where}"
        scanned = scan_batch(provider, spec.name, ns)
        assert_same_records(
            batches[ns],
            scanned,
            exact=caps.exact_floats,
            normalized=normalized,
            what=f"scan of {where}",
        )
        fetched = provider.fetch(spec.name, sorted(set(every_id)), ns)
        assert_same_records(
            batches[ns],
            fetched,
            exact=caps.exact_floats,
            normalized=normalized,
            what=f"fetch in {where}",
        )

    assert sum(p.batch.num_rows for p in scan_pages(provider, spec.name, "gamma")) == 0
    assert provider.fetch(spec.name, [shared], "gamma").num_rows == 0
    if caps.exact_count:
        assert provider.count(spec.name, "gamma") == 0
