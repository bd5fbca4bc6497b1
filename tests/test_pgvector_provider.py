"""pgvector-specific behaviour of the ``pgvector://`` provider, against a real PostgreSQL +
pgvector server (the generic contract is checked by ``tests/conformance`` through
``harness_pgvector.py``)."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

psycopg = pytest.importorskip("psycopg")

from psycopg import sql  # noqa: E402

import vectra_io  # noqa: E402
from vectra_io.engine.importer import ensure_target_index  # noqa: E402
from vectra_io.errors import (  # noqa: E402
    AuthError,
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    RecordsRejectedError,
    RetryableError,
)
from vectra_io.providers.base import IndexSpec, VectorSpec  # noqa: E402
from vectra_io.providers.memory import MemoryProvider  # noqa: E402
from vectra_io.providers.pgvector import PgVectorProvider  # noqa: E402
from vectra_io.providers.registry import open_provider  # noqa: E402
from vectra_io.records import (  # noqa: E402
    batch_from_records,
    dense_matrix,
    loads_metadata,
    records_from_batch,
)

from .util import assert_tables_equal, make_records, read_all  # noqa: E402

pytest_plugins = ["tests.servers.fixtures"]

PASSWORD = "s3cr3t-Pa55w0rd!"
PW_USER = "vectra_pw_user"


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture
def server(postgres_server: Any) -> Any:
    return postgres_server


@pytest.fixture
def conn(server: Any) -> Iterator[Any]:
    with psycopg.connect(server.dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield c


@pytest.fixture
def schema(conn: Any) -> Iterator[str]:
    """A schema of this test's own, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def location(server: Any, schema: str | None = None, **query: str) -> str:
    loc = f"{server.user}@{server.host}:{server.port}/{server.dbname}"
    if schema:
        query = {"schema": schema, **query}
    if query:
        loc += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return loc


@pytest.fixture
def provider(server: Any, schema: str) -> Iterator[PgVectorProvider]:
    p = PgVectorProvider(location(server, schema))
    yield p
    p.close()


def run(conn: Any, schema: str, statement: str) -> None:
    """Execute ``statement`` with ``{s}`` standing for the quoted test schema."""
    conn.execute(statement.replace("{s}", sql.Identifier(schema).as_string(conn)))


@pytest.fixture(scope="module")
def password_user(postgres_server: Any) -> str:
    """A role that must authenticate with a password (the test server trusts everyone else).

    pg_hba.conf is rewritten through the server itself (COPY ... TO runs as the server's
    user), adding one scram-sha-256 line for this role only."""
    with psycopg.connect(postgres_server.dsn, autocommit=True) as c:
        hba = c.execute("SHOW hba_file").fetchone()[0]
        text = c.execute("SELECT pg_read_file(%s)", (hba,)).fetchone()[0]
        rule = f"host all {PW_USER} 127.0.0.1/32 scram-sha-256"
        if rule not in text:
            lines = [rule, *(line or "#" for line in text.split("\n"))]
            c.execute(
                sql.SQL(
                    "COPY (SELECT unnest({}::text[])) TO {} WITH (FORMAT csv, DELIMITER E'\\x02', "
                    "QUOTE E'\\x01')"
                ).format(sql.Literal(lines), sql.Literal(hba))
            )
        errors = c.execute("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")
        assert errors.fetchone()[0] == 0
        c.execute("SELECT pg_reload_conf()")
        c.execute(
            sql.SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {n}) "
                "THEN CREATE ROLE {i} LOGIN; END IF; END $$"
            ).format(n=sql.Literal(PW_USER), i=sql.Identifier(PW_USER))
        )
        c.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(PW_USER), sql.Literal(PASSWORD)
            )
        )
        c.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(PW_USER)))
    return PW_USER


