"""Head pose accuracy on AFLW2000-3D (``../shared/data/pose/aflw2000_3d``, ``pose.json``: see its ``SOURCES.md``).

The usual protocol (Hopenet, FSA-Net, 6DRepNet) keeps the faces whose three labelled angles are within +-99
degrees. Each labelled face takes the detection of highest IoU with its ``box68`` (the tight box of the 68 fitted
landmarks, which leaves out the forehead, hence a match at IoU >= 0.3 rather than 0.5). A face gets a pose when its
detection has one (:func:`facelocal.pose.head_poses`); the mean absolute errors are over those faces, and the
share of faces that got one is reported beside them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facelocal.evaluation.landmarks import match_faces
from facelocal.pose import AXES

POSE_LABELS = "pose.json"
PROTOCOL_LIMIT = 99.0
BOX68_MATCH_IOU = 0.3


@dataclass(frozen=True)
class PoseLabel:
    """One labelled photo: its path, ``angles`` ``(3,)`` pitch, yaw, roll degrees (``Pose_Para``) and ``box``
    ``(4,)`` xyxy (``box68``)."""

    path: Path
    angles: np.ndarray
    box: np.ndarray


def load_pose_labels(folder: str | Path, in_range_only: bool = True) -> list[PoseLabel]:
    """The labels in ``folder/pose.json`` (images in ``folder/images``), sorted by file name; by default only the
    protocol's faces (all angles within +-99 degrees)."""
    folder = Path(folder)
    records = json.loads((folder / POSE_LABELS).read_text())
    labels = [
        PoseLabel(
            folder / "images" / name,
            np.array([record[axis] for axis in AXES], np.float64),
            np.array(record["box68"], np.float64),
        )
        for name, record in sorted(records.items())
    ]
    return [label for label in labels if not in_range_only or np.abs(label.angles).max() <= PROTOCOL_LIMIT]


@dataclass(frozen=True)
class PoseResult:
    """``errors`` ``(M, 3)`` absolute pitch, yaw, roll errors (degrees) of the faces that got a pose; ``faces``:
    the labelled faces; ``matched``: those a detection matched."""

    errors: np.ndarray
    faces: int
    matched: int

    def summary(self) -> dict:
        posed = len(self.errors)
        per_axis = self.errors.mean(axis=0) if posed else np.full(3, np.nan)
        return {
            "faces": self.faces,
            "faces_detected": self.matched,
            "faces_with_pose": posed,
            "pose_share": posed / self.faces if self.faces else None,
            "mae": {axis: float(value) if posed else None for axis, value in zip(AXES, per_axis, strict=True)},
            "mae_overall": float(per_axis.mean()) if posed else None,
        }


def evaluate_pose(
    labels: list[PoseLabel], boxes: Mapping[Path, np.ndarray], poses: Mapping[Path, np.ndarray]
) -> PoseResult:
    """Errors of the predicted ``poses`` (``(N, 3)`` per image, NaN rows for faces without one) of the detections
    ``boxes`` (``(N, 4)`` xyxy per image), keyed by the images' paths."""
    errors, matched = [], 0
    for label in labels:
        _, found = match_faces(label.box[None], boxes[label.path].astype(np.float64), BOX68_MATCH_IOU)
        if len(found) == 0:
            continue
        matched += 1
        predicted = poses[label.path][found[0]].astype(np.float64)
        if np.isfinite(predicted).all():
            errors.append(np.abs(predicted - label.angles))
    return PoseResult(np.array(errors).reshape(-1, 3), len(labels), matched)
