from __future__ import annotations

import pytest

from tests.cli.helpers import VECTRA


@pytest.fixture(scope="session", autouse=True)
def _vectra_installed() -> None:
    if not VECTRA.exists():
        pytest.fail(f"{VECTRA} not found: install the package (pip install -e .)", pytrace=False)
