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

Modules
    ``provider`` the provider class; ``settings`` options and location; ``pool`` connections;
    ``error_translation`` driver failures as vectra errors; ``layout`` how a table maps onto
    records; ``statements`` the SQL; ``binary`` the binary formats of writes and reads;
    ``refusals`` the per-record checks of a batch.
"""

from .provider import PGVECTOR_CAPABILITIES, PgVectorProvider

__all__ = ["PGVECTOR_CAPABILITIES", "PgVectorProvider"]
