"""What the provider knows of one index: :class:`IndexInfo` (its spec, data-plane URL,
pod or serverless, vector type and state) built by :func:`info_from_model` from the model
``describe_index`` answers, and :func:`check_compatible`, the check of an existing index
against the spec a caller wants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ... import metrics
from ...errors import IncompatibleIndexError
from ..base import UNKNOWN_METRIC, IndexSpec
from .limits import SPARSE_TAG


@dataclass
class IndexInfo:
    spec: IndexSpec
    url: str  # data-plane base URL
    pod: bool
    vector_type: str
    state: str
    ready: bool


def info_from_model(provider: str, model: Mapping[str, Any], https: bool) -> IndexInfo:
    name = str(model["name"])
    own_metric = model.get("metric")
    metric = metrics.from_provider(provider, own_metric)
    vector_type = str(model.get("vector_type") or "dense")
    tags = model.get("tags") or {}
    if vector_type == "sparse":
        sparse, dimension = True, None
    else:
        dimension = model.get("dimension")
        sparse = own_metric == "dotproduct" and tags.get(SPARSE_TAG, "1") != "0"
    spec_body = model.get("spec") or {}
    status = model.get("status") or {}
    raw = {
        "vector_type": vector_type,
        "metric": own_metric,
        "spec": spec_body,
        "deletion_protection": model.get("deletion_protection"),
        "tags": dict(tags),
    }
    spec = IndexSpec(
        name=name,
        dimension=int(dimension) if dimension is not None else None,
        metric=metric,
        id_type="string",
        sparse=sparse,
        raw_config=raw,
    )
    host = str(model.get("host") or "")
    url = host.rstrip("/") if "://" in host else f"{'https' if https else 'http'}://{host}"
    return IndexInfo(
        spec=spec,
        url=url,
        pod="pod" in spec_body,
        vector_type=vector_type,
        state=str(status.get("state") or ""),
        ready=bool(status.get("ready")),
    )


def check_compatible(existing: IndexSpec, wanted: IndexSpec, where: dict[str, Any]) -> None:
    problems = []
    if existing.dimension != wanted.dimension:
        problems.append(f"dimension {existing.dimension}, not {wanted.dimension}")
    known = UNKNOWN_METRIC not in (existing.metric, wanted.metric)
    if known and existing.metric != wanted.metric:
        problems.append(f"metric {existing.metric}, not {wanted.metric}")
    if wanted.sparse and not existing.sparse:
        problems.append("no sparse values")
    if problems:
        raise IncompatibleIndexError(
            f"index {wanted.name!r} exists with {', '.join(problems)}",
            **where,
        )
