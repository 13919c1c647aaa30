"""Readers (and a writer) for face annotations: the RetinaFace ``label.txt`` and WIDER FACE ``*_bbx_gt.txt``.

Both produce :class:`LabelledImage` records whose faces are numpy arrays in image pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NUM_LANDMARKS = 5
# Numbers on a label.txt face line with landmarks: box (4), five (x, y, flag) triples (15), blur/confidence (1).
_LANDMARK_LINE_VALUES = 4 + 3 * NUM_LANDMARKS


@dataclass
class FaceAnnotations:
    """The faces of one image.

    Attributes:
        boxes: ``(N, 4)`` float32 ``(x1, y1, x2, y2)`` pixels.
        landmarks: ``(N, 5, 2)`` float32 ``(x, y)`` pixels (left eye, right eye, nose, left and right mouth
            corner); meaningless where ``has_landmarks`` is false.
        has_landmarks: ``(N,)`` bool, whether the face was annotated with landmarks.
    """

    boxes: np.ndarray
    landmarks: np.ndarray
    has_landmarks: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.landmarks = np.asarray(self.landmarks, np.float32).reshape(-1, NUM_LANDMARKS, 2)
        self.has_landmarks = np.asarray(self.has_landmarks, bool).reshape(-1)
        if not len(self.boxes) == len(self.landmarks) == len(self.has_landmarks):
            raise ValueError("boxes, landmarks and has_landmarks must describe the same number of faces")

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls) -> FaceAnnotations:
        return cls(np.zeros((0, 4)), np.zeros((0, NUM_LANDMARKS, 2)), np.zeros((0,), bool))

    def select(self, index: np.ndarray) -> FaceAnnotations:
        """The faces picked by a boolean mask or an index array."""
        return FaceAnnotations(self.boxes[index], self.landmarks[index], self.has_landmarks[index])


@dataclass
class LabelledImage:
    """An image file and its faces."""

    path: Path
    faces: FaceAnnotations


def _face_from_values(values: list[float]) -> tuple[list[float], np.ndarray, bool]:
    x, y, w, h = values[:4]
    if len(values) >= _LANDMARK_LINE_VALUES:
        points = np.asarray(values[4:_LANDMARK_LINE_VALUES], np.float32).reshape(NUM_LANDMARKS, 3)[:, :2]
        # The public annotations write -1 for every coordinate of a face without landmarks.
        has = bool(points[0, 0] >= 0)
    else:
        points, has = np.full((NUM_LANDMARKS, 2), -1, np.float32), False
    return [x, y, x + w, y + h], points, has


def _faces(boxes: list, landmarks: list, has: list) -> FaceAnnotations:
    if not boxes:
        return FaceAnnotations.empty()
    return FaceAnnotations(np.asarray(boxes), np.stack(landmarks), np.asarray(has))


def read_retinaface_labels(path: str | Path, images_root: str | Path | None = None) -> list[LabelledImage]:
    """Parse a RetinaFace ``label.txt``.

    Each image starts with ``# relative/path.jpg``; each face line is ``x y w h`` followed, when landmarks were
    annotated, by five ``(x, y, flag)`` triples and a blur value (all ``-1`` for a face without landmarks).
    Image paths are relative to ``images_root`` (default: ``images/`` beside the file, as in the public release,
    or the file's own folder when there is no such folder); absolute paths are kept.
    """
    path = Path(path)
    root = Path(images_root) if images_root is not None else _default_images_root(path)
    records: list[LabelledImage] = []
    current: tuple[Path, list, list, list] | None = None
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            if current is not None:
                records.append(LabelledImage(current[0], _faces(*current[1:])))
            current = (root / line[1:].strip(), [], [], [])
            continue
        if current is None:
            raise ValueError(f"{path}:{line_number}: a face line before the first '# image' line")
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            raise ValueError(f"{path}:{line_number}: expected numbers, got {line!r}") from None
        if len(values) < 4:
            raise ValueError(f"{path}:{line_number}: a face needs at least x y w h")
        box, points, has = _face_from_values(values)
        current[1].append(box)
        current[2].append(points)
        current[3].append(has)
    if current is not None:
        records.append(LabelledImage(current[0], _faces(*current[1:])))
    return records


def read_wider_boxes(path: str | Path, images_root: str | Path | None = None) -> list[LabelledImage]:
    """Parse a WIDER FACE ``wider_face_{train,val}_bbx_gt.txt`` (boxes only, no landmarks).

    The format repeats: image path, face count, then ``max(count, 1)`` lines
    ``x y w h blur expression illumination invalid occlusion pose``. Faces flagged invalid and empty boxes are
    dropped. ``images_root`` defaults as in :func:`read_retinaface_labels`.
    """
    path = Path(path)
    root = Path(images_root) if images_root is not None else _default_images_root(path)
    lines: Iterator[str] = (line.strip() for line in path.read_text().splitlines() if line.strip())
    records: list[LabelledImage] = []
    for name in lines:
        count = int(next(lines))
        rows = np.array([[float(v) for v in next(lines).split()] for _ in range(max(count, 1))], np.float32)
        rows = rows[:count]
        keep = (rows[:, 2] > 0) & (rows[:, 3] > 0)
        if rows.shape[1] >= 8:
            keep &= rows[:, 7] == 0
        rows = rows[keep]
        boxes = np.concatenate([rows[:, :2], rows[:, :2] + rows[:, 2:4]], axis=1)
        faces = FaceAnnotations(boxes, np.full((len(rows), NUM_LANDMARKS, 2), -1.0), np.zeros(len(rows), bool))
        records.append(LabelledImage(root / name, faces))
    return records


def _default_images_root(labels: Path) -> Path:
    images = labels.parent / "images"
    return images if images.is_dir() else labels.parent


def load_annotations(data: str | Path, images_root: str | Path | None = None) -> list[LabelledImage]:
    """Read a training set from a ``label.txt``, a ``*_bbx_gt.txt`` or a folder holding one of them.

    A file whose first non-empty line starts with ``#`` is read as RetinaFace labels, any other as WIDER boxes.
    """
    data = Path(data)
    if data.is_dir():
        candidates = [data / "label.txt", *sorted(data.glob("wider_face_*_bbx_gt.txt"))]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise FileNotFoundError(f"{data} holds neither label.txt nor wider_face_*_bbx_gt.txt")
        data = found[0]
    if not data.is_file():
        raise FileNotFoundError(f"no annotation file at {data}")
    with data.open() as handle:
        first = next((line for line in handle if line.strip()), "")
    reader = read_retinaface_labels if first.lstrip().startswith("#") else read_wider_boxes
    return reader(data, images_root)


def write_retinaface_labels(records: Iterable[LabelledImage], path: str | Path) -> None:
    """Write records in the ``label.txt`` format that :func:`read_retinaface_labels` reads back.

    Landmark flags are written as 0.0 and the trailing blur value as 1.0; faces without landmarks get ``-1``.
    """
    lines = []
    for record in records:
        lines.append(f"# {record.path}")
        faces = record.faces
        for box, points, has in zip(faces.boxes, faces.landmarks, faces.has_landmarks, strict=True):
            x1, y1, x2, y2 = box.tolist()
            values = [x1, y1, x2 - x1, y2 - y1]
            if has:
                for x, y in points.tolist():
                    values += [x, y, 0.0]
                values.append(1.0)
            else:
                values += [-1.0] * (3 * NUM_LANDMARKS + 1)
            lines.append(" ".join(f"{v:.3f}" for v in values))
    Path(path).write_text("\n".join(lines) + "\n")