# -- URL, endpoint, secrets -------------------------------------------------------------------
def test_url_syntax_endpoint_and_aliases(server: Any, schema: str) -> None:
    p = open_provider(
        f"postgresql://{location(server, schema, id_column='pk', application_name='x')}"
    )
    assert isinstance(p, PgVectorProvider)
    assert p.endpoint == (
        f"pgvector://{server.user}@{server.host}:{server.port}/{server.dbname}?schema={schema}"
    )
    q = open_provider(f"pgvector://{location(server)}")
    assert q.endpoint == f"pgvector://{server.user}@{server.host}:{server.port}/{server.dbname}"
    with pytest.raises(ConfigError, match="unknown options"):
        PgVectorProvider(location(server), bogus_option=1)
    with pytest.raises(ConfigError, match="bad connection parameter"):
        PgVectorProvider(location(server, nonsense="1"))
    with pytest.raises(ConfigError, match="not a number"):
        PgVectorProvider(f"{server.user}@{server.host}:notaport/{server.dbname}")
    with pytest.raises(ConfigError, match="metadata_column or metadata_columns"):
        PgVectorProvider(location(server), metadata_column="a", metadata_columns="*")
    # +https asks for TLS, which this server does not offer: a fatal, not a retryable, error
    tls = open_provider(f"pgvector+https://{location(server)}")
    with pytest.raises(FatalError, match="SSL") as info:
        tls.list_indexes()
    assert not isinstance(info.value, RetryableError)
    plain = open_provider(f"pgvector://{location(server, schema, sslmode='disable')}")
    assert plain.list_indexes() == []


def test_password_never_shown(
    server: Any, password_user: str, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    host = f"{server.host}:{server.port}/{server.dbname}"
    # in the URL, right password: works; nowhere in endpoint or repr
    good = open_provider(f"pgvector://{password_user}:{PASSWORD}@{host}")
    assert good.list_indexes() is not None
    for text in (good.endpoint, repr(good), str(vars(good).get("endpoint"))):
        assert PASSWORD not in text
    assert good.endpoint == f"pgvector://{password_user}@{host}"
    good.close()
    # from PGPASSWORD through the registry's api-key variable
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    env = open_provider(f"postgres://{password_user}@{host}")
    assert env.list_indexes() is not None
    env.close()
    monkeypatch.delenv("PGPASSWORD")
    # wrong password (in the URL, or as api_key): AuthError naming neither secret
    for bad in (
        PgVectorProvider(f"{password_user}:{PASSWORD}x@{host}"),
        PgVectorProvider(f"{password_user}@{host}", api_key=PASSWORD + "x"),
    ):
        with pytest.raises(AuthError) as info:
            bad.list_indexes()
        message = str(info.value)
        assert "authentication" in message and PASSWORD not in message
        chained = repr(info.value.__cause__) + str(info.value.__cause__)
        assert PASSWORD not in chained
        assert PASSWORD not in repr(bad)
    # no password at all
    with pytest.raises(AuthError):
        PgVectorProvider(f"{password_user}@{host}").list_indexes()
    # unreachable: retryable, and still no secret
    refused = PgVectorProvider(f"{password_user}:{PASSWORD}@{server.host}:1/{server.dbname}")
    with pytest.raises(RetryableError) as info2:
        refused.count("anything")
    assert PASSWORD not in str(info2.value)
    assert PASSWORD not in caplog.text


# -- user tables ------------------------------------------------------------------------------
def test_user_table_with_custom_column_names(server: Any, conn: Any, schema: str) -> None:
    run(
        conn,
        schema,
        "CREATE TABLE {s}.items (pk bigint PRIMARY KEY, emb vector(3), attrs jsonb,"
        " title text, price numeric, created date DEFAULT '2024-01-02')",
    )
    run(
        conn,
        schema,
        "INSERT INTO {s}.items (pk, emb, attrs, title, price) VALUES"
        " (1, '[1,2,3]', '{\"a\": {\"b\": [1, null]}}', 'one', 1.5),"
        " (2, '[4,5,6]', NULL, 'two', NULL), (3, NULL, '{}', NULL, 3)",
    )
    url = location(server, schema, id_column="pk", vector_column="emb", metadata_column="attrs")
    p = open_provider(f"pgvector://{url}")
    assert p.list_indexes() == ["items"]
    spec = p.describe_index("items")
    assert (spec.dimension, spec.id_type, spec.metric) == (3, "uint64", "unknown")
    assert not spec.sparse and not spec.named_vectors
    assert p.list_namespaces("items") == [""]
    assert p.count("items") == 3 and p.count("items", "other") == 0
    recs = {r["id"]: r for r in records_from_batch(read_all(p, "items", ""))}
    assert recs["1"]["values"] == [1.0, 2.0, 3.0]
    assert recs["1"]["metadata"] == {"a": {"b": [1, None]}}
    assert recs["2"]["metadata"] is None and recs["3"]["values"] is None
    # writing back through the mapping: replaces, keeps the other columns
    new = batch_from_records(
        spec, [{"id": "2", "values": [7, 8, 9], "metadata": {"z": 1}}, {"id": "4"}]
    )
    assert p.upsert("items", new) == {}
    rows = conn.execute(
        sql.SQL("SELECT pk, emb::text, attrs, title FROM {} ORDER BY pk").format(
            sql.Identifier(schema, "items")
        )
    ).fetchall()
    assert rows[1] == (2, "[7,8,9]", {"z": 1}, "two")
    assert rows[3] == (4, None, None, None)
    with pytest.raises(IncompatibleIndexError, match="no namespace column"):
        p.upsert("items", new, "tenant")
    p.close()

    # the same table, every other column as metadata
    q = PgVectorProvider(location(server, schema, id_column="pk", metadata_columns="*"))
    spec = q.describe_index("items")
    assert spec.dimension == 3  # the only vector column
    got = {r["id"]: r["metadata"] for r in records_from_batch(read_all(q, "items", ""))}
    assert got["1"] == {
        "attrs": {"a": {"b": [1, None]}},
        "title": "one",
        "price": 1.5,
        "created": "2024-01-02",
    }
    batch = batch_from_records(
        spec,
        [
            {"id": "5", "values": [1, 1, 1], "metadata": {"title": "five", "price": 5}},
            {"id": "6", "values": [1, 1, 1], "metadata": {"title": "six", "colour": "red"}},
        ],
    )
    assert q.upsert("items", batch) == {"6": "metadata keys without a column: ['colour']"}
    row = conn.execute(
        sql.SQL("SELECT title, price, created FROM {} WHERE pk = 5").format(
            sql.Identifier(schema, "items")
        )
    ).fetchone()
    assert row[0] == "five" and float(row[1]) == 5.0 and row[2] is None
    with pytest.raises(ConfigError, match="metadata_columns"):
        q.create_index(IndexSpec("fresh", 3))
    q.close()


def test_create_index_with_given_column_names(server: Any, conn: Any, schema: str) -> None:
    p = PgVectorProvider(
        location(server, schema),
        id_column="pk",
        vector_column="emb",
        metadata_column="attrs",
        namespace_column="tenant",
    )
    spec = IndexSpec("named", 4, "euclidean", id_type="uuid")
    p.create_index(spec)
    cols = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
        (f"{schema}.named",),
    ).fetchall()
    assert [c[0] for c in cols] == ["tenant", "pk", "emb", "attrs"]
    described = p.describe_index("named")
    assert (described.dimension, described.metric, described.id_type) == (4, "euclidean", "uuid")
    rid = str(uuid.uuid4())
    batch = batch_from_records(spec, [{"id": rid, "values": [1, 2, 3, 4], "metadata": {"k": 1}}])
    assert p.upsert("named", batch, "t1") == {}
    assert p.list_namespaces("named") == ["t1"]
    assert records_from_batch(p.fetch("named", [rid], "t1"))[0]["metadata"] == {"k": 1}
    bad = batch_from_records(spec, [{"id": rid.upper(), "values": [1, 2, 3, 4]}])
    assert "UUID" in p.upsert("named", bad, "t1")[rid.upper()]
    p.close()


