"""The ``qdrant`` provider: Qdrant's REST API (v1.19 OpenAPI) spoken with httpx.

URL
    ``qdrant://HOST[:PORT][/PREFIX][?option=value&...]``; ``qdrant+https://...`` for TLS.
    The port defaults to 6333; ``/PREFIX`` is a path prefix for a server behind a proxy.
    The API key (``api_key=`` or ``$QDRANT_API_KEY``) is sent as the ``api-key`` header; it
    never appears in the endpoint, logs, errors or ``repr``, and is refused in the URL.
    Options, as URL query parameters or keyword arguments (keywords win):

    ``namespaces``       ``payload`` (default) or ``collection``: how namespaces are kept
    ``namespace_key``    payload key of the namespace in ``payload`` mode
                         (``_vectra_namespace``)
    ``namespace_index``  ``true`` (default): ``create_index`` also creates a keyword payload
                         index (``is_tenant``) on ``namespace_key`` in ``payload`` mode, so
                         namespace filters are indexed (required by strict-mode servers)
                         and ``list_namespaces`` can use ``/facet``
    ``sparse_name``      the Qdrant sparse vector created for the ``sparse_values`` column
                         (``sparse``); an existing collection's single sparse vector is used
                         whatever its name
    ``timeout``          read/write timeout in seconds (60); ``connect_timeout`` (10)
    ``max_connections``  pooled connections (32: the importer runs up to 16+ writes at once)
    ``max_batch_rows``   rows per upsert the engine is told (1000)
    ``max_request_bytes`` the server's body limit (``service.max_request_size_mb``: 32 MiB);
                         the engine is told 75% of it over ``wire_factor``, and an encoded
                         upsert body above it is split in halves before sending
    ``verify``           TLS certificate verification (``true``/``false`` or a CA bundle path)
    ``transport``        (keyword only) an ``httpx.BaseTransport``, for tests and proxies

Ids
    Qdrant point ids are unsigned 64-bit integers or UUIDs. Record ids are strings:
    ``"42"`` (a canonical uint64: no sign, no leading zero) is written as the integer 42
    and a canonical (lower-case, hyphenated) UUID as itself; any other string is written
    as ``uuid5(VECTRA_ID_NAMESPACE, id)`` (:mod:`vectra_io.ids`) with the original kept in
    the payload under ``_vectra_id``. Reading restores ``_vectra_id`` when present (and
    removes it from the metadata), else the point id as a string (integers in decimal,
    UUIDs hyphenated lower case). In ``payload`` namespace mode the ids of a non-default
    namespace are always mapped, to ``uuid5(uuid5(VECTRA_ID_NAMESPACE, "namespace:" + ns),
    id)``, because Qdrant point ids are unique per collection and the same id may live in
    several namespaces. ``IndexSpec.id_type`` is the one the index was created with (kept
    in the collection metadata); for other collections it is guessed from a sample of
    points ("string" when any carries ``_vectra_id`` or the collection is empty, else
    "uint64" or "uuid"). Every id type is accepted for writing, whatever the index says.

Namespaces
    ``payload`` mode (default): one collection per index; a record of namespace ``ns`` has
    ``namespace_key: ns`` in its payload, records of the default namespace ``""`` have no
    such key. Reads filter on it (``is_empty`` for ``""``), exports remove it from the
    metadata, imports set it. ``list_namespaces`` uses ``POST /facet`` (exact counts,
    paged with a ``must_not`` filter) when the key has a keyword payload index, otherwise
    it scrolls only that payload key (no vectors), and adds ``""`` when points without the
    key exist. ``collection`` mode: namespace ``ns`` of index ``idx`` is the collection
    ``idx__ns`` (``idx__~<hex of UTF-8>`` when ``ns`` has characters outside
    ``[A-Za-z0-9._-]``), created on first write with the index's configuration and marked
    in its collection metadata, which ``list_namespaces`` checks; ``list_indexes`` hides
    namespace collections; index names containing ``__`` are refused in this mode.

Vectors
    The default dense vector (``values``) is Qdrant's unnamed vector (named ``""`` when a
    collection also has named or sparse vectors); ``vector.<name>`` columns are Qdrant
    named vectors; the ``sparse_values`` column is the collection's sparse vector. A
    collection with a multivector (``multivector_config``) or with several sparse vectors
    is refused with :class:`UnsupportedError` at describe/scan (the snapshot format has no
    column for them): never dropped silently. Vectors travel as JSON numbers in the
    shortest form that round-trips float32 (orjson), bit-exact. Qdrant normalises vectors
    of ``Cosine`` collections on upload: describe sets ``normalized=True`` when any dense
    vector uses ``Cosine`` (the conformance suite and verify then compare directions).
    ``float16``/``uint8`` vector datatypes store reduced precision (a warning is logged).

Reads
    ``scan`` pages with ``POST /points/scroll`` (``with_payload: true``, ``with_vector:
    true`` - or the vector names, so an unnamed collection also returns its sparse vector),
    ordered by id; the cursor is ``next_page_offset`` (an int or a UUID string, JSON-safe)
    and the next page is requested while the current one is converted. Scroll is not a
    snapshot: writes during an export can be missed (freeze writers, compare counts).
    ``count`` is ``POST /points/count`` with ``exact: true``. A payload without user keys
    is exported as null metadata (Qdrant keeps no difference between ``{}`` and none).

Collection config
    ``IndexSpec.raw_config["qdrant"]`` carries the collection's ``params`` (vectors with
    their HNSW/quantization/datatype/on-disk settings, sparse vectors with their index and
    modifier, shards, replication), ``hnsw_config``, ``optimizer_config``, ``wal_config``,
    ``quantization_config``, ``strict_mode_config``, ``metadata`` and ``payload_schema``.
    ``create_index`` uses it when present (the source was Qdrant), with the spec's
    dimension and metric, and recreates the payload indexes (custom sharding is not
    carried: shard keys would be needed). vectra's own facts (id type; the metric of an
    index without a default vector; the index/namespace of a namespace collection) live in
    the collection metadata under ``vectra_io``. Strict-mode servers refuse filters on
    unindexed keys: collections vectra did not create need a keyword index on
    ``namespace_key`` for namespace filters (``PUT /collections/{c}/index``).

Writes and errors
    ``PUT /collections/{c}/points?wait=true`` (whole point replaced: idempotent). Records
    with non-finite vectors, repeated sparse indices, metadata holding integers beyond
    64 bits or vectra's reserved payload keys are refused by id; the rest is written.
    Connection errors, timeouts, 429 and 5xx raise :class:`RetryableError` (``retry_after``
    from ``Retry-After``); 401/403 :class:`AuthError`; a missing collection
    :class:`IndexNotFoundError`; a refused upsert :class:`RecordsRejectedError` (naming
    the records whose point ids the message mentions). The provider never retries or
    sleeps: the engine's RetryPolicy does.

Search
    ``query(index, vector, top_k, namespace, filter)`` uses ``POST /points/query`` and
    returns ``{id, score, metadata}`` with higher scores closer (Euclid/Manhattan
    distances negated); ``filter`` is metadata equality or a native Qdrant filter.

Modules
    ``provider`` the provider class (scans, fetches, upserts, search); ``indexes`` indexes,
    namespaces and counts; ``client`` options, HTTP, error translation and the collection
    cache; ``collection_info`` what a collection holds; ``names`` point ids and collection
    names; ``points`` records <-> points; ``settings`` options, location and limits.
"""

from __future__ import annotations

from .._http import dumps, parse_retry_after
from .names import namespace_collection, namespace_of_collection
from .provider import QdrantProvider
from .settings import QDRANT_CAPABILITIES

__all__ = [
    "QDRANT_CAPABILITIES",
    "QdrantProvider",
    "dumps",
    "namespace_collection",
    "namespace_of_collection",
    "parse_retry_after",
]
