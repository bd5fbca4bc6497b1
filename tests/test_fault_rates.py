"""Nothing lost, ever: ``vectra import`` into a Qdrant that keeps failing.

A snapshot of 3,000 records (dimension 32, string ids, the same ids in two namespaces,
varied metadata) is imported with the real ``vectra`` executable into the Qdrant double
while the double answers a share of the record writes (``PUT .../points``) with 429 and
``Retry-After``, with 503, or by timing out (the write is applied, the answer comes after
the client gave up: ``?timeout=1`` makes a timeout cost about a second). Every run is
checked record by record against the snapshot: count per namespace, every id, its payload
and its vector bits. The double's request log shows the faults happened, and that a
``Retry-After`` paused every worker, not only the one that got it: no record write reaches
the double from ``IN_FLIGHT`` after a 429 left it until ``RETRY_AFTER - TOLERANCE``. Writes
arriving in the first ``IN_FLIGHT`` had left the client before it could act on the 429.
Both processes stamp times from threads that wait for their GIL and for a CPU; tracing the
client (gate passed, request sent, answer read) showed every such write past the gate before
the client read the 429, and on a busy 2-core host the double stamped them up to 290 ms after
the 429 left: the gate is checked before a request is built, the double stamps a request
once its thread runs. ``IN_FLIGHT`` is a second for that reason, and ``RETRY_AFTER`` two.

Faults are drawn from the double's seeded generator in arrival order: with a fixed seed,
the faults injected into a run that completes are the same every time (each draw settles
one request or asks for one more). Which request gets which draw depends on thread timing,
and a request gives up when all of its 8 attempts (the default) draw a fault: for draws
spread at random, ``rate ** 8`` per request, 6.6e-5 at 30% (20 requests: 1 run in 750)
but 1/256 at 50% (16 requests: 1 run in 16). So the runs that must complete (exit 0) stop
at 30%. At 50% (which completed 19 runs of 19 with this seed, retries being spread by their
backoff) the test asserts what holds at any rate: every record is in the target or in the
failed-records files, and ``--retry-failed`` loads the rest.

The fault rates survived and the faults injected are printed (``pytest -s`` or ``-rP``).
Index creation is kept out of the random faults; a transient fault while creating the
collection or its payload index is covered by ``test_index_creation_survives_a_transient_fault``.
"""

from __future__ import annotations

import json
import shlex
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import vectra_io
from tests.cli.helpers import Result, expect, run_vectra
from tests.doubles.openapi_server import RequestRecord
from tests.doubles.qdrant import QdrantDouble
from tests.util import metadata_for
from vectra_io import Client
from vectra_io.ids import ORIGINAL_ID_KEY

DIM = 32
PER_NAMESPACE = 1500
NAMESPACES = ("", "tenant-b")  # the default namespace and a named one, same ids in both
NS_KEY = "_vectra_namespace"  # the Qdrant provider's default namespace_key
API_KEY = "fault-rates-test-key-0123456789"
SEED = 20240611
RETRY_AFTER = 2.0  # seconds, sent with every injected 429
CLIENT_TIMEOUT = 1  # the provider's ?timeout= (read/write timeout of each request)
TIMEOUT_SLEEP = 1.5  # the double answers a "timeout" fault this late (the write is applied)
#: a write reaching the double less than this after a 429 left it was on its way before the
#: client could read the 429 (see the module docstring)
IN_FLIGHT = 1.0
#: clock/scheduling tolerance at the end of the Retry-After pause
TOLERANCE = 0.02
#: record writes only: index creation is not retried (test_index_creation_... below)
RECORD_WRITES = frozenset(
    QdrantDouble.WRITE_OPERATIONS - {"create_collection", "create_field_index"}
)

Records = dict[str, tuple[dict[str, Any], bytes]]  # id -> (payload, vector bits)
Expected = dict[str, Records]  # by namespace


