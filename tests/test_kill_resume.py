"""Crash safety of the real ``vectra`` executable: SIGKILL at random points, then resume.

Each trial runs ``vectra export`` / ``vectra import`` in a subprocess, kills it with SIGKILL
at a random moment of its work (seeded RNG; the moment is a random fraction of the work
time of a normal run, measured first), runs the same command again, and compares what
came out with the source: the exact id set (no record missing, none twice), the float32
bits of every vector and the metadata JSON of every record, then ``vectra verify --sample``.
Between the kills, what a killed run left must already be consistent: the parts its
manifest lists hold only source records, once each; every chunk the import state lists is
in the target.

Numbers (trials, kills that landed mid-run, outcomes) are printed to the test log.
``VECTRA_KILL_SEED`` changes the seed, ``VECTRA_KILL_CHAINS`` the number of chains.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from tests.faults.harness import (
    Records,
    Run,
    compare,
    launch,
    measure,
    recorded_chunks,
    snapshot_records,
    state_file,
    unlisted_files,
    vectra_env,
)
from tests.faults.providers import ack_lines, read_acks, site_env

lancedb = pytest.importorskip("lancedb")
pytest.importorskip("vectra_io.providers.lancedb")
pytestmark = pytest.mark.timeout(900)  # a loaded machine starts processes slowly

SEED = int(os.environ.get("VECTRA_KILL_SEED", "20260517"))
N, DIM = 30_000, 64
B_EVERY = 3  # every third record is in namespace "b", the others in the default one
UPDATED = 2_000  # records written a second time (new metadata): the source has dead rows
CHAINS = int(os.environ.get("VECTRA_KILL_CHAINS", "5"))
WORKERS = int(os.environ.get("VECTRA_KILL_WORKERS", "2"))  # chains run this many at a time
KILLS_PER_CHAIN = 2  # kill, resume and kill again, resume to the end
EXPORT_ARGS = ("--part-rows", "1000", "--batch-size", "250")  # 30 parts, 120 checkpoints
IMPORT_ARGS = ("--chunk-size", "250", "--concurrency", "4")  # 120 chunks in 30 parts
SAMPLE = "300"
KILL_WINDOW = (0.05, 0.95)  # kill this far into the remaining work (uniform)


@dataclass
class Source:
    url: str
    path: Path
    records: dict[str, Records]  # per namespace

    @property
    def total(self) -> int:
        return sum(len(r.ids) for r in self.records.values())

    def subset(self, namespace: str, ids: list[str]) -> Records:
        want = self.records[namespace]
        pos = np.searchsorted(want.ids, np.asarray(ids, dtype=object))
        pos = np.clip(pos, 0, len(want.ids) - 1)
        found = want.ids[pos] == np.asarray(ids, dtype=object)
        pos = pos[found]
        return Records.build(
            want.ids[pos].tolist(), want.vectors[pos], [want.metadata[i] for i in pos]
        )


@dataclass
class Tally:
    """What the kills did, for the log."""

    name: str
    attempts: int = 0
    mid_run: int = 0  # SIGKILL ended a running process whose work was not finished
    after_checkpoint: int = 0  # ... which had already saved some progress
    late: int = 0  # SIGKILL ended a process whose work was done (while it exited)
    finished_first: int = 0  # the run ended by itself before its kill time
    delays: list[float] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)

    def add(self, run: Run, complete: bool, progressed: bool) -> None:
        self.attempts += 1
        if run.kill_at is not None:
            self.delays.append(round(run.kill_at, 2))
        if not run.killed:
            self.finished_first += 1
        elif complete:
            self.late += 1
        else:
            self.mid_run += 1
            self.after_checkpoint += progressed

    def line(self) -> str:
        return (
            f"{self.name}: {self.attempts} SIGKILLs scheduled, {self.mid_run} landed mid-run "
            f"({self.after_checkpoint} after at least one checkpoint), {self.late} after the "
            f"work was done, {self.finished_first} runs ended before their kill; delays after "
            f"the start of the work (s): {self.delays}; outcomes: {self.outcomes}"
        )


def report(capsys: pytest.CaptureFixture[str], *lines: str) -> None:
    """To the test log, also when pytest captures output."""
    with capsys.disabled():
        print()
        for line in lines:
            print(f"[kill-resume] {line}")


def lancedb_records(path: Path, index: str = "docs") -> dict[str, Records]:
    """The records of a vectra-made LanceDB table, read with lancedb itself."""
    table = lancedb.connect(str(path)).open_table(index).to_arrow()
    out = {}
    namespaces = table.column("namespace").to_pylist()
    for ns in sorted(set(namespaces)):
        mask = pa.array([n == ns for n in namespaces])
        out[ns] = Records.from_table(table.filter(mask), vector_column="vector")
    return out


def lancedb_target(path: Path) -> dict[str, Records]:
    """The target's records, or nothing while its table does not exist yet."""
    return lancedb_records(path) if (path / "docs.lance").exists() else {}


