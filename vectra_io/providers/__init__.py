"""Providers: one module each, loaded lazily through :mod:`.registry`."""

from .base import DEFAULT_NAMESPACE, Capabilities, IndexSpec, Provider, ScanPage, VectorSpec
from .registry import open_provider, provider_class, providers_info

__all__ = [
    "DEFAULT_NAMESPACE",
    "Capabilities",
    "IndexSpec",
    "Provider",
    "ScanPage",
    "VectorSpec",
    "open_provider",
    "provider_class",
    "providers_info",
]