def record_id(i: int) -> str:
    return f"rec/{i:05d}"  # not a uint64 nor a UUID: mapped to a UUID, kept as _vectra_id


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    snap = tmp_path_factory.mktemp("fault-rates") / "snap"
    rng = np.random.default_rng(7)
    with Client(provider="memory") as src:
        src.create_index("docs", DIM, "dot")  # dot: Qdrant keeps the vectors as they are
        for ns in NAMESPACES:
            src.upsert(
                "docs",
                [
                    {
                        "id": record_id(i),
                        "values": rng.standard_normal(DIM).astype(np.float32),
                        "metadata": metadata_for(i),
                    }
                    for i in range(PER_NAMESPACE)
                ],
                namespace=ns or None,
            )
        vectra_io.export_snapshot(src, str(snap), batch_size=300, part_rows=600)
    return snap


def table_records(table: pa.Table) -> Records:
    values = table.column("values").combine_chunks().flatten().to_numpy()
    values = values.astype(np.float32).reshape(-1, DIM)
    ids, metas = table.column("id").to_pylist(), table.column("metadata").to_pylist()
    return {
        rid: (json.loads(meta) if meta else {}, values[row].tobytes())
        for row, (rid, meta) in enumerate(zip(ids, metas, strict=True))
    }


@pytest.fixture(scope="module")
def expected(snapshot: Path) -> Expected:
    """What the target must hold, read back from the snapshot's parts."""
    manifest = json.loads((snapshot / "manifest.json").read_text())
    out: Expected = {}
    for key, entry in manifest["indexes"]["docs"]["namespaces"].items():
        ns = "" if key == "__default__" else key
        records = out.setdefault(ns, {})
        for part in entry["parts"]:
            records.update(table_records(pq.read_table(snapshot / part["path"])))
    assert {ns: len(r) for ns, r in out.items()} == {ns: PER_NAMESPACE for ns in NAMESPACES}
    return out


def target_url(double: QdrantDouble) -> str:
    return f"qdrant://127.0.0.1:{double.url.rsplit(':', 1)[1]}?timeout={CLIENT_TIMEOUT}"


def inject(double: QdrantDouble, rate: float) -> None:
    """``rate`` of the record writes fail: a third each 429 (Retry-After), 503, timeout."""
    f = double.faults
    f.reset(SEED)
    f.operations = set(RECORD_WRITES)
    f.rate_429 = f.rate_503 = f.rate_timeout = rate / 3
    f.retry_after = RETRY_AFTER
    f.timeout_sleep_s = TIMEOUT_SLEEP


def vectra_import(snapshot: Path, double: QdrantDouble, *args: str) -> Result:
    return run_vectra(
        "import",
        snapshot,
        target_url(double),
        "--json",
        *args,
        env={"QDRANT_API_KEY": API_KEY},
        timeout=240,
    )


def held(double: QdrantDouble) -> Expected:
    """What the double stores, by vectra namespace and original record id."""
    out: Expected = {}
    for pid, point in double.stored_points("docs").items():
        payload = dict(point.payload)
        ns = payload.pop(NS_KEY, "")
        rid = payload.pop(ORIGINAL_ID_KEY, None)
        assert isinstance(rid, str), f"point {pid} has no original id: {point.payload}"
        assert rid not in out.get(ns, {}), f"{rid!r} stored twice in namespace {ns!r}"
        vector = np.asarray(point.vectors[""], dtype=np.float32)
        out.setdefault(ns, {})[rid] = (payload, vector.tobytes())
    return out


def assert_nothing_lost(double: QdrantDouble, expected: Expected) -> None:
    got = held(double)
    counts = {ns: len(got.get(ns, {})) for ns in expected}
    assert counts == {ns: len(r) for ns, r in expected.items()}, counts
    assert set(got) == set(expected), f"unexpected namespaces {set(got) - set(expected)}"
    for ns, records in expected.items():
        missing = sorted(set(records) - set(got[ns]))
        assert not missing, f"namespace {ns!r}: {len(missing)} lost, e.g. {missing[:5]}"
        for rid, (payload, bits) in records.items():
            have_payload, have_bits = got[ns][rid]
            assert have_payload == payload, f"{ns!r}/{rid}: payload {have_payload} != {payload}"
            assert have_bits == bits, f"{ns!r}/{rid}: vector bits differ"


