"""``facelocal detect``: find faces in image files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facelocal.cli.common import add_mesh_weights_argument, add_model_arguments, add_resize_argument
from facelocal.config import SERVE_POSTPROCESS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("detect", help="detect faces in images", description=__doc__)
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    add_model_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")
    parser.add_argument("--draw", type=Path, metavar="OUT.jpg", help="write a picture of the detections")
    parser.add_argument("--score-threshold", type=float, default=SERVE_POSTPROCESS.score_threshold)
    parser.add_argument("--nms-threshold", type=float, default=SERVE_POSTPROCESS.nms_threshold)
    add_resize_argument(parser)
    parser.add_argument(
        "--mesh",
        action="store_true",
        help="add FaceMesh's 468 3D vertices and presence score to each face (--json: mesh, mesh_score; --draw: "
        "the vertices)",
    )
    add_mesh_weights_argument(parser)
    parser.add_argument(
        "--mesh-min-face",
        type=float,
        default=None,
        metavar="PX",
        help="faces whose longer box side is under PX get no mesh (no mesh field); default 48",
    )
    parser.add_argument(
        "--landmarks",
        choices=("detector", "mesh"),
        default="detector",
        help="where the five points come from: RetinaFace (default) or, for faces with a mesh, FaceMesh's "
        "vertices (needs --mesh; --json: landmarks_source per face)",
    )
    parser.set_defaults(func=run)


def draw_path(base: Path, index: int, count: int) -> Path:
    """``--draw out.jpg`` for one image; ``out_0.jpg``, ``out_1.jpg``... for several."""
    return base if count == 1 else base.with_name(f"{base.stem}_{index}{base.suffix}")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from facelocal.cli import CommandError
    from facelocal.cli.common import load_torch_model
    from facelocal.detector import Detector
    from facelocal.draw import draw_detections
    from facelocal.imageio import ImageDecodeError, load_image
    from facelocal.preprocess import ResizePolicy

    try:
        resize = ResizePolicy.parse(args.resize)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    from facelocal.cli.common import load_mesh_model
    from facelocal.facemesh import MESH_MIN_FACE

    if not args.mesh and (args.mesh_weights or args.mesh_min_face is not None or args.landmarks == "mesh"):
        raise CommandError("--mesh-weights, --mesh-min-face and --landmarks mesh need --mesh")
    from facelocal.landmark_source import with_landmarks_from

    postprocess = replace(SERVE_POSTPROCESS, score_threshold=args.score_threshold, nms_threshold=args.nms_threshold)
    mesh = None
    if args.mesh:
        from facelocal.models.facemesh import torch_mesh_infer

        mesh = torch_mesh_infer(load_mesh_model(args)[0])
    min_face = MESH_MIN_FACE if args.mesh_min_face is None else args.mesh_min_face
    detector = Detector.from_model(
        load_torch_model(args), postprocess=postprocess, resize=resize, mesh=mesh, mesh_min_face=min_face
    )
    for index, path in enumerate(args.images):
        try:
            rgb = load_image(path)
        except (OSError, ImageDecodeError) as exc:
            raise CommandError(f"{path}: {exc}") from None
        result, sources = with_landmarks_from(detector.detect([rgb])[0], args.landmarks)
        if args.json:
            faces = result.faces()
            if args.landmarks == "mesh":
                faces = [face | {"landmarks_source": source} for face, source in zip(faces, sources, strict=True)]
            record = {"image": str(path), "width": result.width, "height": result.height, "faces": faces}
            print(json.dumps(record))
        else:
            print(f"{path}: {len(result)} faces ({result.width}x{result.height})")
            for face in result.faces():
                mesh = ""
                if "mesh" in face:
                    mesh = (
                        " no mesh (small face)" if face["mesh"] is None else f" mesh presence {face['mesh_score']:.3f}"
                    )
                print(f"  score {face['score']:.3f} box {face['box']}{mesh}")
        if args.draw:
            out = draw_path(args.draw, index, len(args.images))
            draw_detections(rgb, result).save(out)
            if not args.json:
                print(f"  drawn to {out}")
    return 0
