"""Server providers benchmark: engine import/export against minimal hand-written driver loops.

    python benchmarks/bench_servers.py                         # 100,000 x 768, all four
    python benchmarks/bench_servers.py --n 20000 --providers lancedb,milvus --repeat 3

For each provider -- lancedb (embedded, temp dir), chroma (``chroma run``), milvus
(``milvus-lite server``) and pgvector (embedded PostgreSQL + pgvector); the servers are
started by ``tests.servers.launch`` on 127.0.0.1 and stopped at the end -- it measures:

import
    ``vectra_io.import_snapshot`` of a snapshot made once from a memory source (N records,
    ``--dim`` float32, JSON metadata) into an empty index, ``chunk_size=--batch`` and
    ``concurrency=--concurrency``, against a hand-written loop with the same driver that
    reads the same Parquet parts in ``--batch`` rows and writes them with the same number
    of threads (bounded: at most ``--concurrency`` writes in flight):

    - lancedb: ``merge_insert("id")`` per batch, from 1 thread and from N threads;
    - chroma: raw HTTP ``POST .../upsert`` with httpx (base64 vectors when the server
      offers them, like the provider), N threads;
    - milvus: pymilvus ``MilvusClient.upsert`` of row dicts, N threads, then ``flush``;
      one upsert at a time, as the provider sends them: Milvus Lite has no write lock
      and can lose an upsert that overlaps another one's flush;
    - pgvector: ``HandWritten.copy_upsert`` and ``insert_upsert`` of bench_pgvector.py.

    The baseline is the provider's hand variant with the best median rate (the same variant
    in every run, so the per-run pairs below compare one sample with one sample). Both
    sides finish durably: the provider's ``close()`` (Milvus flushes there) is inside the
    timing, and so is the hand loop's ``flush``/connection close.
export
    ``vectra_io.export_snapshot`` from the provider to a temp dir (``batch_size=--batch``)
    against the hand-written read loop (lancedb ``to_batches``, chroma ``POST .../get``
    with limit/offset, pymilvus ``query_iterator``, bench_pgvector's server-side cursor)
    plus writing the same N records to one zstd Parquet file (the engine's writer
    options). The read loop and the Parquet write are timed separately and added: that is
    what a sequential hand loop (read a page, write it) costs, and it lets bench_pgvector's
    scan be reused as is. The read loop alone is printed as "driver only".

Before the timed runs, one untimed load warms each server up (``--no-warmup`` skips it),
and before each timed phase the dirty pages of the previous one are flushed (``os.sync``).
Rates are vectors/s, medians over ``--repeat`` runs whose order (engine first or hand
first) alternates; ratios are engine / hand baseline (target >= 0.9): the ratio of the
medians, and the median of the per-run ratios (each run pairs the engine with the hand
loop timed next to it, which is the steadier figure on a noisy machine). The LanceDB and
pgvector tables and the Milvus collection carry no ANN index that is built during the
load (pgvector: ``hnsw=false``; Milvus: FLAT, which the provider also picks on Milvus
Lite), so the transfer is what is measured.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vectra_io
from benchmarks.bench_core import make_batch
from vectra_io.providers.base import IndexSpec, Provider
from vectra_io.providers.memory import MemoryProvider
from vectra_io.snapshot.checksum import CRC32_BACKEND
from vectra_io.snapshot.parts import parquet_options

INDEX = "bench_vectors"  # the table bench_pgvector.HandWritten writes; valid everywhere
PROVIDERS = ("lancedb", "chroma", "milvus", "pgvector")


# -- shared plumbing -----------------------------------------------------------------------------
def make_snapshot(root: Path, n: int, dim: int, batch: int) -> Path:
    """The snapshot every import reads: N records exported once from a memory source."""
    spec = IndexSpec(INDEX, dim, "cosine")
    src = MemoryProvider()
    src.create_index(spec)
    rng = np.random.default_rng(0)
    for start in range(0, n, 10_000):
        src.upsert(INDEX, make_batch(spec, start, min(10_000, n - start), rng))
    snap = root / "snapshot"
    manifest = vectra_io.export_snapshot(src, str(snap), batch_size=batch)
    assert manifest["indexes"][INDEX]["namespaces"]["__default__"]["rows"] == n
    return snap


def snapshot_parts(snap: Path) -> list[Path]:
    manifest = json.loads((snap / "manifest.json").read_text())
    entry = manifest["indexes"][INDEX]["namespaces"]["__default__"]
    return [snap / p["path"] for p in entry["parts"]]


def read_parts(parts: list[Path], batch: int) -> Iterator[pa.RecordBatch]:
    for part in parts:
        yield from pq.ParquetFile(part).iter_batches(batch_size=batch)


def run_writes(
    write: Callable[[pa.RecordBatch], Any], batches: Iterator[pa.RecordBatch], threads: int
) -> None:
    """``write`` every batch from ``threads`` threads, at most ``threads`` in flight."""
    with ThreadPoolExecutor(threads) as pool:
        inflight: set[Future[Any]] = set()
        for b in batches:
            if len(inflight) >= threads:
                done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()
            inflight.add(pool.submit(write, b))
        for f in inflight:
            f.result()


def quiet_start() -> float:
    """Flush the page cache's dirty pages, then start a clock: the writeback of one timed
    phase (a load writes ~300 MB) must not land on the next, which hits whichever side
    syncs its own file (the engine's export does, a hand loop does not)."""
    os.sync()
    return time.perf_counter()


def matrix_of(batch: pa.RecordBatch, dim: int) -> np.ndarray:
    return batch.column("values").flatten().to_numpy().reshape(-1, dim)


def parquet_write_seconds(records: list[pa.RecordBatch], path: Path) -> float:
    """Time to write the records to one Parquet file with the engine's part options."""
    start = time.perf_counter()
    with pq.ParquetWriter(path, records[0].schema, **parquet_options("zstd")) as writer:
        for b in records:
            writer.write_batch(b)
    seconds = time.perf_counter() - start
    path.unlink()
    return seconds


@dataclass
class HandImport:
    label: str
    threads: int
    prepare: Callable[[], Callable[[pa.RecordBatch], Any]]  # creates the index, gives write
    finish: Callable[[], None] = lambda: None  # flush / close, inside the timing
    baseline: bool = True


class Target:
    """One provider under test: how to open it, reset it, and write/read it by hand."""

    name = ""

    def engine(self) -> Provider:
        raise NotImplementedError

    def drop(self) -> None:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def hand_imports(self) -> list[HandImport]:
        raise NotImplementedError

    def hand_export(self) -> int:
        """Read every record with the driver, decoded to numpy / Arrow; returns the count."""
        raise NotImplementedError


# -- LanceDB -------------------------------------------------------------------------------------
class LanceTarget(Target):
    name = "lancedb"

    def __init__(self, root: Path, dim: int, batch: int, threads: int) -> None:
        import lancedb

        self.path = root / "lancedb"
        self.db = lancedb.connect(str(self.path))
        self.dim, self.batch, self.threads = dim, batch, threads

    def engine(self) -> Provider:
        from vectra_io.providers.lancedb import LanceDBProvider

        return LanceDBProvider(str(self.path))

    def drop(self) -> None:
        self.db.drop_table(INDEX, ignore_missing=True)

    def count(self) -> int:
        return int(self.db.open_table(INDEX).count_rows())

    def hand_imports(self) -> list[HandImport]:
        # The provider keys its table on (id, namespace) and commits concurrent upserts
        # together (one merge_insert per group); the hand table is the plain one a user
        # would make, keyed on id, with one merge_insert per batch.
        def prepare() -> Callable[[pa.RecordBatch], Any]:
            schema = pa.schema(
                [
                    pa.field("id", pa.string(), nullable=False),
                    pa.field("vector", pa.list_(pa.float32(), self.dim)),
                    pa.field("metadata", pa.string()),
                ]
            )
            table = self.db.create_table(INDEX, schema=schema)

            def write(b: pa.RecordBatch) -> None:
                vectors = b.column("values").cast(schema.field("vector").type)
                b = pa.RecordBatch.from_arrays(
                    [b.column("id"), vectors, b.column("metadata")], schema=schema
                )
                (
                    table.merge_insert("id")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute(b)
                )

            return write

        return [
            HandImport("merge_insert, 1 thread", 1, prepare),
            HandImport(f"merge_insert, {self.threads} threads", self.threads, prepare),
        ]

    def hand_export(self) -> int:
        table = self.db.open_table(INDEX)
        query = table.search().select(["id", "vector", "metadata"]).limit(None)
        n = 0
        for b in query.to_batches(batch_size=self.batch):
            n += b.num_rows
        return n


# -- Chroma --------------------------------------------------------------------------------------
class ChromaTarget(Target):
    name = "chroma"

    def __init__(self, url: str, dim: int, batch: int, threads: int) -> None:
        import httpx

        self.url, self.dim, self.batch, self.threads = url, dim, batch, threads
        self.http = httpx.Client(
            base_url=url,
            timeout=120.0,
            limits=httpx.Limits(max_connections=threads, max_keepalive_connections=threads),
        )
        self.db = "/api/v2/tenants/default_tenant/databases/default_database"
        checks = self.http.get("/api/v2/pre-flight-checks").raise_for_status().json()
        self.base64 = bool(checks.get("supports_base64_encoding"))

    def engine(self) -> Provider:
        from vectra_io.providers.chroma import ChromaProvider

        return ChromaProvider(self.url.split("://", 1)[1])

    def _post(self, path: str, body: Any) -> Any:
        content = json.dumps(body, separators=(",", ":")).encode()
        r = self.http.post(path, content=content, headers={"content-type": "application/json"})
        return json.loads(r.raise_for_status().content or b"null")

    def _collection(self) -> str:
        got = self.http.get(f"{self.db}/collections/{INDEX}").raise_for_status().json()
        return f"{self.db}/collections/{got['id']}"

    def drop(self) -> None:
        r = self.http.delete(f"{self.db}/collections/{INDEX}")
        if r.status_code != 404:
            r.raise_for_status()

    def count(self) -> int:
        return int(self.http.get(f"{self._collection()}/count").raise_for_status().json())

    def hand_imports(self) -> list[HandImport]:
        # Chroma's upsert merges metadata: keys missing from the new version survive. Into
        # a collection it created, the provider sends upsert + get(ids, metadatas, documents,
        # uris) per batch (the get catches a merge and Chroma 1.5 attaching stale list
        # metadata); elsewhere it deletes the ids first. A user's loop would send a plain
        # upsert, so that is the baseline; the provider's requests are timed by hand too,
        # to show what the checks cost, but not used for the ratio.
        def prepare(extra: bool) -> Callable[[], Callable[[pa.RecordBatch], Any]]:
            def make() -> Callable[[pa.RecordBatch], Any]:
                body = {"name": INDEX, "configuration": {"hnsw": {"space": "cosine"}}}
                col = f"{self.db}/collections/" + self._post(f"{self.db}/collections", body)["id"]

                def write(b: pa.RecordBatch) -> None:
                    ids = b.column("id").to_pylist()
                    texts = b.column("metadata").to_pylist()
                    metas = [None if m is None else json.loads(m) for m in texts]
                    vectors = np.ascontiguousarray(matrix_of(b, self.dim), "<f4")
                    if self.base64:
                        emb: list[Any] = [base64.b64encode(v.tobytes()).decode() for v in vectors]
                    else:
                        emb = vectors.tolist()
                    self._post(f"{col}/upsert", {"ids": ids, "embeddings": emb, "metadatas": metas})
                    if extra:
                        include = ["metadatas", "documents", "uris"]
                        self._post(f"{col}/get", {"ids": ids, "include": include})

                return write

            return make

        return [
            HandImport(f"upsert, {self.threads} threads", self.threads, prepare(False)),
            HandImport(
                f"upsert+get, {self.threads} threads (provider's requests)",
                self.threads,
                prepare(True),
                baseline=False,
            ),
        ]

    def hand_export(self) -> int:
        col = self._collection()
        include = ["embeddings", "metadatas", "documents", "uris"]  # what the provider reads
        offset = 0
        while True:
            body = {"include": include, "limit": self.batch, "offset": offset}
            page = self._post(f"{col}/get", body)
            if not page["ids"]:
                return offset
            matrix = np.array(page["embeddings"], np.float32)
            metas = [None if m is None else json.dumps(m) for m in page["metadatas"]]
            assert matrix.shape == (len(page["ids"]), self.dim) and len(metas) == len(matrix)
            offset += len(page["ids"])


# -- Milvus --------------------------------------------------------------------------------------
class MilvusTarget(Target):
    name = "milvus"

    def __init__(self, url: str, dim: int, batch: int, threads: int) -> None:
        from pymilvus import MilvusClient

        from vectra_io.providers.milvus import CONNECTION_OPTIONS

        self.url, self.dim, self.batch, self.threads = url, dim, batch, threads
        self.client = MilvusClient(uri=url, timeout=120, **CONNECTION_OPTIONS)
        # query_iterator warns that Milvus Lite gives no MVCC timestamp (it uses the client's)
        logging.getLogger("pymilvus").setLevel(logging.ERROR)

    def engine(self) -> Provider:
        from vectra_io.providers.milvus import MilvusProvider

        return MilvusProvider(self.url.split("://", 1)[1])

    def drop(self) -> None:
        if self.client.has_collection(INDEX):
            self.client.drop_collection(INDEX)

    def count(self) -> int:
        res = self.client.query(
            INDEX, filter="", output_fields=["count(*)"], consistency_level="Strong"
        )
        return int(res[0]["count(*)"])

    def hand_imports(self) -> list[HandImport]:
        from pymilvus import DataType, MilvusClient

        def prepare() -> Callable[[pa.RecordBatch], Any]:
            # the provider's layout: VARCHAR key, FLOAT_VECTOR, metadata JSON text
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=65535)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            schema.add_field("metadata", DataType.VARCHAR, max_length=65535, nullable=True)
            params = self.client.prepare_index_params()
            params.add_index("vector", index_type="FLAT", metric_type="COSINE")
            self.client.create_collection(
                INDEX, schema=schema, index_params=params, consistency_level="Strong"
            )

            # Milvus Lite loses an upsert that overlaps another's flush: one at a time,
            # as the provider does (the threads still build their rows in parallel)
            one_writer = threading.Lock()

            def write(b: pa.RecordBatch) -> None:
                matrix = matrix_of(b, self.dim)
                ids, metas = b.column("id").to_pylist(), b.column("metadata").to_pylist()
                rows = [
                    {"id": rid, "vector": matrix[i], "metadata": metas[i]}
                    for i, rid in enumerate(ids)
                ]
                with one_writer:
                    self.client.upsert(INDEX, rows)

            return write

        return [
            HandImport(
                f"upsert, {self.threads} threads, one upsert at a time + flush",
                self.threads,
                prepare,
                finish=lambda: self.client.flush(INDEX),
            )
        ]

    def hand_export(self) -> int:
        it = self.client.query_iterator(
            INDEX, batch_size=self.batch, output_fields=["id", "vector", "metadata"]
        )
        n = 0
        try:
            while rows := it.next():
                matrix = np.array([r["vector"] for r in rows], np.float32)
                ids = [r["id"] for r in rows]
                metas = [r["metadata"] for r in rows]
                assert matrix.shape == (len(ids), self.dim) and len(metas) == len(ids)
                n += len(rows)
        finally:
            it.close()
        return n


