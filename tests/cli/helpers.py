"""Run the real ``vectra`` executable in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VECTRA = Path(sys.executable).parent / "vectra"


@dataclass
class Result:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        """stdout parsed as exactly one JSON document (fails if anything else is there)."""
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"stdout is not one JSON document: {exc}\n{self}") from exc

    def __str__(self) -> str:
        return (
            f"vectra {' '.join(self.args)} -> exit {self.code}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def run_vectra(
    *args: str | Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 180,
) -> Result:
    """Run ``vectra ARGS``; stdout and stderr are pipes (not terminals).

    The ``VECTRA_*`` variables of this process are not passed on, except
    ``VECTRA_STATE_DIR`` (a temporary directory per test, see tests/conftest.py): import
    state never goes to the real ``~/.local/state``.
    """
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VECTRA_") or k in ("VECTRA_STATE_DIR", "VECTRA_SKIP_SERVERS")
    }
    full_env.update({"NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
    full_env.update(env or {})
    argv = tuple(str(a) for a in args)
    proc = subprocess.run(
        [str(VECTRA), *argv],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Result(argv, proc.returncode, proc.stdout, proc.stderr)


def expect(result: Result, code: int) -> Result:
    assert result.code == code, str(result)
    return result
