"""The ``pgvector`` provider: PostgreSQL tables with pgvector columns, through psycopg 3.

URL
    ``pgvector://[user[:password]@]host[:port]/dbname[?option=value&...]``; the schemes
    ``postgresql://`` and ``postgres://`` are aliases, ``pgvector+https://`` asks for TLS
    (``sslmode=require``). The password may instead come from ``api_key`` or the ``PGPASSWORD``
    environment variable; it never appears in :attr:`endpoint`, ``repr``, logs or errors.
    Query parameters that are not vectra options below are libpq connection parameters
    (``sslmode``, ``sslrootcert``, ``application_name``, ``connect_timeout``, ...).

Options (URL query parameters or keyword arguments)
    ``schema``            schema of the tables (default ``public``)
    ``id_column``         id column (default: ``id``, else the single primary-key column)
    ``vector_column``     the default dense vector (default: ``embedding``, else the only
                          ``vector``/``halfvec`` column; ``""`` = none); the table's other
                          ``vector``/``halfvec`` columns are named vectors
    ``namespace_column``  namespace column (default ``namespace`` when the table has it; ``""``
                          = none)
    ``sparse_column``     ``sparsevec`` column (default ``sparse``, else the only one)
    ``metadata_column``   a ``jsonb``/``json`` column holding the metadata (default ``metadata``)
    ``metadata_columns``  ``*`` (every other column) or ``a,b,c``: plain columns exported as the
                          keys of the metadata object, and written back from those keys
    ``hnsw``              ``false``: do not build HNSW indexes when creating an index (load
                          first, index later: inserting into an HNSW graph is many times
                          slower than the load itself; the ``CREATE INDEX`` statement to run
                          afterwards is logged, the metric is kept in the table comment)
    ``sparse_dim``        dimension written into ``sparsevec`` values of a column without a
                          declared one (default: that of a stored value, else 1,000,000,000;
                          sparse indices must be below it: pgvector's limit is 10^9)
    ``pool_size``         connections kept (default 10), ``pool_timeout`` seconds to wait for one

Tables
    An index is a table. Tables created by :meth:`PgVectorProvider.create_index` look like::

        CREATE TABLE <schema>.<index> (
            namespace text COLLATE "C" NOT NULL DEFAULT '',
            id        text COLLATE "C" NOT NULL,       -- bigint for uint64 ids, uuid for uuid
            embedding vector(<dimension>),              -- NULL for records without one
            <name>    vector(<dim>),                    -- one column per named vector
            sparse    sparsevec,                        -- sparse indexes only
            metadata  jsonb,
            PRIMARY KEY (namespace, id));
        CREATE INDEX ON <index> USING hnsw (embedding vector_cosine_ops);  -- opclass = metric

    (column names follow the ``*_column`` options when given) with vectra's IndexSpec as JSON
    in the table comment, so they round-trip exactly. pgvector
    cannot index more than 2,000 dimensions: above that no HNSW index is built (a warning says
    so) and the metric lives in the comment only. Any other table with a ``vector``,
    ``halfvec`` or ``sparsevec`` column is an index too, its columns found by the defaults
    above or given as options; further ``vector``/``halfvec`` columns become named vectors.

Namespaces
    The namespace is the value of the ``namespace text NOT NULL DEFAULT ''`` column, part of
    the primary key ``(namespace, id)``; the default namespace is ``''``. A table without a
    namespace column holds only the default namespace (writing to another one is refused).

Types and metric
    ids travel as text and are cast to the id column's type (``text`` -> ``string``,
    ``smallint``/``integer``/``bigint`` -> ``uint64``, ``uuid`` -> ``uuid``, anything else
    -> ``string``; bigint ids must be canonical integers of its range, uuid ids canonical
    lower-case hyphenated UUIDs, so an id reads back as written). Vectors travel in
    pgvector's binary format in both directions (float32 bit-exact; ``halfvec`` is widened to
    float32 on export and rounded on import, values beyond float16 are refused). Sparse
    vectors use pgvector's binary format, whose indices are 0-based like vectra's (the text
    form ``{1:0.5}/n`` is 1-based); on import they are sorted and explicit zeros dropped
    (pgvector stores none). The metric is read from the operator class of an HNSW/IVFFlat
    index on the vector column (``vector_cosine_ops`` -> cosine, ``vector_ip_ops`` -> dot,
    ``vector_l2_ops`` -> euclidean, ``vector_l1_ops`` -> manhattan), else from vectra's table
    comment, else it is ``unknown``.

Scans
    A scan reads one namespace in one ``REPEATABLE READ, READ ONLY`` transaction (a single
    snapshot: rows committed meanwhile by others are not seen) through a server-side cursor
    ordered by id; the scan cursor is ``{"after": <last id>}``, so a crashed export resumes
    with ``WHERE id > <last id>`` (in a new snapshot). Rows with a NULL id cannot be
    addressed and are not exported (a warning counts them); in tables without a unique id,
    all rows of an id stay in one page. The transaction stays open while the scan runs.

Writes
    A batch is checked first: records pgvector or the column types cannot hold (NaN/Inf,
    ids that are not canonical integers/UUIDs for bigint/uuid ids, NUL characters, sparse
    indices beyond the dimension, halfvec overflow, ...) are refused individually; the last
    of repeated ids wins. The rest goes in one statement, ``INSERT ... SELECT ... FROM
    unnest(...) ON CONFLICT (namespace, id) DO UPDATE``, its columns sent as binary arrays
    (measured faster than binary ``COPY`` into a staging table + ``INSERT``: one round trip,
    no temporary table). Tables without a unique key on the id take the staging table:
    ``COPY``, then ``DELETE`` and ``INSERT``, in one transaction; a record the server refuses
    during that COPY is named (``RecordsRejectedError``). Up to ``pool_size`` connections
    serve concurrent calls. ``delete_index`` drops the table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format, TransactionStatus

from ..errors import (
    AuthError,
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
    ProviderError,
    RecordsRejectedError,
    RetryableError,
    UnsupportedError,
    VectraError,
)
from ..records import (
    ID,
    METADATA,
    NAMED_PREFIX,
    SPARSE,
    SPARSE_TYPE,
    VALUES,
    conform,
    dense_matrix,
    non_finite_rows,
    record_schema,
)
from .base import (
    DEFAULT_NAMESPACE,
    ID_TYPES,
    METRICS,
    UNKNOWN_METRIC,
    Capabilities,
    Cursor,
    IndexSpec,
    ProviderBase,
    ScanPage,
    VectorSpec,
    parse_bool,
    spec_mismatch,
)

log = logging.getLogger("vectra_io.providers.pgvector")

#: pgvector limits (src/vector.h, src/halfvec.h, src/sparsevec.h, README "Reference")
VECTOR_MAX_DIM = 16_000
INDEX_MAX_DIM = 2_000  # HNSW/IVFFlat on vector
SPARSEVEC_MAX_DIM = 1_000_000_000
SPARSEVEC_MAX_NNZ = 16_000
HALF_MAX = 65504.0

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

OPCLASS_METRICS = {"cosine": "cosine", "ip": "dot", "l2": "euclidean", "l1": "manhattan"}
METRIC_OPS = {"cosine": "cosine", "dot": "ip", "euclidean": "l2", "manhattan": "l1"}
ID_TYPE_SQL = {"string": 'text COLLATE "C"', "uint64": "bigint", "uuid": "uuid"}
INT_TYPES = {"int2", "int4", "int8"}
STRING_TYPES = {"text", "varchar", "bpchar", "name", "citext"}
COMMENT_KEY = "vectra"
RESERVED_COLUMNS = {"namespace", "id", "embedding", "sparse", "metadata"}

_OPTIONS = {
    "schema",
    "id_column",
    "vector_column",
    "namespace_column",
    "sparse_column",
    "metadata_column",
    "metadata_columns",
    "hnsw",
    "sparse_dim",
    "pool_size",
    "pool_timeout",
}
_CONN_KEYS = {"host", "port", "user", "dbname", "password"}

_I4 = struct.Struct(">i").pack
_BUILTIN_OIDS = {"text": 25, "jsonb": 3802}  # pgvector's own types are looked up
_NULL = _I4(-1)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_UINT64_RE = r"^(0|-?[1-9][0-9]{0,18})$"
_UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_LINE_RE = re.compile(r"\bCOPY [^,\n]+, line (\d+)")


# -- configuration ---------------------------------------------------------------------------


def _number(name: str, value: Any, kind: type, low: float, high: float) -> Any:
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"pgvector option {name}: expected a number, got {value!r}") from None
    if not low <= out <= high:
        raise ConfigError(f"pgvector option {name}: {out} is not between {low:g} and {high:g}")
    return out


@dataclass(frozen=True)
class _Settings:
    schema: str = "public"
    id_column: str | None = None
    vector_column: str | None = None
    namespace_column: str | None = None
    sparse_column: str | None = None
    metadata_column: str | None = None
    metadata_columns: tuple[str, ...] | None = None  # ("*",) = every other column
    hnsw: bool = True
    sparse_dim: int | None = None
    pool_size: int = 10
    pool_timeout: float = 60.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> _Settings:
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ConfigError(f"pgvector provider: unknown options {unknown}")
        kw: dict[str, Any] = {}
        for key in ("schema", "id_column", "vector_column", "namespace_column", "sparse_column"):
            if key in options:
                kw[key] = str(options[key])
        if "metadata_column" in options:
            kw["metadata_column"] = str(options["metadata_column"])
        if "metadata_columns" in options:
            value = options["metadata_columns"]
            names = value.split(",") if isinstance(value, str) else list(value)
            kw["metadata_columns"] = tuple(n.strip() for n in names if n.strip())
            if kw.get("metadata_column"):
                raise ConfigError("pgvector: give metadata_column or metadata_columns, not both")
        if not kw.get("schema", "public"):
            raise ConfigError("pgvector option schema must not be empty")
        if "hnsw" in options:
            kw["hnsw"] = parse_bool("pgvector", "hnsw", options["hnsw"])
        if "sparse_dim" in options:
            kw["sparse_dim"] = _number("sparse_dim", options["sparse_dim"], int, 1, 1e9)
        if "pool_size" in options:
            kw["pool_size"] = _number("pool_size", options["pool_size"], int, 1, 1000)
        if "pool_timeout" in options:
            kw["pool_timeout"] = _number("pool_timeout", options["pool_timeout"], float, 0, 86400)
        return cls(**kw)


def _parse_location(location: str) -> tuple[dict[str, str], dict[str, str]]:
    """``user:pw@host:port/db?k=v`` -> (libpq parameters, query options). Never echoes it."""
    parts = urlsplit("//" + location)
    params: dict[str, str] = {}
    try:
        port = parts.port
    except ValueError:
        raise ConfigError("pgvector: the port in the location is not a number") from None
    if parts.hostname:
        params["host"] = parts.hostname
    if port is not None:
        params["port"] = str(port)
    if parts.username:
        params["user"] = unquote(parts.username)
    if parts.password:
        params["password"] = unquote(parts.password)
    dbname = unquote(parts.path.lstrip("/"))
    if "/" in dbname:
        raise ConfigError("pgvector: the location is host:port/dbname (one path segment)")
    if dbname:
        params["dbname"] = dbname
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query[key] = value
    return params, query


# -- table layout ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dense:
    field: str  # Arrow column: "values" or "vector.<name>"
    column: str  # SQL column
    kind: str  # "vector" | "halfvec"
    dimension: int
    metric: str


@dataclass(frozen=True)
class _Layout:
    """How a table maps onto vectra records (read from the catalog, cached per provider)."""

    schema: str
    table: str
    spec: IndexSpec
    id_column: str
    id_sqltype: str
    id_nullable: bool
    namespace_column: str | None
    namespace_indexed: bool  # a btree index leads with the namespace column
    dense: tuple[_Dense, ...]
    sparse_column: str | None
    sparse_dim: int
    metadata_column: str | None
    metadata_sqltype: str | None
    metadata_columns: tuple[str, ...]
    conflict: tuple[str, ...] | None  # columns of a unique index on the key, for ON CONFLICT
    writable: bool

    @property
    def qualified(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.table)

    @property
    def unique(self) -> bool:
        return self.conflict is not None

    def signature(self) -> str:
        parts = [d.column + ":" + str(d.dimension) for d in self.dense]
        parts += [str(self.sparse_column is not None), str(self.metadata_column is not None)]
        parts.append(str(bool(self.metadata_columns)))
        return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


@dataclass
class _Column:
    name: str
    typname: str
    typmod: int
    sqltype: str
    notnull: bool


# -- connections -------------------------------------------------------------------------------


@dataclass
class _Conn:
    conn: psycopg.Connection[Any]
    stages: set[str] = field(default_factory=set)
    # (schema, table, stage) -> (the layout, its write statements rendered for this connection)
    statements: dict[tuple[str, str, str], tuple[_Layout, list[bytes]]] = field(
        default_factory=dict
    )


class _Pool:
    """A small thread-safe pool: connections are made in the caller's thread (so their
    errors are the caller's, exactly) and discarded when broken or left mid-transaction."""

    def __init__(self, connect: Any, size: int, timeout: float) -> None:
        self._connect = connect
        self._size = size
        self._timeout = timeout
        self._idle: list[_Conn] = []
        self._open = 0
        self._closed = False
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def connection(self) -> Iterator[_Conn]:
        item = self._get()
        try:
            yield item
        finally:
            self._put(item)

    def _get(self) -> _Conn:
        deadline = time.monotonic() + self._timeout
        with self._cond:
            while True:
                if self._closed:
                    raise FatalError("the pgvector provider is closed", provider="pgvector")
                if self._idle:
                    return self._idle.pop()
                if self._open < self._size:
                    self._open += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RetryableError(
                        f"no free database connection after {self._timeout:g}s "
                        f"(pool_size {self._size})",
                        provider="pgvector",
                    )
                self._cond.wait(left)
        try:
            return _Conn(self._connect())
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _put(self, item: _Conn) -> None:
        conn = item.conn
        healthy = not conn.closed and not conn.broken
        if healthy and conn.info.transaction_status != TransactionStatus.IDLE:
            try:
                conn.rollback()
            except psycopg.Error:
                healthy = False
        with self._cond:
            if healthy and not self._closed:
                self._idle.append(item)
            else:
                self._open -= 1
                with contextlib.suppress(Exception):
                    conn.close()
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for item in idle:
            with contextlib.suppress(Exception):
                item.conn.close()


