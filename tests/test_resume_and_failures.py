"""Import state, resume, failed-records files, retry-failed, and the retry policy."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import vectra_io
from vectra_io.engine.retry import BackoffGate, RetryPolicy
from vectra_io.errors import AuthError, FatalError, RecordsRejectedError, RetryableError
from vectra_io.providers.base import IndexSpec
from vectra_io.providers.memory import MemoryProvider

from .util import assert_same_namespace, make_records, seed


@pytest.fixture
def snapshot(tmp_path: Path) -> tuple[MemoryProvider, str]:
    src = MemoryProvider()
    spec = IndexSpec("docs", 8, "cosine")
    src.create_index(spec)
    seed(src, spec, "", make_records(2000, 8))
    seed(src, spec, "b", make_records(500, 8, prefix="b"))
    snap = str(tmp_path / "snap")
    vectra_io.export_snapshot(src, snap, part_rows=400, batch_size=200)
    return src, snap


class DyingTarget(MemoryProvider):
    """Raises KeyboardInterrupt (a crash) on its n-th upsert."""

    def __init__(self, location: str, die_at: int) -> None:
        super().__init__(location)
        self.calls = 0
        self.die_at = die_at
        self.lock = threading.Lock()

    def upsert(self, index, batch, namespace=""):  # type: ignore[no-untyped-def]
        with self.lock:
            self.calls += 1
            if self.calls == self.die_at:
                raise KeyboardInterrupt("crash")
        return super().upsert(index, batch, namespace)


@pytest.mark.parametrize("die_at", [1, 4, 9, 17])
def test_import_resumes_from_state(snapshot, tmp_path: Path, die_at: int) -> None:
    src, snap = snapshot
    name = f"resume-{die_at}-{time.monotonic_ns()}"
    dying = DyingTarget(name, die_at)
    with pytest.raises(KeyboardInterrupt):
        vectra_io.import_snapshot(snap, dying, chunk_size=100, concurrency=3)
    state_files = list((tmp_path / "vectra-state").glob("import-*.json"))
    assert len(state_files) == 1
    again = MemoryProvider(name)  # same store, same endpoint: the same state
    res = vectra_io.import_snapshot(snap, again, chunk_size=100, concurrency=3)
    assert res["failed_count"] == 0
    assert res["imported_count"] + res["skipped_count"] >= 2500
    assert res["imported_count"] < 2500 or die_at == 1
    for ns in ("", "b"):
        assert_same_namespace(src, "docs", ns, again, "docs", ns)
    # a third run has nothing left to do
    third = vectra_io.import_snapshot(snap, again, chunk_size=100)
    assert third["imported_count"] == 0 and third["skipped_count"] == 2500


def test_other_target_and_restart_have_their_own_state(snapshot) -> None:
    _, snap = snapshot
    a, b = MemoryProvider("state-a"), MemoryProvider("state-b")
    ra = vectra_io.import_snapshot(snap, a)
    rb = vectra_io.import_snapshot(snap, b)
    assert ra["imported_count"] == rb["imported_count"] == 2500
    assert ra["state_file"] != rb["state_file"]
    renamed = vectra_io.import_snapshot(snap, a, index_map={"docs": "docs2"})
    assert renamed["imported_count"] == 2500  # another mapping, another state
    again = vectra_io.import_snapshot(snap, a, restart=True)
    assert again["imported_count"] == 2500 and again["skipped_count"] == 0


def test_explicit_state_location_and_no_state(snapshot, tmp_path: Path) -> None:
    _, snap = snapshot
    state = tmp_path / "my-state.json"
    t = MemoryProvider("explicit")
    res = vectra_io.import_snapshot(snap, t, state=str(state))
    assert res["state_file"] == str(state) and state.exists()
    data = json.loads(state.read_text())
    assert all(p["complete"] for p in data["parts"].values())
    assert vectra_io.import_snapshot(snap, t, state=str(state))["skipped_count"] == 2500
    assert vectra_io.import_snapshot(snap, t, state=False)["imported_count"] == 2500


class PickyTarget(MemoryProvider):
    """Refuses some ids one by one, and whole batches holding a poisoned id."""

    def __init__(self, location: str, refuse: set[str], poison: set[str]) -> None:
        super().__init__(location)
        self.refuse, self.poison = refuse, poison

    def upsert(self, index, batch, namespace=""):  # type: ignore[no-untyped-def]
        ids = batch.column("id").to_pylist()
        if self.poison & set(ids):
            raise RecordsRejectedError("batch refused", failures={i: "poison" for i in ids})
        keep = [i for i, rid in enumerate(ids) if rid not in self.refuse]
        super().upsert(index, batch.take(keep), namespace)
        return {rid: "refused id" for rid in ids if rid in self.refuse}


def test_failed_records_are_kept_and_retried(snapshot) -> None:
    src, snap = snapshot
    target = PickyTarget("picky", refuse={"id5", "id777", "b3"}, poison={"id1500"})
    res = vectra_io.import_snapshot(snap, target, chunk_size=100, concurrency=2)
    assert res["failed_count"] == 3 + 100
    assert res["imported_count"] == 2500 - 103
    failed = Path(res["failed_records"])
    files = list(failed.rglob("*.parquet"))
    table = pq.read_table(files[0])
    assert "error" in table.schema.names and "values" in table.schema.names
    rows = sum(pq.read_table(f).num_rows for f in files)
    assert rows == 103 and res["pending_failed_count"] == 103
    per_ns = {r["namespace"]: r["failed"] for r in res["namespaces"]}
    assert per_ns == {"": 102, "b": 1}
    # the target gets better: only the failed records are replayed
    target.refuse, target.poison = {"id777"}, set()
    again = vectra_io.import_snapshot(snap, target, retry_failed=True, chunk_size=50)
    assert again["imported_count"] == 102 and again["failed_count"] == 1
    assert again["pending_failed_count"] == 1
    target.refuse = set()
    last = vectra_io.import_snapshot(snap, target, retry_failed=True)
    assert last["imported_count"] == 1 and last["pending_failed_count"] == 0
    for ns in ("", "b"):
        assert_same_namespace(src, "docs", ns, target, "docs", ns)


def test_retry_policy_retries_only_retryable() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=4, base_delay=0.01, sleep=sleeps.append)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RetryableError("503")
        return "ok"

    assert policy.call(flaky) == "ok" and len(calls) == 3 and len(sleeps) == 2

    def fatal() -> None:
        raise AuthError("bad key")

    with pytest.raises(AuthError):
        policy.call(fatal)

    def always() -> None:
        raise RetryableError("down")

    with pytest.raises(RetryableError):
        policy.call(always)


def test_retry_after_closes_the_gate_for_every_worker() -> None:
    gate = BackoffGate()
    policy = RetryPolicy(max_attempts=3, gate=gate)
    started = time.monotonic()
    attempts: list[float] = []

    def throttled() -> str:
        attempts.append(time.monotonic() - started)
        if len(attempts) == 1:
            raise RetryableError("429", retry_after=0.3)
        return "ok"

    worker = threading.Thread(target=lambda: policy.call(throttled))
    worker.start()
    time.sleep(0.05)
    # another worker arriving while the gate is closed waits too
    other = []
    policy.call(lambda: other.append(time.monotonic() - started))
    worker.join()
    assert attempts[1] >= 0.3
    assert other[0] >= 0.3


def test_fatal_errors_abort_the_import(snapshot) -> None:
    _, snap = snapshot

    class Locked(MemoryProvider):
        def upsert(self, index, batch, namespace=""):  # type: ignore[no-untyped-def]
            raise AuthError("credentials refused")

    with pytest.raises(AuthError) as raised:
        vectra_io.import_snapshot(snap, Locked("locked"), chunk_size=100, concurrency=1)
    # the part's decoders stopped before the error left the import (the traceback,
    # kept alive here, still references the import's frames)
    decoding = [t.name for t in threading.enumerate() if t.name.startswith("vectra-decode")]
    assert not decoding and raised.traceback

    class Broken(MemoryProvider):
        def upsert(self, index, batch, namespace=""):  # type: ignore[no-untyped-def]
            raise FatalError("boom")

    res = vectra_io.import_snapshot(snap, Broken("broken"), chunk_size=500)
    assert res["failed_count"] == 2500 and res["imported_count"] == 0
