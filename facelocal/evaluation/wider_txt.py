"""The official WIDER FACE prediction layout: ``<event>/<name>.txt`` per image holding the image name, the
face count, then one ``x y w h score`` line per face (pixels, top-left corner, width and height)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facelocal.detections import FaceDetections


def detections_to_xywhs(detections: FaceDetections) -> np.ndarray:
    """``(N, 5)`` float64 ``x y w h score`` from xyxy detections."""
    boxes = detections.boxes.astype(np.float64)
    return np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2], detections.scores.astype(np.float64)])


def write_prediction(root: str | Path, key: str, faces: np.ndarray) -> Path:
    """Write ``faces`` (``(N, 5)`` ``x y w h score``) for image ``key`` (``event/name``) under ``root``."""
    event, name = key.split("/")
    path = Path(root) / event / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Every digit that reads back as the same float64, so that the boxes read back are the boxes found
    # (``x + w`` gives ``x2`` again) and truncating them to integers matches truncating the detections.
    lines = [name, str(len(faces))] + [" ".join(repr(float(v)) for v in face) for face in faces]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_prediction(path: str | Path) -> np.ndarray:
    """One prediction file to ``(N, 5)`` float64. Like the official reader, the count line is not trusted:
    every line after it is a face."""
    lines = Path(path).read_text().splitlines()[2:]
    rows = [[float(v) for v in line.split()[:5]] for line in lines if line.strip()]
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def read_predictions(root: str | Path) -> dict[str, np.ndarray]:
    """Every ``<event>/<name>.txt`` under ``root``, keyed ``event/name``."""
    root = Path(root)
    return {f"{p.parent.name}/{p.stem}": read_prediction(p) for p in sorted(root.glob("*/*.txt"))}