# -- the provider ------------------------------------------------------------------------------


class PgVectorProvider(ProviderBase):
    """PostgreSQL + pgvector. See the module docstring for URL, options and conventions."""

    name: ClassVar[str] = "pgvector"

    def __init__(
        self,
        location: str = "",
        *,
        api_key: str | None = None,
        tls: bool = False,
        **options: Any,
    ) -> None:
        params, query = _parse_location(location)
        for key in list(query):
            if key in _OPTIONS and key not in options:
                options[key] = query.pop(key)
            elif key in _OPTIONS:
                query.pop(key)
        self._settings = _Settings.from_options(options)
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
        self._pool = _Pool(self._connect, self._settings.pool_size, self._settings.pool_timeout)
        self._layouts: dict[str, _Layout] = {}
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

    def _where(self, index: str | None) -> dict[str, Any]:
        return {"provider": self.name, "endpoint": self.endpoint, "index": index}

    def _translate(self, exc: BaseException, index: str | None, what: str) -> ProviderError:
        """The vectra error for a driver/server failure (message without secrets)."""
        where = self._where(index)
        if isinstance(exc, psycopg.Error):
            lines = str(exc).strip().splitlines()
            message = exc.diag.message_primary or (lines[0] if lines else type(exc).__name__)
            message = self._scrub(message)
            state = exc.sqlstate or ""
            text = f"{what}: {message}"
            lower = str(exc).lower()
            if not state:
                auth_signs = (
                    "password authentication failed",
                    "no password supplied",
                    "authentication failed",
                    "pg_hba.conf",
                    "permission denied",
                )
                if any(s in lower for s in auth_signs) or re.search(
                    r'role ".*" does not exist', lower
                ):
                    return AuthError(f"{what}: authentication refused: {message}", **where)
                if re.search(r'database ".*" does not exist', lower) or (
                    "ssl" in lower and ("not support" in lower or "certificate" in lower)
                ):
                    return FatalError(text, **where)
                if isinstance(exc, psycopg.OperationalError):
                    return RetryableError(text, **where)
                return FatalError(text, **where)
            cls2 = state[:2]
            if cls2 in ("08", "53", "40") or state in ("57P01", "57P02", "57P03", "57014", "55P03"):
                return RetryableError(text, **where)
            if cls2 == "28" or state == "42501":
                return AuthError(text, **where)
            if state in ("42P01", "3F000"):
                return IndexNotFoundError(f"{what}: table does not exist: {message}", **where)
            if state == "42703":
                return IncompatibleIndexError(text, **where)
            return FatalError(text, **where)
        if isinstance(exc, (OSError, TimeoutError)):
            return RetryableError(f"{what}: {self._scrub(exc)}", **where)
        return FatalError(f"{what}: {self._scrub(exc)}", **where)

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
        conn.adapters.register_dumper(_BinaryValue, _BinaryValueDumper)
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
        oid = _BUILTIN_OIDS.get(name) or self._type_oids.get(name)
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

    def _layout(self, index: str, *, fresh: bool = False) -> _Layout:
        if not fresh:
            with self._lock:
                cached = self._layouts.get(index)
            if cached is not None:
                return cached
        with self._guard(index, f"describing {index!r}"), self._pool.connection() as pc_:
            layout = self._read_layout(pc_.conn, index)
        with self._lock:
            self._layouts[index] = layout
        return layout

    def _read_layout(self, conn: psycopg.Connection[Any], index: str) -> _Layout:
        s = self._settings
        row = conn.execute(
            "SELECT c.oid, c.relkind, obj_description(c.oid, 'pg_class') FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm')",
            (s.schema, index),
        ).fetchone()
        if row is None:
            raise IndexNotFoundError(
                f"table {s.schema}.{index} does not exist", **self._where(index)
            )
        oid, relkind, comment = row
        saved = _comment_spec(comment)
        columns = {
            r[0]: _Column(*r)
            for r in conn.execute(
                "SELECT a.attname, t.typname, a.atttypmod, format_type(a.atttypid, a.atttypmod),"
                " a.attnotnull FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
                " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped"
                " ORDER BY a.attnum",
                (oid,),
            ).fetchall()
        }
        indexes = conn.execute(
            "SELECT i.indisunique, i.indpred IS NOT NULL OR i.indexprs IS NOT NULL, am.amname,"
            " array_agg(a.attname ORDER BY k.ord), array_agg(opc.opcname ORDER BY k.ord),"
            " i.indisprimary"
            " FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid"
            " JOIN pg_am am ON am.oid = ic.relam"
            " CROSS JOIN LATERAL unnest(i.indkey::int2[], i.indclass::oid[])"
            "   WITH ORDINALITY AS k(attnum, opc, ord)"
            " LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " LEFT JOIN pg_opclass opc ON opc.oid = k.opc"
            " WHERE i.indrelid = %s AND i.indisvalid AND k.ord <= i.indnkeyatts"
            " GROUP BY i.indexrelid, i.indisunique, i.indpred, i.indexprs, am.amname,"
            " i.indisprimary ORDER BY NOT i.indisprimary, i.indexrelid",
            (oid,),
        ).fetchall()
        where = self._where(index)

        def pick(option: str | None, default: str, kinds: set[str]) -> str | None:
            if option is not None:
                if option == "":
                    return None
                if option not in columns:
                    raise IncompatibleIndexError(
                        f"table {s.schema}.{index} has no column {option!r}", **where
                    )
                if kinds and columns[option].typname not in kinds:
                    raise IncompatibleIndexError(
                        f"column {option!r} has type {columns[option].sqltype}, "
                        f"expected one of {sorted(kinds)}",
                        **where,
                    )
                return option
            if default in columns and (not kinds or columns[default].typname in kinds):
                return default
            return None

        ns_col = pick(s.namespace_column, "namespace", STRING_TYPES)
        # the id: option, "id", else the single primary-key column besides the namespace
        id_col = pick(s.id_column, "id", set())
        if id_col is None:
            for _u, partial, _am, cols, _ops, primary in indexes:
                key = [c for c in cols if c != ns_col]
                if primary and not partial and len(key) == 1 and key[0] is not None:
                    id_col = key[0]
        if id_col is None:
            raise IncompatibleIndexError(
                f"cannot tell the id column of {s.schema}.{index}: give id_column", **where
            )
        dense_cols = [c for c in columns.values() if c.typname in ("vector", "halfvec")]
        main = pick(s.vector_column, "embedding", {"vector", "halfvec"})
        if main is None and s.vector_column is None and len(dense_cols) == 1:
            main = dense_cols[0].name
        sparse_cols = [c for c in columns.values() if c.typname == "sparsevec"]
        sparse_col = pick(s.sparse_column, "sparse", {"sparsevec"})
        if sparse_col is None and s.sparse_column is None and len(sparse_cols) == 1:
            sparse_col = sparse_cols[0].name

        # metric per column from the index operator classes
        metrics: dict[str, set[str]] = {}
        for _u, _partial, am, cols, ops, _p in indexes:
            if am in ("hnsw", "ivfflat") and len(cols) == 1 and cols[0] and ops[0]:
                m = re.fullmatch(r"(?:vector|halfvec|sparsevec)_(cosine|ip|l2|l1)_ops", ops[0])
                if m:
                    metrics.setdefault(cols[0], set()).add(OPCLASS_METRICS[m.group(1)])

        def metric_for(column: str, saved_metric: str | None) -> str:
            found = metrics.get(column, set())
            if len(found) == 1:
                return next(iter(found))
            if saved_metric and (not found or saved_metric in found):
                return saved_metric
            if found:
                log.warning(
                    "%s.%s: column %s has indexes with metrics %s: metric unknown",
                    s.schema,
                    index,
                    column,
                    sorted(found),
                )
            return UNKNOWN_METRIC

        saved_named = (saved or {}).get("named_vectors") or {}
        dense: list[_Dense] = []
        for col in dense_cols:
            dim = col.typmod
            if dim < 1:
                dim = self._sample_dim(conn, s.schema, index, col)
            if dim < 1:
                log.warning(
                    "%s.%s: column %s has no declared dimension and no rows: ignored",
                    s.schema,
                    index,
                    col.name,
                )
                continue
            if col.name == main:
                metric = metric_for(col.name, (saved or {}).get("metric"))
                dense.insert(0, _Dense(VALUES, col.name, col.typname, dim, metric))
            else:
                sm = (saved_named.get(col.name) or {}).get("metric")
                metric = metric_for(col.name, sm)
                dense.append(_Dense(NAMED_PREFIX + col.name, col.name, col.typname, dim, metric))
        if main is not None and not (dense and dense[0].field == VALUES):
            raise IncompatibleIndexError(f"cannot tell the dimension of column {main!r}", **where)
        used = {id_col, ns_col, sparse_col, *(d.column for d in dense)}
        md_col: str | None = None
        md_cols: tuple[str, ...] = ()
        if s.metadata_columns:
            if s.metadata_columns == ("*",):
                md_cols = tuple(
                    c.name
                    for c in columns.values()
                    if c.name not in used and c.typname not in ("vector", "halfvec", "sparsevec")
                )
            else:
                missing = [c for c in s.metadata_columns if c not in columns]
                if missing:
                    raise IncompatibleIndexError(
                        f"table {s.schema}.{index} has no columns {missing}", **where
                    )
                md_cols = tuple(c for c in s.metadata_columns if c not in used)
        else:
            md_col = pick(s.metadata_column, "metadata", {"json", "jsonb"})
        sparse_dim = SPARSEVEC_MAX_DIM
        if sparse_col is not None:
            col = columns[sparse_col]
            if col.typmod > 0:
                sparse_dim = col.typmod
            elif s.sparse_dim:
                sparse_dim = s.sparse_dim
            elif saved and saved.get("sparse_dim"):
                sparse_dim = int(saved["sparse_dim"])
            else:
                sparse_dim = self._sample_dim(conn, s.schema, index, col) or SPARSEVEC_MAX_DIM
        # conflict target: a unique, non-partial index on the key (namespace, id) or (id)
        key_sets = [{id_col}] + ([{id_col, ns_col}] if ns_col else [])
        conflict: tuple[str, ...] | None = None
        for unique, partial, _am, cols, _ops, _p in indexes:
            if unique and not partial and set(cols) in key_sets:
                conflict = tuple(cols)
                break
        ns_indexed = any(
            am == "btree" and cols[0] == ns_col for _u, _pa, am, cols, _o, _p in indexes
        )
        id_typ = columns[id_col].typname
        id_type = "uint64" if id_typ in INT_TYPES else "uuid" if id_typ == "uuid" else "string"
        main_dense = dense[0] if dense and dense[0].field == VALUES else None
        if main_dense is not None:
            metric = main_dense.metric
        elif sparse_col is not None and len(metrics.get(sparse_col, ())) == 1:
            metric = next(iter(metrics[sparse_col]))
        else:
            metric = (saved or {}).get("metric") or UNKNOWN_METRIC
        spec = IndexSpec(
            name=index,
            dimension=main_dense.dimension if main_dense else None,
            metric=metric,
            id_type=id_type,
            named_vectors={
                d.field[len(NAMED_PREFIX) :]: VectorSpec(d.dimension, d.metric)
                for d in dense
                if d.field != VALUES
            },
            sparse=sparse_col is not None,
            raw_config={
                "schema": s.schema,
                "table": index,
                "id_column": f"{id_col} {columns[id_col].sqltype}",
                "namespace_column": ns_col,
                "vector_columns": {
                    d.field: f"{d.column} {columns[d.column].sqltype}" for d in dense
                },
                "sparse_column": sparse_col,
                "metadata_column": md_col,
                "metadata_columns": list(md_cols),
                "indexes": [
                    {"method": am, "columns": list(cols), "opclasses": list(ops), "unique": u}
                    for u, _partial, am, cols, ops, _p in indexes
                ],
                "created_by_vectra": saved is not None,
            },
        )
        return _Layout(
            schema=s.schema,
            table=index,
            spec=spec,
            id_column=id_col,
            id_sqltype=columns[id_col].sqltype,
            id_nullable=not columns[id_col].notnull,
            namespace_column=ns_col,
            namespace_indexed=ns_indexed,
            dense=tuple(dense),
            sparse_column=sparse_col,
            sparse_dim=sparse_dim,
            metadata_column=md_col,
            metadata_sqltype=columns[md_col].typname if md_col else None,
            metadata_columns=md_cols,
            conflict=conflict,
            writable=relkind in ("r", "p"),
        )

    def _sample_dim(
        self, conn: psycopg.Connection[Any], schema: str, table: str, col: _Column
    ) -> int:
        """Dimension of the first stored value of a column declared without one (0: none)."""
        fn = {"vector": "vector_send", "halfvec": "halfvec_send", "sparsevec": "sparsevec_send"}
        ext = self._ext(conn)
        query = sql.SQL("SELECT {f}({c}) FROM {t} WHERE {c} IS NOT NULL LIMIT 1").format(
            f=sql.Identifier(ext, fn[col.typname]),
            c=sql.Identifier(col.name),
            t=sql.Identifier(schema, table),
        )
        row = conn.execute(query).fetchone()
        if row is None:
            return 0
        raw = bytes(row[0])  # the binary forms start with the dimension
        if col.typname == "sparsevec":
            return int(struct.unpack_from(">i", raw)[0])
        return int(struct.unpack_from(">h", raw)[0])

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
            if lay.namespace_column is None:
                query = sql.SQL("SELECT '' WHERE EXISTS (SELECT 1 FROM {t})").format(
                    t=lay.qualified
                )
            elif not lay.namespace_indexed:
                query = sql.SQL("SELECT DISTINCT {ns} FROM {t} WHERE {ns} IS NOT NULL").format(
                    ns=sql.Identifier(lay.namespace_column), t=lay.qualified
                )
            else:  # a loose index scan: one probe per namespace on the (namespace, id) key
                query = sql.SQL(
                    "WITH RECURSIVE n(ns) AS ("
                    " SELECT min({ns}) FROM {t}"
                    " UNION ALL SELECT (SELECT min({ns}) FROM {t} WHERE {ns} > n.ns)"
                    " FROM n WHERE n.ns IS NOT NULL) SELECT ns FROM n WHERE ns IS NOT NULL"
                ).format(ns=sql.Identifier(lay.namespace_column), t=lay.qualified)
            rows = pc_.conn.execute(query).fetchall()
        return sorted(str(r[0]) for r in rows)

    def _ns_filter(self, lay: _Layout, namespace: str) -> tuple[sql.Composable, list[Any]] | None:
        """The WHERE clause selecting a namespace, or None when the table cannot hold it."""
        conds: list[sql.Composable] = []
        params: list[Any] = []
        if lay.namespace_column is not None:
            conds.append(sql.SQL("{} = %s").format(sql.Identifier(lay.namespace_column)))
            params.append(namespace)
        elif namespace != DEFAULT_NAMESPACE:
            return None
        if lay.id_nullable:
            conds.append(sql.SQL("{} IS NOT NULL").format(sql.Identifier(lay.id_column)))
        if not conds:
            conds.append(sql.SQL("TRUE"))
        return sql.SQL(" AND ").join(conds), params

    def count(self, index: str, namespace: str = DEFAULT_NAMESPACE) -> int:
        lay = self._layout(index)
        flt = self._ns_filter(lay, namespace)
        if flt is None:
            return 0
        cond, params = flt
        query = sql.SQL("SELECT count(*) FROM {t} WHERE {c}").format(t=lay.qualified, c=cond)
        with self._guard(index, "counting"), self._pool.connection() as pc_:
            row = pc_.conn.execute(query, params).fetchone()
        return int(row[0]) if row else 0

    def _select_list(self, lay: _Layout, ext: str) -> sql.Composable:
        items: list[sql.Composable] = [sql.SQL("{}::text").format(sql.Identifier(lay.id_column))]
        for d in lay.dense:
            fn = "vector_send" if d.kind == "vector" else "halfvec_send"
            items.append(
                sql.SQL("{}({})").format(sql.Identifier(ext, fn), sql.Identifier(d.column))
            )
        if lay.sparse_column is not None:
            items.append(
                sql.SQL("{}({})").format(
                    sql.Identifier(ext, "sparsevec_send"), sql.Identifier(lay.sparse_column)
                )
            )
        items.append(_metadata_expr(lay))
        return sql.SQL(", ").join(items)

    def _decode(self, lay: _Layout, rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
        schema = record_schema(lay.spec)
        n = len(rows)
        cols: list[Any] = (
            list(zip(*rows, strict=True))
            if rows
            else [()] * (2 + len(lay.dense) + (lay.sparse_column is not None))
        )
        ids = pa.array(cols[0], pa.string())
        arrays: dict[str, pa.Array] = {ID: ids}
        for k, d in enumerate(lay.dense, start=1):
            arrays[d.field] = self._decode_dense(lay, d, cols[k], cols[0], n)
        pos = 1 + len(lay.dense)
        if lay.sparse_column is not None:
            arrays[SPARSE] = _decode_sparse(cols[pos])
            pos += 1
        arrays[METADATA] = pa.array(cols[pos], pa.string())
        return pa.RecordBatch.from_arrays([arrays[f.name] for f in schema], schema=schema)

    def _decode_dense(
        self, lay: _Layout, d: _Dense, values: Sequence[Any], ids: Sequence[str], n: int
    ) -> pa.Array:
        width = 4 if d.kind == "vector" else 2
        item = 4 + width * d.dimension
        nulls = None in values
        present = [v for v in values if v is not None] if nulls else list(values)
        blob = b"".join(present)
        if len(blob) != item * len(present):
            wrong = [ids[i] for i, v in enumerate(values) if v is not None and len(v) != item]
            raise IncompatibleIndexError(
                f"column {d.column!r} holds vectors of another dimension than {d.dimension} "
                f"(ids {wrong[:10]}); export them with vector_column set to a column of one "
                "dimension",
                **self._where(lay.table),
            )
        header = 4 // width
        flat = np.frombuffer(blob, ">f4" if width == 4 else ">f2")
        matrix = flat.reshape(len(present), d.dimension + header)[:, header:].astype(np.float32)
        mask = None
        if nulls:
            valid = np.fromiter((v is not None for v in values), dtype=bool, count=n)
            full = np.zeros((n, d.dimension), np.float32)
            full[valid] = matrix
            matrix, mask = full, pa.array(~valid)
        return pa.FixedSizeListArray.from_arrays(
            pa.array(matrix.reshape(-1)), d.dimension, mask=mask
        )

    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        lay = self._layout(index)
        flt = self._ns_filter(lay, namespace)
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
        lay: _Layout,
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
        idc = sql.Identifier(lay.id_column)
        needed = [lay.id_column, *(d.column for d in lay.dense)]
        needed += [c for c in (lay.sparse_column, lay.metadata_column) if c]
        needed += list(lay.metadata_columns)
        where = cond
        args = list(params)
        if after is not None:
            where = sql.SQL("{} AND {} > CAST(%s AS {})").format(cond, idc, sql.SQL(lay.id_sqltype))
            args.append(after)
        inner = sql.SQL("SELECT {cols} FROM {t} WHERE {where} ORDER BY {id}").format(
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in dict.fromkeys(needed)),
            t=lay.qualified,
            where=where,
            id=idc,
        )
        declare = sql.SQL(
            "DECLARE vectra_scan NO SCROLL CURSOR FOR SELECT {cols} FROM ({inner}) s ORDER BY {id}"
        ).format(
            cols=self._select_list(lay, ext), inner=inner, id=sql.Identifier("s", lay.id_column)
        )
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

    def _warn_null_ids(self, conn: psycopg.Connection[Any], lay: _Layout) -> None:
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
        flt = self._ns_filter(lay, namespace)
        wanted = [str(i) for i in ids]
        valid = [i for i, ok in zip(wanted, _valid_ids(lay, wanted), strict=True) if ok]
        if flt is None or not valid:
            return pa.RecordBatch.from_pylist([], schema=schema)
        cond, params = flt
        rows: list[tuple[Any, ...]] = []
        with self._guard(index, "fetching records"), self._pool.connection() as pc_:
            ext = self._ext(pc_.conn)
            query = sql.SQL(
                "SELECT {cols} FROM {t} WHERE {cond} AND {id} = ANY(CAST(%s AS {typ}[]))"
            ).format(
                cols=self._select_list(lay, ext),
                t=lay.qualified,
                cond=cond,
                id=sql.Identifier(lay.id_column),
                typ=sql.SQL(lay.id_sqltype),
            )
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
        where = self._where(spec.name)
        if spec.metric not in METRICS:
            raise ConfigError(f"unknown metric {spec.metric!r}: use one of {METRICS}")
        if spec.id_type not in ID_TYPES:
            raise ConfigError(f"unknown id type {spec.id_type!r}: use one of {ID_TYPES}")
        if not spec.name or len(spec.name.encode()) > 63 or "\x00" in spec.name:
            raise ConfigError(f"{spec.name!r} cannot be a PostgreSQL table name (1-63 bytes)")
        dims = ([spec.dimension] if spec.dimension is not None else []) + [
            v.dimension for v in spec.named_vectors.values()
        ]
        for dim in dims:
            if not 1 <= dim <= VECTOR_MAX_DIM:
                raise UnsupportedError(
                    f"pgvector stores vectors of 1 to {VECTOR_MAX_DIM} dimensions, not {dim}",
                    **where,
                )
        names = self._new_table_columns(spec)
        for name, vec in spec.named_vectors.items():
            taken = {c for c in names.values() if c}
            if name in taken or not name or len(name.encode()) > 63 or "\x00" in name:
                raise UnsupportedError(
                    f"named vector {name!r} cannot be a column name (1-63 bytes, not one of "
                    f"{sorted(taken)})",
                    **where,
                )
            if vec.metric not in METRICS:
                raise ConfigError(f"unknown metric {vec.metric!r} of named vector {name!r}")
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

    def _new_table_columns(self, spec: IndexSpec) -> dict[str, str]:
        """Column names of a table to create: the defaults, or the names given as options."""
        s = self._settings
        if s.metadata_columns:
            raise ConfigError(
                "pgvector: metadata_columns maps existing tables; vectra cannot create the "
                "columns (their types are unknown): create the table first"
            )
        names = {
            "namespace": "namespace" if s.namespace_column is None else s.namespace_column,
            "id": s.id_column or "id",
            "embedding": "embedding" if s.vector_column is None else s.vector_column,
            "sparse": s.sparse_column or "sparse",
            "metadata": s.metadata_column or "metadata",
        }
        if spec.dimension is not None and not names["embedding"]:
            raise ConfigError("pgvector: vector_column is empty, the records have vectors")
        return names

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
            names = self._new_table_columns(spec)
            cols: list[sql.Composable] = []
            key = [sql.Identifier(names["id"])]
            if names["namespace"]:
                cols.append(
                    sql.SQL("{} text COLLATE \"C\" NOT NULL DEFAULT ''").format(
                        sql.Identifier(names["namespace"])
                    )
                )
                key.insert(0, sql.Identifier(names["namespace"]))
            cols.append(
                sql.SQL("{} {} NOT NULL").format(
                    sql.Identifier(names["id"]), sql.SQL(ID_TYPE_SQL[spec.id_type])
                )
            )
            vectors: list[tuple[str, int, str]] = []
            if spec.dimension is not None:
                vectors.append((names["embedding"], spec.dimension, spec.metric))
            for name, vec in sorted(spec.named_vectors.items()):
                vectors.append((name, vec.dimension, vec.metric))
            for column, dim, _metric in vectors:
                cols.append(
                    sql.SQL("{} {}({})").format(
                        sql.Identifier(column), sql.Identifier(ext, "vector"), sql.Literal(dim)
                    )
                )
            if spec.sparse:
                cols.append(
                    sql.SQL("{} {}").format(
                        sql.Identifier(names["sparse"]), sql.Identifier(ext, "sparsevec")
                    )
                )
            cols.append(sql.SQL("{} jsonb").format(sql.Identifier(names["metadata"])))
            cols.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(key)))
            saved = {
                "dimension": spec.dimension,
                "metric": spec.metric,
                "id_type": spec.id_type,
                "sparse": spec.sparse,
                "named_vectors": {
                    k: {"dimension": v.dimension, "metric": v.metric}
                    for k, v in spec.named_vectors.items()
                },
            }
            if spec.sparse:
                saved["sparse_dim"] = s.sparse_dim or SPARSEVEC_MAX_DIM
            comment = json.dumps({COMMENT_KEY: {"version": 1, "spec": saved}}, sort_keys=True)
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
        refused = _refusals(lay, batch, ids)
        keep = _keep_last(ids, refused)
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
            _fields(lay, batch),
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
                blamed = _blame(exc, ids) if _refused_value(exc) else {}
                if blamed:  # the server names the record: the rest of the batch may be fine
                    err = RecordsRejectedError(err.message, failures=blamed, **self._where(index))
                if isinstance(err, (IndexNotFoundError, IncompatibleIndexError)):
                    self._forget(index)
                raise err from exc
        return refused

    def _write_arrays(self, pc_: _Conn, job: _WriteJob) -> bool:
        """One autocommit ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT``. False, having
        written nothing, when the server refused a value (SQLSTATE class 22 or 23)."""
        conn = pc_.conn
        with self._guard(job.index, job.what):
            ext = self._ext(conn)
            oids = [self._type_oid(conn, ext, f.pgtype) for f in job.fields]
        arrays = [_array_param(f, oid) for f, oid in zip(job.fields, oids, strict=True)]
        try:
            conn.execute(self._statements(pc_, job.lay, ext, None)[0], job.params + arrays)
        except psycopg.Error as exc:
            if not _refused_value(exc):
                raise
            return False
        return True

    def _write_staged(self, pc_: _Conn, job: _WriteJob) -> None:
        """Binary COPY into the connection's staging table, then the table's write
        statements, in one transaction."""
        conn = pc_.conn
        with self._guard(job.index, job.what):
            ext = self._ext(conn)
            stage = self._stage(pc_, job.lay, ext)
        with conn.transaction(), conn.cursor() as cur:
            copy_sql = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(sql.Identifier(stage))
            with cur.copy(copy_sql) as copy:
                copy.write(_copy_payload(job.fields))
            for statement in self._statements(pc_, job.lay, ext, stage):
                cur.execute(statement, job.params)

    @staticmethod
    def _statements(pc_: _Conn, lay: _Layout, ext: str, stage: str | None) -> list[bytes]:
        """The statements writing the staging table (``stage``) or the unnested arrays (None)
        into ``lay``'s table, rendered once per connection and layout."""
        key = (lay.schema, lay.table, stage or "")
        cached = pc_.statements.get(key)
        if cached is None or cached[0] is not lay:
            rendered = [s.as_bytes(pc_.conn) for s in _write_statements(lay, ext, stage)]
            cached = pc_.statements[key] = (lay, rendered)
        return cached[1]

    def _stage(self, pc_: _Conn, lay: _Layout, ext: str) -> str:
        """A temporary staging table of this connection for this table's layout."""
        name = f"vectra_stage_{lay.signature()}"
        if name in pc_.stages:
            return name
        dims = iter(d.dimension for d in lay.dense)
        cols = [
            sql.SQL("{} {}({})").format(
                sql.Identifier(column), _type_sql(ext, pgtype), sql.Literal(next(dims))
            )
            if pgtype == "vector"
            else sql.SQL("{} {}").format(sql.Identifier(column), _type_sql(ext, pgtype))
            for column, pgtype in _staged_columns(lay)
        ]
        pc_.conn.execute(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
                sql.Identifier(name), sql.SQL(", ").join(cols)
            )
        )
        pc_.stages.add(name)
        return name


