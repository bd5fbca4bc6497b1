"""The Python API of the Vectra migration guide: ``Client`` and ``Migration``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .engine.migrate import migrate as _migrate
from .engine.progress import ProgressCallback
from .engine.retry import RetryPolicy
from .errors import ConfigError, UnsupportedError
from .providers.base import IndexSpec, Provider, VectorSpec
from .providers.registry import open_provider, split_url
from .records import batch_from_records, records_from_batch
from .snapshot.layout import normalize_namespace


class Client:
    """A connection to one vector store.

    ``Client(provider="qdrant", host="localhost:6333", api_key=...)`` or
    ``Client(url="lancedb:///data/db")``. Extra keyword options go to the provider.
    """

    def __init__(
        self,
        provider: str | None = None,
        host: str | None = None,
        api_key: str | None = None,
        *,
        url: str | None = None,
        **options: Any,
    ) -> None:
        if url is not None:
            name, tls, location = split_url(url)
        elif provider is not None:
            name, tls, location = provider, False, host or ""
            if "+" in name:
                name, _, transport = name.partition("+")
                tls = transport == "https"
        else:
            raise ConfigError("Client needs provider= (and host=) or url=")
        self.provider = name
        self.backend: Provider = open_provider(
            provider=name, location=location, api_key=api_key, tls=tls, **options
        )

    @property
    def endpoint(self) -> str:
        return self.backend.endpoint

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.backend.endpoint!r})"

    # -- indexes -------------------------------------------------------------
    def create_index(
        self,
        name: str,
        dimension: int | None,
        metric: str = "cosine",
        *,
        id_type: str = "string",
        sparse: bool = False,
        named_vectors: Mapping[str, tuple[int, str] | int] | None = None,
    ) -> dict[str, Any]:
        named = {
            k: VectorSpec(v, metric) if isinstance(v, int) else VectorSpec(v[0], v[1])
            for k, v in (named_vectors or {}).items()
        }
        spec = IndexSpec(name, dimension, metric, id_type, named, sparse)
        self.backend.create_index(spec)
        finalize = getattr(self.backend, "finalize_index", None)
        if finalize is not None:  # an empty index: build its ANN index now
            finalize(name)
        return self.describe_index(name)

    def describe_index(self, index: str) -> dict[str, Any]:
        d = self.backend.describe_index(index).to_dict()
        d["provider"] = self.provider
        return d

    def list_indexes(self) -> list[dict[str, Any]]:
        return [self.describe_index(name) for name in self.backend.list_indexes()]

    def delete_index(self, name: str) -> None:
        self.backend.delete_index(name)

    def list_namespaces(self, index: str) -> list[str]:
        return self.backend.list_namespaces(index)

    def stats(self, index: str, namespace: str | None = None) -> dict[str, Any]:
        spec = self.backend.describe_index(index)
        names = (
            [normalize_namespace(namespace)]
            if namespace is not None
            else self.backend.list_namespaces(index)
        )
        counts = {n: self.backend.count(index, n) for n in names}
        return {
            "dimension": spec.dimension,
            "metric": spec.metric,
            "total_vector_count": sum(counts.values()),
            "namespaces": {n: {"vector_count": c} for n, c in counts.items()},
        }

    # -- records -------------------------------------------------------------
    def upsert(
        self,
        index: str,
        vectors: Iterable[Mapping[str, Any]],
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """Write records given as dicts (``id``, ``values``, ``metadata``, ``sparse_values``)."""
        spec = self.backend.describe_index(index)
        batch = batch_from_records(spec, vectors)
        refused = self.backend.upsert(index, batch, normalize_namespace(namespace))
        return {"upserted_count": batch.num_rows - len(refused), "errors": dict(refused)}

    def fetch(
        self, index: str, ids: Sequence[str], namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """The records with these ids that exist, as dicts."""
        return records_from_batch(
            self.backend.fetch(index, list(ids), normalize_namespace(namespace))
        )

    def query(
        self,
        index: str,
        vector: Sequence[float],
        top_k: int = 10,
        namespace: str | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Nearest records: dicts with ``id``, ``score`` (higher is closer), ``metadata``."""
        query = getattr(self.backend, "query", None)
        if query is None:
            raise UnsupportedError(f"provider {self.provider} does not support query here")
        result: list[dict[str, Any]] = query(
            index, vector, top_k, normalize_namespace(namespace), filter
        )
        return result


