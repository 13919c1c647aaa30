"""One image's answer inside the service: numpy until the edge.

The core hands a :class:`DetectionResult` (faces as :class:`~facelocal.detections.FaceDetections`, meshes
included) to the front ends, and each converts it once, to what its protocol sends: REST's JSON
(:mod:`service.rest.shaping`), gRPC's protobuf (:mod:`service.grpc.converters`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from facelocal.detections import FaceDetections
from facelocal.pipeline import SKIPPED_LIMIT
from service.schemas import Timings


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
    timings: Timings = field(default_factory=lambda: Timings(decode=0.0, queue=0.0, inference=0.0, postprocess=0.0))

    @property
    def mesh_truncated(self) -> bool | None:
        """With ``return_mesh``: whether the per-image mesh limit left faces without one."""
        return None if self.mesh_skipped is None else SKIPPED_LIMIT in self.mesh_skipped