def compare_all(label: str, got: dict[str, Records], source: Source) -> list[str]:
    problems = []
    if set(got) != set(source.records):
        problems.append(f"{label}: namespaces {sorted(got)} != {sorted(source.records)}")
    for ns, want in source.records.items():
        if ns in got:
            problems += compare(f"{label} namespace {ns!r}", got[ns], want)
    return problems


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    """30,000 records of dimension 64 in two namespaces whose rows are interleaved on disk,
    2,000 of them rewritten (dead rows in the fragments), metadata with nested JSON."""
    from vectra_io.providers.base import IndexSpec
    from vectra_io.providers.lancedb import LanceDBProvider
    from vectra_io.records import record_schema

    path = tmp_path_factory.mktemp("kill-source") / "source.lancedb"
    rng = np.random.default_rng(SEED)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    vectors[::997, 0] = -0.0  # signed zero and a subnormal survive too
    vectors[::991, 1] = np.float32(1e-42)
    ids = np.array([f"doc-{i:06d}" for i in range(N)], dtype=object)
    namespaces = np.array(["b" if i % B_EVERY == 0 else "" for i in range(N)], dtype=object)

    def meta(i: int, version: int) -> str | None:
        if i % 50 == 0:
            return None
        return json.dumps({"i": i, "v": version, "tag": ["x", "y"][i % 2], "txt": f"é✓ {i}"})

    metadata = [meta(i, 1) for i in range(N)]
    provider = LanceDBProvider(str(path))
    spec = IndexSpec("docs", DIM, "cosine")
    provider.create_index(spec)
    schema = record_schema(spec)

    def write(rows: np.ndarray) -> None:
        for ns in ("", "b"):
            sel = rows[namespaces[rows] == ns]
            batch = pa.record_batch(
                [
                    pa.array(ids[sel].tolist(), pa.string()),
                    pa.FixedSizeListArray.from_arrays(pa.array(vectors[sel].ravel()), DIM),
                    pa.array([metadata[i] for i in sel], pa.string()),
                ],
                schema=schema,
            )
            assert provider.upsert("docs", batch, ns) == {}

    for start in range(0, N, 5_000):
        write(np.arange(start, min(N, start + 5_000)))
    rewritten = np.sort(rng.choice(N, UPDATED, replace=False))
    for i in rewritten:
        metadata[i] = meta(int(i), 2)
    write(rewritten)
    provider.close()

    records = {
        ns: Records.build(
            ids[namespaces == ns].tolist(),
            vectors[namespaces == ns],
            [metadata[i] for i in np.flatnonzero(namespaces == ns)],
        )
        for ns in ("", "b")
    }
    src = Source(f"lancedb://{path}", path, records)
    assert compare_all("source as written", lancedb_records(path), src) == []
    return src


@dataclass
class Baseline:
    snapshot: Path
    export: Run
    imports: Run