# -- helpers -----------------------------------------------------------------------------------


def _comment_spec(comment: str | None) -> dict[str, Any] | None:
    """vectra's IndexSpec saved in the table comment, if this table was created by vectra."""
    if not comment or not comment.startswith("{"):
        return None
    try:
        data = json.loads(comment)
    except ValueError:
        return None
    saved = data.get(COMMENT_KEY) if isinstance(data, dict) else None
    spec = saved.get("spec") if isinstance(saved, dict) else None
    return spec if isinstance(spec, dict) else None


def _cursor_value(cursor: Cursor) -> str | None:
    if cursor is None:
        return None
    if isinstance(cursor, dict) and isinstance(cursor.get("after"), str):
        return str(cursor["after"])
    raise ConfigError(f"not a pgvector scan cursor: {cursor!r}")


def _metadata_expr(lay: _Layout) -> sql.Composable:
    if lay.metadata_column is not None:
        return sql.SQL("{}::text").format(sql.Identifier(lay.metadata_column))
    if not lay.metadata_columns:
        return sql.SQL("NULL::text")
    # jsonb_build_object takes at most 100 arguments: 50 columns per call
    calls = []
    for start in range(0, len(lay.metadata_columns), 50):
        pairs = []
        for col in lay.metadata_columns[start : start + 50]:
            pairs += [sql.Literal(col), sql.Identifier(col)]
        calls.append(sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs)))
    return sql.SQL("({})::text").format(sql.SQL(" || ").join(calls))


