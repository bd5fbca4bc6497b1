"""pgvector provider benchmark: import and export throughput against hand-written psycopg.

    python benchmarks/bench_pgvector.py                   # 100,000 x 768, starts a server
    python benchmarks/bench_pgvector.py --n 20000 --dsn postgresql://postgres@127.0.0.1:5432/db

Import: the same records, the same batch size and the same number of threads, written by
``PgVectorProvider.upsert`` and by minimal hand-written psycopg loops doing the same upsert:
(a) binary COPY into a temp table + ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` and
(b) one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE`` with binary array
parameters; (c) a plain binary COPY into the table (no upsert semantics) as the ceiling.
Export: ``PgVectorProvider.scan`` pages (ids, float32 matrix, metadata as Arrow) against a
hand-written server-side cursor decoding the same columns into numpy. Prints vectors/s,
the medians over ``--repeat`` interleaved runs and the provider / hand-written ratios
(target >= 0.9). Tables are created without an HNSW index (see ``--hnsw``): building the
graph during the load costs the same for every writer and would hide the transfer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
from psycopg.adapt import Dumper
from psycopg.pq import Format

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vectra_io.providers.base import IndexSpec
from vectra_io.providers.pgvector import PgVectorProvider
from vectra_io.records import dense_array, record_schema

TABLE = "bench_vectors"


def make_batches(spec: IndexSpec, n: int, batch: int) -> list[pa.RecordBatch]:
    assert spec.dimension is not None
    rng = np.random.default_rng(0)
    out = []
    for start in range(0, n, batch):
        k = min(batch, n - start)
        ids = pa.array([f"vec-{i}" for i in range(start, start + k)])
        values = dense_array(rng.standard_normal((k, spec.dimension), np.float32), spec.dimension)
        meta = pa.array([f'{{"n":{i},"group":"g{i % 17}"}}' for i in range(start, start + k)])
        out.append(pa.RecordBatch.from_arrays([ids, values, meta], schema=record_schema(spec)))
    return out


# -- hand-written psycopg ----------------------------------------------------------------------
class _Raw:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class _RawDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return bytes(obj.data)


def _vector_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row: int32 field length, pgvector's binary vector (int16 dim, int16 0, float4 BE)."""
    n, dim = matrix.shape
    rows = np.empty((n, 8 + 4 * dim), np.uint8)
    rows[:, 0:4] = np.frombuffer(struct.pack(">i", 4 + 4 * dim), np.uint8)
    rows[:, 4:8] = np.frombuffer(struct.pack(">hh", dim, 0), np.uint8)
    rows[:, 8:] = matrix.astype(">f4").view(np.uint8)
    return rows


