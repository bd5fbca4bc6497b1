"""Scans: every record exactly once over many pages; JSON cursors resume; the end is None."""

from __future__ import annotations

import json

from vectra_io.providers.base import IndexSpec, Provider

from .conftest import IndexFactory
from .harness import Harness
from .support import (
    assert_no_repeats,
    make_batch,
    make_ids,
    page_ids,
    scan_pages,
    spec_for,
    write,
)


def _populate(
    provider: Provider, make_index: IndexFactory, base: str, n: int
) -> tuple[IndexSpec, list[str]]:
    spec = make_index(spec_for(provider, base))
    ids = make_ids(spec.id_type, n)
    write(provider, spec.name, make_batch(spec, ids, seed=n))
    return spec, ids


def _assert_ids(got: list[str], want: list[str], what: str) -> None:
    assert_no_repeats(got, what)
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert not missing and not extra, (
        f"{what}: {len(missing)} ids missing (e.g. {missing[:5]}), "
        f"{len(extra)} unexpected (e.g. {extra[:5]})"
    )


def test_full_scan_many_pages(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    n, batch_size = 2500, 100
    spec, ids = _populate(provider, make_index, "scan", n)

    pages = scan_pages(provider, spec.name, batch_size=batch_size)
    _assert_ids(page_ids(pages), ids, f"scan of {n} records in pages of {batch_size}")
    sizes = [p.batch.num_rows for p in pages]
    for i, page in enumerate(pages[:-1]):
        assert page.cursor is not None, f"page {i} of {len(pages)} has cursor None before the end"
        assert sizes[i] > 0, f"page {i} of {len(pages)} is empty (only the last page may be)"
    assert max(sizes) <= 2 * batch_size, f"pages larger than batch_size={batch_size}: {sizes}"
    middle = sizes[:-1]
    assert not middle or sum(middle) / len(middle) >= batch_size / 2, (
        f"pages much smaller than batch_size={batch_size}: {sizes}"
    )


def test_last_page_cursor_is_none(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    """Also when the number of records is an exact multiple of batch_size."""
    n = 300
    spec, ids = _populate(provider, make_index, "lastcursor", n)
    for batch_size in (100, 70):
        pages = scan_pages(provider, spec.name, batch_size=batch_size)
        _assert_ids(page_ids(pages), ids, f"scan in pages of {batch_size}")
        assert pages[-1].cursor is None, (
            f"{n} records in pages of {batch_size}: the last page's cursor is "
            f"{pages[-1].cursor!r}, expected None"
        )


def test_scan_resumes_from_json_cursor(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    """The cursor after page k, JSON round-tripped and given to a new connection, resumes
    right after page k: first k pages + resumed scan = every id once."""
    n, batch_size = 750, 100
    spec, ids = _populate(provider, make_index, "resume", n)
    pages = scan_pages(provider, spec.name, batch_size=batch_size)
    assert len(pages) >= 4, f"{n} records in pages of {batch_size} came in {len(pages)} pages"

    other = harness.factory()
    try:
        for k in (1, len(pages) - 2):
            cursor = pages[k - 1].cursor
            assert cursor is not None, f"page {k} of {len(pages)} has cursor None"
            try:
                text = json.dumps(cursor)
            except (TypeError, ValueError) as exc:
                raise AssertionError(f"cursor {cursor!r} is not JSON-serialisable: {exc}") from exc
            resumed = scan_pages(other, spec.name, batch_size=batch_size, cursor=json.loads(text))
            first = page_ids(pages[:k])
            _assert_ids(
                first + page_ids(resumed), ids, f"first {k} pages + scan resumed after them"
            )
    finally:
        other.close()


def test_scan_of_empty_index(
    harness: Harness, provider: Provider, make_index: IndexFactory
) -> None:
    spec = make_index(spec_for(provider, "empty"))
    pages = scan_pages(provider, spec.name, batch_size=10)
    assert sum(p.batch.num_rows for p in pages) == 0
    assert not pages or pages[-1].cursor is None
    if provider.capabilities.exact_count:
        assert provider.count(spec.name) == 0