@pytest.mark.parametrize(
    ("opclass", "method", "metric"),
    [
        ("vector_cosine_ops", "hnsw", "cosine"),
        ("vector_ip_ops", "hnsw", "dot"),
        ("vector_l2_ops", "ivfflat", "euclidean"),
        ("vector_l1_ops", "hnsw", "manhattan"),
        (None, None, "unknown"),
    ],
)
def test_metric_from_the_index_operator_class(
    provider: PgVectorProvider,
    conn: Any,
    schema: str,
    opclass: str | None,
    method: str | None,
    metric: str,
) -> None:
    run(conn, schema, "CREATE TABLE {s}.docs (id text PRIMARY KEY, embedding vector(3))")
    if opclass:
        run(conn, schema, f"CREATE INDEX ON {{s}}.docs USING {method} (embedding {opclass})")
    assert provider.describe_index("docs").metric == metric
    if metric == "unknown":  # the import engine then asks for --metric
        spec = provider.describe_index("docs").renamed("docs_copy")
        with pytest.raises(ConfigError, match="--metric"):
            ensure_target_index(provider, spec, create_index=True)


def test_halfvec_and_sparsevec_user_tables(
    provider: PgVectorProvider, conn: Any, schema: str
) -> None:
    run(
        conn,
        schema,
        "CREATE TABLE {s}.mixed (id integer PRIMARY KEY, h halfvec(3), sv sparsevec(10),"
        " other vector(2))",
    )
    run(
        conn,
        schema,
        "INSERT INTO {s}.mixed VALUES (1, '[0.1, -2.5, 65504]', '{1:1.5,3:-2,10:0.25}/10',"
        " '[1,2]'), (2, NULL, '{}/10', NULL), (3, '[1,2,3]', NULL, '[3,4]')",
    )
    run(conn, schema, "CREATE INDEX ON {s}.mixed USING hnsw (h halfvec_ip_ops)")
    # two dense columns, none called "embedding": both are named vectors...
    ambiguous = provider.describe_index("mixed")
    assert ambiguous.dimension is None
    assert ambiguous.named_vectors == {"h": VectorSpec(3, "dot"), "other": VectorSpec(2, "unknown")}
    # ...unless vector_column says which one is the default vector
    provider = PgVectorProvider(provider.endpoint.split("://")[1], vector_column="h")
    spec = provider.describe_index("mixed")
    assert spec.dimension == 3 and spec.metric == "dot" and spec.sparse
    assert spec.named_vectors == {"other": VectorSpec(2, "unknown")}
    table = read_all(provider, "mixed", "")
    recs = {r["id"]: r for r in records_from_batch(table)}
    want = np.array([0.1, -2.5, 65504], np.float16).astype(np.float32)
    assert np.array_equal(
        np.asarray(recs["1"]["values"], np.float32).view(np.uint32), want.view(np.uint32)
    )
    # pgvector's text form is 1-based; vectra's indices are 0-based
    assert recs["1"]["sparse_values"] == {"indices": [0, 2, 9], "values": [1.5, -2.0, 0.25]}
    assert recs["2"]["sparse_values"] == {"indices": [], "values": []}
    assert recs["2"]["values"] is None
    assert "sparse_values" not in recs["3"]
    assert recs["3"]["vectors"] == {"other": [3.0, 4.0]}
    # and back: 0-based in, 1-based in pgvector's text form
    batch = batch_from_records(
        spec,
        [
            {
                "id": "4",
                "values": [1, 2, 3],
                "sparse_values": {"indices": [9, 0], "values": [3.0, 0.5]},
                "vectors": {"other": [5, 6]},
            },
            {"id": "5", "values": [1, 2, 3], "sparse_values": {"indices": [10], "values": [1.0]}},
            {"id": "6", "values": [1e6, 0, 0]},
        ],
    )
    refused = provider.upsert("mixed", batch)
    assert set(refused) == {"5", "6"}
    assert "dimension 10" in refused["5"] and "float16" in refused["6"]
    row = conn.execute(
        sql.SQL("SELECT sv::text, h::text, other::text FROM {} WHERE id = 4").format(
            sql.Identifier(schema, "mixed")
        )
    ).fetchone()
    assert row == ("{1:0.5,10:3}/10", "[1,2,3]", "[5,6]")


