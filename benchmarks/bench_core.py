"""Core engine benchmark: memory -> local snapshot -> memory, against bare pyarrow.

    python benchmarks/bench_core.py                 # 200,000 x 768, plus the RSS scaling runs
    python benchmarks/bench_core.py --n 20000       # quicker

Prints vectors/s for export and import, the same for a bare
``pyarrow.parquet.write_table`` / ``read_table`` of the same table (written with
the parts' own options: codec, statistics, no dictionary), the ratios, and peak RSS.
The four are timed in interleaved rounds (``--repeat``, default 5):
each round times the engine and bare pyarrow back to back, so the median of the
per-round ratios is the ratio to read on a noisy machine (a single fast bare
round can move the best-of ratio by 0.2 here); the best of each side is printed
too. The import includes checking every part's size and CRC-32 (``--checksum
sha256`` times the SHA-256 check instead), which the bare read does not do.
Then, with a generating source and a counting sink (no store holds the data),
the peak RSS of exporting and importing 100,000 and 1,000,000 vectors, each in
its own subprocess, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import vectra_io
from vectra_io.providers.base import Capabilities, IndexSpec, ProviderBase, ScanPage
from vectra_io.providers.memory import MemoryProvider
from vectra_io.records import dense_array, record_schema
from vectra_io.snapshot.checksum import CRC32_BACKEND
from vectra_io.snapshot.parts import parquet_options

DIM = 768


def peak_rss_mb() -> float:
    """Peak RSS of this process (VmHWM: unlike ru_maxrss it does not carry over a fork)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_batch(spec: IndexSpec, start: int, n: int, rng: np.random.Generator) -> pa.RecordBatch:
    assert spec.dimension is not None
    ids = pa.array([f"vec-{i}" for i in range(start, start + n)])
    values = dense_array(rng.standard_normal((n, spec.dimension), dtype=np.float32), spec.dimension)
    meta = pa.array([f'{{"n":{i},"group":"g{i % 17}"}}' for i in range(start, start + n)])
    return pa.RecordBatch.from_arrays([ids, values, meta], schema=record_schema(spec))


class GeneratingSource(ProviderBase):
    """A source that makes its records on the fly: nothing is stored."""

    name = "generate"
    capabilities = Capabilities()

    def __init__(self, n: int, dim: int = DIM) -> None:
        self.n = n
        self.spec = IndexSpec("bench", dim, "cosine")
        self.endpoint = f"generate://{n}"

    def list_indexes(self) -> list[str]:
        return ["bench"]

    def describe_index(self, index: str) -> IndexSpec:
        return self.spec

    def list_namespaces(self, index: str) -> list[str]:
        return [""]

    def count(self, index: str, namespace: str = "") -> int:
        return self.n

    def scan(
        self, index: str, namespace: str = "", *, batch_size: int = 1000, cursor: object = None
    ) -> Iterator[ScanPage]:
        start = int(cursor or 0)  # type: ignore[call-overload]
        rng = np.random.default_rng(start)
        while start < self.n:
            k = min(batch_size, self.n - start)
            start += k
            yield ScanPage(
                make_batch(self.spec, start - k, k, rng), start if start < self.n else None
            )

    def fetch(self, index: str, ids: Sequence[str], namespace: str = "") -> pa.RecordBatch:
        raise NotImplementedError

    def create_index(self, spec: IndexSpec) -> None:
        pass

    def upsert(self, index: str, batch: pa.RecordBatch, namespace: str = "") -> Mapping[str, str]:
        raise NotImplementedError

    def delete_index(self, index: str) -> None:
        pass


class CountingSink(GeneratingSource):
    """A target that only counts what it receives."""

    def __init__(self) -> None:
        super().__init__(0)
        self.received = 0
        self.exists = False

    def describe_index(self, index: str) -> IndexSpec:
        if not self.exists:
            raise vectra_io.errors.IndexNotFoundError(index)
        return self.spec

    def create_index(self, spec: IndexSpec) -> None:
        self.spec, self.exists = spec, True

    def upsert(self, index: str, batch: pa.RecordBatch, namespace: str = "") -> Mapping[str, str]:
        self.received += batch.num_rows
        return {}


