"""Prometheus metrics, in a registry of their own so several services can live in one process (tests)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class BatchMetrics:
    """What one micro-batcher records: ``<prefix>_queue_depth``, ``<prefix>_batches_in_flight``,
    ``<prefix>_inferences_total`` and ``<prefix>_batch_size``."""

    queue_depth: Gauge
    in_flight: Gauge
    inferences_total: Counter
    batch_size: Histogram

    @classmethod
    def register(
        cls, registry: CollectorRegistry, prefix: str, items: str, batches: str, model: str = "inference"
    ) -> BatchMetrics:
        return cls(
            queue_depth=Gauge(f"{prefix}_queue_depth", f"{items} waiting for {model}", registry=registry),
            in_flight=Gauge(f"{prefix}_batches_in_flight", f"{batches} running now", registry=registry),
            inferences_total=Counter(f"{prefix}_inferences_total", f"{batches} run", registry=registry),
            batch_size=Histogram(
                f"{prefix}_batch_size", f"{items} per inference", buckets=BATCH_SIZE_BUCKETS, registry=registry
            ),
        )


class ServiceMetrics:
    """The service's metrics. Front ends record requests with :func:`record_request`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests_total = Counter(
            "facelocal_requests_total",
            "Requests by protocol, endpoint and status",
            ["protocol", "endpoint", "status"],
            registry=self.registry,
        )
        self.request_latency_seconds = Histogram(
            "facelocal_request_latency_seconds",
            "Request latency in seconds",
            ["protocol", "endpoint"],
            registry=self.registry,
        )
        self.detector = BatchMetrics.register(self.registry, "facelocal", "Images", "Backend inferences (batches)")
        self.mesh = BatchMetrics.register(
            self.registry, "facelocal_mesh", "Face crops", "Mesh inferences (batches of face crops)", "the mesh model"
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


def record_request(metrics: ServiceMetrics, protocol: str, endpoint: str, status: str | int, seconds: float) -> None:
    """Count one finished request and observe its latency (``protocol``: ``rest`` or ``grpc``; ``status``:
    the HTTP status or gRPC status-code name)."""
    metrics.requests_total.labels(protocol=protocol, endpoint=endpoint, status=str(status)).inc()
    metrics.request_latency_seconds.labels(protocol=protocol, endpoint=endpoint).observe(seconds)
