"""``facelocal serve``: REST (port 8000) and gRPC (port 50051) in one process over the exported model.

Every :class:`~service.settings.Settings` field is a flag (``--max-batch-size`` for ``max_batch_size``) and
an environment variable (``FACELOCAL_MAX_BATCH_SIZE``); a flag given wins over the environment. ``--weights``
serves a checkpoint directly: it is exported once (torch needed) into a cache keyed by the file's hash and
preset. The ``facelocal`` command finds this module through the ``facelocal.commands`` entry point, so the
library never imports the service.
"""

from __future__ import annotations

import argparse
import os
import types
import typing
from pathlib import Path

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from facelocal.cli import CommandError
from facelocal.cli.common import add_preset_argument
from service.settings import Settings

ENV_PREFIX = Settings.model_config["env_prefix"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the REST and gRPC service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    settings = parser.add_argument_group("settings (flag, or FACELOCAL_<NAME> in the environment)")
    for name, field in Settings.model_fields.items():
        settings.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, **_argument_for(name, field))
    parser.add_argument("--weights", type=Path, help="serve this checkpoint (exported once into ~/.cache/facelocal)")
    add_preset_argument(parser)
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.set_defaults(func=run)


def _argument_for(name: str, field: FieldInfo) -> dict:
    """argparse keywords for one Settings field: its type or choices, and its description with the default."""
    kind = field.annotation
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # ``X | None``: the flag gives an X
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    default = "unset" if field.default is None else field.default
    text = f"{field.description} (default: {default}; env {Settings.model_config['env_prefix']}{name.upper()})"
    if typing.get_origin(kind) is typing.Literal:
        return {"choices": typing.get_args(kind), "help": text}
    if kind is bool:
        return {"action": argparse.BooleanOptionalAction, "help": text}
    return {"type": str if kind is SecretStr else kind, "help": text, "metavar": name.upper()}


def build_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    from pydantic import ValidationError

    overrides = {name: value for name in Settings.model_fields if (value := getattr(args, name, None)) is not None}
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise CommandError(f"invalid settings: {exc}") from None


def export_cached(weights: Path, preset: str | None) -> Path:
    """The ONNX export of ``weights``, made on first use; a clear error when torch is not installed."""
    from facelocal.weights import preset_for

    if not weights.is_file():
        raise CommandError(f"weights file {weights} does not exist")
    preset = preset_for(weights, preset)

    def export(out: Path) -> None:
        from facelocal.config import get_config
        from facelocal.export import export_onnx
        from facelocal.models import load_pretrained

        export_onnx(load_pretrained(get_config(preset), weights), out)

    return _cached_export(weights, preset, export)


def export_cached_mesh() -> Path | None:
    """The ONNX export of the FaceMesh model that ``$FACELOCAL_MESH_WEIGHTS`` or the weights table's ``facemesh``
    entry names, made on first use; ``None`` when neither names one."""
    from facelocal.weights import MESH_WEIGHTS_KEY, WeightsNotFoundError, WeightsNotNamedError, resolve_mesh_weights

    try:
        weights = resolve_mesh_weights()
    except WeightsNotNamedError:
        return None
    except WeightsNotFoundError as exc:
        raise CommandError(str(exc)) from None

    def export(out: Path) -> None:
        from facelocal.export import export_mesh_onnx
        from facelocal.models.facemesh import load_facemesh
        from facelocal.weights import file_sha256

        export_mesh_onnx(load_facemesh(weights), out, source=file_sha256(weights))

    return _cached_export(weights, MESH_WEIGHTS_KEY, export)


def _cached_export(weights: Path, key: str, export: typing.Callable[[Path], None]) -> Path:
    """``export(path)`` run once for ``weights`` under ``key`` into the cache (:func:`exported_model_path`)."""
    from facelocal.weights import exported_model_path

    path = exported_model_path(weights, key)
    if path.is_file():
        return path
    try:
        import torch  # noqa: F401  (the export's only extra requirement)
    except ImportError:
        raise CommandError(
            f"serving a checkpoint needs torch to export it once; install the torch extra "
            f"(pip install 'facelocal[torch]'), or export elsewhere and pass the file:\n"
            f"  facelocal export onnx --weights {weights} --out model.onnx\n  facelocal serve --model-path model.onnx"
        ) from None
    # Written beside and renamed, so a crash or a second server never leaves half a model in the cache.
    partial = path.with_suffix(".partial.onnx")
    export(partial)
    partial.replace(path)
    return path


def run(args: argparse.Namespace) -> int:
    import logging

    if args.weights is not None:
        if args.model_path is not None:
            raise CommandError("pass --weights or --model-path, not both")
        args.model_path = export_cached(args.weights, args.preset)
        # The mesh model named as the weights are (environment, weights table) comes with them, unless the
        # mesh model is set itself.
        if args.mesh_model_path is None and f"{ENV_PREFIX}MESH_MODEL_PATH" not in os.environ:
            args.mesh_model_path = export_cached_mesh()
    settings = build_settings(args)
    if settings.backend == "onnxruntime" and not settings.model_path.is_file():
        raise CommandError(
            f"model file {settings.model_path} not found. Export it first:\n"
            f"  facelocal export onnx --out {settings.model_path}\n"
            "or point --model-path (FACELOCAL_MODEL_PATH) at an exported model, or serve a checkpoint with --weights."
        )
    mesh = settings.mesh_model_path
    if (
        settings.backend == "onnxruntime"
        and mesh is not None
        and "mesh_model_path" in settings.model_fields_set
        and not mesh.is_file()
    ):
        raise CommandError(
            f"mesh model {mesh} not found. Export it first:\n"
            f"  facelocal export onnx --mesh --mesh-weights face_landmark.tflite --out {mesh}\n"
            "or pass --mesh-model-path none to serve without return_mesh."
        )
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from service.main import run as run_service

    run_service(settings)
    return 0