def rss_child(mode: str, n: int, workdir: str) -> dict[str, float]:
    """Run one scaling scenario in a fresh process; returns its peak RSS and time."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--n", str(n), "--dir", workdir],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def child(mode: str, n: int, workdir: str) -> None:
    snap = os.path.join(workdir, f"gen-{n}")
    t = time.perf_counter()
    if mode == "export":
        vectra_io.export_snapshot(GeneratingSource(n), snap, batch_size=1000, force=True)
    else:
        sink = CountingSink()
        res = vectra_io.import_snapshot(snap, sink, chunk_size=1000, concurrency=8)
        assert sink.received == n == res["imported_count"]
    print(json.dumps({"rss_mb": peak_rss_mb(), "seconds": time.perf_counter() - t}))


def log_rounds(rates: dict[str, list[float]]) -> None:
    for key, values in rates.items():
        print(f"  rounds {key:10s}: " + ", ".join(f"{v:,.0f}" for v in values), file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--compression", default="zstd")
    ap.add_argument("--child")
    ap.add_argument("--dir")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds; best of each")
    ap.add_argument("--checksum", default="crc32", choices=["crc32", "sha256"])
    args = ap.parse_args()
    if args.child:
        child(args.child, args.n, args.dir)
        return

    n, comp = args.n, args.compression
    spec = IndexSpec("bench", DIM, "cosine")
    rng = np.random.default_rng(1)
    src = MemoryProvider()
    src.create_index(spec)
    for start in range(0, n, 10_000):
        src.upsert("bench", make_batch(spec, start, min(10_000, n - start), rng))
    table = pa.Table.from_batches([p.batch for p in src.scan("bench", batch_size=10_000)])
    base_rss = peak_rss_mb()
    print(
        f"vectra-io {vectra_io.__version__} (CRC-32: {CRC32_BACKEND}): {n:,} x {DIM} float32, "
        f"compression={comp}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        bare = os.path.join(tmp, "bare.parquet")
        snap = os.path.join(tmp, "snap")
        rates: dict[str, list[float]] = {k: [] for k in ("bare_write", "bare_read", "exp", "imp")}
        export_rss = 0.0
        # interleaved rounds, best of each: one slow round (page cache, allocator
        # warm-up, a neighbour's burst) does not decide a ratio
        for _ in range(args.repeat):
            t = time.perf_counter()
            pq.write_table(table, bare, row_group_size=10_000, **parquet_options(comp))
            rates["bare_write"].append(n / (time.perf_counter() - t))
            t = time.perf_counter()
            back = pq.read_table(bare)
            rates["bare_read"].append(n / (time.perf_counter() - t))
            assert back.num_rows == n
            del back

            t = time.perf_counter()
            vectra_io.export_snapshot(src, snap, batch_size=1000, compression=comp, force=True)
            rates["exp"].append(n / (time.perf_counter() - t))
            export_rss = peak_rss_mb()
            dst = MemoryProvider()
            t = time.perf_counter()
            res = vectra_io.import_snapshot(
                snap, dst, chunk_size=1000, concurrency=8, state=False, checksum=args.checksum
            )
            rates["imp"].append(n / (time.perf_counter() - t))
            assert res["imported_count"] == n and dst.count("bench") == n
            del dst
        log_rounds(rates)
        bare_write, bare_read = max(rates["bare_write"]), max(rates["bare_read"])
        export_rate, import_rate = max(rates["exp"]), max(rates["imp"])
        size = sum(
            os.path.getsize(os.path.join(d, f))
            for d, _, fs in os.walk(snap)
            for f in fs
            if f.endswith(".parquet")
        )

        print(f"best of {args.repeat} interleaved rounds (each side)")
        print(f"bare pyarrow write_table : {bare_write:12,.0f} vectors/s")
        print(f"bare pyarrow read_table  : {bare_read:12,.0f} vectors/s")
        print(
            f"vectra export            : {export_rate:12,.0f} vectors/s "
            f"({export_rate / bare_write:.2f}x bare write)"
        )
        print(
            f"vectra import            : {import_rate:12,.0f} vectors/s "
            f"({import_rate / bare_read:.2f}x bare read)"
        )
        for key, bare_key, label in (
            ("exp", "bare_write", "export"),
            ("imp", "bare_read", "import"),
        ):
            per_round = sorted(v / b for v, b in zip(rates[key], rates[bare_key], strict=True))
            print(
                f"{label} ratio per round    : median {per_round[len(per_round) // 2]:.2f} "
                f"(min {per_round[0]:.2f}, max {per_round[-1]:.2f})"
            )
        print(
            f"snapshot size            : {size / 2**20:,.1f} MiB "
            f"({size / (n * DIM * 4):.3f} of raw float32)"
        )
        print(
            f"peak RSS                 : {peak_rss_mb():,.0f} MiB "
            f"(data loaded: {base_rss:,.0f} MiB, after export: {export_rss:,.0f} MiB)"
        )

        if not args.skip_scaling:
            rows = {}
            for count in (100_000, 1_000_000):
                rows[count] = {m: rss_child(m, count, tmp) for m in ("export", "import")}
            for m in ("export", "import"):
                small, big = rows[100_000][m], rows[1_000_000][m]
                print(
                    f"generated {m:6s}: peak RSS 100k {small['rss_mb']:,.0f} MiB, "
                    f"1M {big['rss_mb']:,.0f} MiB, ratio {big['rss_mb'] / small['rss_mb']:.2f} "
                    f"(1M in {big['seconds']:.1f}s = {1e6 / big['seconds']:,.0f} vectors/s)"
                )


if __name__ == "__main__":
    main()