# -- pgvector (bench_pgvector's hand-written psycopg) --------------------------------------------
class PgTarget(Target):
    name = "pgvector"

    def __init__(self, dsn: str, dim: int, batch: int, threads: int) -> None:
        from benchmarks import bench_pgvector as bp

        assert bp.TABLE == INDEX
        self.bp, self.dsn, self.dim, self.batch, self.threads = bp, dsn, dim, batch, threads

    def engine(self) -> Provider:
        from vectra_io.providers.pgvector import PgVectorProvider

        # no HNSW index (bench_pgvector's default): the load, not the graph build
        return PgVectorProvider(self.dsn.split("://", 1)[1], hnsw=False)

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as c:
            c.execute(f"DROP TABLE IF EXISTS {INDEX}")
            c.execute("CHECKPOINT")

    def count(self) -> int:
        return self.bp.count(self.dsn)

    def hand_imports(self) -> list[HandImport]:
        out = []
        for label, method in (
            ("COPY + INSERT ON CONFLICT", "copy_upsert"),
            ("INSERT unnest ON CONFLICT", "insert_upsert"),
        ):
            hand = self.bp.HandWritten(self.dsn, self.dim)

            def prepare(h: Any = hand, m: str = method) -> Callable[[pa.RecordBatch], Any]:
                self.bp.reset_table(self.dsn, self.dim, False)
                return getattr(h, m)  # type: ignore[no-any-return]

            out.append(
                HandImport(f"{label}, {self.threads} threads", self.threads, prepare, hand.close)
            )
        return out

    def hand_export(self) -> int:
        return int(self.bp.HandWritten(self.dsn, self.dim).scan(self.batch))