def _decode_sparse(values: Sequence[Any]) -> pa.StructArray:
    n = len(values)
    idx_parts: list[bytes] = []
    val_parts: list[bytes] = []
    offsets = np.zeros(n + 1, np.int32)
    valid = np.ones(n, bool)
    for i, raw in enumerate(values):
        if raw is None:
            valid[i] = False
            offsets[i + 1] = offsets[i]
            continue
        nnz = int.from_bytes(raw[4:8], "big")
        idx_parts.append(raw[12 : 12 + 4 * nnz])
        val_parts.append(raw[12 + 4 * nnz : 12 + 8 * nnz])
        offsets[i + 1] = offsets[i] + nnz
    indices = np.frombuffer(b"".join(idx_parts), ">i4").astype(np.uint32)
    vals = np.frombuffer(b"".join(val_parts), ">f4").astype(np.float32)
    off = pa.array(offsets)
    mask = None if valid.all() else pa.array(~valid)
    return pa.StructArray.from_arrays(
        [
            pa.ListArray.from_arrays(off, pa.array(indices, pa.uint32())),
            pa.ListArray.from_arrays(off, pa.array(vals, pa.float32())),
        ],
        fields=list(SPARSE_TYPE),
        mask=mask,
    )


def _valid_ids(lay: _Layout, ids: Sequence[str]) -> list[bool]:
    """Which ids the id column's type can hold (others are refused / never found)."""
    arr = pa.array(ids, pa.string())
    ok = pc.invert(pc.match_substring(arr, "\x00"))
    typ = lay.spec.id_type
    if typ == "uint64":
        ok = pc.and_(ok, pc.match_substring_regex(arr, _UINT64_RE))
    elif typ == "uuid":
        ok = pc.and_(ok, pc.match_substring_regex(arr, _UUID_RE))
    out = ok.to_pylist()
    if typ == "uint64":
        for i, rid in enumerate(ids):
            if out[i] and len(rid) >= 19 and not -(2**63) <= int(rid) < 2**63:
                out[i] = False
    return [bool(v) for v in out]


