"""Pinecone's limits and names as the provider uses them (request and record sizes, id and
metadata limits, the sparse tag of dense indexes, index names, the ``on_lossy`` policies)
and the provider's capabilities, :data:`PINECONE_CAPABILITIES`.
"""

from __future__ import annotations

import re

from ... import metrics
from .._http import _orjson as _orjson
from ..base import Capabilities

API_VERSION = "2026-04"
CONTROL_HOST = "api.pinecone.io"
DEFAULT_NAMESPACE_NAME = "__default__"
MAX_UPSERT_ROWS = 1000
#: hard cap of one upsert request body (Pinecone: "2 MB"; decimal, to be safe)
MAX_REQUEST_BYTES = 2_000_000
#: what the engine is told: the cap minus headroom for the JSON envelope and escapes
DECLARED_BATCH_BYTES = 1_900_000
#: request bytes per Arrow byte. Measured with orjson (float32 shortest text): normal
#: N(0,1) vectors 2.73, unit-length 3.09, uniform [0,1) 2.66, tiny (1e-30) 3.53, random
#: bit patterns 3.43 (worst case 4.25). Stdlib json writes float64 text: about 5.
WIRE_FACTOR = 3.5 if _orjson is not None else 5.5
MAX_FETCH_IDS = 1000
DEFAULT_FETCH_IDS = 100
FETCH_QUERY_CHARS = 6000
DEFAULT_LIST_LIMIT = 100
QUERY_FALLBACK_TOP_K = 100
MAX_ID_CHARS = 512
MAX_METADATA_BYTES = 40 * 1024
MAX_SPARSE_NONZEROS = 1000
MAX_DIMENSION = 20_000
SPARSE_TAG = "vectra_sparse"
INDEX_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?")
LOSSY_POLICIES = ("error", "drop-field", "stringify")
REPORT_SAMPLE = 1000  # ids kept per namespace in scan_report

PINECONE_CAPABILITIES = Capabilities(
    max_batch_rows=MAX_UPSERT_ROWS,
    max_batch_bytes=DECLARED_BATCH_BYTES,
    id_types=frozenset({"string"}),
    metrics=metrics.supported("pinecone"),
    namespaces=True,
    sparse=True,
    named_vectors=False,
    exact_count=False,
    nested_metadata=False,
    idempotent_upsert=True,
    optional_dense=False,
    max_dimension=MAX_DIMENSION,
    exact_floats=True,
    wire_factor=WIRE_FACTOR,
)
