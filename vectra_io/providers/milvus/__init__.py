"""The ``milvus`` provider: Milvus server (gRPC, pymilvus) and embedded Milvus Lite stores.

URLs
----
- ``milvus://host:19530`` is a Milvus server over gRPC (``http://host:19530``);
  ``milvus+https://host:443`` (or ``tls=True``) uses TLS. The port defaults to 19530.
- ``milvus://host:19530/mydb`` selects database ``mydb`` (so does the option ``db=``;
  both at once must agree). Without either: the server's default database.
- ``milvus:///abs/path/lite.db`` or ``milvus://./rel/lite.db`` is an embedded Milvus Lite
  store (pymilvus's rule: the path ends in ``.db``; Milvus Lite keeps a directory there
  and serves it in-process on a local gRPC port).

The token (``user:password`` or an API key) comes from ``api_key`` or ``$MILVUS_TOKEN``;
credentials in the URL are refused, and the token never appears in ``endpoint``, logs or
error messages.

Options: ``db``; ``timeout`` (seconds per call, default 60); ``metadata`` (``"text"``,
the default, or ``"json"``: the type of the ``metadata`` field of created collections);
``index_type`` of created collections (default ``AUTOINDEX``, ``FLAT`` on Milvus Lite,
whose AUTOINDEX is an HNSW built in the background); ``flush_on_close`` (default true:
``close()`` flushes the collections it wrote to).

Mapping
-------
- index = collection; namespace = partition; the default namespace ``""`` is the
  ``_default`` partition. A namespace that is a valid Milvus name (a letter, then
  letters, digits, ``_``; at most 255 characters) and does not start with ``_vx_`` is
  the partition name as is; any other namespace becomes ``_vx_`` + its UTF-8 bytes with
  every byte outside ``[A-Za-z0-9]`` written as ``_`` + two lower-case hex digits
  (``"my-ns"`` -> ``_vx_my_2dns``, ``"_default"`` -> ``_vx__5fdefault``): reversible.
  A primary key is unique across a collection's partitions, so an id lives in one
  namespace of a collection: writing it into another namespace is refused (by id).
  Collections with a partition key have one namespace, ``""``.
- Collections created here: ``id`` primary key (VARCHAR(65535) for id types ``string``
  and ``uuid``, INT64 for ``uint64``; ``auto_id`` off), ``vector`` FLOAT_VECTOR(dim),
  ``sparse_values`` SPARSE_FLOAT_VECTOR (sparse indexes), a FLOAT_VECTOR per named
  vector (its name when that is a valid field name, else ``_vx_`` + escaped) and
  ``metadata``: the record's metadata as its exact JSON text in a nullable VARCHAR(65535)
  (Milvus JSON fields refuse integers beyond 64 bits; ``metadata="json"`` makes it a
  filterable JSON field taking int64 integers). The IndexSpec and this layout are kept
  in the collection property ``vectra.spec``; no dynamic field; consistency Strong.
- Other collections: the primary key is the id (INT64 -> id type ``uint64``, VARCHAR
  -> ``string``); the FLOAT_VECTOR field ``vector`` (else the first one) gives
  ``values``, other FLOAT_VECTOR fields are named vectors under their field names, the
  SPARSE_FLOAT_VECTOR field gives ``sparse_values``; every scalar field and every key of
  the dynamic field becomes a metadata key. Writing into such a collection maps metadata
  keys back to fields (other keys go to the dynamic field, or the record is refused).
- Metric: from the index of the vector field, ``COSINE``/``IP``/``L2`` ->
  cosine/dot/euclidean (anything else, or no index: ``unknown``).

Writes are upserts (an insert duplicates existing primary keys). A collection with
``auto_id`` is refused as a target: Milvus would give every upserted row a new key.
Every entity carries every vector field, so records without a dense, named or (in sparse
collections) non-empty sparse vector are refused. Scans page by primary key
(``pk > last``, with the query iterator's ordering flag), so a cursor
(``{"after": last_pk}``) resumes in another process.

Milvus Lite (3.2) has no write lock of its own: an upsert that overlaps another one's
MemTable flush can be acknowledged and then lost. So the provider sends one write
(upsert, delete, flush) at a time to a Lite store, across every provider of the process;
the rest (building rows, queries) stays concurrent. Two processes writing to one Lite
server at once are not protected (a write that then meets Lite's ``current_seq is
monotonic`` error is retried; a lost one is not seen).
"""

from __future__ import annotations

from .connection import CONNECTION_OPTIONS
from .names import namespace_for, partition_for
from .provider import MilvusProvider
from .schema import MILVUS_CAPABILITIES

__all__ = [
    "CONNECTION_OPTIONS",
    "MILVUS_CAPABILITIES",
    "MilvusProvider",
    "namespace_for",
    "partition_for",
]
