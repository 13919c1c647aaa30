"""``facelocal eval``: WIDER FACE AP (official protocol), five-point landmark NME and head pose MAE."""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from facelocal.anonymize import ANONYMIZE_MAX_SIZE, ANONYMIZE_SCORE_THRESHOLD, ANONYMIZE_TTA
from facelocal.cli.common import (
    add_calibration_argument,
    add_mesh_weights_argument,
    add_model_arguments,
    add_resize_argument,
    data_path,
)
from facelocal.config import EVAL_POSTPROCESS, SERVE_POSTPROCESS, PostprocessConfig
from facelocal.facemesh import CONFIDENT_PRESENCE
from facelocal.pose import POSE_MESH_REFINE
from facelocal.runtime import PRECISIONS
from facelocal.tta import TTA_MODES

if TYPE_CHECKING:
    from facelocal.detections import FaceDetections

Key = TypeVar("Key")  # what the detections are filed under: a WIDER image key or a landmark file's path

# In the shared data ($FACELOCAL_DATA) unless --images / --gt say otherwise.
DEFAULT_VAL_IMAGES = "widerface/val_sample/images"
DEFAULT_GROUND_TRUTH = "widerface/ground_truth"
DEFAULT_POSE_DATA = "pose/aflw2000_3d"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="accuracy: WIDER FACE AP, landmark NME, head pose", description=__doc__)
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")

    wider = tasks.add_parser("widerface", help="Easy/Medium/Hard AP with the official protocol")
    _add_wider_arguments(wider)
    wider.add_argument(
        "--predictions", type=Path, help="evaluate this folder of official txt files instead of detecting"
    )
    wider.add_argument(
        "--save-predictions", type=Path, metavar="DIR", help="write the detections as official txt files"
    )
    wider.add_argument("--plot", type=Path, metavar="PR.png", help="precision-recall curves, one per setting")
    wider.add_argument(
        "--image-list",
        type=Path,
        metavar="LIST.txt",
        help="only these images (with --images or --predictions): one event/name a line, './' and '.jpg' "
        "optional, as Pytorch_Retinaface's wider_val.txt",
    )
    _add_detection_arguments(wider)
    wider.set_defaults(func=run_widerface)

    marks = tasks.add_parser("landmarks", help="five-point NME on a RetinaFace label.txt")
    marks.add_argument("--labels", type=Path, required=True, help="label.txt: '# path' lines, then faces")
    marks.add_argument("--images", type=Path, required=True, help="folder the label paths are relative to")
    marks.add_argument("--plot", type=Path, metavar="CED.png", help="cumulative error distribution curve")
    marks.add_argument(
        "--mesh",
        action="store_true",
        help="score FaceMesh's five points (eye-contour centres, vertex 4, mouth corners 61 and 291) instead of "
        "RetinaFace's landmarks; every detected face is meshed",
    )
    add_mesh_weights_argument(marks)
    _add_detection_arguments(marks)
    marks.set_defaults(func=run_landmarks)

    pose = tasks.add_parser("pose", help="head pose MAE on AFLW2000-3D (labels within +-99 degrees)")
    pose.add_argument(
        "--data", type=Path, help=f"folder with pose.json and images/ (default: {DEFAULT_POSE_DATA} in $FACELOCAL_DATA)"
    )
    _add_pose_arguments(pose)
    _add_detection_arguments(pose)
    # Every face above the threshold is meshed: the service's threshold, not the AP sweep's 0.02.
    pose.set_defaults(func=run_pose, score_threshold=SERVE_POSTPROCESS.score_threshold)

    quality = tasks.add_parser("quality", help="share of WIDER val faces whose detection is usable, per setting")
    _add_wider_arguments(quality)
    _add_pose_arguments(quality)
    _add_detection_arguments(quality)
    quality.set_defaults(func=run_quality, score_threshold=SERVE_POSTPROCESS.score_threshold)

    anonymize = tasks.add_parser(
        "anonymize", help="share of WIDER val faces >= 24 px high whose box the face regions cover >= 90 %%"
    )
    _add_wider_arguments(anonymize)
    anonymize.add_argument(
        "--no-mesh", action="store_true", help="cover every face on the ellipse from its box (no FaceMesh)"
    )
    add_mesh_weights_argument(anonymize)
    _add_detection_arguments(anonymize)
    # The preset /v1/anonymize runs by default, so that the coverage measured is the endpoint's.
    anonymize.set_defaults(
        func=run_anonymize,
        score_threshold=ANONYMIZE_SCORE_THRESHOLD,
        tta=ANONYMIZE_TTA,
        resize=f"fit:{ANONYMIZE_MAX_SIZE}",
    )


