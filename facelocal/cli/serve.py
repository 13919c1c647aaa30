"""``facelocal serve``: REST (port 8000) and gRPC (port 50051) in one process over the exported model.

Settings come from ``FACELOCAL_*`` environment variables; flags override them. ``--weights`` serves a
checkpoint directly: it is exported once (torch needed) into a cache keyed by the file's hash and preset.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facelocal.config import PRESETS

# Flag name -> (Settings field, type, help). Unset flags leave the environment/default value alone.
_FLAGS = {
    "--host": ("host", str, "listen address (default 0.0.0.0)"),
    "--http-port": ("http_port", int, "REST port (default 8000)"),
    "--grpc-port": ("grpc_port", int, "gRPC port (default 50051)"),
    "--backend": ("backend", str, "openvino (default) or onnxruntime, in process, or triton"),
    "--precision": ("precision", str, "auto (default), fp32, bf16 (openvino) or int8 (an int8 export)"),
    "--model-path": ("model_path", Path, "ONNX model for the in-process backends (default artifacts/model.onnx)"),
    "--model-name": ("model_name", str, "reported model name (default: from the ONNX metadata)"),
    "--triton-url": ("triton_url", str, "Triton address host:port (default 127.0.0.1:8001)"),
    "--triton-model": ("triton_model", str, "model name in the Triton repository (default retinaface)"),
    "--canvas-size": ("canvas_size", int, "square letterbox canvas (default 640)"),
    "--max-batch-size": ("max_batch_size", int, "most images per inference (default 8)"),
    "--max-delay-ms": ("max_delay_ms", float, "longest wait for a batch to fill (default 5)"),
    "--max-queue": ("max_queue", int, "queued images before 503 queue_full (default 64)"),
    "--max-body-bytes": ("max_body_bytes", int, "largest request body (default 20 MiB)"),
    "--intra-op-threads": ("intra_op_threads", int, "ONNX Runtime or OpenVINO threads (default 0: runtime's choice)"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the REST and gRPC service", description=__doc__)
    for flag, (field, kind, text) in _FLAGS.items():
        parser.add_argument(flag, dest=field, type=kind, help=text)
    parser.add_argument("--weights", type=Path, help="serve this checkpoint (exported once into ~/.cache/facelocal)")
    parser.add_argument("--config", choices=sorted(PRESETS), help="the checkpoint's preset (default: from the file)")
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


def export_cached(weights: Path, preset: str | None) -> Path:
    """The ONNX export of ``weights``, made on first use; a clear error when torch is not installed."""
    from facelocal.cli import CommandError
    from facelocal.weights import exported_model_path, preset_for

    if not weights.is_file():
        raise CommandError(f"weights file {weights} does not exist")
    preset = preset_for(weights, preset)
    path = exported_model_path(weights, preset)
    if path.is_file():
        return path
    try:
        from facelocal.export import export_onnx
        from facelocal.models import load_pretrained
    except ImportError:
        raise CommandError(
            f"serving a checkpoint needs torch to export it once; install the torch extra "
            f"(pip install 'facelocal[torch]'), or export elsewhere and pass the file:\n"
            f"  facelocal export onnx --weights {weights} --out model.onnx\n  facelocal serve --model-path model.onnx"
        ) from None
    from facelocal.config import get_config

    # Written beside and renamed, so a crash or a second server never leaves half a model in the cache.
    partial = path.with_suffix(".partial.onnx")
    export_onnx(load_pretrained(get_config(preset), weights), partial)
    partial.replace(path)
    return path


def run(args: argparse.Namespace) -> int:
    import logging

    from facelocal.cli import CommandError

    if args.weights is not None:
        if args.model_path is not None:
            raise CommandError("pass --weights or --model-path, not both")
        args.model_path = export_cached(args.weights, args.config)
    settings = build_settings(args)
    if settings.backend == "onnxruntime" and not settings.model_path.is_file():
        raise CommandError(
            f"model file {settings.model_path} not found. Export it first:\n"
            f"  facelocal export onnx --out {settings.model_path}\n"
            "or point --model-path (FACELOCAL_MODEL_PATH) at an exported model."
        )
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from service.app import run as run_service

    run_service(settings)
    return 0
