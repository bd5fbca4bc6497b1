"""The ``pinecone`` provider: Pinecone's REST API (version ``2026-04``) over httpx.

URLs
----
- ``pinecone://`` — the real control plane ``https://api.pinecone.io``.
- ``pinecone://api.pinecone.io`` (any ``*.pinecone.io`` host) — always HTTPS.
- ``pinecone://host:port`` — a control plane at ``http://host:port`` (test doubles, local
  proxies); ``pinecone+https://host:port`` (or ``tls=True``) uses HTTPS.
- Options may follow in the URL as a query string, e.g.
  ``pinecone://?ids_from=/path/ids.txt&on_lossy=stringify``, or be given as keyword
  options (``open_provider(url, ids_from=...)``); the same option given both ways must agree.

The API key comes from ``api_key`` or ``$PINECONE_API_KEY``. It is sent as the ``Api-Key``
header (with ``X-Pinecone-Api-Version: 2026-04``) and never appears in ``endpoint``,
``repr()``, logs or error messages; credentials in the URL are refused.

Each index is served on its own data-plane host, discovered from ``GET /indexes/{name}``
(``host``) and cached per index. Pinecone's hosts are bare (``name-xyz.svc.pinecone.io``):
the provider adds ``https://``, or ``http://`` when the control plane itself is plain
HTTP (a local double); a host that already carries a scheme is used as is.

Options
-------
``timeout`` (seconds per request, default 60), ``cloud`` / ``region`` (serverless indexes
created here, default ``aws`` / ``us-east-1``), ``environment`` + ``pod_type`` (create
pod-based indexes instead), ``deletion_protection`` (``disabled``), ``on_lossy``
(``error`` | ``drop-field`` | ``stringify``, default ``error``: see below), ``ids_from``
(a file of ids, one per line: scans fetch exactly these ids), ``list_limit`` (ids per
``list`` call, default 100), ``fetch_ids`` (ids per ``fetch`` GET, default 100, at most
1,000), ``fetch_workers`` (concurrent fetch GETs per page, default 4), ``ready_timeout``
and ``ready_poll`` (seconds: the wait for a new index to be ready, default 300 / 1).

Mapping
-------
- index = Pinecone index; namespace = Pinecone namespace. The default namespace ``""`` is
  listed by Pinecone as ``__default__``; both names mean the default namespace here, so a
  namespace literally called ``__default__`` cannot be told apart from it.
- Ids are strings of 1-512 characters (``id_types={"string"}``); others are refused per
  record.
- Metrics through :mod:`vectra_io.metrics`: cosine, dot (``dotproduct``), euclidean.
- ``IndexSpec.sparse``: a ``vector_type: sparse`` index (``dimension`` None), or a dense
  ``dotproduct`` index, whose records may carry ``sparseValues``. Dense dotproduct
  indexes created here carry the tag ``vectra_sparse`` (``1``/``0``) saying whether they
  hold sparse values; a dotproduct index without the tag is described as sparse (it may
  hold sparse values, and a sparse column that stays null costs nothing).
- Metadata comes back as Pinecone stores it: numbers are float64 (``42`` reads back as
  ``42.0``), an empty metadata object reads back as null.

Export
------
Serverless indexes: every namespace (``GET /namespaces``, paginated), then ``GET
/vectors/list`` (the scan cursor is ``{"token": <paginationToken>}``) and ``GET
/vectors/fetch`` in URL-encoded groups of at most ``fetch_ids`` ids and about 6,000
characters of query string (the next page is listed while a page is fetched). ``fetch``
does not accept ids containing spaces: those are
read with ``POST /query`` by id (the record itself is the best match in practice); an id
neither call returns is an *unexportable* record, logged at ERROR and kept in
``scan_report``. Pod-based indexes have no ``list``: a scan refuses with a message naming
``--ids-from FILE`` / the ``ids_from`` option, which scans exactly the ids of the file
(in every namespace scanned; cursor ``{"offset": n, "ids": <file digest>}``) and reports
the ids not found as missing (log + count in ``scan_report``); never a partial export by
random queries. Pods have no namespace API either: their namespaces are the keys of
``describe_index_stats`` (which may lag).

Counts come from ``POST /describe_index_stats`` and are eventually consistent
(``capabilities.exact_count`` is False): they may lag recent writes.

Writes and lossy metadata
-------------------------
``POST /vectors/upsert`` with at most 1,000 records and 2,000,000 bytes per request
(the provider declares a little less to the engine and splits a request that would still
be larger). Per record, refused with a reason: ids outside 1-512 characters, an all-zero
or missing dense vector, NaN/infinite values, sparse vectors with more than 1,000
non-zeros or repeated indices, sparse values the index cannot hold. Pinecone metadata is
flat: strings, numbers (float64), booleans and lists of strings. Values outside that
(null, nested objects, lists of anything else, integers beyond 2**53) and metadata larger
than 40 KB follow ``on_lossy``:

- ``error`` (default): the record is refused, the reason names the field;
- ``drop-field``: the offending fields are dropped (for oversize metadata, the largest
  fields until it fits);
- ``stringify``: objects and non-string lists become JSON strings, big integers become
  decimal strings, nulls are dropped (oversize metadata is refused).

Every dropped or changed field is logged at WARNING (with counts) and tallied in the
provider's ``lossy_report`` dict.

Errors: connection errors, timeouts, 429 and 5xx are :class:`RetryableError` (with
``Retry-After``); 401/403 :class:`AuthError` (403 for deletion protection is a
:class:`FatalError`); 501 :class:`UnsupportedError`; a missing index
:class:`IndexNotFoundError`; a refused upsert :class:`RecordsRejectedError` with the
server's message. The provider never retries or sleeps, except while waiting for a new
index to become ready.

Modules
-------
``provider`` the provider class; ``settings`` the URL and the options; ``limits``
Pinecone's limits and the capabilities; ``error_translation`` HTTP failures as vectra
errors; ``index_info`` what the provider knows of an index; ``reading`` fetches and scans
(:class:`RecordReader`); ``record_checks`` the per-record checks and lossy metadata.
"""

from __future__ import annotations

from .limits import MAX_REQUEST_BYTES, PINECONE_CAPABILITIES
from .provider import PineconeProvider
from .reading import fetch_groups
from .settings import parse_location

__all__ = [
    "MAX_REQUEST_BYTES",
    "PINECONE_CAPABILITIES",
    "PineconeProvider",
    "fetch_groups",
    "parse_location",
]