def test_vectra_sparse_index_round_trip_and_limits(provider: PgVectorProvider) -> None:
    spec = IndexSpec("sp", 4, "dot", sparse=True)
    provider.create_index(spec)
    rows = [
        {
            "id": "a",
            "values": [1, 2, 3, 4],
            "sparse_values": {"indices": [0, 7, 999_999_999], "values": [0.5, 1e-45, 3.4e38]},
        },
        {
            "id": "b",
            "values": [1, 2, 3, 4],
            "sparse_values": {"indices": [5, 2], "values": [1.0, 0.0]},
        },
        {"id": "c", "values": [1, 2, 3, 4]},
        {
            "id": "d",
            "values": [1, 2, 3, 4],
            "sparse_values": {"indices": [1_000_000_000], "values": [1.0]},
        },
        {
            "id": "e",
            "values": [1, 2, 3, 4],
            "sparse_values": {"indices": [3, 3], "values": [1.0, 2.0]},
        },
    ]
    refused = provider.upsert("sp", batch_from_records(spec, rows))
    assert set(refused) == {"d", "e"}
    assert "1000000000" in refused["d"] and "repeats" in refused["e"]
    got = {r["id"]: r for r in records_from_batch(read_all(provider, "sp", ""))}
    a = got["a"]["sparse_values"]
    assert a["indices"] == [0, 7, 999_999_999]
    assert np.array_equal(
        np.asarray(a["values"], np.float32).view(np.uint32),
        np.array([0.5, 1e-45, 3.4e38], np.float32).view(np.uint32),
    )
    # sorted, and the explicit zero dropped (pgvector stores none)
    assert got["b"]["sparse_values"] == {"indices": [5], "values": [1.0]}
    assert "sparse_values" not in got["c"]


