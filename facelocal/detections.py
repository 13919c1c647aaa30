"""Per-image detection results as plain typed objects (numpy only, so serving needs no torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Decimals of the JSON faces (CLI and REST) and the gRPC answers: coordinates to a hundredth of a pixel,
# probabilities to 1e-5.
COORDINATE_DECIMALS = 2
SCORE_DECIMALS = 5
# Order of the five landmarks, as in the public annotations and the paper.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")
# Index each landmark takes in a mirror image: the eyes and the mouth corners trade places, the nose stays.
MIRRORED_LANDMARKS = (1, 0, 2, 4, 3)


def mirror_faces(boxes: np.ndarray, landmarks: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(N, 4)`` xyxy and landmarks ``(N, 5, 2)`` as they lie in the left-right mirror of a ``width``-wide
    image (an involution). Coordinates are continuous, so ``x`` maps to ``width - x``: box corners swap, and the
    landmark pairs swap so that ``left_eye`` stays the subject's left eye."""
    mirrored_boxes = boxes.copy()
    mirrored_boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    mirrored_landmarks = landmarks[:, MIRRORED_LANDMARKS].copy()
    mirrored_landmarks[..., 0] = width - mirrored_landmarks[..., 0]
    return mirrored_boxes, mirrored_landmarks


@dataclass
class FaceDetections:
    """Faces found in one image, in that image's pixel coordinates.

    Attributes:
        boxes: ``(N, 4)`` float32 ``(x1, y1, x2, y2)``, clipped to the image.
        scores: ``(N,)`` float32 face probabilities, descending.
        landmarks: ``(N, 5, 2)`` float32 ``(x, y)``: left eye, right eye, nose, left and right mouth corner.
        width, height: size of the image the coordinates refer to.
        meshes: ``(N, 468, 3)`` float32 FaceMesh vertices ``(x, y, z)`` in image pixels (z: relative depth,
            negative towards the camera), NaN for faces that got no mesh; ``None`` when no mesh was asked for.
        mesh_scores: ``(N,)`` float32 mesh presence probabilities (NaN where no mesh), or ``None``.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray
    width: int
    height: int
    meshes: np.ndarray | None = None
    mesh_scores: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, width: int, height: int, num_landmarks: int = 5) -> FaceDetections:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            landmarks=np.zeros((0, num_landmarks, 2), np.float32),
            width=width,
            height=height,
        )

    def select(self, index: np.ndarray) -> FaceDetections:
        """The faces at ``index`` (an index array or boolean mask)."""
        meshes = None if self.meshes is None else self.meshes[index]
        mesh_scores = None if self.mesh_scores is None else self.mesh_scores[index]
        return FaceDetections(
            self.boxes[index], self.scores[index], self.landmarks[index], self.width, self.height, meshes, mesh_scores
        )

    def faces(self, decimals: int = COORDINATE_DECIMALS, landmarks: bool = True) -> list[dict]:
        """The JSON face schema shared by the CLI and the REST API: ``box``, ``score``, ``landmarks`` (unless
        ``landmarks`` is False), and ``mesh`` with ``mesh_score`` for each face that got a mesh (left out for one
        that did not). Coordinates to ``decimals`` places, scores to 5; rounded for all faces at once."""
        faces: list[dict] = [
            {"box": box, "score": score}
            for box, score in zip(rounded(self.boxes, decimals), rounded(self.scores, SCORE_DECIMALS), strict=True)
        ]
        if landmarks:
            for face, points in zip(faces, rounded(self.landmarks, decimals), strict=True):
                face["landmarks"] = points
        if self.meshes is not None and self.mesh_scores is not None:
            has_mesh = np.isfinite(self.mesh_scores)
            if has_mesh.any():
                meshes = np.round(self.meshes[has_mesh].astype(np.float64), decimals).tolist()
                scores = rounded(self.mesh_scores[has_mesh], SCORE_DECIMALS)
                for index, mesh, mesh_score in zip(np.nonzero(has_mesh)[0], meshes, scores, strict=True):
                    faces[index]["mesh"] = mesh
                    faces[index]["mesh_score"] = mesh_score
        return faces


def rounded(values: np.ndarray, decimals: int) -> list:
    """``values`` rounded to ``decimals`` places, as nested Python lists of floats."""
    return np.round(values.astype(np.float64), decimals).tolist()
