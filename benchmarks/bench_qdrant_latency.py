"""Does the importer hide write latency? Snapshot -> Qdrant double with 50 ms per write.

    PYTHONPATH=. python benchmarks/bench_qdrant_latency.py            # 100,000 x 768
    PYTHONPATH=. python benchmarks/bench_qdrant_latency.py --n 20000  # quicker
    PYTHONPATH=. python benchmarks/bench_qdrant_latency.py --double subprocess

A memory index of ``--n`` random ``--dim``-d float32 vectors (string ids, small metadata) is
exported to a local snapshot with the engine; the snapshot is then imported with
``vectra_io.import_snapshot`` into a fresh Qdrant double (tests/doubles/qdrant.py) whose
write operations each wait ``--latency`` seconds before answering, once per
``--concurrency`` value. Chunks are ``--chunk`` rows (256 by default: a realistic upsert of
768-d vectors, ~2 MB of JSON). Prints vectors/s per concurrency and the speedup, the most
requests the double saw in flight at once, and where the CPU of one upsert goes.

``--double inprocess`` (default) runs the double in this process: it competes with the
importer for the GIL, so the speedup is bounded by (latency + CPU per request) / (CPU per
request, client and double together). ``--double subprocess`` gives the double a process
(and GIL) of its own; the bound is then set by the slower of the two sides. The numbers
printed under "CPU per upsert" show which one binds.

The double is Python: parsing, validating and storing one upsert of 64 x 768 costs it about
5 ms of CPU under its one GIL, on the same two cores as the importer, and under load that
queueing, not the importer, sets the speedup (5.4x to 6.8x at 64-row chunks on 20,000
vectors; at concurrency 16 a write then spends 138 ms inside the double instead of 58).
Small chunks keep the double's CPU well below the latency and show what the importer itself
does: with ``--chunk 16``, 100,000 vectors, ``--double subprocess``: 14.6x, 14.1 writes in
flight on average of 16.
"Mean in flight" and "ms inside the double" are printed per run to show which case holds.

Finally the rate of a plain scan (export of the imported collection, no latency) and of
unthrottled upserts are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import pyarrow as pa

import vectra_io
from vectra_io.engine.writer import row_nbytes
from vectra_io.providers.base import IndexSpec
from vectra_io.providers.memory import MemoryProvider
from vectra_io.providers.qdrant import QdrantProvider, dumps
from vectra_io.providers.qdrant.collection_info import Info
from vectra_io.records import dense_array, record_schema

INDEX = "bench"

_CHILD = r"""
import sys, orjson
from tests.doubles.qdrant import QdrantDouble
d = QdrantDouble().start()
d.faults.latency_s = float(sys.argv[1])
d.faults.operations = set(d.WRITE_OPERATIONS)
print(d.url, flush=True)
for line in sys.stdin:
    if line.strip() == "stats":
        ups = [r for r in d.requests if r.operation == "upsert_points"]
        print(orjson.dumps({"violations": [str(v) for v in d.violations],
                            "upserts": [[r.time, r.responded, r.status] for r in ups]}).decode(),
              flush=True)
    elif line.strip() == "quit":
        break
