"""Run the real ``vectra`` executable, kill it with SIGKILL at a chosen moment, and compare
what it left behind with the data it was given.

Timing. A run prints a plain progress line on stderr for every progress report
(``VECTRA_PROGRESS_INTERVAL=0``); the first one marks the end of the start-up (imports,
connections, counts) and reports how much an earlier run already did. A kill is scheduled
at ``fraction`` x the *remaining work time*, estimated from a normal run measured first
(:func:`measure`): its work time (first progress line -> exit) scaled by the share of the
records still to do. Start-up time varies a lot with the machine's load; measuring from the
first progress line keeps the kills inside the work.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

VECTRA = Path(sys.executable).parent / "vectra"
PROGRESS = re.compile(r"^(export|import|retry-failed): ([\d,]+)/([\d,]+) records \(([\d.]+)%\)")
RUN_TIMEOUT = 300.0


def vectra_env(state_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``vectra`` subprocess: no VECTRA_* of ours, its own state dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECTRA_")}
    env.update(
        {
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
            "VECTRA_PROGRESS_INTERVAL": "0",
            "VECTRA_STATE_DIR": str(state_dir),
        }
    )
    env.update(extra or {})
    return env


@dataclass
class Run:
    """One ``vectra`` process: its exit, timings and output."""

    argv: tuple[str, ...]
    code: int | None = None
    started: float = 0.0
    first_progress: float | None = None  # monotonic time of the first progress line
    last_progress: float | None = None  # ... and of the last one (the work is done)
    first_percent: float = 0.0  # done (by earlier runs) when the first line was printed
    ended: float = 0.0
    kill_at: float | None = None  # planned delay after the first progress line
    stdout: str = ""
    stderr_lines: list[str] = field(default_factory=list)

    @property
    def killed(self) -> bool:
        """True when SIGKILL ended a process that was still running."""
        return self.code == -signal.SIGKILL

    @property
    def work_time(self) -> float:
        """From the first progress line to the last (start-up and exit not included)."""
        return (self.last_progress or self.ended) - (self.first_progress or self.started)

    @property
    def total_time(self) -> float:
        return self.ended - self.started

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    def describe(self) -> str:
        tail = "\n".join(self.stderr_lines[-15:])
        return f"vectra {' '.join(self.argv)} -> {self.code}\n--- stderr (tail) ---\n{tail}"


def launch(
    argv: Sequence[str | Path],
    env: Mapping[str, str],
    *,
    kill_fraction: float | None = None,
    expected_work: float = 0.0,
) -> Run:
    """Run ``vectra ARGV``; with ``kill_fraction``, SIGKILL it that far into its remaining
    work (``expected_work`` seconds for a whole run, scaled by what is left to do)."""
    run = Run(tuple(str(a) for a in argv))
    first = threading.Event()
    proc = subprocess.Popen(
        [str(VECTRA), *run.argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env),
    )
    run.started = time.monotonic()
    out: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip("\n")
            run.stderr_lines.append(line)
            match = PROGRESS.match(line)
            if match:
                run.last_progress = time.monotonic()
                if not first.is_set():
                    run.first_progress = run.last_progress
                    run.first_percent = float(match.group(4))
                    first.set()

    def read_stdout() -> None:
        assert proc.stdout is not None
        out.append(proc.stdout.read())

    readers = [threading.Thread(target=read_stderr), threading.Thread(target=read_stdout)]
    for t in readers:
        t.daemon = True
        t.start()
    try:
        if kill_fraction is not None:
            deadline = run.started + RUN_TIMEOUT
            while not first.wait(0.01) and proc.poll() is None:
                if time.monotonic() > deadline:
                    break
            if first.is_set():
                remaining = expected_work * max(0.0, 1.0 - run.first_percent / 100.0)
                run.kill_at = kill_fraction * remaining
                assert run.first_progress is not None
                until = run.first_progress + run.kill_at
                while proc.poll() is None and time.monotonic() < until:
                    time.sleep(min(0.005, max(0.0, until - time.monotonic())))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        run.code = proc.wait(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        run.ended = time.monotonic()
        for t in readers:
            t.join(timeout=10)
    run.stdout = "".join(out)
    return run


def measure(argv: Sequence[str | Path], env: Mapping[str, str]) -> Run:
    """A normal run (it must succeed); its ``work_time`` schedules the kills."""
    run = launch(argv, env)
    assert run.code == 0, run.describe()
    return run


# -- the data ------------------------------------------------------------------------


@dataclass
class Records:
    """Records of one namespace, sorted by id: ids, float32 vectors, metadata JSON texts."""

    ids: np.ndarray
    vectors: np.ndarray
    metadata: list[str | None]

    @classmethod
    def build(
        cls, ids: Iterable[str], vectors: np.ndarray, metadata: Iterable[str | None]
    ) -> Records:
        id_arr = np.asarray(list(ids), dtype=object)
        meta = list(metadata)
        order = np.argsort(id_arr, kind="stable")
        return cls(id_arr[order], np.asarray(vectors, np.float32)[order], [meta[i] for i in order])

    @classmethod
    def from_table(cls, table: pa.Table, vector_column: str = "values") -> Records:
        col = table.column(vector_column).combine_chunks()
        dim = col.type.list_size
        flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        return cls.build(
            table.column("id").to_pylist(),
            flat.reshape(-1, dim),
            table.column("metadata").to_pylist(),
        )


def compare(label: str, got: Records, want: Records) -> list[str]:
    """Every difference between ``got`` and ``want``: ids (duplicates, missing, extra),
    float32 bits of every vector, metadata as JSON. Empty when they are equal."""
    problems: list[str] = []
    ids = got.ids.tolist()
    if len(set(ids)) != len(ids):
        dups = sorted(i for i, n in Counter(ids).items() if n > 1)
        problems.append(f"{label}: {len(ids) - len(set(ids))} duplicate rows, e.g. {dups[:5]}")
    missing = sorted(set(want.ids.tolist()) - set(ids))
    extra = sorted(set(ids) - set(want.ids.tolist()))
    if missing:
        problems.append(f"{label}: {len(missing)} records missing, e.g. {missing[:5]}")
    if extra:
        problems.append(f"{label}: {len(extra)} unexpected records, e.g. {extra[:5]}")
    if problems:
        return problems
    bits_got = got.vectors.view(np.uint32)
    bits_want = want.vectors.view(np.uint32)
    bad = np.flatnonzero(np.any(bits_got != bits_want, axis=1))
    if len(bad):
        problems.append(f"{label}: {len(bad)} vectors differ, e.g. {got.ids[bad[:5]].tolist()}")
    meta_bad = [
        str(got.ids[i])
        for i, (a, b) in enumerate(zip(got.metadata, want.metadata, strict=True))
        if (None if a is None else json.loads(a)) != (None if b is None else json.loads(b))
    ]
    if meta_bad:
        problems.append(f"{label}: {len(meta_bad)} metadata differ, e.g. {meta_bad[:5]}")
    return problems


def snapshot_records(snapshot: Path) -> tuple[dict[str, Any], dict[str, Records]]:
    """The manifest and, per namespace (``""`` = default), the records of its listed parts."""
    manifest = json.loads((snapshot / "manifest.json").read_text())
    out = {}
    for entry in manifest["indexes"].values():
        for key, ns in entry["namespaces"].items():
            tables = [pq.read_table(snapshot / p["path"]) for p in ns["parts"]]
            name = "" if key == "__default__" else key
            if tables:
                out[name] = Records.from_table(pa.concat_tables(tables))
    return manifest, out


def unlisted_files(snapshot: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Part files in the snapshot directory that its manifest does not list."""
    listed = {
        p["path"]
        for entry in manifest["indexes"].values()
        for ns in entry["namespaces"].values()
        for p in ns["parts"]
    }
    return sorted(
        str(p.relative_to(snapshot))
        for p in snapshot.rglob("*")
        if p.is_file() and p.name != "manifest.json" and str(p.relative_to(snapshot)) not in listed
    )


def state_file(state_dir: Path) -> Path | None:
    files = sorted(state_dir.glob("import-*.json"))
    assert len(files) <= 1, files
    return files[0] if files else None


def recorded_chunks(
    state: Mapping[str, Any], snapshot: Path, manifest: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Per namespace, the ids of every chunk the import state says is done (chunks are
    numbered as the importer reads them: ``iter_batches(batch_size=chunk_size)``)."""
    where = {
        p["path"]: ("" if key == "__default__" else key)
        for entry in manifest["indexes"].values()
        for key, ns in entry["namespaces"].items()
        for p in ns["parts"]
    }
    out: dict[str, list[str]] = {}
    for relpath, part in state.get("parts", {}).items():
        pf = pq.ParquetFile(snapshot / relpath)
        done = set(part["done"])
        for number, batch in enumerate(pf.iter_batches(batch_size=part["chunk_size"])):
            if part["complete"] or number in done:
                out.setdefault(where[relpath], []).extend(batch.column("id").to_pylist())
    return out