# -- runs ----------------------------------------------------------------------------------------
class Runner:
    def __init__(self, args: argparse.Namespace, snap: Path, work: Path) -> None:
        self.args, self.snap, self.work = args, snap, work
        self.parts = snapshot_parts(snap)
        self.records = list(read_parts(self.parts, args.batch))  # for the Parquet-write timing
        self.rates: dict[str, dict[str, list[float]]] = {}
        self.labels: dict[str, list[tuple[str, bool]]] = {}

    def record(self, provider: str, key: str, seconds: float) -> None:
        rate = self.args.n / seconds
        self.rates.setdefault(provider, {}).setdefault(key, []).append(rate)
        print(f"  {provider:<9} {key:<62} {rate:>9,.0f} vectors/s", flush=True)

    def engine_import(self, t: Target, rep: int) -> None:
        t.drop()
        state = self.work / f"state-{t.name}-{rep}"
        state.mkdir()
        provider = t.engine()
        start = quiet_start()
        try:
            res = vectra_io.import_snapshot(
                str(self.snap),
                provider,
                chunk_size=self.args.batch,
                concurrency=self.args.concurrency,
                state=state,
            )
        finally:
            provider.close()
        self.record(t.name, "import engine", time.perf_counter() - start)
        assert res["imported_count"] == self.args.n, res
        assert t.count() == self.args.n

    def engine_export(self, t: Target, rep: int) -> None:
        out = self.work / f"export-{t.name}-{rep}"
        provider = t.engine()
        start = quiet_start()
        try:
            manifest = vectra_io.export_snapshot(provider, str(out), batch_size=self.args.batch)
        finally:
            provider.close()
        self.record(t.name, "export engine", time.perf_counter() - start)
        rows = manifest["indexes"][INDEX]["namespaces"]["__default__"]["rows"]
        assert rows == self.args.n and not manifest["errors"], manifest["errors"]
        shutil.rmtree(out)

    def hand_import(self, t: Target) -> None:
        variants = t.hand_imports()
        self.labels[t.name] = [(v.label, v.baseline) for v in variants]
        for v in variants:
            self.record(t.name, f"import hand {v.label}", self.load_by_hand(t, v))
            assert t.count() == self.args.n

    def load_by_hand(self, t: Target, v: HandImport) -> float:
        """Seconds for one hand-written load into an empty index."""
        t.drop()
        write = v.prepare()
        start = quiet_start()
        run_writes(write, read_parts(self.parts, self.args.batch), v.threads)
        v.finish()
        return time.perf_counter() - start

    def hand_export(self, t: Target) -> None:
        start = quiet_start()
        assert t.hand_export() == self.args.n
        read = time.perf_counter() - start
        write = parquet_write_seconds(self.records, self.work / "hand.parquet")
        self.record(t.name, "export hand: driver only", read)
        self.record(t.name, "export hand: driver + Parquet write", read + write)

    def warm_up(self, t: Target) -> None:
        """One untimed load with the first hand variant: a fresh server's first load pays
        for things later ones reuse (PostgreSQL creates its WAL segments, caches fill),
        which would otherwise land on whichever side runs first."""
        seconds = self.load_by_hand(t, t.hand_imports()[0])
        print(f"  {t.name:<9} warm-up load (untimed) in {seconds:.1f}s")

    def run(self, t: Target) -> None:
        if not self.args.no_warmup:
            self.warm_up(t)
        for rep in range(self.args.repeat):
            print(f"{t.name}: run {rep + 1}/{self.args.repeat}, load {load()}", flush=True)
            engine_first = rep % 2 == 0
            for first in (engine_first, not engine_first):
                if first:
                    self.engine_import(t, rep)
                    self.engine_export(t, rep)
                else:
                    self.hand_import(t)
                    self.hand_export(t)
            t.drop()

    def table(self) -> dict[str, Any]:
        a = self.args
        print(
            f"\nvectra-io {vectra_io.__version__} (CRC-32: {CRC32_BACKEND}): {a.n:,} x {a.dim}, "
            f"batch {a.batch}, "
            f"concurrency {a.concurrency}, medians over {a.repeat} run(s), vectors/s\n"
        )
        head = (
            f"{'provider':<9} | {'import engine':>13} {'hand':>9} {'ratio':>5} {'paired':>6} | "
            f"{'export engine':>13} {'hand':>9} {'ratio':>5} {'paired':>6} | {'driver only':>11}"
        )
        print(head)
        print("-" * len(head))
        summary: dict[str, Any] = {}
        for name, rates in self.rates.items():
            med = {k: statistics.median(v) for k, v in rates.items()}
            # the baseline is the hand variant with the best median, in every run: taking
            # the best variant per run would pick the luckier of two noisy samples
            bases = [f"import hand {lbl}" for lbl, is_base in self.labels[name] if is_base]
            best = max(bases, key=lambda k: med[k])
            base = med[best]
            imp, exp = med["import engine"], med["export engine"]
            hand_exp = med["export hand: driver + Parquet write"]
            paired_imp = statistics.median(
                e / h for e, h in zip(rates["import engine"], rates[best], strict=True)
            )
            hand_exps = rates["export hand: driver + Parquet write"]
            paired_exp = statistics.median(
                e / h for e, h in zip(rates["export engine"], hand_exps, strict=True)
            )
            print(
                f"{name:<9} | {imp:>13,.0f} {base:>9,.0f} {imp / base:>5.2f} {paired_imp:>6.2f} | "
                f"{exp:>13,.0f} {hand_exp:>9,.0f} {exp / hand_exp:>5.2f} {paired_exp:>6.2f} | "
                f"{med['export hand: driver only']:>11,.0f}"
            )
            summary[name] = {
                "medians": med,
                "import_ratio": imp / base,
                "export_ratio": exp / hand_exp,
                "import_ratio_paired": paired_imp,
                "export_ratio_paired": paired_exp,
            }
        print("\nhand import variants (baseline: the one marked * with the best median):")
        for name, labels in self.labels.items():
            for lbl, is_base in labels:
                rate = statistics.median(self.rates[name][f"import hand {lbl}"])
                print(f"  {'*' if is_base else ' '} {name:<9} {lbl:<62} {rate:>9,.0f}")
        return summary


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def open_target(name: str, stack: ExitStack, work: Path, args: argparse.Namespace) -> Target:
    from tests.servers import launch

    common = (args.dim, args.batch, args.concurrency)
    if name == "lancedb":
        return LanceTarget(work, *common)
    if name == "chroma":
        return ChromaTarget(stack.enter_context(launch.ChromaServer()).url, *common)
    if name == "milvus":
        return MilvusTarget(stack.enter_context(launch.MilvusServer()).url, *common)
    server = stack.enter_context(launch.PostgresServer())
    return PgTarget(server.dsn, *common)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--batch", type=int, default=1000, help="import chunk and export page rows")
    ap.add_argument("--concurrency", type=int, default=8, help="import threads")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--providers", default=",".join(PROVIDERS), help="comma-separated")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed first load")
    args = ap.parse_args()
    chosen = [p.strip() for p in args.providers.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PROVIDERS))
    if unknown:
        ap.error(f"unknown providers {unknown}; choose from {', '.join(PROVIDERS)}")

    print(f"load average at start: {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vectra-bench-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        snap = make_snapshot(work, args.n, args.dim, args.batch)
        print(f"snapshot of {args.n:,} x {args.dim} in {time.perf_counter() - start:.1f}s")
        runner = Runner(args, snap, work)
        for name in chosen:
            with ExitStack() as stack:  # the provider's server stops before the next starts
                runner.run(open_target(name, stack, work, args))
        summary = runner.table()
    print(f"\nload average at end: {load()}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