def _add_wider_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--images", type=Path, help=f"WIDER layout: EVENT/NAME.jpg (default: {DEFAULT_VAL_IMAGES} in $FACELOCAL_DATA)"
    )
    parser.add_argument(
        "--gt",
        type=Path,
        help=f"folder of the official .mat files (default: {DEFAULT_GROUND_TRUTH} in $FACELOCAL_DATA)",
    )


def _add_pose_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mesh-refine",
        type=int,
        default=POSE_MESH_REFINE,
        help="crop each face again from its mesh this many times (default: %(default)s; on AFLW2000-3D 0 gives "
        "6.6 degrees over every face, 1 gives 6.2)",
    )
    parser.add_argument(
        "--min-presence",
        type=float,
        default=CONFIDENT_PRESENCE,
        help="pose only faces whose mesh presence reaches this (default: facelocal.facemesh.CONFIDENT_PRESENCE, "
        "%(default)s)",
    )
    add_mesh_weights_argument(parser)


def _add_detection_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument(
        "--runtime",
        choices=("onnxruntime", "openvino", "torch"),
        default="onnxruntime",
        help="run the exported serving graph on ONNX Runtime (default), OpenVINO, or the torch network",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", *PRECISIONS),
        help="auto (bf16 on openvino where native), fp32, bf16 (openvino) or int8 (an --onnx file from "
        "'facelocal export int8', else the weights are quantised first with --calibration); "
        "default: as the file stores it",
    )
    add_calibration_argument(parser)
    parser.add_argument("--onnx", type=Path, metavar="MODEL.onnx", help="evaluate this exported model (no torch)")
    add_resize_argument(parser)
    parser.add_argument(
        "--tta",
        default="none",
        choices=TTA_MODES,
        help="test-time augmentation, spelled as the API's tta option; auto (flip, and the mirrored pair at 2x "
        "where the first view finds faces under 24 px) gains the most AP per time (README)",
    )
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="write the results as JSON")
    parser.add_argument("--limit", type=int, help="evaluate only N images, picked as --sample says")
    parser.add_argument(
        "--sample",
        choices=("first", "stride", "random"),
        default="first",
        help="with --limit: the first N of the sorted images, N spread evenly over them (every event "
        "represented), or N drawn at random with --seed (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample random (default: %(default)s)")
    post = parser.add_argument_group(
        "post-processing",
        "what turns the network's output into faces (recorded in the JSON); Pytorch_Retinaface's "
        "test_widerface.py is the defaults with --no-clip --plus-one",
    )
    post.add_argument(
        "--score-threshold",
        type=float,
        default=EVAL_POSTPROCESS.score_threshold,
        help="keep scores above this (default: %(default)s)",
    )
    post.add_argument(
        "--nms-threshold",
        type=float,
        default=EVAL_POSTPROCESS.nms_threshold,
        help="NMS drops a box whose IoU with a better one exceeds this (default: %(default)s)",
    )
    post.add_argument(
        "--pre-nms-top-k",
        type=int,
        default=EVAL_POSTPROCESS.pre_nms_top_k,
        help="best scores kept before NMS (default: %(default)s)",
    )
    post.add_argument(
        "--top-k", type=int, default=EVAL_POSTPROCESS.post_nms_top_k, help="faces kept after NMS (default: %(default)s)"
    )
    post.add_argument(
        "--clip",
        action=argparse.BooleanOptionalAction,
        default=EVAL_POSTPROCESS.clip_boxes,
        help="clip boxes to the image (default: on; the reference leaves them unclipped)",
    )
    post.add_argument(
        "--plus-one",
        action="store_true",
        default=EVAL_POSTPROCESS.plus_one,
        help="NMS counts a box as x2 - x1 + 1 pixels wide, as the reference does (default: off)",
    )


def _postprocess(args: argparse.Namespace) -> PostprocessConfig:
    """The post-processing the arguments ask for."""
    return PostprocessConfig(
        score_threshold=args.score_threshold,
        nms_threshold=args.nms_threshold,
        pre_nms_top_k=args.pre_nms_top_k,
        post_nms_top_k=args.top_k,
        clip_boxes=args.clip,
        plus_one=args.plus_one,
    )