def test_repeatable_read_scan(provider: PgVectorProvider, conn: Any, schema: str) -> None:
    spec = IndexSpec("rr", 4, "cosine")
    provider.create_index(spec)
    recs = [{"id": f"k{i:03d}", "values": [i, 1, 2, 3]} for i in range(50)]
    provider.upsert("rr", batch_from_records(spec, recs))
    pages = provider.scan("rr", batch_size=10)
    first = next(pages)
    assert first.batch.num_rows == 10 and first.cursor == {"after": "k009"}
    # another connection commits new rows (after and before the cursor) and deletes one
    run(
        conn,
        schema,
        "INSERT INTO {s}.rr (id, embedding) VALUES ('k999', '[1,1,1,1]'), ('k0005', '[1,1,1,1]')",
    )
    run(conn, schema, "DELETE FROM {s}.rr WHERE id = 'k040'")
    rest = list(pages)
    ids = [r for p in [first, *rest] for r in p.batch.column("id").to_pylist()]
    assert ids == [f"k{i:03d}" for i in range(50)]  # the snapshot of the first page
    assert rest[-1].cursor is None and all(p.cursor for p in rest[:-1])
    assert provider.count("rr") == 51
    # resuming from a cursor continues after it (in a new snapshot)
    resumed = list(provider.scan("rr", batch_size=1000, cursor={"after": "k045"}))
    assert resumed[0].batch.column("id").to_pylist() == ["k046", "k047", "k048", "k049", "k999"]
    assert resumed[0].cursor is None
    with pytest.raises(ConfigError):
        list(provider.scan("rr", cursor=[1, 2]))


def test_exact_floats_and_engine_round_trip(
    provider: PgVectorProvider, server: Any, schema: str, tmp_path: Path
) -> None:
    source = MemoryProvider()
    spec = IndexSpec("exact", 768, "cosine", named_vectors={"t": VectorSpec(3, "euclidean")})
    source.create_index(spec)
    recs = make_records(1200, 768, seed=7)
    for i, r in enumerate(recs):
        r["vectors"] = {"t": [float(i), -0.0, 1e-45]} if i % 3 else {}
    for start in range(0, 1200, 500):
        source.upsert("exact", batch_from_records(spec, recs[start : start + 500]), "tenant/1")
    snap = str(tmp_path / "snap")
    vectra_io.export_snapshot(source, snap)
    res = vectra_io.import_snapshot(snap, provider, chunk_size=250, concurrency=8)
    assert res["errors"] == [] and res["imported_count"] == 1200
    assert_tables_equal(
        read_all(source, "exact", "tenant/1"), read_all(provider, "exact", "tenant/1")
    )
    got = provider.describe_index("exact")
    assert (got.dimension, got.metric, got.named_vectors) == (768, "cosine", spec.named_vectors)
    # the HNSW indexes are built once the load is over (finalize_index), one per vector column
    defs = [r[0] for r in provider_conn_rows(server, schema, "exact") if " USING hnsw " in r[0]]
    assert len(defs) == 2 and any("vector_cosine_ops" in d for d in defs)
    assert any("vector_l2_ops" in d for d in defs)
    check = vectra_io.verify_snapshot(snap, provider, sample=300)
    assert check["match"] is True
    # and out again, from pgvector to a snapshot to memory
    snap2 = str(tmp_path / "snap2")
    vectra_io.export_snapshot(provider, snap2, batch_size=333)
    back = MemoryProvider()
    vectra_io.import_snapshot(snap2, back)
    assert_tables_equal(read_all(source, "exact", "tenant/1"), read_all(back, "exact", "tenant/1"))


def provider_conn_rows(server: Any, schema: str, table: str) -> list[Any]:
    import psycopg

    with psycopg.connect(server.dsn) as c:
        return c.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (schema, table),
        ).fetchall()


