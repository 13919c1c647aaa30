"""Five-point landmark accuracy as in the paper's section 4.5: normalised mean error (NME) on faces that carry
landmark ground truth (read by :func:`facelocal.data.annotations.read_retinaface_labels`).

Each ground-truth face with landmarks takes the unused detection of highest IoU, if that IoU is >= 0.5. A
matched face's error per landmark is the Euclidean distance over ``sqrt(w * h)`` of its ground-truth box; its
NME is the mean over the five. Faces nobody detected are reported as ``missed``, outside the NME statistics.
:func:`mesh_landmarks` puts FaceMesh's counterparts of the five points in place of RetinaFace's, so that the same
evaluation scores the mesh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facelocal.data.annotations import LabelledImage
from facelocal.detections import LANDMARK_NAMES, FaceDetections
from facelocal.landmark_source import with_landmarks_from
from facelocal.postprocess import box_iou

FAILURE_NME = 0.10
MATCH_IOU = 0.5


def match_faces(
    gt_xyxy: np.ndarray, det_xyxy: np.ndarray, iou_threshold: float = MATCH_IOU
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy one-to-one matching by descending IoU; returns matched ground-truth and detection indices."""
    if len(gt_xyxy) == 0 or len(det_xyxy) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    iou = box_iou(gt_xyxy, det_xyxy)
    pairs = np.argwhere(iou >= iou_threshold)
    pairs = pairs[np.argsort(-iou[pairs[:, 0], pairs[:, 1]], kind="stable")]
    used_gt, used_det, gt_index, det_index = set(), set(), [], []
    for g, d in pairs:
        if g not in used_gt and d not in used_det:
            used_gt.add(g)
            used_det.add(d)
            gt_index.append(g)
            det_index.append(d)
    return np.asarray(gt_index, np.int64), np.asarray(det_index, np.int64)


def landmark_errors(predicted: np.ndarray, truth: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(N, 5)`` distances of ``(N, 5, 2)`` predicted to true points over ``sqrt(w * h)`` of each true
    ``(N, 4)`` xyxy box."""
    sides = boxes[:, 2:4] - boxes[:, 0:2]
    scale = np.sqrt(np.maximum(sides[:, 0] * sides[:, 1], 1e-12))
    return np.linalg.norm(predicted - truth, axis=-1) / scale[:, None]


@dataclass(frozen=True)
class LandmarkResult:
    """``errors``: ``(M, 5)`` normalised errors of the matched faces; ``missed``: faces with landmarks nobody
    matched."""

    errors: np.ndarray
    missed: int

    @property
    def nme(self) -> np.ndarray:
        """``(M,)`` per-face NME."""
        return self.errors.mean(axis=1)

    def summary(self) -> dict:
        matched = len(self.errors)
        per_landmark = self.errors.mean(axis=0) if matched else np.full(len(LANDMARK_NAMES), np.nan)
        return {
            "faces_matched": matched,
            "faces_missed": self.missed,
            "mean_nme": float(self.nme.mean()) if matched else None,
            "per_landmark_nme": {
                n: float(v) if matched else None for n, v in zip(LANDMARK_NAMES, per_landmark, strict=True)
            },
            "failure_rate": float((self.nme > FAILURE_NME).mean()) if matched else None,
            "failure_threshold": FAILURE_NME,
        }


def evaluate_landmarks(labels: list[LabelledImage], detections: Mapping[Path, FaceDetections]) -> LandmarkResult:
    """NME of ``detections`` (keyed by the images' paths) on every labelled face that has five points."""
    errors, missed = [], 0
    for image in labels:
        faces = image.faces.select(image.faces.has_landmarks)
        if len(faces) == 0:
            continue
        boxes = faces.boxes.astype(np.float64)
        found = detections[image.path]
        gt_index, det_index = match_faces(boxes, found.boxes.astype(np.float64))
        missed += len(faces) - len(gt_index)
        if len(gt_index):
            truth = faces.landmarks[gt_index].astype(np.float64)
            errors.append(landmark_errors(found.landmarks[det_index].astype(np.float64), truth, boxes[gt_index]))
    return LandmarkResult(np.concatenate(errors) if errors else np.zeros((0, len(LANDMARK_NAMES))), missed)


def mesh_landmarks(faces: FaceDetections) -> FaceDetections:
    """``faces`` with each face's five landmarks replaced by its mesh's, as the library's ``landmarks=mesh`` does
    (:func:`facelocal.landmark_source.with_landmarks_from`); every face must have a mesh."""
    if faces.meshes is None or np.isnan(faces.meshes).any():
        raise ValueError("every face needs a mesh: detect with a mesh stage and mesh_min_face 0")
    return with_landmarks_from(faces, "mesh")[0]


def cumulative_error_distribution(
    nme: np.ndarray, limit: float = 0.2, points: int = 201
) -> tuple[np.ndarray, np.ndarray]:
    """The CED curve: for NME thresholds ``0 .. limit``, the fraction of faces at or below each."""
    grid = np.linspace(0.0, limit, points)
    if len(nme) == 0:
        return grid, np.zeros_like(grid)
    return grid, np.searchsorted(np.sort(nme), grid, side="right") / len(nme)
