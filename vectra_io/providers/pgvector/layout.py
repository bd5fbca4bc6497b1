"""The table layout of the ``pgvector`` provider: how a PostgreSQL table maps onto vectra
records (which columns hold the id, namespace, dense and sparse vectors and metadata, their
types and dimensions, the metric of each vector, the key a write conflicts on) and how that
layout is read from the catalog: columns, indexes and their operator classes, and vectra's
IndexSpec saved as JSON in the table comment (written here too); pgvector's limits and the
check of a spec for a table vectra is to create.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ...errors import ConfigError, IncompatibleIndexError, IndexNotFoundError, UnsupportedError
from ...records import NAMED_PREFIX, VALUES
from ..base import ID_TYPES, METRICS, UNKNOWN_METRIC, IndexSpec, VectorSpec
from .settings import Settings

log = logging.getLogger("vectra_io.providers.pgvector")

#: pgvector limits (src/vector.h, src/halfvec.h, src/sparsevec.h, README "Reference")
VECTOR_MAX_DIM = 16_000
INDEX_MAX_DIM = 2_000  # HNSW/IVFFlat on vector
SPARSEVEC_MAX_DIM = 1_000_000_000
SPARSEVEC_MAX_NNZ = 16_000
HALF_MAX = 65504.0

OPCLASS_METRICS = {"cosine": "cosine", "ip": "dot", "l2": "euclidean", "l1": "manhattan"}
INT_TYPES = {"int2", "int4", "int8"}
STRING_TYPES = {"text", "varchar", "bpchar", "name", "citext"}
COMMENT_KEY = "vectra"


@dataclass(frozen=True)
class Dense:
    field: str  # Arrow column: "values" or "vector.<name>"
    column: str  # SQL column
    kind: str  # "vector" | "halfvec"
    dimension: int
    metric: str


@dataclass(frozen=True)
class Layout:
    """How a table maps onto vectra records (read from the catalog, cached per provider)."""

    schema: str
    table: str
    spec: IndexSpec
    id_column: str
    id_sqltype: str
    id_nullable: bool
    namespace_column: str | None
    namespace_indexed: bool  # a btree index leads with the namespace column
    dense: tuple[Dense, ...]
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


def table_comment(spec: IndexSpec, sparse_dim: int | None) -> str:
    """The table comment saving ``spec`` for :func:`read_layout` (``sparse_dim``: the option)."""
    saved = {
        "dimension": spec.dimension,
        "metric": spec.metric,
        "id_type": spec.id_type,
        "sparse": spec.sparse,
        "named_vectors": {
            k: {"dimension": v.dimension, "metric": v.metric} for k, v in spec.named_vectors.items()
        },
    }
    if spec.sparse:
        saved["sparse_dim"] = sparse_dim or SPARSEVEC_MAX_DIM
    return json.dumps({COMMENT_KEY: {"version": 1, "spec": saved}}, sort_keys=True)


def check_new_table(spec: IndexSpec, settings: Settings, where: dict[str, Any]) -> None:
    """Refuse a ``spec`` that no table created by vectra can hold: unknown metrics or id
    types, names PostgreSQL cannot take, dimensions beyond pgvector's limits."""
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
    names = settings.new_table_columns(spec)
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


def _read_catalog(
    conn: psycopg.Connection[Any], schema: str, index: str, where: dict[str, Any]
) -> tuple[str, str | None, dict[str, _Column], list[Any]]:
    """The table's kind, comment, columns by name and valid indexes (unique, partial, access
    method, key columns, operator classes, primary), the primary key first."""
    row = conn.execute(
        "SELECT c.oid, c.relkind, obj_description(c.oid, 'pg_class') FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm')",
        (schema, index),
    ).fetchone()
    if row is None:
        raise IndexNotFoundError(f"table {schema}.{index} does not exist", **where)
    oid, relkind, comment = row
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
    return relkind, comment, columns, indexes


def _index_metrics(indexes: list[Any]) -> dict[str, set[str]]:
    """The metric(s) of each column, from the operator classes of its HNSW/IVFFlat indexes."""
    # metric per column from the index operator classes
    metrics: dict[str, set[str]] = {}
    for _u, _partial, am, cols, ops, _p in indexes:
        if am in ("hnsw", "ivfflat") and len(cols) == 1 and cols[0] and ops[0]:
            m = re.fullmatch(r"(?:vector|halfvec|sparsevec)_(cosine|ip|l2|l1)_ops", ops[0])
            if m:
                metrics.setdefault(cols[0], set()).add(OPCLASS_METRICS[m.group(1)])
    return metrics


def read_layout(
    conn: psycopg.Connection[Any],
    settings: Settings,
    index: str,
    where: dict[str, Any],
    ext: Callable[[psycopg.Connection[Any]], str],
) -> Layout:
    """How table ``index`` maps onto vectra records, from the catalog and the options.
    ``where`` locates errors; ``ext`` names the schema of the pgvector extension (needed to
    sample the dimension of a column declared without one)."""
    s = settings
    relkind, comment, columns, indexes = _read_catalog(conn, s.schema, index, where)
    saved = _comment_spec(comment)

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

    metrics = _index_metrics(indexes)

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
    dense: list[Dense] = []
    for col in dense_cols:
        dim = col.typmod
        if dim < 1:
            dim = _sample_dim(conn, ext(conn), s.schema, index, col)
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
            dense.insert(0, Dense(VALUES, col.name, col.typname, dim, metric))
        else:
            sm = (saved_named.get(col.name) or {}).get("metric")
            metric = metric_for(col.name, sm)
            dense.append(Dense(NAMED_PREFIX + col.name, col.name, col.typname, dim, metric))
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
            sparse_dim = _sample_dim(conn, ext(conn), s.schema, index, col) or SPARSEVEC_MAX_DIM
    conflict = _conflict_target(indexes, id_col, ns_col)
    ns_indexed = any(am == "btree" and cols[0] == ns_col for _u, _pa, am, cols, _o, _p in indexes)
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
            "vector_columns": {d.field: f"{d.column} {columns[d.column].sqltype}" for d in dense},
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
    return Layout(
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


def _conflict_target(indexes: list[Any], id_col: str, ns_col: str | None) -> tuple[str, ...] | None:
    """The columns of the first unique index on the record key, for ON CONFLICT (None: none)."""
    # conflict target: a unique, non-partial index on the key (namespace, id) or (id)
    key_sets = [{id_col}] + ([{id_col, ns_col}] if ns_col else [])
    conflict: tuple[str, ...] | None = None
    for unique, partial, _am, cols, _ops, _p in indexes:
        if unique and not partial and set(cols) in key_sets:
            conflict = tuple(cols)
            break
    return conflict


def _sample_dim(
    conn: psycopg.Connection[Any], ext: str, schema: str, table: str, col: _Column
) -> int:
    """Dimension of the first stored value of a column declared without one (0: none)."""
    fn = {"vector": "vector_send", "halfvec": "halfvec_send", "sparsevec": "sparsevec_send"}
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
