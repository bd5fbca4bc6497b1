"""Conformance harness of the ``qdrant`` provider, against the spec-validating Qdrant double.

The provider runs in its default configuration (namespaces as a payload key with a keyword
payload index, listed through ``POST /collections/{c}/facet``). The shared double
(tests/doubles/qdrant.py) does not model ``/facet`` (a request to an unmodelled operation is
a violation), so this harness serves :class:`FacetQdrantDouble`: the same double plus a facet
handler following Qdrant's documented behaviour (an index on the key is required; exact
counts per value; hits by count, then value). Its answers are validated against the spec
like every other. When the shared double gains a facet handler, that one is used instead.

``namespaces=collection`` mode and the Qdrant specifics (ids, retries, auth) are covered by
tests/test_qdrant_provider.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.doubles.openapi_server import HTTPError, Request, Response, operation
from tests.doubles.qdrant import QdrantDouble, _field_values, _matches

from .harness import Harness

FACET_INDEX_TYPES = ("keyword", "integer", "bool", "uuid")


class FacetQdrantDouble(QdrantDouble):
    """The Qdrant double with ``POST /collections/{c}/facet``."""

    if "facet" not in QdrantDouble._handlers:

        @operation("facet")
        def facet(self, req: Request) -> Response:
            coll = self._collection(req)
            body = req.body or {}
            key = body["key"]
            info = coll.payload_schema.get(key)
            if info is None or info.get("data_type") not in FACET_INDEX_TYPES:
                raise HTTPError(
                    400,
                    f'Bad request: Index required but not found for "{key}" of one of the '
                    f"following types: [{', '.join(FACET_INDEX_TYPES)}]. Help: Create an "
                    "index for this key or use a different filter.",
                )
            flt = body.get("filter")
            counts: Counter[Any] = Counter()
            for point in coll.points.values():
                if flt is not None and not _matches(flt, point):
                    continue
                values = {
                    (type(v).__name__, v)
                    for v in _field_values(point.payload, key)
                    if isinstance(v, str | int | bool)
                }
                counts.update(v for _, v in values)
            limit = body.get("limit") or 10
            hits = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]
            return self.ok({"hits": [{"value": v, "count": c} for v, c in hits]})


def serve_double(request: pytest.FixtureRequest, **kwargs: Any) -> FacetQdrantDouble:
    """A started :class:`FacetQdrantDouble`, stopped at teardown, which then fails the test
    if the double recorded spec violations (as the ``qdrant_double`` fixture does)."""
    double = FacetQdrantDouble(**kwargs)
    double.start()

    def finish() -> None:
        try:
            problems = "\n".join(str(v) for v in double.violations)
            assert double.violations == [], f"the Qdrant double recorded violations:\n{problems}"
        finally:
            double.stop()

    request.addfinalizer(finish)
    return double


def make_harness(request: pytest.FixtureRequest) -> Harness:
    from vectra_io.providers.qdrant import QdrantProvider

    double = serve_double(request)
    location = double.url.removeprefix("http://")
    return Harness(name="qdrant", factory=lambda: QdrantProvider(location))
