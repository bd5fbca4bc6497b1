"""What the provider knows about one collection, parsed from ``GET /collections/{c}``:
:class:`Info` (dense and sparse vectors, vectra's entry of the collection metadata, the
payload indexes, what vectra-io cannot carry) and the keys of the configuration that a
create-collection body reproduces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import (
    UnsupportedError,
)
from ..base import (
    IndexSpec,
    ProviderBase,
)
from .settings import META_KEY, UNNAMED

#: keys of the create-collection body that GET /collections/{c} returns in ``config.params``
PARAM_KEYS = (
    "shard_number",
    "sharding_method",
    "replication_factor",
    "write_consistency_factor",
    "on_disk_payload",
    "payload",
)
#: config section in GET -> key in the create body
CONFIG_KEYS = {
    "hnsw_config": "hnsw_config",
    "optimizer_config": "optimizers_config",
    "wal_config": "wal_config",
    "quantization_config": "quantization_config",
    "strict_mode_config": "strict_mode_config",
}


# -- collection info -------------------------------------------------------------------
@dataclass
class Info:
    """What vectra needs to know about one collection (parsed from GET /collections/{c})."""

    name: str
    config: dict[str, Any]
    payload_schema: dict[str, Any]
    dense: dict[str, dict[str, Any]]  # vector name ("" = default) -> VectorParams
    sparse: dict[str, dict[str, Any]]
    named: bool  # vectors config is a map (not a single unnamed VectorParams)
    meta: dict[str, Any]  # our entry of the collection metadata
    spec: IndexSpec | None = None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, name: str, result: Mapping[str, Any]) -> Info:
        config = dict(result.get("config") or {})
        params = dict(config.get("params") or {})
        vectors = params.get("vectors") or {}
        named = not (isinstance(vectors, Mapping) and "size" in vectors and "distance" in vectors)
        dense = {str(k): dict(v) for k, v in vectors.items()} if named else {UNNAMED: dict(vectors)}
        sparse = {str(k): dict(v or {}) for k, v in (params.get("sparse_vectors") or {}).items()}
        metadata = config.get("metadata") or {}
        meta = metadata.get(META_KEY) if isinstance(metadata, Mapping) else None
        info = cls(
            name=name,
            config=config,
            payload_schema=dict(result.get("payload_schema") or {}),
            dense=dense,
            sparse=sparse,
            named=named,
            meta=dict(meta) if isinstance(meta, Mapping) else {},
        )
        for vname, vparams in dense.items():
            if vparams.get("multivector_config"):
                info.problems.append(
                    f"vector {vname or '(default)'!r} is a multivector (multivector_config "
                    f"{vparams['multivector_config']})"
                )
        if len(sparse) > 1:
            info.problems.append(
                f"it has {len(sparse)} sparse vectors ({', '.join(sorted(sparse))}); the "
                "snapshot format holds one"
            )
        return info

    @property
    def sparse_name(self) -> str | None:
        return next(iter(self.sparse)) if len(self.sparse) == 1 else None

    @property
    def default_dense(self) -> dict[str, Any] | None:
        return self.dense.get(UNNAMED)

    def refuse_unsupported(self, provider: ProviderBase) -> None:
        if self.problems:
            raise UnsupportedError(
                f"collection {self.name!r} cannot be carried by vectra-io: "
                + "; ".join(self.problems)
                + ". Refusing instead of dropping those vectors",
                **provider._where(self.name),
            )

    def with_vector(self) -> bool | list[str]:
        """The ``with_vector`` selector returning every vector vectra carries."""
        if not self.named and self.sparse:
            # an unnamed collection answers a bare list for ``true``: ask by name so sparse
            # vectors come too (as a map with "" for the default vector)
            return [UNNAMED, *self.sparse]
        return True

    def create_body(self) -> dict[str, Any]:
        """A create-collection body reproducing this collection's configuration."""
        params = self.config.get("params") or {}
        body: dict[str, Any] = {}
        vectors = params.get("vectors")
        if vectors is not None:
            body["vectors"] = vectors
        if params.get("sparse_vectors"):
            body["sparse_vectors"] = params["sparse_vectors"]
        for key in PARAM_KEYS:
            if params.get(key) is not None:
                body[key] = params[key]
        for src, dst in CONFIG_KEYS.items():
            value = self.config.get(src)
            if value is not None:
                body[dst] = drop_nulls(value)
        if self.config.get("metadata") is not None:
            body["metadata"] = self.config["metadata"]
        return body


def drop_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    return value