@pytest.fixture(scope="module")
def baseline(source: Source, tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    """A normal export and import, timed: the kills are scheduled from these durations."""
    root = tmp_path_factory.mktemp("kill-baseline")
    env = vectra_env(root / "state")
    snap = root / "snap"
    export = measure(["export", source.url, snap, *EXPORT_ARGS], env)
    manifest, got = snapshot_records(snap)
    assert manifest["complete"] is True
    assert compare_all("baseline snapshot", got, source) == []
    imports = measure(["import", snap, f"lancedb://{root / 'target.lancedb'}", *IMPORT_ARGS], env)
    assert compare_all("baseline target", lancedb_records(root / "target.lancedb"), source) == []
    return Baseline(snap, export, imports)


# -- export and import into LanceDB -------------------------------------------------------


def check_partial_snapshot(snap: Path, source: Source) -> tuple[bool, bool, list[str]]:
    """After a kill: every listed part is whole and holds source records, each once.

    Returns whether the export is complete, whether the manifest lists any part, and the
    problems found.
    """
    if not (snap / "manifest.json").exists():
        return False, False, []
    manifest, got = snapshot_records(snap)
    problems = []
    for ns, records in got.items():
        want = source.subset(ns, records.ids.tolist())
        problems += compare(f"partial snapshot namespace {ns!r}", records, want)
    return manifest["complete"], bool(got), problems


def check_partial_import(
    state_dir: Path,
    snap: Path,
    read_target: Callable[[], dict[str, Records]],
    source: Source,
    namespaces: Sequence[str] | None = None,
) -> tuple[bool, bool, list[str]]:
    """After a kill: every chunk the import state lists is in the target, exactly, and the
    target holds nothing but source records, once each.

    Returns whether the state has every part (of ``namespaces``, default all) complete,
    whether it lists any chunk, and the problems found.
    """
    path = state_file(state_dir)
    if path is None:
        return False, False, []
    state = json.loads(path.read_text())
    manifest = json.loads((snap / "manifest.json").read_text())
    parts = [
        p["path"] for _, key, p in _parts(manifest) if namespaces is None or _ns(key) in namespaces
    ]
    complete = all(state["parts"].get(p, {}).get("complete") for p in parts)
    chunks = recorded_chunks(state, snap, manifest)
    in_target = read_target()
    problems = []
    for ns, ids in chunks.items():
        have = in_target.get(ns)
        have_ids = set() if have is None else set(have.ids.tolist())
        lost = sorted(set(ids) - have_ids)
        if lost:
            problems.append(
                f"state lists {len(lost)} records of namespace {ns!r} the target does not "
                f"hold, e.g. {lost[:5]}"
            )
    for ns, have in in_target.items():
        problems += compare(
            f"partial target namespace {ns!r}", have, source.subset(ns, have.ids.tolist())
        )
    return complete, any(chunks.values()), problems


def _ns(key: str) -> str:
    return "" if key == "__default__" else key


def _parts(manifest: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (index, key, part)
        for index, entry in manifest["indexes"].items()
        for key, ns in entry["namespaces"].items()
        for part in ns["parts"]
    ]


@dataclass
class Chain:
    """One chain: its kill fractions (drawn up front, in order) and what happened."""

    number: int
    export_fractions: list[float]
    import_fractions: list[float]
    export_kills: list[tuple[Run, bool, bool]] = field(default_factory=list)
    import_kills: list[tuple[Run, bool, bool]] = field(default_factory=list)
    export_problems: list[str] = field(default_factory=list)
    import_problems: list[str] = field(default_factory=list)


def run_chain(chain: Chain, root: Path, source: Source, baseline: Baseline) -> Chain:
    """Export killed and resumed until complete, compared with the source; the import of
    that snapshot killed and resumed until complete, compared; then ``vectra verify``."""
    n = chain.number
    env = vectra_env(root / "state")
    snap = root / "snap"
    target = root / "target.lancedb"
    target_url = f"lancedb://{target}"
    export_argv = ["export", source.url, snap, *EXPORT_ARGS]
    import_argv = ["import", snap, target_url, *IMPORT_ARGS, "--json"]

    complete = False
    for fraction in chain.export_fractions:
        run = launch(
            export_argv, env, kill_fraction=fraction, expected_work=baseline.export.work_time
        )
        complete, progressed, found = check_partial_snapshot(snap, source)
        chain.export_kills.append((run, complete, progressed))
        chain.export_problems += [f"chain {n} after an export kill: {p}" for p in found]
        assert run.killed or run.code == 0, run.describe()
        if complete:
            break
    if not complete:
        run = launch(export_argv, env)
        assert run.code == 0, run.describe()
        assert "resuming the interrupted export" in "\n".join(run.stderr_lines)
    manifest, got = snapshot_records(snap)
    assert manifest["complete"] is True
    chain.export_problems += compare_all(f"chain {n} snapshot", got, source)
    leftovers = [f for f in unlisted_files(snap, manifest) if ".tmp-" not in f]
    if leftovers:
        chain.export_problems.append(f"chain {n} snapshot: unlisted part files {leftovers}")

    complete = False
    for fraction in chain.import_fractions:
        run = launch(
            import_argv, env, kill_fraction=fraction, expected_work=baseline.imports.work_time
        )
        complete, progressed, found = check_partial_import(
            root / "state", snap, lambda: lancedb_target(target), source
        )
        chain.import_kills.append((run, complete, progressed))
        chain.import_problems += [f"chain {n} after an import kill: {p}" for p in found]
        assert run.killed or run.code == 0, run.describe()
        if complete:
            break
    if not complete:
        run = launch(import_argv, env)
        assert run.code == 0, run.describe()
        result = run.json
        assert result["failed_count"] == 0
        if any(progressed for _, _, progressed in chain.import_kills):
            assert result["skipped_count"] > 0  # it did resume
        assert result["imported_count"] + result["skipped_count"] >= source.total
    chain.import_problems += compare_all(f"chain {n} target", lancedb_records(target), source)

    verify = launch(
        ["verify", snap, target_url, "--source", source.url, "--sample", SAMPLE, "--json"], env
    )
    assert verify.code in (0, 4), verify.describe()
    doc = verify.json
    if not doc["match"] or min(row["sample_checked"] for row in doc["namespaces"]) == 0:
        chain.import_problems.append(f"chain {n}: vectra verify: {json.dumps(doc)[:2000]}")
    return chain


def test_sigkill_export_and_import_resume(
    source: Source, baseline: Baseline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CHAINS chains (WORKERS at a time): ``vectra export`` SIGKILLed KILLS_PER_CHAIN times
    and resumed, ``vectra import`` of its snapshot the same, everything compared with the
    source after every kill and at the end, then ``vectra verify --source --sample``."""
    rng = random.Random(SEED)
    chains = [
        Chain(
            n,
            [rng.uniform(*KILL_WINDOW) for _ in range(KILLS_PER_CHAIN)],
            [rng.uniform(*KILL_WINDOW) for _ in range(KILLS_PER_CHAIN)],
        )
        for n in range(CHAINS)
    ]
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [
            pool.submit(run_chain, c, tmp_path / f"chain-{c.number}", source, baseline)
            for c in chains
        ]
        done = [f.result() for f in futures]
    elapsed = time.monotonic() - started

    exports, imports = Tally("export"), Tally("import")
    problems: list[str] = []
    for chain in done:
        for run, complete, progressed in chain.export_kills:
            exports.add(run, complete, progressed)
        for run, complete, progressed in chain.import_kills:
            imports.add(run, complete, progressed)
        exports.outcomes.append("MISMATCH" if chain.export_problems else "ok")
        imports.outcomes.append("MISMATCH" if chain.import_problems else "ok")
        problems += chain.export_problems + chain.import_problems
    report(
        capsys,
        f"seed {SEED}; {N:,} records x {DIM} in 2 namespaces; {CHAINS} chains, "
        f"{WORKERS} at a time, {KILLS_PER_CHAIN} SIGKILLs per command; normal runs: export "
        f"{baseline.export.work_time:.2f}s of work ({baseline.export.total_time:.2f}s in all), "
        f"import {baseline.imports.work_time:.2f}s ({baseline.imports.total_time:.2f}s)",
        exports.line(),
        imports.line(),
        f"{CHAINS} chains took {elapsed:.1f}s; problems: {len(problems)}",
        *problems[:20],
    )
    assert problems == []
    for tally in (exports, imports):
        # most kills must hit a running process, or the test proves little
        assert tally.mid_run >= 0.7 * tally.attempts, tally.line()


# -- a kill at the end of a namespace (deterministic) ---------------------------------------


def test_kill_right_after_final_checkpoint_of_a_namespace(
    source: Source, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL right after the manifest save that records the last part of the first
    namespace (its source scan is finished, cursor null): the resume must not scan that
    namespace again. (Before the fix in export.py ``_Checkpoints.settle`` the status stayed
    ``in_progress`` with a null cursor, and the resume re-read the whole namespace from its
    start: every record of it twice.)"""
    snap = tmp_path / "snap"
    argv = ["export", source.url, snap, *EXPORT_ARGS]
    env = vectra_env(tmp_path / "state", site_env(VECTRA_FAULT_KILL_AT="final-checkpoint"))
    killed = launch(argv, env)
    assert killed.killed, killed.describe()
    manifest = json.loads((snap / "manifest.json").read_text())
    first = manifest["indexes"]["docs"]["namespaces"]["__default__"]
    assert first["cursor"] is None and first["parts"]
    assert manifest["complete"] is False

    resumed = launch(argv, vectra_env(tmp_path / "state"))
    assert resumed.code == 0, resumed.describe()
    manifest, got = snapshot_records(snap)
    problems = compare_all("snapshot resumed after the final checkpoint", got, source)
    rows = {k: ns["rows"] for k, ns in manifest["indexes"]["docs"]["namespaces"].items()}
    report(capsys, f"kill after a namespace's final checkpoint: rows {rows}; {problems or 'ok'}")
    assert problems == []
    assert {ns["status"] for ns in manifest["indexes"]["docs"]["namespaces"].values()} == {"done"}


# -- a slow target: the state records only what the target acknowledged ----------------------


def test_sigkill_slow_target_state_only_records_acknowledged_chunks(
    source: Source, baseline: Baseline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Import namespace ``b`` into a target whose upserts take 0.1 s and log what they
    committed (fsynced before returning); SIGKILL mid-run. Every chunk the state file lists
    must be in that log and in the target; the resumed import ends with exactly the
    snapshot's records in the target (count equality: no duplicates), though some were
    written twice."""
    rng = random.Random(SEED + 3)
    tally = Tally("slow-target import")
    lines = []
    measured: Run | None = None
    for trial in range(-1, 3):  # trial -1: the normal run the kills are timed from
        root = tmp_path / f"slow-{trial}"
        target = root / "target.lancedb"
        acks = root / "acks.log"
        root.mkdir()
        env = vectra_env(
            root / "state",
            site_env(VECTRA_FAULT_DELAY="0.1", VECTRA_FAULT_ACK_LOG=str(acks)),
        )
        argv = ["import", baseline.snapshot, f"faultylance://{target}", "--namespace", "b"]
        argv += [*IMPORT_ARGS, "--json"]
        if measured is None:
            measured = measure(argv, env)
            continue
        run = launch(
            argv, env, kill_fraction=rng.uniform(*KILL_WINDOW), expected_work=measured.work_time
        )
        complete, progressed, problems = check_partial_import(
            root / "state", baseline.snapshot, lambda t=target: lancedb_target(t), source, ["b"]
        )
        tally.add(run, complete, progressed)
        path = state_file(root / "state")
        recorded: set[str] = set()
        if path is not None:
            manifest = json.loads((baseline.snapshot / "manifest.json").read_text())
            state = json.loads(path.read_text())
            recorded = set(recorded_chunks(state, baseline.snapshot, manifest).get("b", []))
        acked = {rid for ns, rid in read_acks(acks) if ns == "b"}
        unacked = sorted(recorded - acked)
        if unacked:
            problems.append(f"state lists {len(unacked)} unacknowledged records: {unacked[:5]}")
        in_flight = len(acked - recorded)  # acknowledged, not yet in the state: rewritten

        resumed = launch(argv, env)
        assert resumed.code == 0, resumed.describe()
        result = resumed.json
        table = lancedb.connect(str(target)).open_table("docs")
        count = table.count_rows("namespace = 'b'")
        distinct = len(set(table.to_arrow().column("id").to_pylist()))
        if count != 10_000 or distinct != count:
            problems.append(f"target holds {count} rows, {distinct} distinct ids; want 10000")
        only_b = Source(source.url, source.path, {"b": source.records["b"]})
        problems += compare_all(f"slow trial {trial}", lancedb_records(target), only_b)
        written_twice = len(ack_lines(acks)) - len(read_acks(acks))
        tally.outcomes.append("ok" if not problems else "MISMATCH")
        lines.append(
            f"trial {trial}: killed={run.killed} after {run.kill_at or 0:.2f}s of work; state "
            f"listed {len(recorded)} records, target had acknowledged {len(acked)} "
            f"({in_flight} not yet in the state); resume imported {result['imported_count']}, "
            f"skipped {result['skipped_count']}; {written_twice} records written twice; target "
            f"count {count}; problems {problems or 'none'}"
        )
        assert problems == [], lines[-1]
    assert measured is not None
    report(capsys, tally.line(), f"normal run {measured.work_time:.2f}s of work", *lines)
    assert tally.mid_run >= 2, tally.line()


# -- a real server: PostgreSQL + pgvector as the import target ---------------------------------

PG_TRIALS = 3


def pg_records(dsn: str, table: str) -> dict[str, Records]:
    """The rows of a vectra-made pgvector table, read with plain SQL (vectors as real[])."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone()
        if exists is None or exists[0] is None:
            return {}
        rows = conn.execute(
            f"SELECT namespace, id, embedding::real[], metadata::text FROM public.{table}"
        ).fetchall()
    out: dict[str, Records] = {}
    for ns in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == ns]
        vectors = np.array([r[2] for r in mine], dtype=np.float32).reshape(-1, DIM)
        out[ns] = Records.build([r[1] for r in mine], vectors, [r[3] for r in mine])
    return out


def test_sigkill_import_into_pgvector(
    source: Source,
    baseline: Baseline,
    postgres_server: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Import into PostgreSQL + pgvector, SIGKILL mid-run, resume; compare every row (SQL)
    with the source, then ``vectra verify --sample``."""
    pytest.importorskip("psycopg")
    url = f"pgvector://postgres@{postgres_server.host}:{postgres_server.port}/postgres?hnsw=false"
    dsn = postgres_server.dsn
    rng = random.Random(SEED + 7)
    tally = Tally("pgvector import")
    problems: list[str] = []
    env = vectra_env(tmp_path / "state-base")
    measured = measure(
        ["import", baseline.snapshot, url, "--index", "docs=kr_base", *IMPORT_ARGS], env
    )
    assert compare_all("pgvector baseline", pg_records(dsn, "kr_base"), source) == []
    for trial in range(PG_TRIALS):
        table = f"kr_trial_{trial}"
        state_dir = tmp_path / f"state-{trial}"
        env = vectra_env(state_dir)
        argv = ["import", baseline.snapshot, url, "--index", f"docs={table}", *IMPORT_ARGS]
        run = launch(
            [*argv, "--json"],
            env,
            kill_fraction=rng.uniform(*KILL_WINDOW),
            expected_work=measured.work_time,
        )
        complete, progressed, found = check_partial_import(
            state_dir, baseline.snapshot, lambda t=table: pg_records(dsn, t), source
        )
        tally.add(run, complete, progressed)
        problems += [f"pgvector trial {trial} after the kill: {p}" for p in found]
        resumed = launch([*argv, "--json"], env)
        assert resumed.code == 0, resumed.describe()
        found = compare_all(f"pgvector trial {trial}", pg_records(dsn, table), source)
        verify = launch(
            [
                "verify",
                baseline.snapshot,
                url,
                "--index",
                f"docs={table}",
                "--sample",
                SAMPLE,
                "--json",
            ],
            env,
        )
        doc = verify.json
        if (
            verify.code != 0
            or not doc["match"]
            or min(r["sample_checked"] for r in doc["namespaces"]) == 0
        ):
            found.append(f"pgvector trial {trial}: vectra verify: {verify.describe()}")
        tally.outcomes.append("ok" if not found else "MISMATCH")
        problems += found
    report(
        capsys,
        f"pgvector: normal import {measured.work_time:.2f}s of work ({measured.total_time:.2f}s)",
        tally.line(),
        *problems[:20],
    )
    assert problems == []
    assert tally.mid_run >= 2, tally.line()
