"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse

from facelocal.config import DEFAULT_CONFIG, PRESETS


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        choices=sorted(PRESETS),
        help=f"model preset (default: the one a known checkpoint was trained with, else {DEFAULT_CONFIG})",
    )
    parser.add_argument("--weights", help="checkpoint path (else $FACELOCAL_WEIGHTS or the config file)")


def load_torch_model(args: argparse.Namespace):
    """Resolve the weights and load the network; user errors become :class:`CommandError`."""
    from facelocal.cli import CommandError
    from facelocal.config import get_config
    from facelocal.models import load_pretrained
    from facelocal.weights import WeightsNotFoundError, preset_for, resolve_weights

    try:
        weights = resolve_weights(args.weights, args.config)
    except WeightsNotFoundError as exc:
        raise CommandError(str(exc)) from None
    preset = preset_for(weights, args.config)
    try:
        return load_pretrained(get_config(preset), weights)
    except RuntimeError as exc:
        raise CommandError(f"{weights} does not match the {preset} network: {exc}") from None


def add_mesh_weights_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mesh-weights",
        metavar="PATH",
        help="MediaPipe face_landmark.tflite (else $FACELOCAL_MESH_WEIGHTS or [weights] facemesh in the config file)",
    )


def load_mesh_model(args: argparse.Namespace):
    """Resolve ``--mesh-weights`` and load FaceMesh from the .tflite; user errors become :class:`CommandError`."""
    from facelocal.cli import CommandError
    from facelocal.models.facemesh import FaceMeshFileError, load_facemesh
    from facelocal.weights import WeightsNotFoundError, resolve_mesh_weights

    try:
        path = resolve_mesh_weights(args.mesh_weights)
        return load_facemesh(path), path
    except (WeightsNotFoundError, FaceMeshFileError) as exc:
        raise CommandError(str(exc)) from None
