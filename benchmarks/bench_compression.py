"""Which Parquet compression should snapshots use by default? Measured on 768-d float32.

    python benchmarks/bench_compression.py [--n 50000]

Two kinds of vectors: i.i.d. normal floats (worst case) and "embedding-like"
ones (unit-normalised mixtures of a few hundred directions, as model outputs
are: correlated, low-rank-ish). For each codec: size relative to raw float32,
write and read speed (vectors/s).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vectra_io.records import dense_array

DIM = 768
CODECS = ["none", "snappy", "lz4", "zstd", "gzip"]


def table_of(vectors: np.ndarray) -> pa.Table:
    n = len(vectors)
    return pa.table(
        {
            "id": pa.array([f"doc-{i:08d}" for i in range(n)]),
            "values": dense_array(vectors, DIM),
            "metadata": pa.array([f'{{"n":{i},"lang":"en"}}' for i in range(n)]),
        }
    )


def embedding_like(n: int, rng: np.random.Generator) -> np.ndarray:
    basis = rng.standard_normal((256, DIM)).astype(np.float32)
    mix = rng.standard_normal((n, 256)).astype(np.float32) ** 3
    v = mix @ basis
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    n = ap.parse_args().n
    rng = np.random.default_rng(0)
    data = {
        "normal": rng.standard_normal((n, DIM), dtype=np.float32),
        "embedding-like": embedding_like(n, rng),
    }
    raw = n * DIM * 4
    print(f"{n:,} x {DIM} float32; size relative to raw float32; vectors/s")
    print(f"{'data':15s} {'codec':7s} {'size':>6s} {'write/s':>10s} {'read/s':>10s}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, vectors in data.items():
            table = table_of(vectors)
            for codec in CODECS:
                path = os.path.join(tmp, f"{kind}-{codec}.parquet")
                t = time.perf_counter()
                pq.write_table(
                    table,
                    path,
                    compression=None if codec == "none" else codec,
                    use_dictionary=False,
                    row_group_size=10_000,
                )
                w = n / (time.perf_counter() - t)
                t = time.perf_counter()
                pq.read_table(path)
                r = n / (time.perf_counter() - t)
                size = os.path.getsize(path) / raw
                print(f"{kind:15s} {codec:7s} {size:6.3f} {w:10,.0f} {r:10,.0f}")


if __name__ == "__main__":
    main()
