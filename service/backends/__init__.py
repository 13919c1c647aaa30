"""Inference backends, picked by ``Settings.backend``."""

from __future__ import annotations

from service.backends.base import InferenceBackend
from service.settings import Settings


def create_backend(settings: Settings) -> InferenceBackend:
    """Build the configured backend; imports only that backend's client library."""
    if settings.backend == "triton":
        from service.backends.triton import TritonBackend

        return TritonBackend(settings)
    from service.backends.inprocess import InProcessBackend

    return InProcessBackend.detector(settings)


__all__ = ["InferenceBackend", "create_backend"]