def _refusals(lay: _Layout, batch: pa.RecordBatch, ids: list[str]) -> dict[str, str]:
    """Records the table cannot take, by id, with the reason (checked before writing)."""
    refused: dict[str, str] = {}
    bad = non_finite_rows(batch)
    for i in np.flatnonzero(bad):
        refused[ids[i]] = "NaN or infinite value in a vector (pgvector refuses them)"
    typ = lay.spec.id_type
    # text ids can only fail by holding a NUL: without one, no per-id check is needed
    if typ != "string" or pc.any(pc.match_substring(batch.column(ID), "\x00")).as_py():
        for rid, ok in zip(ids, _valid_ids(lay, ids), strict=True):
            if not ok and rid not in refused:
                if "\x00" in rid:
                    refused[rid] = "id contains a NUL character (PostgreSQL text cannot)"
                elif typ == "uint64":
                    refused[rid] = "id is not a canonical integer in the bigint range"
                else:
                    refused[rid] = "id is not a canonical (lower-case, hyphenated) UUID"
    for d in lay.dense:
        if d.kind == "halfvec":
            col = batch.column(d.field)
            big = (np.abs(dense_matrix(col)) > HALF_MAX).any(axis=1)
            for i in np.flatnonzero(big & ~bad):
                refused.setdefault(ids[i], f"value beyond the float16 range in {d.column}")
    meta = batch.column(METADATA)
    suspicious = pc.fill_null(pc.match_substring(meta, "\\u0000"), False)
    if pc.any(suspicious).as_py():
        texts = meta.to_pylist()
        for i in np.flatnonzero(suspicious.to_numpy(zero_copy_only=False)):
            if _holds_nul(json.loads(texts[i])):  # not just a literal backslash-u0000 in text
                refused.setdefault(ids[i], "metadata contains a NUL character (jsonb cannot)")
    if lay.metadata_columns:
        allowed = set(lay.metadata_columns)
        for rid, text in zip(ids, meta.to_pylist(), strict=True):
            if text is None:
                continue
            extra = sorted(set(json.loads(text)) - allowed)
            if extra:
                refused.setdefault(rid, f"metadata keys without a column: {extra[:5]}")
    if lay.sparse_column is not None:
        for rid, reason in _sparse_problems(lay, batch, ids).items():
            refused.setdefault(rid, reason)
    return refused