def settle_log(double: QdrantDouble) -> list[RequestRecord]:
    """The record writes logged, once the late answers of timed-out requests are in."""
    time.sleep(TIMEOUT_SLEEP + 0.2)  # a request is logged when it is answered
    return [r for r in list(double.requests) if r.operation in RECORD_WRITES]


def retry_after_breaches(writes: list[RequestRecord]) -> list[str]:
    """Writes that reached the double while a Retry-After was running: the pause after a
    429 covers every worker. Prints how many arrived in the in-flight window right after a
    429 (sent before the client could know of it)."""
    breaches, in_flight = [], []
    for told in writes:
        if told.status != 429:
            continue
        for other in writes:
            since = other.time - told.responded
            if 0 <= since < IN_FLIGHT:
                in_flight.append(since)
            elif IN_FLIGHT <= since < RETRY_AFTER - TOLERANCE:
                breaches.append(
                    f"a write arrived {since * 1000:.1f} ms after a 429 with Retry-After "
                    f"{RETRY_AFTER}s left the double"
                )
    latest = f", the latest {max(in_flight) * 1000:.1f} ms after it" if in_flight else ""
    print(f"[fault-rates] writes arriving as a 429 left the double: {len(in_flight)}{latest}")
    return breaches


def report(rate: float, outcome: str, writes: list[RequestRecord], elapsed: float) -> Counter:
    faults = Counter(r.fault for r in writes if r.fault)
    print(
        f"\n[fault-rates] rate {rate:.0%}: {outcome}; {len(writes)} record writes, "
        f"{sum(faults.values())} injected faults ({dict(sorted(faults.items()))}), "
        f"{elapsed:.1f} s"
    )
    return faults


# -- rates that must complete -------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "chunk_size"),
    [(0.10, 25), (0.20, 50), (0.30, 150)],
    ids=["10pct", "20pct", "30pct"],
)
def test_import_survives_fault_rate(
    rate: float, chunk_size: int, snapshot: Path, expected: Expected, qdrant_double: QdrantDouble
) -> None:
    inject(qdrant_double, rate)
    started = time.monotonic()
    result = vectra_import(snapshot, qdrant_double, "--chunk-size", str(chunk_size))
    elapsed = time.monotonic() - started
    writes = settle_log(qdrant_double)
    faults = report(rate, f"exit {result.code}", writes, elapsed)

    expect(result, 0)
    doc = result.json
    assert doc["imported_count"] == len(NAMESPACES) * PER_NAMESPACE
    assert doc["failed_count"] == 0 and doc["failed_records"] is None
    assert_nothing_lost(qdrant_double, expected)

    assert sum(faults.values()) > 0, "no fault was injected: nothing was tested"
    assert faults["429"] > 0, "no 429 was injected: the Retry-After rule was not tested"
    breaches = retry_after_breaches(writes)
    assert not breaches, "\n".join(breaches)


# -- beyond what the default retries absorb: records wait, none is lost --------------------


def failed_records(state_dir: Path) -> Expected:
    """The records kept in the failed-records files, by target namespace and id."""
    out: Expected = {}
    for path in sorted(state_dir.rglob("*.parquet")):
        assert any(p.suffix == ".failed" for p in path.parents), path
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        ns = meta[b"vectra.target_namespace"].decode()
        assert meta[b"vectra.target_index"] == b"docs"
        assert all(table.column("error").to_pylist()), f"{path}: a record without its error"
        records = table_records(table)
        kept = out.setdefault(ns, {})
        assert not set(records) & set(kept), "records kept twice"
        kept.update(records)
    return out


def retry_failed(snapshot: Path, double: QdrantDouble, first: Result) -> Result:
    """Run the exact ``retry_command`` the failed run printed."""
    argv = shlex.split(first.json["retry_command"])
    assert argv[:2] == ["vectra", "import"] and argv[-1] == "--retry-failed", argv
    return run_vectra(*argv[1:], "--json", env={"QDRANT_API_KEY": API_KEY}, timeout=120)