def test_more_than_2000_dimensions_has_no_hnsw_index(
    provider: PgVectorProvider, conn: Any, schema: str, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="vectra_io.providers.pgvector")
    provider.create_index(IndexSpec("wide", 2001, "dot"))
    assert "cannot index 2001 dimensions" in caplog.text
    methods = conn.execute(
        "SELECT am.amname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = %s::regclass",
        (f"{schema}.wide",),
    ).fetchall()
    assert [m[0] for m in methods] == ["btree"]
    assert provider.describe_index("wide").metric == "dot"  # from the table comment
    provider.create_index(IndexSpec("narrow", 2000, "manhattan"))
    assert provider.describe_index("narrow").metric == "manhattan"
    with pytest.raises(IncompatibleIndexError, match="dimension"):
        provider.create_index(IndexSpec("narrow", 3, "manhattan"))


def test_refusals_and_error_translation(provider: PgVectorProvider, conn: Any, schema: str) -> None:
    with pytest.raises(IndexNotFoundError):
        provider.describe_index("missing")
    with pytest.raises(IndexNotFoundError):
        provider.count("missing")
    spec = IndexSpec("ids", 2, "dot", id_type="uint64")
    provider.create_index(spec)
    batch = batch_from_records(
        spec,
        [
            {"id": "1", "values": [1, 2]},
            {"id": "007", "values": [1, 2]},
            {"id": "x", "values": [1, 2]},
            {"id": str(2**63), "values": [1, 2]},
            {"id": "9", "values": [float("nan"), 2]},
            {"id": "-5", "values": [3, 4]},
        ],
    )
    refused = provider.upsert("ids", batch)
    assert set(refused) == {"007", "x", str(2**63), "9"}
    assert "NaN" in refused["9"]
    assert sorted(provider.fetch("ids", ["1", "-5", "x", "2"]).column("id").to_pylist()) == [
        "-5",
        "1",
    ]
    # the wrong dimension: the table is incompatible with the batch
    other = IndexSpec("ids", 3, "dot", id_type="uint64")
    with pytest.raises(IncompatibleIndexError):
        provider.upsert("ids", batch_from_records(other, [{"id": "1", "values": [1, 2, 3]}]))
    # a record the server refuses is named (here: metadata that is not JSON)
    bad = pa.RecordBatch.from_pydict(
        {"id": ["2", "3"], "values": [[1.0, 2.0], [3.0, 4.0]], "metadata": ['{"a":1}', "{nope"]},
    )
    with pytest.raises(RecordsRejectedError) as info:
        provider.upsert("ids", bad)
    assert set(info.value.failures) == {"3"}
    # the table vanished behind the provider's back
    run(conn, schema, "DROP TABLE {s}.ids")
    with pytest.raises(IndexNotFoundError):
        provider.upsert("ids", batch_from_records(spec, [{"id": "1", "values": [1, 2]}]))


def test_nul_characters_are_refused_by_record(provider: PgVectorProvider) -> None:
    """PostgreSQL text and jsonb cannot hold U+0000: those records are named, the rest land."""
    spec = IndexSpec("texts", 2, "cosine")
    provider.create_index(spec)
    batch = batch_from_records(
        spec,
        [
            {"id": "ok", "values": [1, 2], "metadata": {"a": "fine"}},
            {"id": "bad\x00id", "values": [1, 2]},
            {"id": "badmeta", "values": [1, 2], "metadata": {"a": "x\x00y"}},
            {"id": "badkey", "values": [1, 2], "metadata": {"k\x00": [1, {"b": 2}]}},
            {"id": "backslash", "values": [1, 2], "metadata": {"a": "\\u0000 is text"}},
        ],
    )
    refused = provider.upsert("texts", batch)
    assert set(refused) == {"bad\x00id", "badmeta", "badkey"}
    assert all("NUL" in reason for reason in refused.values())
    assert provider.count("texts") == 2  # "ok", and the backslash that is only text
    [meta] = provider.fetch("texts", ["backslash"]).column("metadata").to_pylist()
    assert loads_metadata(meta) == {"a": "\\u0000 is text"}


def test_upserts_from_eight_threads(provider: PgVectorProvider) -> None:
    spec = IndexSpec("conc", 16, "cosine")
    provider.create_index(spec)
    recs = make_records(4000, 16, seed=3)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for start in range(k * 500, (k + 1) * 500, 100):
                chunk = recs[start : start + 100]
                assert provider.upsert("conc", batch_from_records(spec, chunk), "ns") == {}
                # overlapping rewrites of the same ids from other threads
                again = recs[(start + 700) % 4000 : (start + 700) % 4000 + 50]
                assert provider.upsert("conc", batch_from_records(spec, again), "ns") == {}
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert provider.count("conc", "ns") == 4000
    ref = MemoryProvider()
    ref.create_index(spec)
    ref.upsert("conc", batch_from_records(spec, recs), "ns")
    assert_tables_equal(read_all(ref, "conc", "ns"), read_all(provider, "conc", "ns"))


