"""Draw detections: boxes, scores and the five landmarks in distinct colours."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from facelocal.types import FaceDetections

BOX_COLOUR = (0, 255, 0)
# left eye, right eye, nose, left mouth corner, right mouth corner
LANDMARK_COLOURS = ((255, 0, 0), (0, 255, 255), (255, 0, 255), (0, 128, 255), (255, 255, 0))


def draw_detections(rgb: np.ndarray, detections: FaceDetections) -> Image.Image:
    """A copy of ``rgb`` (``(H, W, 3)`` uint8) with every face drawn."""
    image = Image.fromarray(rgb).copy()
    pen = ImageDraw.Draw(image)
    line = max(2, round(max(image.size) / 500))
    radius = line + 1
    for box, score, points in zip(detections.boxes, detections.scores, detections.landmarks):
        x1, y1, x2, y2 = (float(v) for v in box)
        pen.rectangle((x1, y1, x2, y2), outline=BOX_COLOUR, width=line)
        pen.text((x1, max(0.0, y1 - 12)), f"{score:.2f}", fill=BOX_COLOUR)
        for (x, y), colour in zip(points, LANDMARK_COLOURS):
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return image