def test_half_of_the_writes_failing_loses_nothing(
    snapshot: Path, expected: Expected, qdrant_double: QdrantDouble, _state_dir: Path
) -> None:
    """50%: a request gives up with probability 1/256 (8 attempts), so a run may end with
    exit 3; every record is then in the target or in the failed-records files, and
    ``--retry-failed`` brings the rest."""
    rate = 0.5
    inject(qdrant_double, rate)
    started = time.monotonic()
    result = vectra_import(snapshot, qdrant_double, "--chunk-size", "250")
    elapsed = time.monotonic() - started
    writes = settle_log(qdrant_double)
    faults = report(rate, f"exit {result.code}", writes, elapsed)
    assert result.code in (0, 3), str(result)
    assert sum(faults.values()) > 0 and faults["429"] > 0
    breaches = retry_after_breaches(writes)
    assert not breaches, "\n".join(breaches)

    got, kept = held(qdrant_double), failed_records(_state_dir)
    doc = result.json
    assert doc["failed_count"] == sum(len(r) for r in kept.values())
    for ns, records in expected.items():
        union = {**kept.get(ns, {}), **got.get(ns, {})}
        assert union == records, f"namespace {ns!r}: records lost"
    if result.code == 3:
        qdrant_double.faults.reset(SEED)
        expect(retry_failed(snapshot, qdrant_double, result), 0)
    assert_nothing_lost(qdrant_double, expected)


def test_faults_that_never_stop_keep_every_record_for_retry(
    snapshot: Path, expected: Expected, qdrant_double: QdrantDouble, _state_dir: Path
) -> None:
    """Every record write answered 503, --max-retries 2: the run ends with exit 3, every
    record waits in the failed-records files with its error, and --retry-failed (the
    command the run printed) loads them all once the target recovers."""
    inject(qdrant_double, 0)
    qdrant_double.faults.rate_503 = 1.0
    started = time.monotonic()
    result = vectra_import(snapshot, qdrant_double, "--chunk-size", "250", "--max-retries", "2")
    elapsed = time.monotonic() - started
    writes = [r for r in list(qdrant_double.requests) if r.operation in RECORD_WRITES]
    faults = report(1.0, f"exit {result.code} (records kept for retry)", writes, elapsed)

    expect(result, 3)
    doc = result.json
    total = len(NAMESPACES) * PER_NAMESPACE
    assert doc["imported_count"] == 0 and doc["failed_count"] == total
    assert faults == {"503": len(writes)} and len(writes) == 3 * doc["batches"]  # 3 attempts
    assert all("503" in e["error"] for e in doc["errors"])
    assert sorted((p["target_namespace"], p["records"]) for p in doc["pending_failed"]) == sorted(
        (ns, PER_NAMESPACE) for ns in NAMESPACES
    )
    assert Path(doc["failed_records"]).is_dir()
    assert failed_records(_state_dir) == expected  # the records themselves, bit for bit
    assert "error: " not in result.stderr  # a result, not a crash
    assert "docs" not in qdrant_double.collections or not qdrant_double.stored_points("docs")

    qdrant_double.faults.reset(SEED)
    again = expect(retry_failed(snapshot, qdrant_double, result), 0)
    assert again.json["imported_count"] == total and again.json["failed_count"] == 0
    assert again.json["pending_failed"] == [] and failed_records(_state_dir) == {}
    assert_nothing_lost(qdrant_double, expected)


# -- index creation ------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["create_collection", "create_field_index"])
def test_index_creation_survives_a_transient_fault(
    operation: str, snapshot: Path, expected: Expected, qdrant_double: QdrantDouble
) -> None:
    qdrant_double.faults.operations = {operation}
    qdrant_double.faults.fail_next(1, 503)
    result = vectra_import(snapshot, qdrant_double)
    expect(result, 0)
    assert_nothing_lost(qdrant_double, expected)
    info = qdrant_double.call("get_collection", params={"collection_name": "docs"}).body
    assert NS_KEY in info["result"]["payload_schema"]  # the namespace index was made too
