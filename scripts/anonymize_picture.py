"""Make docs/anonymize.jpg, the README's anonymisation picture: a shared photo, its faces found with the
high-recall preset (``ANONYMIZE_SCORE_THRESHOLD``, tta auto) and FaceMesh, blurred, with the regions outlined
(green: the box's ellipse joined with the mesh's face oval, orange: the ellipse alone).

    .venv/bin/python scripts/anonymize_picture.py [--image ../shared/data/images/selfie_group.jpg]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from facelocal.anonymize import ANONYMIZE_SCORE_THRESHOLD, anonymize
from facelocal.config import SERVE_POSTPROCESS
from facelocal.detector import Detector
from facelocal.imageio import load_image
from facelocal.tta import TTAPlan

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
COLOURS = {"mesh": (60, 200, 60), "ellipse": (255, 150, 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=SHARED / "images" / "selfie_group.jpg")
    parser.add_argument("--out", type=Path, default=Path("docs/anonymize.jpg"))
    parser.add_argument("--width", type=int, default=720, help="width of the picture (default: %(default)s)")
    args = parser.parse_args()
    detector = Detector.from_weights(
        SHARED / "weights" / "mobilenet0.25_Final.pth",
        mesh_weights=SHARED / "weights" / "facemesh" / "face_landmark.tflite",
        postprocess=replace(SERVE_POSTPROCESS, score_threshold=ANONYMIZE_SCORE_THRESHOLD),
    )
    rgb = load_image(args.image)
    result = anonymize(rgb, detector.detect_augmented(rgb, TTAPlan.parse("auto")))
    picture = result.image.copy()
    for region, kind in zip(result.regions, result.region_kinds, strict=True):
        points = np.round(region).astype(np.int32)
        cv2.polylines(picture, [points], True, COLOURS[kind], 2, cv2.LINE_AA)
    scale = args.width / picture.shape[1]
    picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(args.out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    kinds, counts = np.unique(result.region_kinds.astype(str), return_counts=True)
    print(
        f"{args.out}: {len(result.regions)} faces, " + ", ".join(f"{n} {k}" for k, n in zip(kinds, counts, strict=True))
    )


if __name__ == "__main__":
    main()
