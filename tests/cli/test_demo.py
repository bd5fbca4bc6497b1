"""``vectra demo``: sample data on embedded LanceDB, the full cycle, the commands printed."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.cli.helpers import expect, run_vectra

pytest.importorskip("vectra_io.providers.lancedb")

STEPS = ("export", "inspect", "validate", "import", "verify")


def test_demo(tmp_path: Path) -> None:
    result = expect(run_vectra("demo", "demo-dir", cwd=tmp_path), 0)
    root = tmp_path / "demo-dir"
    assert (root / "source.lancedb").is_dir()
    assert (root / "target.lancedb").is_dir()
    assert (root / "snapshot" / "manifest.json").is_file()
    assert "Verification passed." in result.stdout
    assert "20,000 records of dimension 384" in result.stdout

    commands = [
        line.strip() for line in result.stdout.splitlines() if line.strip().startswith("vectra ")
    ]
    assert [shlex.split(c)[1] for c in commands] == list(STEPS)
    assert "--sample" in commands[-1]
    for step, line in zip(STEPS, commands, strict=True):
        if step in ("inspect", "validate"):  # the offline ones are quick to repeat
            expect(run_vectra(*shlex.split(line)[1:]), 0)


def test_demo_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = expect(run_vectra("demo", tmp_path), 2)
    assert "not empty" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_demo_reuses_its_own_directory(tmp_path: Path) -> None:
    """A directory made by `vectra demo` is cleared of the previous run's databases."""
    from vectra_cli.demo import MARKER, _prepare

    root = tmp_path / "d"
    _prepare(root)
    assert (root / MARKER).exists()
    for name in ("source.lancedb", "target.lancedb", "snapshot"):
        (root / name).mkdir()
        (root / name / "data").write_text("old")
    (root / "notes.txt").write_text("mine")
    _prepare(root)
    assert sorted(p.name for p in root.iterdir()) == sorted([MARKER, "notes.txt"])