d.stop()
"""


def make_source(n: int, dim: int, seed: int) -> tuple[MemoryProvider, IndexSpec]:
    spec = IndexSpec(INDEX, dim, "dot", "string")
    source = MemoryProvider()
    source.create_index(spec)
    rng = np.random.default_rng(seed)
    step = 10_000
    for start in range(0, n, step):
        m = min(step, n - start)
        ids = pa.array([f"doc-{i:08d}" for i in range(start, start + m)])
        values = dense_array(rng.standard_normal((m, dim), dtype=np.float32), dim)
        meta = pa.array([f'{{"n":{i},"group":"g{i % 17}"}}' for i in range(start, start + m)])
        source.upsert(
            INDEX, pa.RecordBatch.from_arrays([ids, values, meta], schema=record_schema(spec))
        )
    return source, spec


class Double:
    """The Qdrant double, in this process or in a child process."""

    def __init__(self, where: str, latency: float) -> None:
        self.where = where
        if where == "inprocess":
            from tests.doubles.qdrant import QdrantDouble

            self.double = QdrantDouble()
            self.double.start()
            self.double.faults.latency_s = latency
            self.double.faults.operations = set(self.double.WRITE_OPERATIONS)
            self.url = self.double.url
        else:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), *sys.path])}
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(latency)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            assert self.proc.stdout is not None
            self.url = self.proc.stdout.readline().strip()

    def set_latency(self, latency: float) -> None:
        if self.where != "inprocess":
            raise RuntimeError("latency changes need the in-process double")
        self.double.faults.latency_s = latency

    def stats(self) -> tuple[list[str], list[tuple[float, float, int]]]:
        if self.where == "inprocess":
            ups = [r for r in self.double.requests if r.operation == "upsert_points"]
            return [str(v) for v in self.double.violations], [
                (r.time, r.responded, r.status) for r in ups
            ]
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        data = json.loads(self.proc.stdout.readline())
        return data["violations"], [tuple(u) for u in data["upserts"]]

    def stop(self) -> None:
        if self.where == "inprocess":
            self.double.stop()
        else:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(30)


def max_in_flight(upserts: list[tuple[float, float, int]]) -> int:
    events = sorted([(t0, 1) for t0, _, _ in upserts] + [(t1, -1) for _, t1, _ in upserts])
    best = cur = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


def cpu_per_upsert(spec: IndexSpec, chunk: pa.RecordBatch) -> dict[str, float]:
    """Thread CPU (ms) of one upsert: client build + JSON encode, double parse/validate/store."""
    import orjson

    from tests.doubles.qdrant import QdrantDouble

    double = QdrantDouble()
    double.create_collection(
        INDEX,
        vectors={"size": spec.dimension, "distance": "Dot"},
        metadata={"vectra_io": {"id_type": "string"}},
    )
    provider = QdrantProvider("127.0.0.1:9")  # never connects: only the local work is timed
    info = Info.parse(INDEX, double.get_collection(_req(INDEX)).body["result"])
    qspec = provider._spec(info, INDEX)
    check = double.spec.operation("upsert_points").body_check
    assert check is not None

    def clock(fn: Any, k: int = 10) -> tuple[float, Any]:
        t0 = time.thread_time()
        for _ in range(k):
            out = fn()
        return (time.thread_time() - t0) / k * 1000, out

    build, (points, _) = clock(lambda: provider._points(qspec, info, chunk, ""))
    encode, body = clock(lambda: dumps({"points": [p for _, p in points]}))
    parse, obj = clock(lambda: orjson.loads(body))
    validate, _ = clock(lambda: check(obj))

    def store() -> Any:
        req = _req(INDEX, wait=True)
        req.body = obj
        return double.upsert_points(req)

    handle, _ = clock(store)
    provider.close()
    return {
        "client_build_ms": build,
        "client_encode_ms": encode,
        "double_parse_ms": parse,
        "double_validate_ms": validate,
        "double_store_ms": handle,
        "body_bytes": float(len(body)),
        "wire_factor": len(body) / float(row_nbytes(chunk).sum()),
    }


def _req(collection: str, wait: bool = False) -> Any:
    from tests.doubles.openapi_server import Request

    req = Request("PUT", "/", {}, {}, b"")
    req.params = {"collection_name": collection, "wait": wait}
    return req


def run_import(
    snapshot: str,
    spec: IndexSpec,
    where: str,
    latency: float,
    chunk: int,
    concurrency: int,
    n: int,
) -> dict[str, Any]:
    double = Double(where, latency)
    provider = QdrantProvider(double.url.removeprefix("http://"))
    try:
        provider.create_index(spec)  # outside the timing: two writes that pay the latency
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = vectra_io.import_snapshot(
            snapshot, provider, chunk_size=chunk, concurrency=concurrency, state=False
        )
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        assert result["failed_count"] == 0, result["errors"][:2]
        count = provider.count(INDEX)
        assert count == n, f"{count} of {n} records in the double"
        violations, upserts = double.stats()
        assert not violations, violations[:3]
        return {
            "concurrency": concurrency,
            "seconds": wall,
            "vectors_per_s": n / wall,
            "requests": len(upserts),
            "max_in_flight": max_in_flight(upserts),
            "mean_in_flight": sum(t1 - t0 for t0, t1, _ in upserts) / wall,
            "double_ms": 1000 * sum(t1 - t0 for t0, t1, _ in upserts) / max(len(upserts), 1),
            "process_cpu_s": cpu,
        }
    finally:
        provider.close()
        double.stop()


def scan_and_upsert_rates(snapshot: str, n: int, chunk: int) -> dict[str, float]:
    """No latency: import at concurrency 16 (upsert rate), then export (scroll rate)."""
    double = Double("inprocess", 0.0)
    provider = QdrantProvider(double.url.removeprefix("http://"))
    try:
        t0 = time.perf_counter()
        vectra_io.import_snapshot(snapshot, provider, chunk_size=chunk, concurrency=16, state=False)
        upsert = n / (time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            manifest = vectra_io.export_snapshot(provider, tmp + "/again", batch_size=1000)
            scroll = n / (time.perf_counter() - t0)
            assert manifest["errors"] == []
        return {"upsert_vectors_per_s": upsert, "scroll_vectors_per_s": scroll}
    finally:
        provider.close()
        double.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", default="1,16")
    ap.add_argument("--double", choices=("inprocess", "subprocess"), default="inprocess")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-rates", action="store_true", help="skip the scan/upsert rates")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    source, spec = make_source(args.n, args.dim, args.seed)
    chunk = next(source.scan(INDEX, batch_size=args.chunk)).batch
    cpu = cpu_per_upsert(spec, chunk)
    client = cpu["client_build_ms"] + cpu["client_encode_ms"]
    server = cpu["double_parse_ms"] + cpu["double_validate_ms"] + cpu["double_store_ms"]
    print(
        f"{args.n:,} x {args.dim} float32, chunk {args.chunk} rows, latency "
        f"{args.latency * 1000:.0f} ms per write, double {args.double}"
    )
    print(
        f"CPU per upsert (thread time): client {client:.1f} ms "
        f"(build {cpu['client_build_ms']:.1f}, JSON {cpu['client_encode_ms']:.1f}), "
        f"double {server:.1f} ms (parse {cpu['double_parse_ms']:.1f}, validate "
        f"{cpu['double_validate_ms']:.1f}, store {cpu['double_store_ms']:.1f}); body "
        f"{cpu['body_bytes'] / 1e6:.2f} MB, {cpu['wire_factor']:.2f} JSON bytes per Arrow byte"
    )
    lat_ms = args.latency * 1000
    shared = (lat_ms + client + server) / (client + server)
    own = (lat_ms + client + server) / max(client, server)
    print(
        f"speedup bound from CPU alone: {shared:.1f}x with one GIL, {own:.1f}x with the "
        f"double in its own process (at most the concurrency)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        snapshot = os.path.join(tmp, "snap")
        t0 = time.perf_counter()
        vectra_io.export_snapshot(source, snapshot, batch_size=10_000)
        print(f"export from memory: {args.n / (time.perf_counter() - t0):,.0f} vectors/s")
        del source
        results = []
        for c in levels:
            r = run_import(snapshot, spec, args.double, args.latency, args.chunk, c, args.n)
            results.append(r)
            print(
                f"concurrency {c:>2}: {r['vectors_per_s']:>9,.0f} vectors/s "
                f"({r['seconds']:.1f} s, {r['requests']} upserts, at most "
                f"{r['max_in_flight']} in flight, {r['mean_in_flight']:.1f} on average, "
                f"{r['double_ms']:.0f} ms each inside the double, "
                f"importer process CPU {r['process_cpu_s']:.1f} s)"
            )
        if len(results) >= 2:
            speedup = results[-1]["vectors_per_s"] / results[0]["vectors_per_s"]
            print(
                f"speedup {results[-1]['concurrency']} vs {results[0]['concurrency']}: "
                f"{speedup:.1f}x"
            )
        if not args.no_rates:
            rates = scan_and_upsert_rates(snapshot, args.n, args.chunk)
            print(
                f"no latency, double in process: upsert {rates['upsert_vectors_per_s']:,.0f} "
                f"vectors/s (concurrency 16), scroll {rates['scroll_vectors_per_s']:,.0f} "
                "vectors/s (export, pages of 1000)"
            )
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
