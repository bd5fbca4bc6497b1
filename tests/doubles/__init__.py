"""Spec-validating HTTP test doubles for providers without a locally runnable server."""

from .openapi_server import Faults, HTTPError, OpenAPIDouble, RequestRecord, Violation
from .pinecone import PineconeDouble
from .qdrant import QdrantDouble
from .weaviate import WeaviateDouble

__all__ = [
    "Faults",
    "HTTPError",
    "OpenAPIDouble",
    "PineconeDouble",
    "QdrantDouble",
    "RequestRecord",
    "Violation",
    "WeaviateDouble",
]
