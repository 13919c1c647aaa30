"""Prometheus metrics, in a registry of their own so several services can live in one process (tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


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
        self.batch_size = Histogram(
            "facelocal_batch_size", "Images per backend inference", buckets=BATCH_SIZE_BUCKETS, registry=self.registry
        )
        self.queue_depth = Gauge("facelocal_queue_depth", "Images waiting for inference", registry=self.registry)
        self.inferences_total = Counter(
            "facelocal_inferences_total", "Backend inferences (batches) run", registry=self.registry
        )
        self.mesh_batch_size = Histogram(
            "facelocal_mesh_batch_size",
            "Face crops per mesh inference",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.mesh_queue_depth = Gauge(
            "facelocal_mesh_queue_depth", "Face crops waiting for the mesh model", registry=self.registry
        )
        self.mesh_inferences_total = Counter(
            "facelocal_mesh_inferences_total", "Mesh inferences (batches of face crops) run", registry=self.registry
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


def record_request(metrics: ServiceMetrics, protocol: str, endpoint: str, status: str | int, seconds: float) -> None:
    """Count one finished request and observe its latency (``protocol``: ``rest`` or ``grpc``; ``status``:
    the HTTP status or gRPC status-code name)."""
    metrics.requests_total.labels(protocol=protocol, endpoint=endpoint, status=str(status)).inc()
    metrics.request_latency_seconds.labels(protocol=protocol, endpoint=endpoint).observe(seconds)
