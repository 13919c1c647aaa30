"""ArcFace alignment: the Umeyama fit and the affine warp put the landmarks on the template."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from service.alignment import ARCFACE_TEMPLATE, CROP_SIZE, align_face, umeyama_similarity

# One distinct colour per landmark, so each can be found again in the crop.
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]


def _similarity(scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    angle = math.radians(degrees)
    matrix = np.eye(3)
    matrix[:2, :2] = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    matrix[:2, 2] = shift
    return matrix


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def test_umeyama_recovers_a_known_similarity() -> None:
    truth = _similarity(2.7, -33.0, (310.0, 125.5))
    source = np.random.default_rng(0).uniform(0, 100, (7, 2))
    np.testing.assert_allclose(umeyama_similarity(source, _apply(truth, source)), truth, atol=1e-9)


def test_umeyama_never_reflects() -> None:
    mirrored = ARCFACE_TEMPLATE * [-1.0, 1.0]
    fit = umeyama_similarity(mirrored, ARCFACE_TEMPLATE)
    assert np.linalg.det(fit[:2, :2]) > 0


def test_warped_landmarks_land_on_the_template() -> None:
    # A "face" 2.3x the template size, turned 25 degrees, somewhere in a larger image.
    to_image = _similarity(2.3, 25.0, (400.0, 180.0))
    landmarks = _apply(to_image, ARCFACE_TEMPLATE)
    image = Image.new("RGB", (900, 700))
    draw = ImageDraw.Draw(image)
    for (x, y), colour in zip(landmarks, COLOURS, strict=True):
        draw.ellipse((x - 6, y - 6, x + 6, y + 6), fill=colour)

    crop = align_face(np.asarray(image), landmarks)
    assert crop.shape == (CROP_SIZE, CROP_SIZE, 3) and crop.dtype == np.uint8
    for colour, expected in zip(COLOURS, ARCFACE_TEMPLATE, strict=True):
        mask = np.all(np.abs(crop.astype(int) - colour) < 60, axis=-1)
        assert mask.sum() > 5, f"landmark {colour} missing from the crop"
        ys, xs = np.nonzero(mask)
        # Pixel centres sit at +0.5 in Pillow's continuous coordinates.
        found = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
        assert np.linalg.norm(found - expected) < 2.0, (colour, found, expected)
