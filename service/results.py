"""One image's answer inside the service: numpy until the edge.

The core hands a :class:`DetectionResult` (faces as :class:`~facelocal.detections.FaceDetections`, meshes
included) to the front ends, and each converts it once, to what its protocol sends: REST's JSON
(:mod:`service.rest.shaping`), gRPC's protobuf (:mod:`service.grpc.converters`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facelocal.detections import COORDINATE_DECIMALS, SCORE_DECIMALS, FaceDetections, rounded
from facelocal.pipeline import SKIPPED_LIMIT
from facelocal.pose import AXES
from facelocal.quality import FaceQuality
from service.schemas import Timings

# Degrees to two places: a hundredth of a degree is far below the pose's error (4 degrees).
POSE_DECIMALS = 2


@dataclass
class DetectionResult:
    """Faces found in one image, as the core found them.

    Attributes:
        width, height: the image's size after EXIF orientation.
        model: the detector's name.
        faces: boxes, scores, landmarks; with ``return_mesh`` also ``meshes`` ``(N, 468, 3)`` and
            ``mesh_scores`` ``(N,)`` (NaN for a face that got none).
        truncated: whether ``max_faces`` (or the server's cap) left faces out.
        landmarks: whether the client asked for the landmarks (the mesh stage needs them either way).
        crops: with ``return_crops``, each face's aligned crop as PNG bytes.
        mesh_skipped: with ``return_mesh``, per face why it has no mesh (None: it has one).
        timings: where the time went.
    """

    width: int
    height: int
    model: str
    faces: FaceDetections
    truncated: bool
    landmarks: bool = True
    crops: list[bytes] | None = None
    mesh_skipped: list[str | None] | None = None
    landmark_sources: np.ndarray | None = None
    poses: np.ndarray | None = None
    quality: FaceQuality | None = None
    timings: Timings = field(default_factory=lambda: Timings(decode=0.0, queue=0.0, inference=0.0, postprocess=0.0))

    @property
    def mesh_truncated(self) -> bool | None:
        """With ``return_mesh``: whether the per-image mesh limit left faces without one."""
        return None if self.mesh_skipped is None else SKIPPED_LIMIT in self.mesh_skipped

    def pose_dicts(self) -> list[dict[str, float] | None]:
        """Per face ``{pitch, yaw, roll}`` rounded as both front ends send them, None without a pose; [] when
        not asked."""
        if self.poses is None:
            return []
        rounded = np.round(self.poses.astype(np.float64), POSE_DECIMALS)
        return [dict(zip(AXES, row.tolist(), strict=True)) if np.isfinite(row).all() else None for row in rounded]

    def quality_dicts(self) -> list[dict]:
        """Per face the quality figures as both front ends send them (no ``frontalness`` without a pose); []
        when not asked."""
        if self.quality is None:
            return []
        return [{key: value for key, value in face.items() if value is not None} for face in self.quality.as_dicts()]


@dataclass
class AnonymizedResult:
    """One image with its faces covered (``POST /v1/anonymize``, gRPC ``Anonymize``).

    Attributes:
        image: the encoded image, in ``media_type``.
        media_type: the input's media type (image/jpeg, image/png, image/webp, image/bmp), else image/png.
        faces: the faces covered, by descending score.
        regions: per face the ``(K, 2)`` polygon it was covered on, image pixels.
        region_kinds: per face ``"mesh"`` (face oval) or ``"ellipse"`` (from the box).
        truncated: whether the server's max_faces left faces uncovered.
    """

    image: bytes
    media_type: str
    faces: FaceDetections
    regions: list[np.ndarray]
    region_kinds: np.ndarray
    truncated: bool
    timings: Timings = field(default_factory=lambda: Timings(decode=0.0, queue=0.0, inference=0.0, postprocess=0.0))

    def region_dicts(self) -> list[dict]:
        """Per face ``{kind, box, score, polygon}``, rounded as both front ends send them."""
        boxes = rounded(self.faces.boxes, COORDINATE_DECIMALS)
        scores = rounded(self.faces.scores, SCORE_DECIMALS)
        return [
            {"kind": str(kind), "box": box, "score": score, "polygon": rounded(polygon, COORDINATE_DECIMALS)}
            for kind, box, score, polygon in zip(self.region_kinds, boxes, scores, self.regions, strict=True)
        ]
