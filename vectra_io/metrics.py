"""One table of metric names across all providers.

vectra-io speaks one vocabulary (``cosine``, ``dot``, ``euclidean``,
``manhattan``); each provider translates at its boundary with :func:`to_provider`
and :func:`from_provider`. A metric a provider cannot express is an error before
any write. Scores and distances are not comparable across engines; only the
metric maps.
"""

from __future__ import annotations

from .errors import IncompatibleIndexError
from .providers.base import UNKNOWN_METRIC

#: provider -> vectra metric -> the provider's own name
METRIC_NAMES: dict[str, dict[str, str]] = {
    "memory": {m: m for m in ("cosine", "dot", "euclidean", "manhattan")},
    "lancedb": {"cosine": "cosine", "dot": "dot", "euclidean": "l2"},
    "pgvector": {
        "cosine": "vector_cosine_ops",
        "dot": "vector_ip_ops",
        "euclidean": "vector_l2_ops",
        "manhattan": "vector_l1_ops",
    },
    "chroma": {"cosine": "cosine", "dot": "ip", "euclidean": "l2"},
    "milvus": {"cosine": "COSINE", "dot": "IP", "euclidean": "L2"},
    "qdrant": {"cosine": "Cosine", "dot": "Dot", "euclidean": "Euclid", "manhattan": "Manhattan"},
    "pinecone": {"cosine": "cosine", "dot": "dotproduct", "euclidean": "euclidean"},
    "weaviate": {
        "cosine": "cosine",
        "dot": "dot",
        "euclidean": "l2-squared",
        "manhattan": "manhattan",
    },
}


def supported(provider: str) -> frozenset[str]:
    """The vectra metrics a provider can express."""
    return frozenset(METRIC_NAMES[provider])


def to_provider(provider: str, metric: str) -> str:
    """The provider's name for a vectra metric; IncompatibleIndexError if it has none."""
    names = METRIC_NAMES[provider]
    if metric not in names:
        raise IncompatibleIndexError(
            f"metric {metric!r} cannot be expressed by {provider} "
            f"(it supports {', '.join(sorted(names))})",
            provider=provider,
        )
    return names[metric]


def from_provider(provider: str, name: str | None) -> str:
    """The vectra metric of a provider's metric name (case-insensitive); ``unknown`` if none."""
    if not name:
        return UNKNOWN_METRIC
    wanted = name.lower()
    for metric, own in METRIC_NAMES[provider].items():
        if own.lower() == wanted:
            return metric
    return UNKNOWN_METRIC