def _holds_nul(value: Any) -> bool:
    """Whether a decoded JSON value has U+0000 in any string, key or value."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _keep_last(ids: list[str], refused: Mapping[str, str]) -> list[int] | None:
    """Row positions to write: refused rows out, and the last of repeated ids (None: all)."""
    if not refused and len(set(ids)) == len(ids):
        return None
    last: dict[str, int] = {}
    for i, rid in enumerate(ids):
        if rid not in refused:
            last[rid] = i
    return sorted(last.values())


def _sparse_arrays(
    batch: pa.RecordBatch,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(valid rows, row of each entry, index, value, rows whose lists differ in length)."""
    col = batch.column(SPARSE)
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    ind = pc.struct_field(col, "indices")
    val = pc.struct_field(col, "values")
    n_ind = pc.fill_null(pc.list_value_length(ind), 0).to_numpy(zero_copy_only=False)
    n_val = pc.fill_null(pc.list_value_length(val), 0).to_numpy(zero_copy_only=False)
    uneven = valid & (n_ind != n_val)
    drop = ~valid | uneven  # entries of these rows are left out (so the two lists align)
    # list_flatten skips null lists, as list_value_length counts them 0
    everyone = np.arange(len(valid))
    rows = np.repeat(everyone, n_ind)
    vrows = np.repeat(everyone, n_val)
    keep_i, keep_v = ~drop[rows], ~drop[vrows]
    rows = rows[keep_i]
    idx = pc.list_flatten(ind).to_numpy(zero_copy_only=False).astype(np.int64)[keep_i]
    vals = pc.list_flatten(val).to_numpy(zero_copy_only=False).astype(np.float32)[keep_v]
    order = np.lexsort((idx, rows))
    return valid, rows[order], idx[order], vals[order], uneven


