"""The REST app over a stand-in core (no model, no server): what the REST layer itself decides."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from facelocal.detections import FaceDetections
from service.errors import ServiceError, queue_full, validation_error
from service.metrics import ServiceMetrics
from service.rest import create_app
from service.results import DetectionResult
from service.schemas import DetectOptions, ModelInfo
from service.settings import Settings


class StubCore:
    """What the REST layer asks of :class:`service.core.DetectionCore`, answering from fixed values: ``full``
    refuses capacity; each image's bytes are echoed as its width, b"bad" is a 400."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = ServiceMetrics()
        self.mesh = SimpleNamespace(available=False)
        self.max_size_limit = settings.max_size_limit
        self.canvas_size = settings.canvas_size
        self.full = False
        self.seen: list[tuple[bytes, DetectOptions]] = []

    def validate_options(self, options: DetectOptions) -> None:
        if options.max_size is not None and options.max_size > self.max_size_limit:
            raise validation_error("too large", code="max_size_too_large")

    def check_capacity(self) -> None:
        if self.full:
            raise queue_full()

    async def check_ready(self) -> bool:
        return not self.full

    def model_infos(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                name="stub", backend="onnxruntime", has_dense=False, canvas_size=640, max_batch_size=8, ready=True
            )
        ]

    async def detect(self, data: bytes, options: DetectOptions) -> DetectionResult:
        if data == b"bad":
            raise ServiceError(400, "invalid_image", "not an image")
        self.seen.append((data, options))
        return DetectionResult(
            width=len(data), height=1, model="stub", faces=FaceDetections.empty(len(data), 1), truncated=False
        )

    async def detect_batch(self, items, options: DetectOptions):
        results = []
        for item in items:
            try:
                results.append(item if isinstance(item, ServiceError) else await self.detect(item, options))
            except ServiceError as error:
                results.append(error)
        return results


@pytest.fixture
def make_client():
    """``make_client(**settings)`` -> (TestClient, StubCore)."""

    def make(**overrides) -> tuple[TestClient, StubCore]:
        core = StubCore(Settings(**overrides))
        return TestClient(create_app(core.settings, core), raise_server_exceptions=False), core  # type: ignore[arg-type]

    return make
