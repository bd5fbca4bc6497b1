"""Indexes, namespaces and counts: :class:`QdrantIndexes` turns collections into
:class:`IndexSpec` (guessing the id type of collections vectra did not create), creates
and deletes collections with their payload indexes, lists the namespaces of an index in
``payload`` mode (``/facet`` or scrolling the key) and ``collection`` mode, and counts
records.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ...errors import (
    AuthError,
    ConfigError,
    FatalError,
    IncompatibleIndexError,
    IndexNotFoundError,
)
from ...ids import ORIGINAL_ID_KEY
from ...metrics import from_provider, to_provider
from ..base import (
    DEFAULT_NAMESPACE,
    ID_TYPES,
    UNKNOWN_METRIC,
    IndexSpec,
    VectorSpec,
    spec_mismatch,
)
from .client import QdrantClient
from .collection_info import CONFIG_KEYS, PARAM_KEYS, Info, drop_nulls
from .names import NS_SEPARATOR, check_name, namespace_collection, namespace_of_collection, quote
from .settings import FACET_PAGE, ID_SAMPLE, KEYS_PAGE, META_KEY, UNNAMED

log = logging.getLogger("vectra_io.providers.qdrant")


class QdrantIndexes(QdrantClient):
    def _spec(self, info: Info, index: str) -> IndexSpec:
        if info.spec is not None:
            return replace(info.spec, name=index) if info.spec.name != index else info.spec
        info.refuse_unsupported(self)
        dense = dict(info.dense)
        default = dense.pop(UNNAMED, None)
        named = {
            n: VectorSpec(int(p["size"]), from_provider("qdrant", p.get("distance")))
            for n, p in sorted(dense.items())
        }
        if default is not None:
            dimension: int | None = int(default["size"])
            metric = from_provider("qdrant", default.get("distance"))
        else:
            dimension = None
            stored = info.meta.get("metric")
            if isinstance(stored, str) and stored:
                metric = stored
            elif named:
                metric = next(iter(named.values())).metric
            else:
                metric = UNKNOWN_METRIC
        distances = [p.get("distance") for p in info.dense.values()]
        reduced = sorted(
            n or "(default)"
            for n, p in info.dense.items()
            if p.get("datatype") not in (None, "float32")
        )
        if reduced:
            log.warning(
                "collection %r stores vectors %s with reduced precision (datatype); exported "
                "values are what Qdrant keeps",
                info.name,
                ", ".join(reduced),
            )
        id_type = info.meta.get("id_type")
        if id_type not in ID_TYPES:
            id_type = self._guess_id_type(info.name)
        raw = {
            "qdrant": {
                "params": info.config.get("params") or {},
                **{k: info.config[k] for k in CONFIG_KEYS if info.config.get(k) is not None},
                "metadata": info.config.get("metadata"),
                "payload_schema": {
                    k: {kk: vv for kk, vv in v.items() if kk in ("data_type", "params")}
                    for k, v in info.payload_schema.items()
                    if isinstance(v, Mapping)
                },
            }
        }
        spec = IndexSpec(
            name=index,
            dimension=dimension,
            metric=metric,
            id_type=str(id_type),
            named_vectors=named,
            sparse=bool(info.sparse),
            normalized="Cosine" in distances,
            raw_config=raw,
        )
        info.spec = spec
        return spec

    def _guess_id_type(self, collection: str) -> str:
        result = self._call(
            "POST",
            f"/collections/{quote(collection)}/points/scroll",
            body={
                "limit": ID_SAMPLE,
                "with_payload": {"include": [ORIGINAL_ID_KEY]},
                "with_vector": False,
            },
            index=collection,
        )
        points = (result or {}).get("points") or []
        if not points:
            return "string"
        if any(ORIGINAL_ID_KEY in (p.get("payload") or {}) for p in points):
            return "string"
        if all(isinstance(p.get("id"), int) for p in points):
            return "uint64"
        if all(isinstance(p.get("id"), str) for p in points):
            return "uuid"
        return "string"

    # -- Provider: indexes -----------------------------------------------------------------
    def list_indexes(self) -> list[str]:
        names = self._collection_names()
        if self.namespace_mode != "collection":
            return names
        present = set(names)
        out = []
        for name in names:
            if NS_SEPARATOR in name and self._is_namespace_collection(name, present):
                continue
            out.append(name)
        return out

    def _is_namespace_collection(self, name: str, present: set[str]) -> bool:
        info = self._maybe_info(name)
        if info is None:
            return False
        index, namespace = info.meta.get("index"), info.meta.get("namespace")
        return (
            isinstance(index, str)
            and isinstance(namespace, str)
            and namespace != ""
            and namespace_collection(index, namespace) == name
        )

    def describe_index(self, index: str) -> IndexSpec:
        info = self._info(index, fresh=True)
        if self.namespace_mode == "collection" and self._is_namespace_collection(index, set()):
            raise IndexNotFoundError(
                f"{index!r} is a namespace collection, not an index", **self._where(index)
            )
        return self._spec(info, index)

    def create_index(self, spec: IndexSpec) -> None:
        check_name(spec.name)
        if self.namespace_mode == "collection" and NS_SEPARATOR in spec.name:
            raise ConfigError(
                f"index {spec.name!r} contains {NS_SEPARATOR!r}, which namespace collections "
                "use in namespaces=collection mode"
            )
        if spec.metric == UNKNOWN_METRIC and spec.dimension is not None:
            raise ConfigError(f"index {spec.name!r}: the metric is unknown; give one")
        existing = self._maybe_fresh(spec.name)
        if existing is not None:
            self._check_compatible(self._spec(existing, spec.name), spec)
            # an earlier attempt may have created the collection but not all its indexes
            wanted = self._payload_schema_for(spec)
            missing = {k: v for k, v in wanted.items() if k not in existing.payload_schema}
            self._create_payload_indexes(spec.name, missing)
            return
        body = self._create_body(spec)
        payload_schema = self._payload_schema_for(spec)
        with self._create_lock:
            try:
                self._call(
                    "PUT",
                    f"/collections/{quote(spec.name)}",
                    body=body,
                    index=spec.name,
                    not_found=None,
                )
            except FatalError as exc:
                if exc.status != 409:
                    raise
                again = self._info(spec.name, fresh=True)
                self._check_compatible(self._spec(again, spec.name), spec)
                return
            self._forget(spec.name)
            log.info("created collection %r on %s", spec.name, self.endpoint)
            self._create_payload_indexes(spec.name, payload_schema)

    def _maybe_fresh(self, name: str) -> Info | None:
        try:
            return self._info(name, fresh=True)
        except IndexNotFoundError:
            return None

    def _check_compatible(self, existing: IndexSpec, spec: IndexSpec) -> None:
        problem = spec_mismatch(existing, spec)
        if problem:
            raise IncompatibleIndexError(f"index {spec.name!r} {problem}", **self._where(spec.name))

    def _create_body(self, spec: IndexSpec) -> dict[str, Any]:
        raw = spec.raw_config.get("qdrant") if isinstance(spec.raw_config, Mapping) else None
        raw = raw if isinstance(raw, Mapping) else {}
        params = raw.get("params") if isinstance(raw.get("params"), Mapping) else {}
        assert isinstance(params, Mapping)
        old_vectors = params.get("vectors") or {}
        old_single = isinstance(old_vectors, Mapping) and "size" in old_vectors
        old_named: Mapping[str, Any] = {} if old_single else dict(old_vectors)
        old_default = old_vectors if old_single else old_named.get(UNNAMED)

        vectors: dict[str, Any] = {}
        if spec.dimension is not None:
            vectors[UNNAMED] = _vector_params(spec.dimension, spec.metric, old_default)
        for name, vec in sorted(spec.named_vectors.items()):
            vectors[name] = _vector_params(vec.dimension, vec.metric, old_named.get(name))
        body: dict[str, Any] = {}
        if set(vectors) == {UNNAMED}:
            body["vectors"] = vectors[UNNAMED]
        elif vectors:
            body["vectors"] = vectors
        if spec.sparse:
            old_sparse = dict(params.get("sparse_vectors") or {})
            if len(old_sparse) == 1:
                body["sparse_vectors"] = {k: drop_nulls(v or {}) for k, v in old_sparse.items()}
            else:
                body["sparse_vectors"] = {self.sparse_name: {}}
        for key in PARAM_KEYS:
            if params.get(key) is not None:
                body[key] = params[key]
        if body.get("sharding_method") == "custom":
            log.warning(
                "index %r: the source used custom sharding; the target is created with "
                "automatic sharding (shard keys are not carried)",
                spec.name,
            )
            body.pop("sharding_method")
        for src, dst in CONFIG_KEYS.items():
            value = raw.get(src)
            if isinstance(value, Mapping):
                body[dst] = drop_nulls(value)
        metadata = (
            dict(raw.get("metadata") or {}) if isinstance(raw.get("metadata"), Mapping) else {}
        )
        ours: dict[str, Any] = {"id_type": spec.id_type}
        if spec.dimension is None:
            ours["metric"] = spec.metric
        metadata[META_KEY] = ours
        body["metadata"] = metadata
        return body

    def _payload_schema_for(self, spec: IndexSpec) -> dict[str, Any]:
        raw = spec.raw_config.get("qdrant") if isinstance(spec.raw_config, Mapping) else None
        schema: dict[str, Any] = {}
        if isinstance(raw, Mapping) and isinstance(raw.get("payload_schema"), Mapping):
            for fname, info in raw["payload_schema"].items():
                if not isinstance(info, Mapping):
                    continue
                field_schema = info.get("params") or info.get("data_type")
                if field_schema:
                    schema[str(fname)] = drop_nulls(field_schema)
        if (
            self.namespace_mode == "payload"
            and self.namespace_index
            and self.namespace_key not in schema
        ):
            schema[self.namespace_key] = {"type": "keyword", "is_tenant": True}
        return schema

    def _create_payload_indexes(self, collection: str, schema: Mapping[str, Any]) -> None:
        for fname, field_schema in schema.items():
            self._call(
                "PUT",
                f"/collections/{quote(collection)}/index",
                params={"wait": "true"},
                body={"field_name": fname, "field_schema": field_schema},
                index=collection,
            )
        if schema:
            self._forget(collection)

    def delete_index(self, index: str) -> None:
        check_name(index)
        names = [index]
        if self.namespace_mode == "collection":
            names += [
                name
                for name in self._collection_names()
                if namespace_of_collection(index, name) is not None
                and self._is_namespace_collection(name, set())
            ]
        found = self._call("DELETE", f"/collections/{quote(index)}", index=index)
        self._forget(index)
        for name in names[1:]:
            self._call("DELETE", f"/collections/{quote(name)}", index=index, not_found=None)
            self._forget(name)
        if found is False:
            raise IndexNotFoundError(f"index {index!r} does not exist", **self._where(index))

    # -- namespaces --------------------------------------------------------------------------
    def _target(self, index: str, namespace: str) -> tuple[str, dict[str, Any] | None]:
        """(collection, filter) holding the records of ``namespace``."""
        if self.namespace_mode == "collection":
            return namespace_collection(index, namespace), None
        key = self.namespace_key
        if namespace == DEFAULT_NAMESPACE:
            return index, {"must": [{"is_empty": {"key": key}}]}
        return index, {"must": [{"key": key, "match": {"value": namespace}}]}

    def _ns_info(self, index: str, namespace: str) -> tuple[Info | None, dict[str, Any] | None]:
        """The collection info and filter of a namespace; (None, None) when it has none."""
        base = self._info(index)
        collection, flt = self._target(index, namespace)
        if collection == index:
            return base, flt
        info = self._maybe_info(collection)
        if (
            info is None
            or info.meta.get("index") != index
            or info.meta.get("namespace") != namespace
        ):
            return None, None
        return info, flt

    def list_namespaces(self, index: str) -> list[str]:
        base = self._info(index, fresh=True)
        if self.namespace_mode == "collection":
            out = []
            if self._count(index, None) > 0:
                out.append(DEFAULT_NAMESPACE)
            for name in self._collection_names():
                ns = namespace_of_collection(index, name)
                if ns is None:
                    continue
                info = self._maybe_info(name)
                if (
                    info is not None
                    and info.meta.get("index") == index
                    and info.meta.get("namespace") == ns
                ):
                    out.append(ns)
            return sorted(out)
        found = self._namespace_values(base)
        _, default_filter = self._target(index, DEFAULT_NAMESPACE)
        if self._count(index, default_filter) > 0:
            found.add(DEFAULT_NAMESPACE)
        return sorted(found)

    def _namespace_values(self, info: Info) -> set[str]:
        indexed = info.payload_schema.get(self.namespace_key)
        if isinstance(indexed, Mapping) and indexed.get("data_type") == "keyword":
            try:
                return self._facet_values(info.name)
            except FatalError as exc:  # no /facet (Qdrant < 1.12) or no usable index
                if exc.status not in (400, 404, 422, 501) or isinstance(exc, AuthError):
                    raise
                log.info("facet on %r failed (%s); scrolling the key instead", info.name, exc)
        return self._scrolled_values(info.name)

    def _facet_values(self, collection: str) -> set[str]:
        """Every value of the namespace key, by ``/facet`` pages excluding values seen."""
        found: set[str] = set()
        while True:
            body: dict[str, Any] = {"key": self.namespace_key, "limit": FACET_PAGE, "exact": True}
            if found:
                body["filter"] = {
                    "must_not": [{"key": self.namespace_key, "match": {"any": sorted(found)}}]
                }
            result = self._call(
                "POST", f"/collections/{quote(collection)}/facet", body=body, index=collection
            )
            hits = (result or {}).get("hits") or []
            new = {h["value"] for h in hits if isinstance(h.get("value"), str) and h.get("count")}
            if not new - found:
                return found
            found |= new
            if len(hits) < FACET_PAGE:
                return found

    def _scrolled_values(self, collection: str) -> set[str]:
        """Every value of the namespace key, scrolling that payload key only."""
        found: set[str] = set()
        offset: Any = None
        key = self.namespace_key
        while True:
            body: dict[str, Any] = {
                "limit": KEYS_PAGE,
                "with_payload": {"include": [key]},
                "with_vector": False,
                "filter": {"must_not": [{"is_empty": {"key": key}}]},
            }
            if offset is not None:
                body["offset"] = offset
            result = (
                self._call(
                    "POST",
                    f"/collections/{quote(collection)}/points/scroll",
                    body=body,
                    index=collection,
                )
                or {}
            )
            for p in result.get("points") or []:
                value = (p.get("payload") or {}).get(key)
                if isinstance(value, str) and value:
                    found.add(value)
            offset = result.get("next_page_offset")
            if offset is None:
                return found

    # -- counting ----------------------------------------------------------------------------
    def _count(self, collection: str, flt: Mapping[str, Any] | None) -> int:
        body: dict[str, Any] = {"exact": True}
        if flt is not None:
            body["filter"] = flt
        result = self._call(
            "POST", f"/collections/{quote(collection)}/points/count", body=body, index=collection
        )
        return int((result or {}).get("count", 0))

    def count(self, index: str, namespace: str = DEFAULT_NAMESPACE) -> int:
        info, flt = self._ns_info(index, namespace)
        if info is None:
            return 0
        return self._count(info.name, flt)


def _vector_params(
    spec_dim: int, metric: str, template: Mapping[str, Any] | None
) -> dict[str, Any]:
    out = {k: v for k, v in (template or {}).items() if v is not None}
    out["size"] = int(spec_dim)
    out["distance"] = to_provider("qdrant", metric)
    return out
