"""Smoke tests: each real server starts, answers one real operation, and stops cleanly."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.servers.launch import (
    ChromaServer,
    MilvusServer,
    PostgresServer,
    S3Server,
    Server,
    ServerStartError,
    _pid_alive,
)

pytest_plugins = ["tests.servers.fixtures"]


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_postgres_pgvector(postgres_server: PostgresServer) -> None:
    table = _name("smoke")
    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, embedding vector(3))")
        conn.execute(f"INSERT INTO {table} VALUES (1, '[1,2,3]'), (2, '[4,5,6]')")
        rows = conn.execute(
            f"SELECT id, embedding::text FROM {table} ORDER BY embedding <-> '[4,5,5]'"
        ).fetchall()
        conn.execute(f"DROP TABLE {table}")
    assert rows == [(2, "[4,5,6]"), (1, "[1,2,3]")]


def test_chroma_http(chroma_server: ChromaServer) -> None:
    base = "/api/v2/tenants/default_tenant/databases/default_database/collections"
    with httpx.Client(base_url=chroma_server.url, trust_env=False, timeout=30) as http:
        created = http.post(base, json={"name": _name("smoke")})
        created.raise_for_status()
        collection = f"{base}/{created.json()['id']}"
        records = {"ids": ["a", "b"], "embeddings": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]}
        http.post(f"{collection}/add", json=records).raise_for_status()
        count = http.get(f"{collection}/count")
        count.raise_for_status()
    assert count.json() == 2


def test_milvus_grpc(milvus_server: MilvusServer) -> None:
    from pymilvus import MilvusClient

    from vectra_io.providers.milvus import CONNECTION_OPTIONS

    name = _name("smoke")
    client = MilvusClient(uri=milvus_server.url, **CONNECTION_OPTIONS)
    try:
        client.create_collection(name, dimension=3)
        rows = [{"id": i, "vector": [float(i), 0.5, 1.0]} for i in range(3)]
        client.insert(name, rows)
        result = client.query(name, filter="", output_fields=["count(*)"])
        client.drop_collection(name)
    finally:
        client.close()
    assert result[0]["count(*)"] == 3


def test_s3_moto(s3_server: S3Server) -> None:
    bucket = s3_server.make_bucket(_name("smoke").replace("_", "-"))
    fs = s3_server.filesystem()
    fs.pipe(f"{bucket}/dir/hello.txt", b"hello vectors")
    assert fs.cat(f"{bucket}/dir/hello.txt") == b"hello vectors"
    assert s3_server.env()["AWS_ENDPOINT_URL_S3"] == s3_server.endpoint_url


# -- launcher failure paths (no real server needed) --------------------------------------


class _Crashing(Server):
    name = "crashing"

    def _command(self) -> list[str]:
        return [sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)"]

    def _probe(self) -> bool:
        return False


class _Hanging(Server):
    """Never gets ready and ignores SIGTERM: start times out, stop has to SIGKILL it."""

    name = "hanging"
    seen: tuple[int, Path] | None = None

    def _command(self) -> list[str]:
        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
        return [sys.executable, "-c", code]

    def _probe(self) -> bool:
        assert self.pid is not None and self.tmpdir is not None
        self.seen = (self.pid, self.tmpdir)
        return False


def test_crash_reports_log_tail() -> None:
    server = _Crashing(start_timeout=10)
    with pytest.raises(ServerStartError, match=r"(?s)code 3.*boom: bad config"):
        server.start()
    assert server.tmpdir is None


def test_timeout_kills_and_cleans_up() -> None:
    server = _Hanging(start_timeout=0.5, stop_grace=0.5)
    with pytest.raises(ServerStartError, match=r"not ready after 0\.5s"):
        server.start()
    assert server.seen is not None
    pid, tmpdir = server.seen
    assert not _pid_alive(pid)
    assert not tmpdir.exists()


def test_fixture_fails_or_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.servers import fixtures  # loaded as a plugin: import late, keep it rewritten

    monkeypatch.delenv(fixtures.SKIP_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match="_Crashing could not start"):
        next(fixtures._serve(_Crashing))
    monkeypatch.setenv(fixtures.SKIP_ENV, "1")
    with pytest.raises(pytest.skip.Exception, match="boom: bad config"):
        next(fixtures._serve(_Crashing))
