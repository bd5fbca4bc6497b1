"""The SQL of the ``pgvector`` provider, composed with :mod:`psycopg.sql` from a table's
layout: the WHERE clause selecting a namespace, the select list of reads, the columns of a
table to create, the temporary staging table of writes and the write statements
(``INSERT ... ON CONFLICT`` from binary array parameters or the staging table, or ``DELETE``
+ ``INSERT`` for tables without a unique id).
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from ..base import DEFAULT_NAMESPACE, IndexSpec
from .binary import BUILTIN_OIDS
from .layout import Layout

ID_TYPE_SQL = {"string": 'text COLLATE "C"', "uint64": "bigint", "uuid": "uuid"}


def ns_filter(lay: Layout, namespace: str) -> tuple[sql.Composable, list[Any]] | None:
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


def select_list(lay: Layout, ext: str) -> sql.Composable:
    """What a read selects: the id as text, the vectors in binary (pgvector's send functions,
    in the order of ``lay.dense``), the sparse vector, the metadata as JSON text."""
    items: list[sql.Composable] = [sql.SQL("{}::text").format(sql.Identifier(lay.id_column))]
    for d in lay.dense:
        fn = "vector_send" if d.kind == "vector" else "halfvec_send"
        items.append(sql.SQL("{}({})").format(sql.Identifier(ext, fn), sql.Identifier(d.column)))
    if lay.sparse_column is not None:
        items.append(
            sql.SQL("{}({})").format(
                sql.Identifier(ext, "sparsevec_send"), sql.Identifier(lay.sparse_column)
            )
        )
    items.append(_metadata_expr(lay))
    return sql.SQL(", ").join(items)


def namespaces_query(lay: Layout) -> sql.Composed:
    """The query listing the namespaces of ``lay``'s table that hold records."""
    if lay.namespace_column is None:
        return sql.SQL("SELECT '' WHERE EXISTS (SELECT 1 FROM {t})").format(t=lay.qualified)
    if not lay.namespace_indexed:
        return sql.SQL("SELECT DISTINCT {ns} FROM {t} WHERE {ns} IS NOT NULL").format(
            ns=sql.Identifier(lay.namespace_column), t=lay.qualified
        )
    # a loose index scan: one probe per namespace on the (namespace, id) key
    return sql.SQL(
        "WITH RECURSIVE n(ns) AS ("
        " SELECT min({ns}) FROM {t}"
        " UNION ALL SELECT (SELECT min({ns}) FROM {t} WHERE {ns} > n.ns)"
        " FROM n WHERE n.ns IS NOT NULL) SELECT ns FROM n WHERE ns IS NOT NULL"
    ).format(ns=sql.Identifier(lay.namespace_column), t=lay.qualified)


def scan_cursor(
    lay: Layout, ext: str, cond: sql.Composable, params: list[Any], after: str | None
) -> tuple[sql.Composed, list[Any]]:
    """The statement declaring the server-side cursor ``vectra_scan`` over the rows matching
    ``cond`` (with ``params``) after id ``after``, in id order, and its parameters."""
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
    ).format(cols=select_list(lay, ext), inner=inner, id=sql.Identifier("s", lay.id_column))
    return declare, args


def fetch_query(lay: Layout, ext: str, cond: sql.Composable) -> sql.Composed:
    """The query reading the rows matching ``cond`` whose id is in an array parameter."""
    return sql.SQL(
        "SELECT {cols} FROM {t} WHERE {cond} AND {id} = ANY(CAST(%s AS {typ}[]))"
    ).format(
        cols=select_list(lay, ext),
        t=lay.qualified,
        cond=cond,
        id=sql.Identifier(lay.id_column),
        typ=sql.SQL(lay.id_sqltype),
    )


def _metadata_expr(lay: Layout) -> sql.Composable:
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


def _staged_columns(lay: Layout) -> list[tuple[str, str]]:
    """(name, type) of the columns a batch is staged as, in order (``binary.fields`` encodes them):
    id, one vector per dense column, the sparse vector, metadata."""
    cols = [("id", "text"), *((f"v{k}", "vector") for k in range(len(lay.dense)))]
    if lay.sparse_column is not None:
        cols.append(("sparse", "sparsevec"))
    return [*cols, ("metadata", "jsonb")]


def _type_sql(ext: str, pgtype: str) -> sql.Composable:
    """A staged column's type in SQL: pgvector's qualified by the extension's schema."""
    return sql.SQL(pgtype) if pgtype in BUILTIN_OIDS else sql.Identifier(ext, pgtype)


def table_columns(
    spec: IndexSpec, names: dict[str, str], ext: str
) -> tuple[list[sql.Composable], list[tuple[str, int, str]]]:
    """The column definitions and primary key of a table to create for ``spec`` (its column
    names: ``names``), and its vector columns as (column, dimension, metric)."""
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
    return cols, vectors


def stage_table(name: str, lay: Layout, ext: str) -> sql.Composed:
    """The statement creating temporary table ``name`` to stage batches for ``lay``'s table."""
    dims = iter(d.dimension for d in lay.dense)
    cols = [
        sql.SQL("{} {}({})").format(
            sql.Identifier(column), _type_sql(ext, pgtype), sql.Literal(next(dims))
        )
        if pgtype == "vector"
        else sql.SQL("{} {}").format(sql.Identifier(column), _type_sql(ext, pgtype))
        for column, pgtype in _staged_columns(lay)
    ]
    return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
        sql.Identifier(name), sql.SQL(", ").join(cols)
    )


def write_statements(lay: Layout, ext: str, stage: str | None) -> list[sql.Composed]:
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