def _sparse_problems(lay: _Layout, batch: pa.RecordBatch, ids: list[str]) -> dict[str, str]:
    _valid, rows, idx, vals, uneven = _sparse_arrays(batch)
    out: dict[str, str] = {}
    for i in np.flatnonzero(uneven):
        out[ids[i]] = "sparse vector has different numbers of indices and values"
    dup = np.zeros(len(rows), bool)
    if len(rows) > 1:
        dup[1:] = (rows[1:] == rows[:-1]) & (idx[1:] == idx[:-1])
    for i in np.unique(rows[dup]):
        out.setdefault(ids[i], "sparse vector repeats an index")
    for i in np.unique(rows[idx >= lay.sparse_dim]):
        out.setdefault(ids[i], f"sparse index beyond the column's dimension {lay.sparse_dim}")
    nnz = np.bincount(rows[vals != 0], minlength=batch.num_rows)
    for i in np.flatnonzero(nnz > SPARSEVEC_MAX_NNZ):
        out.setdefault(ids[i], f"sparse vector has more than {SPARSEVEC_MAX_NNZ} non-zeros")
    return out


def _staged_columns(lay: _Layout) -> list[tuple[str, str]]:
    """(name, type) of the columns a batch is staged as, in order (``_fields`` encodes them):
    id, one vector per dense column, the sparse vector, metadata."""
    cols = [("id", "text"), *((f"v{k}", "vector") for k in range(len(lay.dense)))]
    if lay.sparse_column is not None:
        cols.append(("sparse", "sparsevec"))
    return [*cols, ("metadata", "jsonb")]


def _type_sql(ext: str, pgtype: str) -> sql.Composable:
    """A staged column's type in SQL: pgvector's qualified by the extension's schema."""
    return sql.SQL(pgtype) if pgtype in _BUILTIN_OIDS else sql.Identifier(ext, pgtype)


@dataclass(frozen=True)
class _WriteJob:
    """One batch on its way into a table: its columns and statement parameters."""

    index: str
    lay: _Layout
    fields: list[_Field]
    #: leading parameters of the write statements (the namespace, when the table has one)
    params: list[Any]
    #: what the write is, for error messages
    what: str


@dataclass
class _Field:
    """One staged column of a batch (see ``_staged_columns``): its n cells, each a
    big-endian int32 length and the value in PostgreSQL's binary format (length -1: NULL),
    as Arrow arrays concatenated row by row (``pieces``), and its type."""

    pieces: list[pa.Array]
    rows: int
    has_null: bool
    pgtype: str

    def cells(self) -> memoryview:
        """The n cells, back to back."""
        return _joined(self.pieces, self.rows)


def _fields(lay: _Layout, batch: pa.RecordBatch) -> list[_Field]:
    """The staged columns of ``batch``: id, dense vectors, sparse vector, metadata.

    Fixed-width cells are views of one numpy matrix: no per-row Python for ids, dense
    vectors or metadata.
    """
    n = batch.num_rows
    ids = batch.column(ID).cast(pa.large_binary())
    id_len = _fixed_width(_be_int32(pc.binary_length(ids).to_numpy()))
    out = [_Field([id_len, ids], n, False, "text")]
    for d in lay.dense:
        col = batch.column(d.field)
        rows = np.empty((n, 8 + 4 * d.dimension), np.uint8)  # length, dim, unused, floats
        rows[:, 0:4] = np.frombuffer(_I4(4 + 4 * d.dimension), np.uint8)
        rows[:, 4:8] = np.frombuffer(struct.pack(">hh", d.dimension, 0), np.uint8)
        rows[:, 8:] = dense_matrix(col).astype(">f4").view(np.uint8)
        cells = _null_where_missing(_fixed_width(rows), col)
        out.append(_Field([cells], n, col.null_count > 0, "vector"))
    if lay.sparse_column is not None:
        cells = pa.array(_sparse_cells(lay, batch), pa.large_binary())
        out.append(_Field([cells], n, batch.column(SPARSE).null_count > 0, "sparsevec"))
    meta = batch.column(METADATA).cast(pa.large_binary())
    meta_head = np.empty((n, 5), np.uint8)  # length, jsonb version 1
    meta_head[:, :4] = _be_int32(pc.binary_length(meta).fill_null(0).to_numpy() + 1)
    meta_head[:, 4] = 1
    pieces = [_null_where_missing(_fixed_width(meta_head), meta), meta.fill_null(b"")]
    out.append(_Field(pieces, n, meta.null_count > 0, "jsonb"))
    return out