class HandWritten:
    """What one would write with psycopg alone: one connection per thread."""

    def __init__(self, dsn: str, dim: int) -> None:
        self.dsn = dsn
        self.dim = dim
        self.local = threading.local()
        self.conns: list[psycopg.Connection[Any]] = []
        self.lock = threading.Lock()
        self.oid = 0

    def conn(self) -> psycopg.Connection[Any]:
        c = getattr(self.local, "conn", None)
        if c is None:
            c = psycopg.connect(self.dsn, autocommit=True)
            c.adapters.register_dumper(_Raw, _RawDumper)
            c.execute(
                f"CREATE TEMP TABLE stage (id text, embedding vector({self.dim}), metadata jsonb)"
                " ON COMMIT DELETE ROWS"
            )
            self.oid = c.execute("SELECT 'vector'::regtype::oid").fetchone()[0]  # type: ignore[index]
            self.local.conn = c
            with self.lock:
                self.conns.append(c)
        return c

    def close(self) -> None:
        for c in self.conns:
            c.close()

    @staticmethod
    def _copy_stream(batch: pa.RecordBatch, dim: int) -> bytes:
        ids = [s.encode() for s in batch.column("id").to_pylist()]
        metas = [s.encode() for s in batch.column("metadata").to_pylist()]
        flat = batch.column("values").flatten().to_numpy().reshape(-1, dim)
        rows = _vector_rows(flat).tobytes()
        item = 8 + 4 * dim
        mv = memoryview(rows)
        i4 = struct.Struct(">i").pack
        parts: list[Any] = [b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)]
        nf = struct.pack(">h", 3)
        for k, (rid, meta) in enumerate(zip(ids, metas, strict=True)):
            parts += (nf, i4(len(rid)), rid, mv[k * item : (k + 1) * item])
            parts += (i4(len(meta) + 1), b"\x01", meta)
        parts.append(struct.pack(">h", -1))
        return b"".join(parts)

    def copy_upsert(self, batch: pa.RecordBatch) -> None:
        c = self.conn()
        payload = self._copy_stream(batch, self.dim)
        with c.transaction(), c.cursor() as cur:
            with cur.copy("COPY stage FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(payload)
            cur.execute(
                f"INSERT INTO {TABLE} (namespace, id, embedding, metadata)"
                " SELECT '', id, embedding, metadata FROM stage"
                " ON CONFLICT (namespace, id) DO UPDATE"
                " SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata"
            )

    def insert_upsert(self, batch: pa.RecordBatch) -> None:
        c = self.conn()
        n = batch.num_rows
        flat = batch.column("values").flatten().to_numpy().reshape(-1, self.dim)
        array = struct.pack(">iiIii", 1, 0, self.oid, n, 1) + _vector_rows(flat).tobytes()
        c.execute(
            f"INSERT INTO {TABLE} (namespace, id, embedding, metadata)"
            " SELECT '', u.id, u.e, u.m::jsonb"
            " FROM unnest(%s::text[], %s::vector[], %s::text[]) AS u(id, e, m)"
            " ON CONFLICT (namespace, id) DO UPDATE"
            " SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata",
            [batch.column("id").to_pylist(), _Raw(array), batch.column("metadata").to_pylist()],
        )

    def plain_copy(self, batch: pa.RecordBatch) -> None:
        c = self.conn()
        payload = self._copy_stream(batch, self.dim)
        with (
            c.cursor() as cur,
            cur.copy(f"COPY {TABLE} (id, embedding, metadata) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(payload)

    def scan(self, batch_size: int) -> int:
        """Server-side cursor in one REPEATABLE READ transaction, decoded into numpy."""
        n = 0
        with psycopg.connect(self.dsn) as c:
            c.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with c.cursor(name="bench", binary=True) as cur:
                cur.itersize = batch_size
                cur.execute(
                    f"SELECT id, vector_send(embedding), metadata::text FROM {TABLE}"
                    " WHERE namespace = '' ORDER BY id"
                )
                while rows := cur.fetchmany(batch_size):
                    ids, vecs, metas = zip(*rows, strict=True)
                    flat = np.frombuffer(b"".join(vecs), ">f4")
                    matrix = flat.reshape(len(rows), self.dim + 1)[:, 1:].astype(np.float32)
                    assert matrix.shape[0] == len(ids) == len(metas)
                    n += len(rows)
        return n


# -- runs --------------------------------------------------------------------------------------
def reset_table(dsn: str, dim: int, hnsw: bool) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        c.execute(f"DROP TABLE IF EXISTS {TABLE}")
        p = PgVectorProvider(dsn.split("://", 1)[1], hnsw=hnsw)
        p.create_index(IndexSpec(TABLE, dim, "cosine"))
        p.close()
        c.execute("CHECKPOINT")


def timed_writes(
    write: Callable[[pa.RecordBatch], Any], batches: list[pa.RecordBatch], threads: int
) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for result in pool.map(write, batches):
            assert not result, result
    return time.perf_counter() - start


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        return int(c.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])  # type: ignore[index]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--hnsw", action="store_true", help="build the HNSW index while loading")
    ap.add_argument("--dsn", help="an existing server (default: start one)")
    args = ap.parse_args()

    server = None
    dsn = args.dsn
    if dsn is None:
        from tests.servers.launch import PostgresServer

        server = PostgresServer().start()
        dsn = server.dsn
    spec = IndexSpec(TABLE, args.dim, "cosine")
    batches = make_batches(spec, args.n, args.batch)
    n = args.n
    results: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        results.setdefault(name, []).append(n / seconds)
        print(f"  {name:<34} {n / seconds:>10,.0f} vectors/s", flush=True)

    try:
        for rep in range(args.repeat):
            print(f"run {rep + 1}/{args.repeat}", flush=True)
            provider = PgVectorProvider(dsn.split("://", 1)[1], pool_size=args.threads + 1)
            hand = HandWritten(dsn, args.dim)
            writers: list[tuple[str, Callable[[pa.RecordBatch], Any]]] = [
                ("import provider (upsert)", lambda b, p=provider: p.upsert(TABLE, b)),
                ("import hand COPY+INSERT ON CONFLICT", hand.copy_upsert),
                ("import hand INSERT unnest ON CONFLICT", hand.insert_upsert),
            ]
            order = writers if rep % 2 == 0 else writers[::-1]
            for name, write in order:
                reset_table(dsn, args.dim, args.hnsw)
                record(name + " new", timed_writes(write, batches, args.threads))
                assert count(dsn) == n
                record(name + " replace", timed_writes(write, batches, args.threads))
                assert count(dsn) == n
            reset_table(dsn, args.dim, args.hnsw)
            record(
                "import hand plain COPY (no upsert)",
                timed_writes(hand.plain_copy, batches, args.threads),
            )
            hand.close()
            # export: the table now holds the n records
            provider.close()
            provider = PgVectorProvider(dsn.split("://", 1)[1])
            scans: list[tuple[str, Callable[[], int]]] = [
                (
                    "export provider (scan)",
                    lambda p=provider: sum(
                        page.batch.num_rows for page in p.scan(TABLE, batch_size=args.batch)
                    ),
                ),
                ("export hand server-side cursor", lambda h=hand: h.scan(args.batch)),
            ]
            for name, scan in scans if rep % 2 == 0 else scans[::-1]:
                start = time.perf_counter()
                assert scan() == n
                record(name, time.perf_counter() - start)
            provider.close()
    finally:
        if server is not None:
            server.stop()

    med = {k: statistics.median(v) for k, v in results.items()}
    print(
        f"\nmedians over {args.repeat} runs, {n:,} x {args.dim}, batch {args.batch}, "
        f"{args.threads} threads, hnsw={args.hnsw}:"
    )
    for k, v in med.items():
        print(f"  {k:<42} {v:>10,.0f} vectors/s")
    best_new = max(
        med["import hand COPY+INSERT ON CONFLICT new"],
        med["import hand INSERT unnest ON CONFLICT new"],
    )
    best_replace = max(
        med["import hand COPY+INSERT ON CONFLICT replace"],
        med["import hand INSERT unnest ON CONFLICT replace"],
    )
    ratios = {
        "import new / best hand upsert": med["import provider (upsert) new"] / best_new,
        "import replace / best hand upsert": med["import provider (upsert) replace"] / best_replace,
        "export / hand cursor": med["export provider (scan)"]
        / med["export hand server-side cursor"],
    }
    for k, v in ratios.items():
        print(f"  ratio {k:<36} {v:.2f}")
    print(json.dumps({"medians": med, "ratios": ratios}))


if __name__ == "__main__":
    main()
