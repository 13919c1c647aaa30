"""``facelocal serve``: REST (port 8000) and gRPC (port 50051) in one process over the exported model.

Settings come from ``FACELOCAL_*`` environment variables; flags override them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# Flag name -> (Settings field, type, help). Unset flags leave the environment/default value alone.
_FLAGS = {
    "--host": ("host", str, "listen address (default 0.0.0.0)"),
    "--http-port": ("http_port", int, "REST port (default 8000)"),
    "--grpc-port": ("grpc_port", int, "gRPC port (default 50051)"),
    "--backend": ("backend", str, "onnxruntime (default, in process) or triton"),
    "--model-path": ("model_path", Path, "ONNX model for the onnxruntime backend (default artifacts/model.onnx)"),
    "--model-name": ("model_name", str, "reported model name (default: from the ONNX metadata)"),
    "--triton-url": ("triton_url", str, "Triton address host:port (default 127.0.0.1:8001)"),
    "--triton-model": ("triton_model", str, "model name in the Triton repository (default retinaface)"),
    "--canvas-size": ("canvas_size", int, "square letterbox canvas (default 640)"),
    "--max-batch-size": ("max_batch_size", int, "most images per inference (default 8)"),
    "--max-delay-ms": ("max_delay_ms", float, "longest wait for a batch to fill (default 5)"),
    "--max-queue": ("max_queue", int, "queued images before 503 queue_full (default 64)"),
    "--max-body-bytes": ("max_body_bytes", int, "largest request body (default 20 MiB)"),
    "--intra-op-threads": ("intra_op_threads", int, "ONNX Runtime threads (default 0: runtime's choice)"),
    "--mesh-model-path": (
        "mesh_model_path", str,
        "FaceMesh ONNX for return_mesh (default artifacts/facemesh.onnx when it exists; 'none': no mesh)",
    ),
    "--triton-mesh-model": ("triton_mesh_model", str, "FaceMesh model in the Triton repository (default facemesh)"),
    "--mesh-max-faces": ("mesh_max_faces", int, "most faces per image that get a mesh (default 64)"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the REST and gRPC service", description=__doc__)
    for flag, (field, kind, text) in _FLAGS.items():
        parser.add_argument(flag, dest=field, type=kind, help=text)
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.set_defaults(func=run)


def build_settings(args: argparse.Namespace):
    """Settings from the environment, overridden by the flags that were given."""
    from pydantic import ValidationError

    from facelocal.cli import CommandError
    from service.settings import Settings

    overrides = {field: value for field, *_ in _FLAGS.values() if (value := getattr(args, field)) is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise CommandError(f"invalid settings: {exc}") from None


def run(args: argparse.Namespace) -> int:
    import logging

    from facelocal.cli import CommandError

    settings = build_settings(args)
    if settings.backend == "onnxruntime" and not settings.model_path.is_file():
        raise CommandError(
            f"model file {settings.model_path} not found. Export it first:\n"
            f"  facelocal export onnx --out {settings.model_path}\n"
            "or point --model-path (FACELOCAL_MODEL_PATH) at an exported model."
        )
    mesh = settings.mesh_model_path
    if settings.backend == "onnxruntime" and mesh is not None and "mesh_model_path" in settings.model_fields_set \
            and not mesh.is_file():
        raise CommandError(
            f"mesh model {mesh} not found. Export it first:\n"
            f"  facelocal export onnx --mesh --mesh-weights face_landmark.tflite --out {mesh}\n"
            "or pass --mesh-model-path none to serve without return_mesh."
        )
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from service.app import run as run_service

    run_service(settings)
    return 0