def _build_detector(args: argparse.Namespace, **kwargs):
    """The detector ``args`` ask for, and a description of it for the report (preset, runtime, weights hash)."""
    import tempfile

    from facelocal.cli import CommandError
    from facelocal.cli.common import calibration_folders, export_model, load_torch_model, weights_from_args
    from facelocal.contract import PRECISION_KEY, PRESET_KEY
    from facelocal.detector import Detector
    from facelocal.runtime import model_metadata, resolve_precision
    from facelocal.weights import file_sha256

    def exported(path: Path, about: dict):
        metadata = model_metadata(path)
        try:
            precision = resolve_precision(args.runtime, args.precision, metadata.get(PRECISION_KEY, "fp32"))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        detector = Detector.from_onnx(path, runtime=args.runtime, precision=precision, **kwargs)
        described = {"preset": metadata.get(PRESET_KEY)} | about
        return detector, described | {"runtime": args.runtime, "precision": precision}

    if args.onnx:
        if args.runtime == "torch":
            raise CommandError("--onnx runs on onnxruntime or openvino, not torch")
        return exported(args.onnx, {"model": str(args.onnx), "sha256": file_sha256(args.onnx)})
    weights, model = weights_from_args(args), load_torch_model(args)
    about = {"weights": str(weights), "sha256": file_sha256(weights), "preset": model.config.name}
    if args.runtime == "torch":
        if args.precision not in (None, "fp32"):
            raise CommandError("the torch network runs in fp32 only")
        return Detector.from_model(model, **kwargs), about | {"runtime": "torch", "precision": "fp32"}
    if args.precision == "int8":
        about["calibration"] = [str(folder) for folder in calibration_folders(args.calibration)]
    with tempfile.TemporaryDirectory() as tmp:  # the runtime holds the graph in memory once built
        return exported(export_model(model, Path(tmp) / "model.onnx", args.precision, args.calibration), about)


