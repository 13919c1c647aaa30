"""Draw detections: boxes, scores and the five landmarks in distinct colours."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from facelocal.detections import FaceDetections

BOX_COLOUR = (0, 255, 0)
# left eye, right eye, nose, left mouth corner, right mouth corner
LANDMARK_COLOURS = ((255, 0, 0), (0, 255, 255), (255, 0, 255), (0, 128, 255), (255, 255, 0))


def draw_detections(rgb: np.ndarray, detections: FaceDetections) -> Image.Image:
    """A copy of ``rgb`` (``(H, W, 3)`` uint8) with every face drawn; FaceMesh vertices too when present."""
    image = Image.fromarray(rgb).copy()
    pen = ImageDraw.Draw(image)
    line = max(2, round(max(image.size) / 500))
    radius = line + 1
    if detections.meshes is not None and detections.mesh_scores is not None:
        draw_meshes(pen, detections.meshes, detections.mesh_scores)
    for box, score, points in zip(detections.boxes, detections.scores, detections.landmarks, strict=True):
        x1, y1, x2, y2 = (float(v) for v in box)
        pen.rectangle((x1, y1, x2, y2), outline=BOX_COLOUR, width=line)
        pen.text((x1, max(0.0, y1 - 12)), f"{score:.2f}", fill=BOX_COLOUR)
        for (x, y), colour in zip(points, LANDMARK_COLOURS, strict=True):
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return image


def mesh_colours(depth: np.ndarray) -> np.ndarray:
    """``(468, 3)`` uint8 colours by relative depth: near (negative z) warm yellow, far cool blue."""
    span = float(np.ptp(depth)) or 1.0
    t = ((depth - depth.min()) / span)[:, None]
    near, far = np.array([255, 235, 59], np.float64), np.array([33, 150, 243], np.float64)
    return np.round(near * (1 - t) + far * t).astype(np.uint8)


def draw_meshes(pen: ImageDraw.ImageDraw, meshes: np.ndarray, mesh_scores: np.ndarray) -> None:
    """Each face's 468 vertices as dots coloured by depth, sized to the face; faces without a mesh (NaN) are
    skipped, and meshes whose presence score is under 0.5 are drawn in grey (FaceMesh does not see a face there)."""
    for mesh, score in zip(meshes, mesh_scores, strict=True):
        if not np.isfinite(score):
            continue
        dot = float(np.ptp(mesh[:, 0])) / 180.0  # radius: 1 px for a 180 px wide face
        colours = mesh_colours(mesh[:, 2]) if score >= 0.5 else np.full((len(mesh), 3), 160, np.uint8)
        for (x, y, _), colour in zip(mesh, colours, strict=True):
            fill = tuple(int(c) for c in colour)
            if dot < 0.5:
                pen.point((x, y), fill=fill)
            else:
                pen.ellipse((x - dot, y - dot, x + dot, y + dot), fill=fill)