def as_provider(obj: Any) -> Provider:
    """A Provider from a Client, a Provider or a provider URL."""
    if isinstance(obj, Client):
        return obj.backend
    if isinstance(obj, str):
        return open_provider(obj)
    if isinstance(obj, Provider):
        return obj
    raise ConfigError(f"expected a Client, a provider or a provider URL, got {type(obj).__name__}")


class Migration:
    """Copy between two clients, and verify the copy."""

    def __init__(self, source: Client | Provider, target: Client | Provider) -> None:
        self.source = as_provider(source)
        self.target = as_provider(target)

    def migrate(
        self,
        source_index: str,
        target_index: str | None = None,
        source_namespace: str | None = None,
        target_namespace: str | None = None,
        batch_size: int = 500,
        chunk_size: int = 500,
        on_progress: ProgressCallback | None = None,
        *,
        concurrency: int = 8,
        create_index: bool = True,
        metric: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> dict[str, Any]:
        """Copy one namespace of one index. Returns ``migrated_count``, ``batches``, ``errors``."""
        return _migrate(
            self.source,
            self.target,
            **_one_namespace(source_index, target_index, source_namespace, target_namespace),
            batch_size=batch_size,
            chunk_size=chunk_size,
            concurrency=concurrency,
            create_index=create_index,
            metric=metric,
            on_progress=on_progress,
            retry=retry,
        )

    def migrate_all(self, **kwargs: Any) -> dict[str, Any]:
        """Copy every index and namespace (see :func:`vectra_io.engine.migrate.migrate`)."""
        return _migrate(self.source, self.target, **kwargs)

    def plan(
        self,
        source_index: str | None = None,
        target_index: str | None = None,
        source_namespace: str | None = None,
        target_namespace: str | None = None,
        *,
        scan_records: bool = True,
    ) -> dict[str, Any]:
        """What :meth:`migrate` would do, writing nothing (see :mod:`vectra_io.engine.plan`).

        Without ``source_index``: every index and namespace.
        """
        from .engine.plan import plan

        if source_index is None:
            return plan(self.source, self.target, scan_records=scan_records)
        return plan(
            self.source,
            self.target,
            **_one_namespace(source_index, target_index, source_namespace, target_namespace),
            scan_records=scan_records,
        )

    def verify(
        self,
        source_index: str,
        target_index: str | None = None,
        source_namespace: str | None = None,
        target_namespace: str | None = None,
    ) -> dict[str, Any]:
        """Compare the record counts of the source and target namespaces."""
        from .engine.verify import _count

        src_ns, tgt_ns = _namespace_pair(source_namespace, target_namespace)
        source_count = self.source.count(source_index, src_ns)
        target_count = _count(self.target, target_index or source_index, tgt_ns)
        return {
            "match": source_count == target_count,
            "source_count": source_count,
            "target_count": target_count,
            "exact": self.source.capabilities.exact_count and self.target.capabilities.exact_count,
        }


def _one_namespace(
    source_index: str,
    target_index: str | None,
    source_namespace: str | None,
    target_namespace: str | None,
) -> dict[str, Any]:
    """The engine's selection keywords for one namespace of one index (target names default
    to the source's)."""
    src_ns, tgt_ns = _namespace_pair(source_namespace, target_namespace)
    return {
        "indexes": [source_index],
        "namespaces": [src_ns],
        "index_map": {source_index: target_index or source_index},
        "namespace_map": {src_ns: tgt_ns},
    }


def _namespace_pair(source: str | None, target: str | None) -> tuple[str, str]:
    """The source and target namespaces, normalized; the target defaults to the source."""
    src = normalize_namespace(source)
    return src, normalize_namespace(target) if target is not None else src