def test_table_without_primary_key(provider: PgVectorProvider, conn: Any, schema: str) -> None:
    run(conn, schema, "CREATE TABLE {s}.loose (id int, embedding vector(2), metadata json)")
    run(
        conn,
        schema,
        "INSERT INTO {s}.loose SELECT i / 3, ARRAY[i, 0]::real[]::vector, '{\"i\": 1}'"
        " FROM generate_series(0, 29) i",
    )
    run(conn, schema, "INSERT INTO {s}.loose VALUES (NULL, '[9,9]', NULL)")
    pages = list(provider.scan("loose", batch_size=4))
    assert sum(p.batch.num_rows for p in pages) == 30  # duplicates kept, NULL id skipped
    assert pages[-1].cursor is None and all(p.cursor for p in pages[:-1])
    assert provider.count("loose") == 30
    spec = provider.describe_index("loose")
    batch = batch_from_records(spec, [{"id": "1", "values": [5, 5], "metadata": {"new": True}}])
    assert provider.upsert("loose", batch) == {}  # DELETE + INSERT: one row for id 1
    got = records_from_batch(provider.fetch("loose", ["1"]))
    assert got == [{"id": "1", "values": [5.0, 5.0], "metadata": {"new": True}}]


def test_sparse_only_and_metadata_only_indexes(provider: PgVectorProvider) -> None:
    provider.create_index(IndexSpec("plain", None, "cosine"))
    provider.create_index(IndexSpec("sparseonly", None, "dot", sparse=True))
    assert set(provider.list_indexes()) >= {"plain", "sparseonly"}
    spec = provider.describe_index("sparseonly")
    assert spec.dimension is None and spec.sparse and spec.metric == "dot"
    batch = batch_from_records(
        spec, [{"id": "a", "sparse_values": {"indices": [3], "values": [1.0]}, "metadata": {}}]
    )
    assert provider.upsert("sparseonly", batch) == {}
    assert loads_metadata(provider.fetch("sparseonly", ["a"]).column("metadata")[0].as_py()) == {}
    provider.delete_index("plain")
    assert "plain" not in provider.list_indexes()


def test_vectors_decode_without_python_loops_match_text_form(
    provider: PgVectorProvider, conn: Any, schema: str
) -> None:
    spec = IndexSpec("bits", 8, "euclidean")
    provider.create_index(spec)
    special = np.array(
        [-0.0, 1e-45, -1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38, 1, 0.1], np.float32
    )
    provider.upsert("bits", batch_from_records(spec, [{"id": "s", "values": special}]))
    text = conn.execute(
        sql.SQL("SELECT embedding::text FROM {} WHERE id = 's'").format(
            sql.Identifier(schema, "bits")
        )
    ).fetchone()[0]
    assert np.array_equal(np.array(json.loads(text), np.float32), special)
    got = dense_matrix(provider.fetch("bits", ["s"]).column("values"))[0]
    assert np.array_equal(got.view(np.uint32), special.view(np.uint32))


def test_lost_connection_is_retryable_then_replaced(server: Any, conn: Any, schema: str) -> None:
    app = f"vectra-test-{uuid.uuid4().hex[:8]}"  # libpq parameters pass through the URL
    provider = PgVectorProvider(location(server, schema, application_name=app))
    provider.create_index(IndexSpec("lost", 2, "dot"))
    assert provider.count("lost") == 0  # the pool now holds an idle connection
    killed = conn.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
        (app,),
    ).fetchone()[0]
    assert killed >= 1
    with pytest.raises(RetryableError):
        provider.count("lost")
    assert provider.count("lost") == 0  # the broken connection was dropped, a new one made
    provider.close()


