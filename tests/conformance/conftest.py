"""The provider conformance suite: one set of tests that every provider must pass.

Adding a provider = adding ONE file, ``tests/conformance/harness_<provider>.py``, that
defines ``make_harness(request) -> Harness`` (see ``harness.py`` and ``harness_memory.py``)::

    import pytest
    from vectra_io.providers.pgvector import PgVectorProvider
    from .harness import Harness

    def make_harness(request: pytest.FixtureRequest) -> Harness:
        server = request.getfixturevalue("postgres_server")  # tests/servers/fixtures.py
        location = f"{server.user}@{server.host}:{server.port}/{server.dbname}"
        return Harness(name="pgvector", factory=lambda: PgVectorProvider(location))

Every ``harness_*.py`` file is found by name; each test that takes the ``harness``,
``provider`` or ``make_index`` fixture runs once per harness (test ids end in
``[<provider>]``). The tests read ``provider.capabilities``: a capability a provider
does not declare is skipped with "<provider> does not declare <capability>", never
passed silently. ``make_harness`` runs per test, so it may ask for any fixture
(session-scoped server fixtures are cheap after the first test); it may call
``pytest.importorskip`` for an optional driver.

Run one provider: ``pytest tests/conformance -k memory`` or
``VECTRA_CONFORMANCE_PROVIDERS=memory,qdrant pytest tests/conformance``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from vectra_io.providers.base import IndexSpec, Provider

from .harness import Harness

HERE = Path(__file__).parent
PROVIDERS_ENV = "VECTRA_CONFORMANCE_PROVIDERS"
#: fixture plugins a harness may use through ``request.getfixturevalue(...)``
FIXTURE_PLUGINS = ("tests.servers.fixtures", "tests.doubles.fixtures")
PLUGIN_ERRORS: dict[str, str] = {}


def harness_names() -> list[str]:
    """The providers with a harness file, filtered by ``$VECTRA_CONFORMANCE_PROVIDERS``."""
    names = sorted(p.stem.removeprefix("harness_") for p in HERE.glob("harness_*.py"))
    wanted = {n.strip() for n in os.environ.get(PROVIDERS_ENV, "").split(",") if n.strip()}
    return [n for n in names if n in wanted] if wanted else names


@cache
def load_harness_module(name: str) -> ModuleType:
    """Import ``harness_<name>.py`` as a sibling module (so ``from .harness import`` works)."""
    if __package__:
        return importlib.import_module(f"{__package__}.harness_{name}")
    path = HERE / f"harness_{name}.py"  # pragma: no cover - rootdir-less import modes
    spec = importlib.util.spec_from_file_location(f"conformance_harness_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@cache
def conformance_test_names() -> frozenset[str]:
    names: set[str] = set()
    for path in HERE.glob("test_*.py"):
        names.update(re.findall(r"^def (test_\w+)", path.read_text(), flags=re.MULTILINE))
    return frozenset(names)


def pytest_configure(config: pytest.Config) -> None:
    """Make the real-server and HTTP-double fixtures available to harness files."""
    for plugin in FIXTURE_PLUGINS:
        try:
            if importlib.util.find_spec(plugin) is None:
                continue
            config.pluginmanager.import_plugin(plugin)
        except ModuleNotFoundError as exc:  # ``tests`` not importable: no repo root on path
            PLUGIN_ERRORS[plugin] = repr(exc)
        except Exception as exc:  # a broken plugin must not break the other providers
            PLUGIN_ERRORS[plugin] = repr(exc)


@pytest.fixture(params=harness_names())
def harness(request: pytest.FixtureRequest) -> Harness:
    """The harness of one provider; applies its declared ``skip`` and ``xfail`` entries."""
    name: str = request.param
    try:
        h: Harness = load_harness_module(name).make_harness(request)
    except Exception as exc:
        if PLUGIN_ERRORS:
            exc.add_note(f"fixture plugins that failed to load: {PLUGIN_ERRORS}")
        raise
    unknown = (set(h.skip) | set(h.xfail)) - conformance_test_names()
    if unknown:
        pytest.fail(f"harness_{name}.py names unknown conformance tests: {sorted(unknown)}")
    test = getattr(request.node, "originalname", request.node.name)
    if test in h.skip:
        pytest.skip(f"{h.name} deviates: {h.skip[test]}")
    if test in h.xfail:
        request.applymarker(pytest.mark.xfail(reason=f"{h.name}: {h.xfail[test]}", strict=True))
    return h


@pytest.fixture
def provider(harness: Harness) -> Iterator[Provider]:
    """A provider connected to the store under test; closed after the test."""
    p = harness.factory()
    try:
        yield p
    finally:
        p.close()


class IndexFactory:
    """Creates indexes with unique names; every name it hands out is cleaned up."""

    def __init__(self, harness: Harness, provider: Provider) -> None:
        self.harness = harness
        self.provider = provider
        self.names: list[str] = []

    def reserve(self, base: str) -> str:
        """A unique index name that will be cleaned up at teardown (nothing is created)."""
        name = self.harness.index_name(base)
        self.names.append(name)
        return name

    def __call__(self, spec: IndexSpec) -> IndexSpec:
        """Create ``spec`` under a unique name derived from ``spec.name``; return the spec used."""
        real = spec.renamed(self.reserve(spec.name))
        self.provider.create_index(real)
        return real

    def cleanup(self) -> None:
        errors = []
        for name in reversed(self.names):
            try:
                self.harness.cleanup(self.provider, name)
            except Exception as exc:
                errors.append(f"{name}: {exc!r}")
        if errors:
            raise AssertionError(f"{self.harness.name}: cleanup failed for {errors}")


@pytest.fixture
def make_index(harness: Harness, provider: Provider) -> Iterator[IndexFactory]:
    """``make_index(IndexSpec("base", 8, ...))`` creates a uniquely named index (deleted at
    teardown) and returns its spec; ``make_index.reserve("base")`` only reserves a name."""
    factory = IndexFactory(harness, provider)
    try:
        yield factory
    finally:
        factory.cleanup()
