"""The ``pgvector`` provider class: :class:`PgVectorProvider` keeps the connection settings,
the pool and the per-table layouts, and implements the provider interface on them (listing,
describing, counting, scanning and fetching; creating, indexing, dropping and writing
tables), with the helpers of this package composing its SQL, encoding its batches and
checking its records; its capabilities are :data:`PGVECTOR_CAPABILITIES`. The conventions
(URL, options, tables, types) are in the package docstring.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.pq import TransactionStatus

from ...errors import (
    AuthError,
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    ProviderError,
    RecordsRejectedError,
    UnsupportedError,
    VectraError,
)
from ...records import ID, conform, record_schema
from ..base import (
    DEFAULT_NAMESPACE,
    ID_TYPES,
    METRICS,
    Capabilities,
    Cursor,
    IndexSpec,
    ProviderBase,
    ScanPage,
    spec_mismatch,
)
from .binary import (
    BUILTIN_OIDS,
    BinaryValue,
    BinaryValueDumper,
    Field,
    array_param,
    copy_payload,
    decode_rows,
    fields,
)
from .error_translation import translate_error
from .layout import (
    INDEX_MAX_DIM,
    VECTOR_MAX_DIM,
    Layout,
    check_new_table,
    read_layout,
    table_comment,
)
from .pool import Conn, Pool
from .refusals import blame, keep_last, refusals, refused_value, valid_ids
from .settings import OPTIONS, Settings, parse_location
from .statements import (
    fetch_query,
    namespaces_query,
    ns_filter,
    scan_cursor,
    table_columns,
)

log = logging.getLogger("vectra_io.providers.pgvector")


PGVECTOR_CAPABILITIES = Capabilities(
    max_batch_rows=5_000,
    max_batch_bytes=32 * 1024 * 1024,
    id_types=frozenset(ID_TYPES),
    metrics=frozenset(METRICS),
    namespaces=True,
    sparse=True,
    named_vectors=True,
    exact_count=True,
    nested_metadata=True,
    idempotent_upsert=True,
    optional_dense=True,
    max_dimension=VECTOR_MAX_DIM,
    exact_floats=True,
    wire_factor=1.05,
)


METRIC_OPS = {"cosine": "cosine", "dot": "ip", "euclidean": "l2", "manhattan": "l1"}


class PgVectorProvider(ProviderBase):
    """PostgreSQL + pgvector. See the package docstring for URL, options and conventions."""

    name: ClassVar[str] = "pgvector"

    def __init__(
        self,
        location: str = "",
        *,
        api_key: str | None = None,
        tls: bool = False,
        **options: Any,
    ) -> None:
        params, query = parse_location(location)
        for key in list(query):
            if key in OPTIONS and key not in options:
                options[key] = query.pop(key)
            elif key in OPTIONS:
                query.pop(key)
        self._settings = Settings.from_options(options)
        password = params.pop("password", None) or query.pop("password", None) or api_key
        self._secrets = tuple(s for s in (password, api_key) if s)
        conn_params = {**params, **query}
        if tls and "sslmode" not in conn_params:
            conn_params["sslmode"] = "require"
        conn_params.setdefault("connect_timeout", "10")
        conn_params.setdefault("application_name", "vectra-io")
        try:
            self._conninfo = psycopg.conninfo.make_conninfo("", **conn_params)
        except psycopg.Error as exc:
            raise ConfigError(f"pgvector: bad connection parameter: {self._scrub(exc)}") from None
        self._password = password
        info = psycopg.conninfo.conninfo_to_dict(self._conninfo)
        host = str(info.get("host") or "localhost")
        if ":" in host and not host.startswith("/"):
            host = f"[{host}]"
        port = info.get("port") or "5432"
        user = info.get("user")
        db = info.get("dbname") or user or ""
        self.endpoint = f"pgvector://{f'{user}@' if user else ''}{host}:{port}/{db}"
        if self._settings.schema != "public":
            self.endpoint += f"?schema={self._settings.schema}"
        self.capabilities = PGVECTOR_CAPABILITIES
        self._pool = Pool(self._connect, self._settings.pool_size, self._settings.pool_timeout)
        self._layouts: dict[str, Layout] = {}
        self._lock = threading.Lock()
        self._ext_schema: str | None = None
        self._type_oids: dict[str, int] = {}  # pgvector's types in this database
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"PgVectorProvider({self.endpoint!r})"

    # -- errors ----------------------------------------------------------------------------------
    def _scrub(self, value: object) -> str:
        text = str(value)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _translate(self, exc: BaseException, index: str | None, what: str) -> ProviderError:
        """The vectra error for a driver/server failure (message without secrets)."""
        return translate_error(exc, what, self._where(index), self._scrub)

    @contextlib.contextmanager
    def _guard(self, index: str | None, what: str) -> Iterator[None]:
        try:
            yield
        except VectraError:
            raise
        except (psycopg.Error, OSError) as exc:
            err = self._translate(exc, index, what)
            if isinstance(err, (IndexNotFoundError, IncompatibleIndexError)) and index:
                self._forget(index)
            raise err from exc

    # -- connections -----------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        conninfo = self._conninfo
        if self._password:
            conninfo = psycopg.conninfo.make_conninfo(conninfo, password=self._password)
        try:
            conn = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise self._translate(exc, None, f"connecting to {self.endpoint}") from exc
        conn.adapters.register_dumper(BinaryValue, BinaryValueDumper)
        return conn

    def close(self) -> None:
        self._pool.close()

    def _ext(self, conn: psycopg.Connection[Any]) -> str:
        """Schema of the pgvector extension (for qualified function and type names)."""
        if self._ext_schema is None:
            row = conn.execute(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n"
                " ON n.oid = e.extnamespace WHERE e.extname = 'vector'"
            ).fetchone()
            if row is None:
                raise IndexNotFoundError(
                    "the pgvector extension is not installed in this database", **self._where(None)
                )
            self._ext_schema = row[0]
        return self._ext_schema

    def _type_oid(self, conn: psycopg.Connection[Any], ext: str, name: str) -> int:
        """OID of type ``name``, built in or pgvector's (binary arrays name their element type)."""
        oid = BUILTIN_OIDS.get(name) or self._type_oids.get(name)
        if oid is None:
            row = conn.execute(
                "SELECT t.oid FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                " WHERE n.nspname = %s AND t.typname = %s",
                (ext, name),
            ).fetchone()
            if row is None:
                raise UnsupportedError(f"this pgvector has no {name} type", **self._where(None))
            oid = self._type_oids[name] = int(row[0])
        return oid

    # -- catalog ---------------------------------------------------------------------------------
    def _forget(self, index: str) -> None:
        with self._lock:
            self._layouts.pop(index, None)

    def _layout(self, index: str, *, fresh: bool = False) -> Layout:
        if not fresh:
            with self._lock:
                cached = self._layouts.get(index)
            if cached is not None:
                return cached
        with self._guard(index, f"describing {index!r}"), self._pool.connection() as pc_:
            layout = read_layout(pc_.conn, self._settings, index, self._where(index), self._ext)
        with self._lock:
            self._layouts[index] = layout
        return layout

    # -- Provider: reading -------------------------------------------------------------------------
    def list_indexes(self) -> list[str]:
        with self._guard(None, "listing tables"), self._pool.connection() as pc_:
            rows = pc_.conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm')"
                " AND NOT c.relispartition AND ("
                "  EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
                "   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
                "   AND t.typname IN ('vector', 'halfvec', 'sparsevec'))"
                "  OR obj_description(c.oid, 'pg_class') LIKE '{\"vectra\"%%')",
                (self._settings.schema,),
            ).fetchall()
        return sorted(r[0] for r in rows)

    def describe_index(self, index: str) -> IndexSpec:
        return self._layout(index, fresh=True).spec

    def list_namespaces(self, index: str) -> list[str]:
        lay = self._layout(index)
        with self._guard(index, "listing namespaces"), self._pool.connection() as pc_:
            query = namespaces_query(lay)
            rows = pc_.conn.execute(query).fetchall()
        return sorted(str(r[0]) for r in rows)

    def count(self, index: str, namespace: str = DEFAULT_NAMESPACE) -> int:
        lay = self._layout(index)
        flt = ns_filter(lay, namespace)
        if flt is None:
            return 0
        cond, params = flt
        query = sql.SQL("SELECT count(*) FROM {t} WHERE {c}").format(t=lay.qualified, c=cond)
        with self._guard(index, "counting"), self._pool.connection() as pc_:
            row = pc_.conn.execute(query, params).fetchone()
        return int(row[0]) if row else 0

    def _decode(self, lay: Layout, rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
        return decode_rows(lay, rows, self._where(lay.table))

    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        lay = self._layout(index)
        flt = ns_filter(lay, namespace)
        if flt is None:
            return
        if batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        after = _cursor_value(cursor)
        cond, params = flt
        what = f"scanning {index!r} namespace {namespace!r}"
        with self._pool.connection() as pc_:
            conn = pc_.conn
            with self._guard(index, what):
                ext = self._ext(conn)
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            try:
                yield from self._pages(conn, lay, ext, cond, params, after, batch_size, what)
                with self._guard(index, what):
                    conn.execute("COMMIT")
            finally:
                if conn.info.transaction_status != TransactionStatus.IDLE and not conn.broken:
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("ROLLBACK")

    def _pages(
        self,
        conn: psycopg.Connection[Any],
        lay: Layout,
        ext: str,
        cond: sql.Composable,
        params: list[Any],
        after: str | None,
        batch_size: int,
        what: str,
    ) -> Iterator[ScanPage]:
        """Pages from one server-side cursor over the namespace in id order.

        Rows are sorted (or read in index order) before pgvector's send functions run, so a
        plan that sorts never decodes vectors it does not return; a page is one row longer
        than asked (look-ahead) to know whether it is the last one.
        """
        declare, args = scan_cursor(lay, ext, cond, params, after)
        with self._guard(lay.table, what):
            if lay.id_nullable:
                self._warn_null_ids(conn, lay)
            conn.execute(declare, args, prepare=False)

        def take(k: int) -> list[tuple[Any, ...]]:
            with self._guard(lay.table, what):
                fetch = sql.SQL("FETCH FORWARD {} FROM vectra_scan").format(sql.Literal(k))
                return conn.execute(fetch, binary=True, prepare=False).fetchall()

        carry: list[tuple[Any, ...]] = []
        while True:
            rows = carry + take(batch_size + 1 - len(carry))
            if len(rows) <= batch_size:
                if rows:
                    yield ScanPage(self._decode(lay, rows), None)
                return
            page, carry = rows[:batch_size], rows[batch_size:]
            if not lay.unique:  # an id repeated across the page end: its rows join this page
                last = page[-1][0]
                while True:
                    while carry and carry[0][0] == last:
                        page.append(carry.pop(0))
                    if carry:
                        break
                    carry = take(batch_size)
                    if not carry:
                        break
                if not carry:
                    yield ScanPage(self._decode(lay, page), None)
                    return
            yield ScanPage(self._decode(lay, page), {"after": page[-1][0]})

    def _warn_null_ids(self, conn: psycopg.Connection[Any], lay: Layout) -> None:
        query = sql.SQL("SELECT count(*) FROM {t} WHERE {c} IS NULL").format(
            t=lay.qualified, c=sql.Identifier(lay.id_column)
        )
        row = conn.execute(query).fetchone()
        if row and row[0]:
            log.warning(
                "%s.%s: %d rows have a NULL id and are not exported",
                lay.schema,
                lay.table,
                row[0],
            )

    def fetch(
        self, index: str, ids: Sequence[str], namespace: str = DEFAULT_NAMESPACE
    ) -> pa.RecordBatch:
        lay = self._layout(index)
        schema = record_schema(lay.spec)
        flt = ns_filter(lay, namespace)
        wanted = [str(i) for i in ids]
        valid = [i for i, ok in zip(wanted, valid_ids(lay, wanted), strict=True) if ok]
        if flt is None or not valid:
            return pa.RecordBatch.from_pylist([], schema=schema)
        cond, params = flt
        rows: list[tuple[Any, ...]] = []
        with self._guard(index, "fetching records"), self._pool.connection() as pc_:
            ext = self._ext(pc_.conn)
            query = fetch_query(lay, ext, cond)
            unique = list(dict.fromkeys(valid))
            for start in range(0, len(unique), 10_000):
                chunk = unique[start : start + 10_000]
                rows += pc_.conn.execute(query, [*params, chunk], binary=True).fetchall()
        batch = self._decode(lay, rows)
        pos: dict[str, int] = {}
        for i, row in enumerate(rows):
            pos.setdefault(row[0], i)
        take = [pos[i] for i in wanted if i in pos]
        return batch.take(pa.array(take, pa.int64())) if take != list(range(len(rows))) else batch

    # -- Provider: writing -------------------------------------------------------------------------
    def create_index(self, spec: IndexSpec) -> None:
        check_new_table(spec, self._settings, self._where(spec.name))
        try:
            existing = self.describe_index(spec.name)
        except IndexNotFoundError:
            existing = None
        if existing is None:
            try:
                self._create_table(spec)
            except IncompatibleIndexError:
                raise
            except FatalError as exc:
                if "already exists" not in str(exc):
                    raise
            existing = self.describe_index(spec.name)
        self._check_same(existing, spec)

    def _check_same(self, existing: IndexSpec, spec: IndexSpec) -> None:
        problem = spec_mismatch(existing, spec)
        if problem:
            raise IncompatibleIndexError(f"index {spec.name!r} {problem}", **self._where(spec.name))

    def _create_table(self, spec: IndexSpec) -> None:
        s = self._settings
        table = sql.Identifier(s.schema, spec.name)
        with self._guard(spec.name, f"creating {spec.name!r}"), self._pool.connection() as pc_:
            conn = pc_.conn
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.errors.InsufficientPrivilege as exc:
                raise AuthError(
                    "the pgvector extension is not installed and this user may not create it: "
                    "ask an administrator to run CREATE EXTENSION vector",
                    **self._where(spec.name),
                ) from exc
            self._ext_schema = None
            self._type_oids = {}
            ext = self._ext(conn)
            names = self._settings.new_table_columns(spec)
            cols, vectors = table_columns(spec, names, ext)
            comment = table_comment(spec, s.sparse_dim)
            with conn.transaction():
                exists = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (s.schema,)
                ).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(s.schema)))
                conn.execute(
                    sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(cols))
                )
                conn.execute(
                    sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(comment))
                )
                for column, dim, metric in vectors:
                    opclass = f"vector_{METRIC_OPS[metric]}_ops"
                    statement = sql.SQL("CREATE INDEX ON {} USING hnsw ({} {})").format(
                        table, sql.Identifier(column), sql.Identifier(ext, opclass)
                    )
                    if dim > INDEX_MAX_DIM:
                        log.warning(
                            "%s.%s: pgvector cannot index %d dimensions (at most %d): column "
                            "%s gets no HNSW index; its metric %s is kept in the table comment",
                            s.schema,
                            spec.name,
                            dim,
                            INDEX_MAX_DIM,
                            column,
                            metric,
                        )
                    elif not s.hnsw:
                        log.info(
                            "%s.%s: hnsw=false, build the index after loading with: %s",
                            s.schema,
                            spec.name,
                            statement.as_string(conn),
                        )
                    # else: finalize_index builds it once the records are loaded
        self._forget(spec.name)
        log.info("created table %s.%s on %s", s.schema, spec.name, self.endpoint)

    def finalize_index(self, index: str) -> None:
        """Build the HNSW index of every vector column that has none, after a load.

        The engine calls this when an import or migration into ``index`` ends:
        building the index once is about five times faster than maintaining it
        during the load (measured: 97 vectors/s with the index, thousands without).
        """
        s = self._settings
        lay = self._layout(index, fresh=True)
        if not s.hnsw or not lay.writable:
            return
        with self._guard(index, f"indexing {index!r}"), self._pool.connection() as pc_:
            conn = pc_.conn
            ext = self._ext(conn)
            defs = [
                str(row[0])
                for row in conn.execute(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
                    (lay.schema, lay.table),
                ).fetchall()
            ]
            for d in lay.dense:
                if d.kind != "vector" or d.dimension > INDEX_MAX_DIM or d.metric not in METRIC_OPS:
                    continue
                quoted = sql.Identifier(d.column).as_string(conn)
                if any(
                    (" USING hnsw " in x or " USING ivfflat " in x)
                    and (f"({quoted} " in x or f"({d.column} " in x)
                    for x in defs
                ):
                    continue
                opclass = f"vector_{METRIC_OPS[d.metric]}_ops"
                log.info("%s.%s: building the HNSW index on %s", lay.schema, index, d.column)
                conn.execute(
                    sql.SQL("CREATE INDEX ON {} USING hnsw ({} {})").format(
                        lay.qualified, sql.Identifier(d.column), sql.Identifier(ext, opclass)
                    )
                )
        self._forget(index)

    def delete_index(self, index: str) -> None:
        lay = self._layout(index, fresh=True)
        kind = "TABLE" if lay.writable else "VIEW"
        with self._guard(index, f"dropping {index!r}"), self._pool.connection() as pc_:
            relkind = pc_.conn.execute(
                "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relname = %s",
                (lay.schema, index),
            ).fetchone()
            if relkind and relkind[0] == "m":
                kind = "MATERIALIZED VIEW"
            pc_.conn.execute(sql.SQL(f"DROP {kind} {{}}").format(lay.qualified))
        self._forget(index)

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        lay = self._layout(index)
        where = self._where(index)
        if not lay.writable:
            raise UnsupportedError(f"{lay.schema}.{index} is a view: it cannot be written", **where)
        if namespace != DEFAULT_NAMESPACE and lay.namespace_column is None:
            raise IncompatibleIndexError(
                f"table {lay.schema}.{index} has no namespace column: it holds only the default "
                f"namespace, not {namespace!r}",
                **where,
            )
        try:
            batch = conform(batch, lay.spec)
        except (ValueError, pa.ArrowException) as exc:  # e.g. another dimension
            raise IncompatibleIndexError(f"records do not fit the table: {exc}", **where) from None
        ids = batch.column(ID).to_pylist()
        refused = refusals(lay, batch, ids)
        keep = keep_last(ids, refused)
        if keep is not None:
            batch = batch.take(pa.array(keep, pa.int64()))
            ids = [ids[i] for i in keep]
        if batch.num_rows == 0:
            return refused
        for d in lay.dense:
            if d.kind == "halfvec" and "halfvec:" + lay.table not in self._warned:
                self._warned.add("halfvec:" + lay.table)
                log.warning(
                    "%s.%s: column %s is halfvec: vectors are rounded to float16",
                    lay.schema,
                    lay.table,
                    d.column,
                )
        what = f"writing {batch.num_rows} records into {index!r}"
        job = _WriteJob(
            index,
            lay,
            fields(lay, batch),
            [namespace] if lay.namespace_column is not None else [],
            what,
        )
        with self._pool.connection() as pc_:
            try:
                # a table with a unique id takes one statement; the staging table's COPY is
                # for the others, and for a batch whose value the server refused: arrays do
                # not say whose, COPY names the record by its line
                if lay.conflict is None or not self._write_arrays(pc_, job):
                    self._write_staged(pc_, job)
            except psycopg.Error as exc:
                err = self._translate(exc, index, what)
                blamed = blame(exc, ids) if refused_value(exc) else {}
                if blamed:  # the server names the record: the rest of the batch may be fine
                    err = RecordsRejectedError(err.message, failures=blamed, **self._where(index))
                if isinstance(err, (IndexNotFoundError, IncompatibleIndexError)):
                    self._forget(index)
                raise err from exc
        return refused

    def _write_arrays(self, pc_: Conn, job: _WriteJob) -> bool:
        """One autocommit ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT``. False, having
        written nothing, when the server refused a value (SQLSTATE class 22 or 23)."""
        conn = pc_.conn
        with self._guard(job.index, job.what):
            ext = self._ext(conn)
            oids = [self._type_oid(conn, ext, f.pgtype) for f in job.fields]
        arrays = [array_param(f, oid) for f, oid in zip(job.fields, oids, strict=True)]
        try:
            conn.execute(pc_.rendered_statements(job.lay, ext, None)[0], job.params + arrays)
        except psycopg.Error as exc:
            if not refused_value(exc):
                raise
            return False
        return True

    def _write_staged(self, pc_: Conn, job: _WriteJob) -> None:
        """Binary COPY into the connection's staging table, then the table's write
        statements, in one transaction."""
        conn = pc_.conn
        with self._guard(job.index, job.what):
            ext = self._ext(conn)
            stage = pc_.staging_table(job.lay, ext)
        with conn.transaction(), conn.cursor() as cur:
            copy_sql = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(sql.Identifier(stage))
            with cur.copy(copy_sql) as copy:
                copy.write(copy_payload(job.fields))
            for statement in pc_.rendered_statements(job.lay, ext, stage):
                cur.execute(statement, job.params)


def _cursor_value(cursor: Cursor) -> str | None:
    if cursor is None:
        return None
    if isinstance(cursor, dict) and isinstance(cursor.get("after"), str):
        return str(cursor["after"])
    raise ConfigError(f"not a pgvector scan cursor: {cursor!r}")


@dataclass(frozen=True)
class _WriteJob:
    """One batch on its way into a table: its columns and statement parameters."""

    index: str
    lay: Layout
    fields: list[Field]
    #: leading parameters of the write statements (the namespace, when the table has one)
    params: list[Any]
    #: what the write is, for error messages
    what: str
