"""Suite-wide fixtures: the real servers and the HTTP doubles are plugins; import state is
kept in a temporary directory per test so no test reads another's progress (or ~/.local)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.servers.fixtures", "tests.doubles.fixtures"]


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "vectra-state"
    monkeypatch.setenv("VECTRA_STATE_DIR", str(state))
    return state
