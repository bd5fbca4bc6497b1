"""Conformance harness of the ``weaviate`` provider, against the Weaviate REST test double.

The double (tests/doubles/weaviate.py, fixture ``weaviate_double``) validates every request
and answer against Weaviate's OpenAPI document; a violation fails the test at teardown.
Index names from :func:`unique_index_name` (``vc`` + letters and digits) become classes
``Vc...`` whose description records the vectra name. Classes are created multi-tenant, so
the default namespace is the tenant ``__default__``. Weaviate specifics (inactive tenants,
rename map, per-object batch errors, auth, retries) are in tests/test_weaviate_provider.py.
"""

from __future__ import annotations

import pytest

from vectra_io.providers.weaviate import WeaviateProvider

from .harness import Harness


def make_harness(request: pytest.FixtureRequest) -> Harness:
    double = request.getfixturevalue("weaviate_double")
    location = double.url.removeprefix("http://")
    return Harness(
        name="weaviate",
        factory=lambda: WeaviateProvider(location, timeout=30),
    )