def _copy_payload(fields: list[_Field]) -> bytes:
    """The binary COPY stream of the staging table: each row's field count, then its cells."""
    n = fields[0].rows
    count = np.empty((n, 2), np.uint8)
    count[:] = np.frombuffer(struct.pack(">h", len(fields)), np.uint8)
    pieces = [_fixed_width(count)] + [p for f in fields for p in f.pieces]
    return b"".join((_COPY_HEADER, _joined(pieces, n), _COPY_TRAILER))


def _array_param(field_: _Field, oid: int) -> _BinaryValue:
    """``field_`` as a one-dimensional PostgreSQL array in binary format (``array_recv``)."""
    head = struct.pack(">iiIii", 1, int(field_.has_null), oid, field_.rows, 1)
    return _BinaryValue(b"".join((head, field_.cells())))


def _joined(pieces: list[pa.Array], n: int) -> memoryview:
    """The bytes of n rows, each the concatenation of that row of every piece."""
    joined = pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, _NO_SEPARATOR)
    offsets = np.frombuffer(joined.buffers()[1], np.int64)
    start, end = int(offsets[joined.offset]), int(offsets[joined.offset + n])
    return memoryview(joined.buffers()[2])[start:end]


class _BinaryValue:
    """A query parameter already in PostgreSQL's binary format; its type comes from the
    cast written next to its placeholder."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class _BinaryValueDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return obj.data


_NO_SEPARATOR = pa.scalar(b"", pa.large_binary())
_NULL_CELL = pa.scalar(_NULL, pa.large_binary())


def _be_int32(values: np.ndarray) -> np.ndarray:
    """(n,) integers as an (n, 4) matrix of big-endian int32 bytes."""
    return values.astype(">i4").view(np.uint8).reshape(-1, 4)


def _fixed_width(cells: np.ndarray) -> pa.Array:
    """An (n, k) uint8 matrix as n byte strings of k bytes (no copy)."""
    n, k = cells.shape
    offsets = np.arange(0, (n + 1) * k, k, dtype=np.int64)
    data = np.ascontiguousarray(cells)
    return pa.Array.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _null_where_missing(cells: pa.Array, values: pa.Array) -> pa.Array:
    """``cells``, with COPY's NULL marker (length -1) where ``values`` is null."""
    if values.null_count == 0:
        return cells
    return pc.if_else(values.is_valid(), cells, _NULL_CELL)


def _sparse_cells(lay: _Layout, batch: pa.RecordBatch) -> list[bytes]:
    """The sparsevec COPY field of every row (the NULL marker where a row has none)."""
    n = batch.num_rows
    valid, rows_, idx, vals, _ = _sparse_arrays(batch)
    nz = vals != 0
    rows_, idx, vals = rows_[nz], idx[nz], vals[nz]
    counts = np.bincount(rows_, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)])
    idx_be = idx.astype(">i4").tobytes()
    val_be = vals.astype(">f4").tobytes()
    head = struct.Struct(">iiii").pack
    out = []
    for i in range(n):
        if not valid[i]:
            out.append(_NULL)
            continue
        a, b = int(starts[i]) * 4, int(starts[i + 1]) * 4
        k = int(counts[i])
        out.append(head(12 + 8 * k, lay.sparse_dim, k, 0) + idx_be[a:b] + val_be[a:b])
    return out


def _write_statements(lay: _Layout, ext: str, stage: str | None) -> list[sql.Composed]:
    """Staging table ``stage`` -> target: INSERT ... ON CONFLICT DO UPDATE, or DELETE +
    INSERT without a unique key; with ``stage`` None, one INSERT ... ON CONFLICT reading
    the staged columns from binary array parameters (``unnest``) instead.

    With a namespace column, each statement takes the namespace as its first parameter.
    """
    target_cols: list[str] = []
    values: list[sql.Composable] = []
    if lay.namespace_column is not None:
        target_cols.append(lay.namespace_column)
        values.append(sql.SQL("%s::text"))
    target_cols.append(lay.id_column)
    values.append(sql.SQL("CAST(s.id AS {})").format(sql.SQL(lay.id_sqltype)))
    for k, d in enumerate(lay.dense):
        target_cols.append(d.column)
        src: sql.Composable = sql.Identifier("s", f"v{k}")
        if d.kind == "halfvec":
            src = sql.SQL("CAST({} AS {}({}))").format(
                src, sql.Identifier(ext, "halfvec"), sql.Literal(d.dimension)
            )
        values.append(src)
    if lay.sparse_column is not None:
        target_cols.append(lay.sparse_column)
        values.append(sql.SQL("s.sparse"))
    if stage is None:
        assert lay.conflict is not None, "DELETE + INSERT reads the staging table twice"
        staged = _staged_columns(lay)
        source = sql.SQL("unnest({}) AS s({})").format(
            sql.SQL(", ").join(sql.SQL("%b::{}[]").format(_type_sql(ext, t)) for _, t in staged),
            sql.SQL(", ").join(sql.Identifier(c) for c, _ in staged),
        )
    else:
        source = sql.SQL("{} s").format(sql.Identifier(stage))
    if lay.metadata_column is not None:
        target_cols.append(lay.metadata_column)
        values.append(
            sql.SQL("s.metadata::json" if lay.metadata_sqltype == "json" else "s.metadata")
        )
    elif lay.metadata_columns:
        for col in lay.metadata_columns:
            target_cols.append(col)
            values.append(sql.Identifier("r", col))
        source = sql.SQL(
            "{} CROSS JOIN LATERAL jsonb_populate_record(NULL::{}, s.metadata) r"
        ).format(source, lay.qualified)
    insert = sql.SQL("INSERT INTO {t} ({cols}) SELECT {vals} FROM {src}").format(
        t=lay.qualified,
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in target_cols),
        vals=sql.SQL(", ").join(values),
        src=source,
    )
    if lay.conflict is not None:
        updates = [c for c in target_cols if c not in lay.conflict]
        if updates:
            insert += sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in lay.conflict),
                sql.SQL(", ").join(
                    sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in updates
                ),
            )
        else:
            insert += sql.SQL(" ON CONFLICT DO NOTHING")
        return [insert]
    cond = [
        sql.SQL("t.{} = CAST(s.id AS {})").format(
            sql.Identifier(lay.id_column), sql.SQL(lay.id_sqltype)
        )
    ]
    if lay.namespace_column is not None:
        cond.append(sql.SQL("t.{} = %s").format(sql.Identifier(lay.namespace_column)))
    assert stage is not None
    delete = sql.SQL("DELETE FROM {t} t USING {s} s WHERE {c}").format(
        t=lay.qualified, s=sql.Identifier(stage), c=sql.SQL(" AND ").join(cond)
    )
    return [delete, insert]


def _refused_value(exc: psycopg.Error) -> bool:
    """The server refused a value of the batch (SQLSTATE class 22 data exception or 23
    integrity constraint violation), not the request."""
    return (exc.sqlstate or "")[:2] in ("22", "23")


def _blame(exc: psycopg.Error, ids: Sequence[str]) -> dict[str, str]:
    """The record a COPY error names by its line (1-based row of the staged batch)."""
    context = exc.diag.context or ""
    m = _LINE_RE.search(context)
    if m:
        line = int(m.group(1))
        if 1 <= line <= len(ids):
            return {ids[line - 1]: exc.diag.message_primary or str(exc)}
    return {}
