"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from facelocal.config import DEFAULT_PRESET, PRESETS

# Calibration images for int8 that are no evaluation images, in the shared data: the 300-W Helen test faces and
# the shared photos.
DEFAULT_CALIBRATION = ("landmarks/300w_helen_test/images", "images")


def data_path(value: Path | None, relative: str, flag: str) -> Path:
    """``value`` (a flag's), else ``relative`` in the shared data (:func:`facelocal.weights.resolve_data`)."""
    from facelocal.cli import CommandError
    from facelocal.weights import DataNotFoundError, resolve_data

    try:
        return resolve_data(value, relative, flag)
    except DataNotFoundError as exc:
        raise CommandError(str(exc)) from None


def calibration_folders(given: list[Path] | None) -> list[Path]:
    """``given`` (``--calibration``), else :data:`DEFAULT_CALIBRATION` in the shared data."""
    return list(given) if given else [data_path(None, folder, "--calibration") for folder in DEFAULT_CALIBRATION]


def add_resize_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resize",
        default="original",
        help="original, long:S, letterbox:S or fit:S (the service's policy: long side at most S, never upscaled, "
        "canvas rounded up to 32 px)",
    )


def add_preset_argument(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--preset NAME`` (``--config`` is its old spelling, kept for one release)."""
    fallback = f"the one a known checkpoint was trained with, else {DEFAULT_PRESET}" if default is None else default
    parser.add_argument(
        "--preset",
        "--config",
        dest="preset",
        default=default,
        choices=sorted(PRESETS),
        help=f"model preset: anchors and activations the weights were trained with (default: {fallback})",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    add_preset_argument(parser)
    parser.add_argument(
        "--weights", help="checkpoint path (else $FACELOCAL_WEIGHTS or the weights table, $FACELOCAL_WEIGHTS_TABLE)"
    )


def weights_from_args(args: argparse.Namespace) -> Path:
    """The checkpoint ``--weights``, ``$FACELOCAL_WEIGHTS`` or the weights table names; else :class:`CommandError`."""
    from facelocal.cli import CommandError
    from facelocal.weights import WeightsNotFoundError, resolve_weights

    try:
        return resolve_weights(args.weights, args.preset)
    except WeightsNotFoundError as exc:
        raise CommandError(str(exc)) from None


def load_torch_model(args: argparse.Namespace):
    """Load the network for :func:`weights_from_args`, its preset from the file unless ``--config`` is given."""
    from facelocal.cli import CommandError
    from facelocal.config import get_config
    from facelocal.models import load_pretrained
    from facelocal.weights import preset_for

    weights = weights_from_args(args)
    preset = preset_for(weights, args.preset)
    try:
        return load_pretrained(get_config(preset), weights)
    except RuntimeError as exc:
        raise CommandError(f"{weights} does not match the {preset} network: {exc}") from None


def add_mesh_weights_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mesh-weights",
        metavar="PATH",
        help="MediaPipe face_landmark.tflite (else $FACELOCAL_MESH_WEIGHTS or [weights] facemesh in the weights table)",
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


def add_calibration_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--calibration",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="folders of int8 calibration images, never evaluation images "
        "(default: the 300-W Helen test faces and the photos of the shared data, $FACELOCAL_DATA)",
    )


def export_model(model, out: Path, precision: str | None, calibration: list[Path] | None) -> Path:
    """``model`` exported to ``out``: the fp32 graph, or for ``int8`` that graph quantised with the images in the
    ``calibration`` folders (see :func:`calibration_folders`)."""
    import tempfile

    from facelocal.cli import CommandError
    from facelocal.export import export_onnx

    if precision != "int8":
        return export_onnx(model, out)
    from facelocal.quantize import calibration_images, quantize_int8

    try:
        images = calibration_images(calibration_folders(calibration))
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None
    print(f"calibrating int8 on {len(images)} images")
    with tempfile.TemporaryDirectory() as tmp:
        return quantize_int8(export_onnx(model, Path(tmp) / "fp32.onnx"), out, images)
