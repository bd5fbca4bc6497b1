"""The provider interface: one Protocol, capabilities declared as data.

Records travel as Arrow record batches whose schema is given by
:func:`vectra_io.records.record_schema` for the index (columns ``id``,
``values``, ``sparse_values``, ``metadata`` and ``vector.<name>`` for named
vectors). The default namespace is the empty string ``""`` everywhere inside
the library.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, NamedTuple, Protocol, Self, runtime_checkable

import pyarrow as pa

DEFAULT_NAMESPACE = ""

ID_TYPES = ("string", "uint64", "uuid")
METRICS = ("cosine", "dot", "euclidean", "manhattan")
UNKNOWN_METRIC = "unknown"

#: A scan cursor: any JSON-serialisable value, opaque to everyone but its provider.
Cursor = Any


@dataclass(frozen=True)
class VectorSpec:
    """A named dense vector: its dimension and metric."""

    dimension: int
    metric: str = "cosine"


@dataclass(frozen=True)
class IndexSpec:
    """What an index is, independent of any provider.

    ``dimension`` is ``None`` when records have no default dense vector (only
    named or sparse vectors). ``normalized`` says that the provider returns
    unit-length vectors instead of the ones written (Qdrant cosine).
    """

    name: str
    dimension: int | None
    metric: str = "cosine"
    id_type: str = "string"
    named_vectors: Mapping[str, VectorSpec] = field(default_factory=dict)
    sparse: bool = False
    normalized: bool = False
    raw_config: Mapping[str, Any] = field(default_factory=dict)

    def renamed(self, name: str) -> IndexSpec:
        return replace(self, name=name)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["named_vectors"] = {k: asdict(v) for k, v in self.named_vectors.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndexSpec:
        return cls(
            name=data["name"],
            dimension=data.get("dimension"),
            metric=data.get("metric", UNKNOWN_METRIC),
            id_type=data.get("id_type", "string"),
            named_vectors={
                k: VectorSpec(int(v["dimension"]), v.get("metric", "cosine"))
                for k, v in (data.get("named_vectors") or {}).items()
            },
            sparse=bool(data.get("sparse", False)),
            normalized=bool(data.get("normalized", False)),
            raw_config=dict(data.get("raw_config") or {}),
        )


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do and its limits. The engine and the tests read these."""

    max_batch_rows: int | None = None
    max_batch_bytes: int | None = None
    id_types: frozenset[str] = frozenset(ID_TYPES)
    metrics: frozenset[str] = frozenset(METRICS)
    namespaces: bool = True
    sparse: bool = False
    named_vectors: bool = False
    exact_count: bool = True
    #: metadata may hold nested objects, lists of any JSON, and nulls
    nested_metadata: bool = True
    #: re-upserting the same id replaces the record (no duplicate, no merge)
    idempotent_upsert: bool = True
    #: records without a default dense vector can be stored
    optional_dense: bool = False
    #: largest dense dimension accepted
    max_dimension: int | None = None
    #: returns exactly the float32 bits written (False for lossy stores)
    exact_floats: bool = True
    #: request bytes per Arrow byte, to hold ``max_batch_bytes`` (JSON APIs: about 3.5)
    wire_factor: float = 1.0


class ScanPage(NamedTuple):
    """One page of a scan: the records and the cursor that resumes after them (None at the end).

    ``failures`` names records the provider could not read on this page (id -> reason):
    the engine reports them, so nothing is lost silently.
    """

    batch: pa.RecordBatch
    cursor: Cursor
    failures: Mapping[str, str] = {}


@runtime_checkable
class Provider(Protocol):
    """A vector store vectra-io can read from and write to."""

    #: provider name, also the URL scheme
    name: ClassVar[str]
    capabilities: Capabilities
    #: where the data lives, safe to print and store (never credentials)
    endpoint: str

    def list_indexes(self) -> list[str]: ...

    def describe_index(self, index: str) -> IndexSpec:
        """Raises :class:`~vectra_io.errors.IndexNotFoundError` when it does not exist."""
        ...

    def list_namespaces(self, index: str) -> list[str]: ...

    def count(self, index: str, namespace: str = DEFAULT_NAMESPACE) -> int: ...

    def scan(
        self,
        index: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        batch_size: int = 1000,
        cursor: Cursor = None,
    ) -> Iterator[ScanPage]:
        """Every record of the namespace once, in pages of about ``batch_size`` rows.

        Passing the cursor of a page back resumes right after that page.
        """
        ...

    def fetch(
        self, index: str, ids: Sequence[str], namespace: str = DEFAULT_NAMESPACE
    ) -> pa.RecordBatch:
        """The records with these ids that exist, in the index's record schema."""
        ...

    def create_index(self, spec: IndexSpec) -> None: ...

    def upsert(
        self, index: str, batch: pa.RecordBatch, namespace: str = DEFAULT_NAMESPACE
    ) -> Mapping[str, str]:
        """Write the batch (insert or replace by id).

        Returns the records the provider refused individually (id -> reason),
        empty when all were written; raises for a failure of the whole batch.
        """
        ...

    def delete_index(self, index: str) -> None: ...

    def close(self) -> None: ...


# Optional methods a provider may add (the engine looks them up with getattr):
#   query(index, vector, top_k, namespace, filter=None) -> list[dict]   exact or ANN search
#   finalize_index(index) -> None      after an import/migration: e.g. build ANN indexes
#   check_records(batch) -> {id: reason}   plan: records the target would change or refuse


def spec_mismatch(existing: IndexSpec, wanted: IndexSpec) -> str | None:
    """Why an existing index cannot hold records of ``wanted`` (dimension, named vectors,
    sparse), or None when it can."""
    if existing.dimension != wanted.dimension:
        return f"exists with dimension {existing.dimension}, not {wanted.dimension}"
    for name, vec in wanted.named_vectors.items():
        have = existing.named_vectors.get(name)
        if have is None or have.dimension != vec.dimension:
            return f"exists without a named vector {name!r} of dimension {vec.dimension}"
    if wanted.sparse and not existing.sparse:
        return "exists without sparse vectors"
    return None


def parse_bool(provider: str, option: str, value: Any) -> bool:
    """A provider option given as a bool or as text (URL query): true/false, yes/no, on/off, 1/0."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    from ..errors import ConfigError

    raise ConfigError(f"{provider} option {option} must be true or false, got {value!r}")


class ProviderBase:
    """Defaults shared by the built-in providers."""

    name: ClassVar[str] = ""
    capabilities: Capabilities = Capabilities()
    endpoint: str = ""

    def close(self) -> None:
        return None

    def _where(self, index: str | None) -> dict[str, Any]:
        """The ``provider``/``endpoint``/``index`` keywords of an error raised here."""
        return {"provider": self.name, "endpoint": self.endpoint, "index": index}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