def _detect_all(
    args: argparse.Namespace, paths: Mapping[Key, Path], **detector_options
) -> tuple[dict[Key, FaceDetections], float, dict]:
    """Run the detector (the requested post-processing and TTA, and ``detector_options`` for
    :class:`~facelocal.detector.Detector`) over ``paths``.

    Images are decoded in a thread pool ahead of the network. Returns the detections by key, the mean
    seconds per image (decode excluded) and the detector's description.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from facelocal.cli import CommandError
    from facelocal.imageio import ImageDecodeError, load_image
    from facelocal.preprocess import ResizePolicy
    from facelocal.tta import TTAPlan

    try:
        resize = ResizePolicy.parse(args.resize)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    plan = TTAPlan.parse(args.tta)
    postprocess = _postprocess(args)
    detector, about = _build_detector(args, postprocess=postprocess, resize=resize, **detector_options)
    about["postprocess"] = asdict(postprocess)
    detections, seconds = {}, 0.0
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode") as pool:
        decoded = [pool.submit(load_image, path) for path in paths.values()]
        progress = tqdm(zip(paths.items(), decoded, strict=True), total=len(paths), desc="detect", unit="img")
        for (key, path), future in progress:
            try:
                rgb = future.result()
            except (OSError, ImageDecodeError) as exc:
                raise CommandError(f"{path}: {exc}") from None
            start = time.perf_counter()
            detections[key] = detector.detect_augmented(rgb, plan)
            seconds += time.perf_counter() - start
    return detections, seconds / max(1, len(paths)), about


def _subset(keys: Iterable, args: argparse.Namespace) -> list:
    """``keys`` sorted, cut to ``--limit`` as ``--sample`` says; a subset of the first N is biased by event
    (WIDER's names sort by event), stride and random ones are not."""
    keys = sorted(keys)
    if args.limit is None or args.limit >= len(keys):
        return keys
    if args.sample == "stride":
        return [keys[i * len(keys) // args.limit] for i in range(args.limit)]
    if args.sample == "random":
        return sorted(random.Random(args.seed).sample(keys, args.limit))
    return keys[: args.limit]


def _selected(items: dict, args: argparse.Namespace) -> dict:
    """``items`` (keyed ``event/name``) restricted to ``--image-list`` and then ``--limit``."""
    from facelocal.cli import CommandError

    if args.image_list is not None:
        if not args.image_list.is_file():
            raise CommandError(f"image list {args.image_list} not found")
        wanted = {_list_key(line) for line in args.image_list.read_text().splitlines() if line.strip()}
        missing = wanted - set(items)
        if missing:
            raise CommandError(f"{len(missing)} listed images not found, e.g. {min(missing)}")
        items = {key: items[key] for key in wanted}
    return {key: items[key] for key in _subset(items, args)}


def _list_key(line: str) -> str:
    """``./event/name.jpg`` (a wider_val.txt line), ``event/name.jpg`` or ``event/name`` to ``event/name``."""
    key = line.strip().removeprefix("./")
    return key.removesuffix(".jpg")


def run_widerface(args: argparse.Namespace) -> int:
    from facelocal.cli import CommandError
    from facelocal.evaluation.wider_txt import detections_to_xywhs, read_predictions, write_prediction
    from facelocal.evaluation.widerface import evaluate, load_ground_truth

    try:
        ground_truth = load_ground_truth(data_path(args.gt, DEFAULT_GROUND_TRUTH, "--gt"))
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None
    seconds_per_image: float | None = None
    about: dict[str, object] = {}
    if args.predictions:
        if not args.predictions.is_dir():
            raise CommandError(f"prediction folder {args.predictions} not found")
        predictions = _selected(read_predictions(args.predictions), args)
        source = str(args.predictions)
    else:
        images = args.images or data_path(None, DEFAULT_VAL_IMAGES, "--images or --predictions")
        if not images.is_dir():
            raise CommandError(
                f"no validation images at {images}: pass --images DIR (EVENT/NAME.jpg) or --predictions DIR"
            )
        paths = _selected({f"{p.parent.name}/{p.stem}": p for p in images.glob("*/*.jpg")}, args)
        detections, seconds_per_image, about = _detect_all(args, paths)
        predictions = {key: detections_to_xywhs(found) for key, found in detections.items()}
        if args.save_predictions:
            for key, faces in predictions.items():
                write_prediction(args.save_predictions, key, faces)
        source = str(images)
    if not predictions:
        raise CommandError(f"no images found in {source}")
    try:
        result = evaluate(predictions, ground_truth)
    except KeyError as exc:
        raise CommandError(exc.args[0]) from None
    summary = result.summary()
    print(f"WIDER FACE val, {result.images} of {len(ground_truth)} images ({source})")
    for setting, r in result.settings.items():
        print(f"  {setting:<6} AP {100 * r.ap:6.2f}  ({r.faces} faces)")
    if seconds_per_image is not None:
        print(f"  {1000 * seconds_per_image:.0f} ms per image (tta: {args.tta})")
    if args.plot:
        from facelocal.evaluation.plots import plot_pr_curves

        print(f"  curves: {plot_pr_curves(result, args.plot)}")
    if args.json:
        record = {
            "source": source,
            **about,
            "resize": args.resize,
            "tta": args.tta,
            "ms_per_image": None if seconds_per_image is None else 1000 * seconds_per_image,
            **summary,
        }
        args.json.write_text(json.dumps(record, indent=2))
    return 0


def run_landmarks(args: argparse.Namespace) -> int:
    from facelocal.cli import CommandError
    from facelocal.cli.common import load_mesh_model
    from facelocal.data.annotations import read_retinaface_labels
    from facelocal.evaluation.landmarks import cumulative_error_distribution, evaluate_landmarks, mesh_landmarks

    if not args.labels.is_file():
        raise CommandError(f"labels file {args.labels} not found")
    try:
        labels = read_retinaface_labels(args.labels, args.images)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    labels = [image for image in labels if image.faces.has_landmarks.any()]
    chosen = set(_subset([image.path for image in labels], args))
    labels = sorted((image for image in labels if image.path in chosen), key=lambda image: image.path)
    if not labels:
        raise CommandError(f"{args.labels} has no face with five landmarks")
    if args.mesh_weights and not args.mesh:
        raise CommandError("--mesh-weights needs --mesh")
    mesh: dict = {}
    if args.mesh:
        from facelocal.models.facemesh import torch_mesh_infer
        from facelocal.weights import file_sha256

        mesh_model, mesh_weights = load_mesh_model(args)
        mesh = {"mesh": torch_mesh_infer(mesh_model), "mesh_min_face": 0.0}
    paths = {image.path: image.path for image in labels}
    detections, seconds_per_image, about = _detect_all(args, paths, **mesh)
    about["points"] = "retinaface"
    if args.mesh:
        detections = {path: mesh_landmarks(faces) for path, faces in detections.items()}
        about |= {"points": "facemesh", "mesh_weights": str(mesh_weights), "mesh_sha256": file_sha256(mesh_weights)}
    result = evaluate_landmarks(labels, detections)
    summary = result.summary()
    print(
        f"{about['points']} landmarks on {len(labels)} images: {summary['faces_matched']} faces matched, "
        f"{summary['faces_missed']} missed"
    )
    if summary["mean_nme"] is not None:
        print(
            f"  mean NME {100 * summary['mean_nme']:.2f}%  "
            f"failure rate (NME > 10%) {100 * summary['failure_rate']:.2f}%"
        )
        for name, value in summary["per_landmark_nme"].items():
            print(f"  {name:<12} {100 * value:.2f}%")
    if args.plot:
        from facelocal.evaluation.plots import plot_ced

        print(f"  curve: {plot_ced(*cumulative_error_distribution(result.nme), args.plot)}")
    if args.json:
        record = {
            "labels": str(args.labels),
            **about,
            "tta": args.tta,
            "ms_per_image": 1000 * seconds_per_image,
            **summary,
        }
        args.json.write_text(json.dumps(record, indent=2))
    return 0


def run_pose(args: argparse.Namespace) -> int:
    from facelocal.cli import CommandError
    from facelocal.cli.common import load_mesh_model
    from facelocal.evaluation.pose import POSE_LABELS, evaluate_pose, load_pose_labels
    from facelocal.models.facemesh import torch_mesh_infer
    from facelocal.pose import CanonicalFace, head_poses
    from facelocal.weights import file_sha256

    args.data = data_path(args.data, DEFAULT_POSE_DATA, "--data")
    if not (args.data / POSE_LABELS).is_file():
        raise CommandError(f"no {POSE_LABELS} in {args.data}: pass --data DIR (AFLW2000-3D, see its SOURCES.md)")
    mesh_model, mesh_weights = load_mesh_model(args)
    try:
        canonical = CanonicalFace.load(mesh_weights.parent)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    labels = load_pose_labels(args.data)
    chosen = set(_subset([label.path for label in labels], args))
    labels = [label for label in labels if label.path in chosen]
    mesh = {"mesh": torch_mesh_infer(mesh_model), "mesh_min_face": 0.0, "mesh_refine": args.mesh_refine}
    detections, seconds_per_image, about = _detect_all(args, {label.path: label.path for label in labels}, **mesh)
    boxes = {path: faces.boxes for path, faces in detections.items()}
    poses = {path: head_poses(faces, canonical, args.min_presence) for path, faces in detections.items()}
    summary = evaluate_pose(labels, boxes, poses).summary()
    print(
        f"head pose on {summary['faces']} AFLW2000-3D faces: {summary['faces_with_pose']} got a pose "
        f"({100 * (summary['pose_share'] or 0):.1f} %)"
    )
    if summary["mae_overall"] is not None:
        per_axis = "  ".join(f"{axis} {value:.2f}" for axis, value in summary["mae"].items())
        print(f"  MAE {summary['mae_overall']:.2f} degrees ({per_axis})")
    if args.json:
        record = {
            "data": str(args.data),
            **about,
            "mesh_weights": str(mesh_weights),
            "mesh_sha256": file_sha256(mesh_weights),
            "mesh_refine": args.mesh_refine,
            "min_presence": args.min_presence,
            "tta": args.tta,
            "ms_per_image": 1000 * seconds_per_image,
            **summary,
        }
        args.json.write_text(json.dumps(record, indent=2))
    return 0


def _wider_paths(args: argparse.Namespace) -> tuple[dict, dict[str, Path]]:
    """The WIDER ground truth and the ``event/name`` -> path of the images ``--images`` and ``--limit`` select."""
    from facelocal.cli import CommandError
    from facelocal.evaluation.widerface import load_ground_truth

    args.images = data_path(args.images, DEFAULT_VAL_IMAGES, "--images")
    args.gt = data_path(args.gt, DEFAULT_GROUND_TRUTH, "--gt")
    try:
        ground_truth = load_ground_truth(args.gt)
    except FileNotFoundError as exc:
        raise CommandError(str(exc)) from None
    if not args.images.is_dir():
        raise CommandError(f"no validation images at {args.images}: pass --images DIR (EVENT/NAME.jpg)")
    paths = {f"{p.parent.name}/{p.stem}": p for p in args.images.glob("*/*.jpg")}
    unknown = sorted(set(paths) - set(ground_truth))
    if unknown:
        raise CommandError(f"{len(unknown)} images have no ground truth, e.g. {unknown[0]}")
    paths = {key: paths[key] for key in _subset(paths, args)}
    if not paths:
        raise CommandError(f"no images found in {args.images}")
    return ground_truth, paths


def _mesh_options(args: argparse.Namespace) -> tuple[dict, Path]:
    """Detector options for the torch FaceMesh stage ``--mesh-weights`` names, and that file."""
    from facelocal.cli.common import load_mesh_model
    from facelocal.models.facemesh import torch_mesh_infer

    mesh_model, mesh_weights = load_mesh_model(args)
    return {"mesh": torch_mesh_infer(mesh_model), "mesh_refine": getattr(args, "mesh_refine", 0)}, mesh_weights


def _write_record(args: argparse.Namespace, about: dict, seconds_per_image: float, summary: dict) -> None:
    if args.json:
        record = {**about, "tta": args.tta, "ms_per_image": 1000 * seconds_per_image, **summary}
        args.json.write_text(json.dumps(record, indent=2))


def run_quality(args: argparse.Namespace) -> int:
    from facelocal.cli import CommandError
    from facelocal.evaluation.coverage import UsableTally
    from facelocal.imageio import load_image
    from facelocal.pose import CanonicalFace, head_poses
    from facelocal.quality import DEFAULT_THRESHOLDS, face_quality

    ground_truth, paths = _wider_paths(args)
    mesh, mesh_weights = _mesh_options(args)
    try:
        canonical = CanonicalFace.load(mesh_weights.parent)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    detections, seconds_per_image, about = _detect_all(args, paths, **mesh)
    tally = UsableTally()
    for key, faces in detections.items():
        quality = face_quality(load_image(paths[key]), faces, head_poses(faces, canonical, args.min_presence))
        tally.add(ground_truth[key], faces.boxes, quality.usable)
    summary = tally.summary() | {"images": len(paths), "thresholds": asdict(DEFAULT_THRESHOLDS)}
    print(f"usable faces on {len(paths)} WIDER val images ({args.images})")
    for setting, share in summary["usable_share"].items():
        detected, of_detected = summary["detected_share"][setting], summary["usable_of_detected"][setting]
        print(
            f"  {setting:<6} {summary['faces'][setting]:5d} faces  detected {100 * detected:5.1f} %"
            f"  usable {100 * share:5.1f} %  ({100 * of_detected:.1f} % of detected)"
        )
    _write_record(
        args, about | {"images_dir": str(args.images), "mesh_weights": str(mesh_weights)}, seconds_per_image, summary
    )
    return 0


def run_anonymize(args: argparse.Namespace) -> int:
    from facelocal.anonymize import face_regions, region_mask
    from facelocal.evaluation.coverage import CoverageTally

    ground_truth, paths = _wider_paths(args)
    mesh, mesh_weights = ({}, None) if args.no_mesh else _mesh_options(args)
    detections, seconds_per_image, about = _detect_all(args, paths, **mesh)
    tally = CoverageTally()
    kinds: dict[str, int] = {"mesh": 0, "ellipse": 0}
    for key, faces in detections.items():
        regions, region_kinds = face_regions(faces)
        for kind in region_kinds:
            kinds[kind] += 1
        tally.add(ground_truth[key], region_mask(regions, faces.width, faces.height))
    summary = tally.summary() | {"images": len(paths), "regions": kinds}
    print(f"anonymisation on {len(paths)} WIDER val images (tta {args.tta}, threshold {args.score_threshold})")
    for setting, share in summary["covered_share"].items():
        print(f"  {setting:<6} {summary['faces'][setting]:5d} faces >= 24 px  covered {100 * share:5.1f} %")
    print(f"  non-face pixels changed {100 * summary['non_face_pixels_changed']:.1f} %  regions {kinds}")
    about |= {"images_dir": str(args.images), "mesh_weights": None if mesh_weights is None else str(mesh_weights)}
    _write_record(args, about, seconds_per_image, summary)
    return 0