# -- the binary COPY stream, against a row-by-row reference encoder ---------------------------
def _reference_copy(lay: Any, batch: pa.RecordBatch) -> bytes:
    import struct

    from vectra_io.providers.pgvector.binary import _sparse_cells

    sparse = _sparse_cells(lay, batch) if lay.sparse_column is not None else None
    nfields = 2 + len(lay.dense) + (sparse is not None)
    out = [b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)]
    for i in range(batch.num_rows):
        rid = batch.column("id")[i].as_py().encode()
        out.append(struct.pack(">hi", nfields, len(rid)) + rid)
        for d in lay.dense:
            vec = batch.column(d.field)[i].as_py()
            if vec is None:
                out.append(struct.pack(">i", -1))
            else:
                body = struct.pack(">hh", d.dimension, 0) + np.array(vec, ">f4").tobytes()
                out.append(struct.pack(">i", len(body)) + body)
        if sparse is not None:
            out.append(sparse[i])
        meta = batch.column("metadata")[i].as_py()
        if meta is None:
            out.append(struct.pack(">i", -1))
        else:
            out.append(struct.pack(">i", len(meta.encode()) + 1) + b"\x01" + meta.encode())
    out.append(struct.pack(">h", -1))
    return b"".join(out)


def test_copy_payload_matches_a_row_by_row_encoder() -> None:
    from vectra_io.providers.pgvector import binary
    from vectra_io.providers.pgvector.layout import Dense, Layout

    spec = IndexSpec("t", 3, "cosine", sparse=True, named_vectors={"title": VectorSpec(2, "dot")})
    dense = (
        Dense("values", "embedding", "vector", 3, "cosine"),
        Dense("vector.title", "title", "vector", 2, "dot"),
    )
    lay = Layout(
        "public",
        "t",
        spec,
        "id",
        "text",
        False,
        None,
        False,
        dense,
        "sparse",
        100,
        "metadata",
        "jsonb",
        (),
        ("id",),
        True,
    )
    records: list[dict[str, Any]] = []
    for i in range(9):
        rec: dict[str, Any] = {"id": f"r{i}-é" * (i % 3 + 1), "values": [i, -0.0, 1e-42]}
        if i % 2:
            rec["vectors"] = {"title": [float(i), 3.4e38]}
        if i % 3:
            rec["metadata"] = {"n": i, "s": "ü" * i}
        if i % 4 != 1:
            rec["sparse_values"] = {"indices": [i, 7], "values": [0.5, 0.0 if i == 2 else 1.5]}
        records.append(rec)
    batch = batch_from_records(spec, records)
    assert batch.column("vector.title").null_count and batch.column("metadata").null_count
    for piece in (batch, batch.slice(3, 5)):  # sliced arrays: offsets not at zero
        assert binary.copy_payload(binary.fields(lay, piece)) == _reference_copy(lay, piece)


def test_writes_are_one_unnest_statement_copy_only_names_a_refused_record(
    provider: PgVectorProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table with a unique id takes one INSERT ... FROM unnest(binary arrays) per batch;
    every column's NULLs survive it. A value the server refuses sends the batch through the
    staging table's COPY, whose error names the record."""
    from vectra_io.providers.pgvector import provider as pgv_provider

    copies: list[int] = []
    real = pgv_provider.copy_payload  # patched where the provider looks it up
    monkeypatch.setattr(
        pgv_provider, "copy_payload", lambda fields: copies.append(1) or real(fields)
    )
    spec = IndexSpec(
        "arrays", 3, "cosine", sparse=True, named_vectors={"title": VectorSpec(2, "dot")}
    )
    provider.create_index(spec)
    records: list[dict[str, Any]] = []
    for i in range(7):
        rec: dict[str, Any] = {"id": f"a{i}-é", "values": [i, -0.0, 1e-42]}
        if i % 2:
            rec["vectors"] = {"title": [float(i), 3.4e38]}
        if i % 3:
            rec["metadata"] = {"n": i, "s": "ü" * i}
        if i % 4 != 1:
            rec["sparse_values"] = {"indices": [i + 1, 70], "values": [0.5, 1.5]}
        records.append(rec)
    assert provider.upsert("arrays", batch_from_records(spec, records)) == {}
    back = provider.fetch("arrays", [r["id"] for r in records])
    assert_tables_equal(back, batch_from_records(spec, records))
    assert copies == []

    plain = IndexSpec("arrays_plain", 2, "dot")
    provider.create_index(plain)
    bad = pa.RecordBatch.from_pydict(
        {"id": ["2", "3"], "values": [[1.0, 2.0], [3.0, 4.0]], "metadata": ['{"a":1}', "{nope"]},
    )
    with pytest.raises(RecordsRejectedError) as info:
        provider.upsert("arrays_plain", bad)
    assert set(info.value.failures) == {"3"} and copies == [1]
    assert provider.count("arrays_plain") == 0  # the refused batch wrote nothing
